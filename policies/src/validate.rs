//! Checks that need more than one value, or more than the value's type: names,
//! addresses, routes that collide, and relations such as `min <= max` or
//! `scale_down.below_ms < scale_up.threshold_ms`. Runs only when every value
//! read cleanly, so it can trust the types.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::load::Reader;
use crate::model::{below_key, threshold_key, Policy, ServicePolicy};
use crate::route::{normalize_prefix, HostPattern};
use crate::units::Step;

/// Runs every cross-field check, recording problems in `r`.
pub(crate) fn check(policy: &Policy, r: &mut Reader<'_>) {
    check_dispatcher(policy, r);
    check_images(policy, r);
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut routes: HashMap<(String, String), usize> = HashMap::new();
    for (i, s) in policy.services.iter().enumerate() {
        let p = format!("service[{i}]");
        check_name(s, &p, i, &mut names, r);
        check_route(s, &p, i, &mut routes, policy, r);
        check_image_ref(&s.image, &format!("{p}.image"), r);
        check_counts(s, &p, r);
        check_scaling(s, &p, policy, r);
        check_instance(s, &p, r);
        check_health(s, &p, r);
        check_connect(s, &p, r);
    }
}

fn err(r: &mut Reader<'_>, path: &str, message: String, hint: impl Into<String>) {
    let span = r.span_of(path);
    r.error(span, path, message, Some(hint.into()));
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| {
        format!("expected an address IP:PORT such as \"127.0.0.1:8080\" or \"[::1]:8080\", found \"{text}\"")
    })
}

fn check_dispatcher(policy: &Policy, r: &mut Reader<'_>) {
    let d = &policy.dispatcher;
    let listen = parse_addr(&d.listen);
    if let Err(m) = &listen {
        err(r, "dispatcher.listen", m.clone(), "use 0.0.0.0:PORT to accept from every interface");
    }
    let admin = parse_addr(&d.admin_listen);
    match &admin {
        Err(m) => err(
            r,
            "dispatcher.admin_listen",
            m.clone(),
            "the admin API is usually on loopback, e.g. \"127.0.0.1:9090\"",
        ),
        Ok(a) => {
            if !a.ip().is_loopback() {
                match &d.admin_token {
                    None => err(
                        r,
                        "dispatcher.admin_listen",
                        format!("the admin API listens on {a}, which is not loopback, and no admin_token is set"),
                        "set dispatcher.admin_token (16 characters or more), or listen on 127.0.0.1",
                    ),
                    Some(t) if t.len() < 16 => err(
                        r,
                        "dispatcher.admin_token",
                        format!("expected a token of at least 16 characters, found {} characters", t.len()),
                        "generate one with: head -c 24 /dev/urandom | base64",
                    ),
                    Some(_) => {}
                }
            }
        }
    }
    if let (Ok(l), Ok(a)) = (&listen, &admin) {
        if l.port() == a.port()
            && (l.ip() == a.ip() || l.ip().is_unspecified() || a.ip().is_unspecified())
            && l.port() != 0
        {
            err(
                r,
                "dispatcher.admin_listen",
                format!("the admin API and the proxy would both listen on port {}", a.port()),
                "give the admin API its own port, e.g. 9090",
            );
        }
    }
    if let Some(first) = policy
        .services
        .iter()
        .filter(|s| s.scale_up.metric.is_latency())
        .find(|s| s.scale_up.threshold >= d.timeouts.upstream_response.as_millis() as f64)
    {
        let i = policy.services.iter().position(|s| std::ptr::eq(s, first)).unwrap_or(0);
        err(
            r,
            &format!("service[{i}].scale_up.threshold_ms"),
            format!(
                "threshold_ms {} is not below dispatcher.timeouts.upstream_response ({}): requests would time out before the threshold is reached",
                first.scale_up.threshold, d.timeouts.upstream_response
            ),
            "lower the threshold or raise dispatcher.timeouts.upstream_response",
        );
    }
}

fn check_images(policy: &Policy, r: &mut Reader<'_>) {
    check_image_ref(&policy.images.store, "images.store", r);
}

/// An image or store reference: a local path, http(s)://host/..., or s3://bucket/...
fn check_image_ref(text: &str, path: &str, r: &mut Reader<'_>) {
    if text.trim().is_empty() {
        err(
            r,
            path,
            "expected a directory, http:// or s3:// address, found an empty string".into(),
            "e.g. \"images/rubis\"",
        );
        return;
    }
    if let Some((scheme, rest)) = text.split_once("://") {
        let ok_scheme = matches!(scheme, "http" | "https" | "s3" | "file");
        if !ok_scheme {
            err(
                r,
                path,
                format!("`{scheme}://` is not a supported image store scheme"),
                "use a local path, http://HOST:PORT/PREFIX (twinkle images serve) or s3://BUCKET/PREFIX",
            );
        } else if rest.is_empty() || rest.starts_with('/') && scheme != "file" {
            err(r, path, format!("`{text}` names no host or bucket"), format!("write {scheme}://HOST/PREFIX"));
        }
    }
}

fn check_name(s: &ServicePolicy, p: &str, i: usize, names: &mut HashMap<String, usize>, r: &mut Reader<'_>) {
    let path = format!("{p}.name");
    let valid = !s.name.is_empty()
        && s.name.len() <= 63
        && s.name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        err(
            r,
            &path,
            format!("expected a name of lower-case letters, digits, `-` and `_` (at most 63, starting with a letter or digit), found \"{}\"", s.name),
            "names appear in URLs of the admin API and in metric labels",
        );
        return;
    }
    if let Some(&first) = names.get(&s.name) {
        err(
            r,
            &path,
            format!("service name \"{}\" is already used by service[{first}]", s.name),
            "every service needs its own name",
        );
    } else {
        names.insert(s.name.clone(), i);
    }
}

