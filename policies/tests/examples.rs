//! The shipped examples: they load, `explain` round-trips, and docs/policy.md
//! documents every key the effective policy has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use policies::explain::{explain_json, explain_toml};
use policies::{load_policy_file, parse_policy, SourceFile};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_three_examples_exist_and_load() {
    let names: Vec<String> =
        examples().iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    for want in ["rubis.toml", "tpcw.toml", "two-services.toml"] {
        assert!(names.iter().any(|n| n == want), "missing example {want}");
    }
    for p in examples() {
        if let Err(e) = load_policy_file(&p) {
            panic!("{} is invalid:\n{e}", p.display());
        }
    }
}

#[test]
fn explain_output_loads_back_to_the_same_policy() {
    for p in examples() {
        let policy = load_policy_file(&p).expect("valid example");
        let text = explain_toml(&policy);
        let again = parse_policy(&SourceFile::new("explained.toml", text.clone()))
            .unwrap_or_else(|e| panic!("explain output of {} does not load:\n{e}\n{text}", p.display()));
        assert_eq!(policy, again, "{}", p.display());
        assert!(explain_json(&policy).starts_with('{'));
    }
}

#[test]
fn explain_redacts_the_admin_token() {
    let src = SourceFile::new(
        "t.toml",
        "[dispatcher]\nadmin_listen = \"0.0.0.0:9090\"\nadmin_token = \"s3cret-s3cret-s3cret\"\n[[service]]\nname = \"a\"\nimage = \"a\"\n",
    );
    let p = parse_policy(&src).expect("valid");
    assert!(!explain_toml(&p).contains("s3cret"));
    assert!(!explain_json(&p).contains("s3cret"));
}

fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                let is_table = child.is_object() || (child.is_array() && child.get(0).is_some_and(|c| c.is_object()));
                if !is_table {
                    out.insert(path.clone());
                }
                key_paths(child, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                key_paths(item, prefix, out);
            }
        }
        _ => {}
    }
}

#[test]
fn docs_policy_md_documents_every_key() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policy.md"))
        .expect("docs/policy.md exists");
    let mut keys = BTreeSet::new();
    for p in examples() {
        let policy = load_policy_file(&p).expect("valid");
        let json: serde_json::Value = serde_json::from_str(&explain_json(&policy)).expect("json");
        key_paths(&json, "", &mut keys);
    }
    assert!(keys.len() > 50, "too few keys collected: {keys:?}");
    // Keys only some policies have.
    for k in [
        "dispatcher.admin_token",
        "images.link.bandwidth",
        "images.link.rtt",
        "service.scale_up.threshold",
        "service.scale_down.below",
    ] {
        keys.insert(k.to_string());
    }
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !k.starts_with("service.connect.") || k.as_str() == "service.connect")
        .filter(|k| !docs.contains(&format!("`{k}`")))
        .collect();
    assert!(missing.is_empty(), "docs/policy.md does not document: {missing:?}");
}
