//! From TOML text to a validated [`Policy`]: parse with spans, read every key
//! with a typed reader (unknown keys are errors), fill defaults, then run the
//! cross-field checks of [`crate::validate`]. All problems are collected.

mod reader;
mod service;

use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::error::PolicyError;
use crate::model::{DispatcherConfig, ImagesConfig, Limits, LinkEmulation, Policy, Timeouts};
use crate::validate;

pub(crate) use reader::Reader;
use reader::{describe, TableReader};

/// Most services one policy may define.
pub const MAX_SERVICES: usize = 256;

/// Reads and validates the policy file at `path`.
pub fn load_policy_file(path: &Path) -> Result<Policy, PolicyError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_path_buf(), source })?;
    parse_policy(&SourceFile::new(path.display().to_string(), text))
}

/// Parses and validates a policy text.
pub fn parse_policy(src: &SourceFile) -> Result<Policy, PolicyError> {
    let doc = match DeTable::parse(&src.text) {
        Ok(doc) => doc,
        Err(e) => return Err(syntax_error(src, &e)),
    };
    let mut r = Reader::new(src);
    let mut top = TableReader::new(doc.get_ref(), String::new(), 0..0);
    let dispatcher = read_dispatcher(&mut r, &mut top);
    let images = read_images(&mut r, &mut top);
    let services = service::read_services(&mut r, &mut top);
    top.finish(&mut r);
    let policy = Policy { dispatcher, images, services };
    if r.diagnostics.is_empty() {
        validate::check(&policy, &mut r);
    }
    if r.diagnostics.is_empty() {
        Ok(policy)
    } else {
        let mut diagnostics = r.diagnostics;
        diagnostics.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.col)));
        Err(PolicyError::Invalid { diagnostics })
    }
}

fn syntax_error(src: &SourceFile, e: &toml::de::Error) -> PolicyError {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim().to_string();
    PolicyError::Invalid {
        diagnostics: vec![Diagnostic {
            location: Some(Location::of(src, span)),
            path: String::new(),
            message: format!("invalid TOML: {message}"),
            hint: Some("check quotes, brackets and `=`; services are `[[service]]` tables (see docs/policy.md)".into()),
        }],
    }
}

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

fn read_dispatcher(r: &mut Reader<'_>, top: &mut TableReader<'_, '_>) -> DispatcherConfig {
    let d = DispatcherConfig::default();
    let Some(mut t) = top.table(r, "dispatcher") else {
        return d;
    };
    let listen = t.string(r, "listen", "an address such as \"0.0.0.0:8080\"");
    let admin_listen = t.string(r, "admin_listen", "an address such as \"127.0.0.1:9090\"");
    let admin_token = t.string(r, "admin_token", "a token");
    let threads = t.integer(r, "threads", 0, 1024, "0 means one worker thread per core");
    let timeouts = match t.table(r, "timeouts") {
        Some(mut tt) => {
            let def = Timeouts::default();
            let out = Timeouts {
                client_header: tt.duration(r, "client_header", 100 * MS, 5 * 60 * SEC).unwrap_or(def.client_header),
                client_idle: tt.duration(r, "client_idle", SEC, HOUR).unwrap_or(def.client_idle),
                upstream_connect: tt.duration(r, "upstream_connect", 10 * MS, 60 * SEC).unwrap_or(def.upstream_connect),
                upstream_response: tt.duration(r, "upstream_response", 100 * MS, HOUR).unwrap_or(def.upstream_response),
                shutdown_grace: tt.duration(r, "shutdown_grace", Duration::ZERO, HOUR).unwrap_or(def.shutdown_grace),
            };
            tt.finish(r);
            out
        }
        None => Timeouts::default(),
    };
    let limits = match t.table(r, "limits") {
        Some(mut lt) => {
            let def = Limits::default();
            let out = Limits {
                max_header_bytes: lt.byte_size(r, "max_header_bytes", 1024, 1 << 20).unwrap_or(def.max_header_bytes),
                max_headers: lt
                    .integer(r, "max_headers", 8, 10_000, "a typical browser sends 10-30 headers")
                    .unwrap_or(def.max_headers),
                max_body_bytes: lt.byte_size(r, "max_body_bytes", 0, 1 << 34).unwrap_or(def.max_body_bytes),
                max_connections: lt
                    .integer(r, "max_connections", 1, 10_000_000, "each connection costs a file descriptor")
                    .unwrap_or(def.max_connections),
            };
            lt.finish(r);
            out
        }
        None => Limits::default(),
    };
    t.finish(r);
    DispatcherConfig {
        listen: listen.unwrap_or(d.listen),
        admin_listen: admin_listen.unwrap_or(d.admin_listen),
        admin_token,
        threads: threads.unwrap_or(d.threads),
        timeouts,
        limits,
    }
}

fn read_images(r: &mut Reader<'_>, top: &mut TableReader<'_, '_>) -> ImagesConfig {
    let d = ImagesConfig::default();
    let Some(mut t) = top.table(r, "images") else {
        return d;
    };
    let store = t.string(r, "store", "a directory, http:// or s3:// address");
    let link = match t.table(r, "link") {
        Some(mut lt) => {
            let bandwidth = lt.bandwidth(r, "bandwidth");
            let rtt = lt.duration(r, "rtt", Duration::ZERO, 10 * SEC);
            if bandwidth.is_none() && !r.is_set(&lt.key_path("bandwidth")) {
                r.error(
                    lt.span.clone(),
                    &lt.path,
                    "missing required key `bandwidth`".into(),
                    Some("an emulated link needs a bandwidth, e.g. bandwidth = \"1Gbit\"".into()),
                );
            }
            lt.finish(r);
            bandwidth.map(|bandwidth| LinkEmulation { bandwidth, rtt: rtt.unwrap_or_default() })
        }
        None => None,
    };
    t.finish(r);
    ImagesConfig { store: store.unwrap_or(d.store), link }
}

/// For messages about values of the wrong shape at the top of a section.
pub(crate) fn found(v: &DeValue<'_>) -> String {
    describe(v)
}