fn check_route(
    s: &ServicePolicy,
    p: &str,
    i: usize,
    routes: &mut HashMap<(String, String), usize>,
    policy: &Policy,
    r: &mut Reader<'_>,
) {
    let host = match HostPattern::parse(&s.route.host) {
        Ok(h) => Some(h.to_string()),
        Err(why) => {
            err(
                r,
                &format!("{p}.route.host"),
                why,
                "write \"*\", \"shop.example.com\" or \"*.example.com\" (no port, no scheme)",
            );
            None
        }
    };
    let prefix = match normalize_prefix(&s.route.path_prefix) {
        Ok(prefix) => Some(prefix),
        Err(why) => {
            err(r, &format!("{p}.route.path_prefix"), why, "a path prefix starts with `/`, e.g. \"/\" or \"/api\"");
            None
        }
    };
    if let (Some(host), Some(prefix)) = (host, prefix) {
        let key = (host, prefix);
        if let Some(&first) = routes.get(&key) {
            let other = policy.services.get(first).map_or("?", |o| o.name.as_str());
            err(
                r,
                &format!("{p}.route"),
                format!(
                    "route host \"{}\" path_prefix \"{}\" is the same as service \"{other}\"'s: requests could not be told apart",
                    key.0, key.1
                ),
                "give one of them another host or a longer path_prefix (the longest matching prefix wins)",
            );
        } else {
            routes.insert(key, i);
        }
    }
}

fn check_counts(s: &ServicePolicy, p: &str, r: &mut Reader<'_>) {
    if s.min_instances > s.max_instances {
        err(
            r,
            &format!("{p}.min_instances"),
            format!("min_instances ({}) is greater than max_instances ({})", s.min_instances, s.max_instances),
            "min_instances must be at most max_instances",
        );
    }
}

fn check_scaling(s: &ServicePolicy, p: &str, _policy: &Policy, r: &mut Reader<'_>) {
    let up = &s.scale_up;
    let down = &s.scale_down;
    if down.below >= up.threshold {
        let bk = below_key(up.metric);
        let tk = threshold_key(up.metric);
        err(
            r,
            &format!("{p}.scale_down.{bk}"),
            format!("scale_down.{bk} ({}) must be below scale_up.{tk} ({})", down.below, up.threshold),
            "leave a gap between the two so the service does not flap; e.g. a quarter of the threshold",
        );
    }
    if let Step::Count(n) = up.step {
        if n > up.max_step {
            err(
                r,
                &format!("{p}.scale_up.step"),
                format!("step ({n}) is larger than max_step ({})", up.max_step),
                "raise max_step or lower step; max_step caps every scale-up",
            );
        }
    }
    for (key, d) in [("scale_up.window", up.window), ("scale_down.window", down.window)] {
        if d.as_millis() % 1000 != 0 {
            err(
                r,
                &format!("{p}.{key}"),
                format!("expected a whole number of seconds, found \"{d}\""),
                "windows are made of one-second buckets",
            );
        }
    }
}

fn check_instance(s: &ServicePolicy, p: &str, r: &mut Reader<'_>) {
    let i = &s.instance;
    if i.mem_mib % 2 != 0 {
        err(
            r,
            &format!("{p}.instance.mem_mib"),
            format!("expected a multiple of 2, found {}", i.mem_mib),
            format!("guest memory is mapped in 2 MiB pages: use {} or {}", i.mem_mib - 1, i.mem_mib + 1),
        );
    }
    if i.cpu_quota_pct > 100 * i.vcpus {
        err(
            r,
            &format!("{p}.instance.cpu_quota_pct"),
            format!(
                "cpu_quota_pct ({}) is more than {} vCPU(s) can use ({}%)",
                i.cpu_quota_pct,
                i.vcpus,
                100 * i.vcpus
            ),
            "a quota above 100% needs more vcpus",
        );
    }
}

fn check_health(s: &ServicePolicy, p: &str, r: &mut Reader<'_>) {
    let h = &s.health;
    if !h.path.starts_with('/') || h.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        err(
            r,
            &format!("{p}.health.path"),
            format!("expected a request path starting with `/`, found \"{}\"", h.path),
            "e.g. \"/health\"",
        );
    }
    if h.timeout >= h.interval {
        err(
            r,
            &format!("{p}.health.timeout"),
            format!("timeout ({}) must be shorter than interval ({})", h.timeout, h.interval),
            "a check must end before the next one starts",
        );
    }
    if h.eject_for > h.eject_max {
        err(
            r,
            &format!("{p}.health.eject_for"),
            format!("eject_for ({}) is longer than eject_max ({})", h.eject_for, h.eject_max),
            "eject_for is the first ejection time; eject_max caps its doubling",
        );
    }
}

fn check_connect(s: &ServicePolicy, p: &str, r: &mut Reader<'_>) {
    for (name, addr) in &s.connect {
        let path = format!("{p}.connect.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            err(r, &path, format!("endpoint name `{name}` must be letters, digits, `-` or `_`"), "e.g. redis");
            continue;
        }
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            err(
                r,
                &path,
                format!("expected an endpoint \"HOST:PORT\", found \"{addr}\""),
                format!("e.g. {name} = \"127.0.0.1:6379\""),
            );
        }
    }
}
