//! The `twinkle` binary as a user runs it: help and version, exit codes, and
//! the policy commands on the shipped examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn twinkle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run twinkle")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn help_and_version_on_every_command() {
    let v = twinkle(&["--version"]);
    assert!(v.status.success());
    assert!(text(&v.stdout).starts_with(&format!("twinkle {}", env!("CARGO_PKG_VERSION"))));
    for args in [
        vec!["--help"],
        vec!["policy", "--help"],
        vec!["policy", "check", "--help"],
        vec!["policy", "explain", "--help"],
        vec!["policy", "simulate", "--help"],
    ] {
        let out = twinkle(&args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        assert!(help.contains("Usage:"), "{args:?}: {help}");
        if args.len() == 3 || args == ["--help"] {
            assert!(help.contains("Examples:"), "{args:?} has no examples: {help}");
        }
    }
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = twinkle(&["polcy"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("policy"), "clap suggests the right command");
}

#[test]
fn check_accepts_the_examples() {
    let mut args = vec!["policy".to_string(), "check".to_string()];
    args.extend(examples().iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = twinkle(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches(": ok (").count(), examples().len());
}

#[test]
fn check_rejects_a_bad_file_with_file_line_col() {
    let out = twinkle(&["policy", "check", "policies/examples/rubis.toml", "policies/tests/bad/unknown-key.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: policies/tests/bad/unknown-key.toml:5:1: service[0].scale_up.thresold_ms: unknown key `thresold_ms`"),
        "{err}"
    );
    assert!(err.contains("did you mean `threshold_ms`?"), "{err}");
    assert!(err.contains("1 of 2 policy file(s) invalid"), "{err}");
}

#[test]
fn check_of_a_missing_file_names_it() {
    let out = twinkle(&["policy", "check", "no/such/policy.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read policy file no/such/policy.toml"));
}

#[test]
fn explain_fills_in_defaults() {
    let out = twinkle(&["policy", "explain", "policies/examples/tpcw.toml"]);
    assert!(out.status.success());
    let toml = text(&out.stdout);
    assert!(toml.contains("give_up_after = 3"), "{toml}");
    assert!(toml.contains("client_header = \"10s\""), "{toml}");
    let out = twinkle(&["policy", "explain", "--json", "policies/examples/tpcw.toml"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("explain --json is JSON");
    assert_eq!(json["service"][0]["scale_up"]["threshold_ms"], 3000);
}

#[test]
fn simulate_the_flash_crowd() {
    let out = twinkle(&[
        "policy",
        "simulate",
        "policies/examples/rubis.toml",
        "--trace",
        "policies/examples/flash-crowd.csv",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = &r["summary"];
    assert!(s["scale_ups"].as_u64().unwrap_or(0) >= 2, "{s}");
    assert!(s["scale_downs"].as_u64().unwrap_or(0) >= 1, "{s}");
    assert_eq!(s["replacements"], 1, "the trace kills one instance");
    assert!(s["max_active"].as_u64().unwrap_or(0) <= 8, "never above max_instances");
    // The first scale-up comes after the crowd starts (t=60) plus sustain.
    let first_up = r["ticks"]
        .as_array()
        .expect("ticks")
        .iter()
        .find(|t| t["actions"].as_array().is_some_and(|a| a.iter().any(|a| a["rule"] == "ScaleUp")))
        .expect("a scale-up");
    let t = first_up["t"].as_u64().expect("t");
    assert!((62..80).contains(&t), "first scale-up at {t}");

    let plain = twinkle(&[
        "policy",
        "simulate",
        "policies/examples/rubis.toml",
        "--trace",
        "policies/examples/flash-crowd.csv",
    ]);
    let out = text(&plain.stdout);
    assert!(out.contains("START 1: p99 over 10s"), "{out}");
    assert!(out.contains("summary:"), "{out}");
}

#[test]
fn simulate_explains_a_bad_trace_or_service() {
    let dir = std::env::temp_dir().join(format!("twinkle-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let trace = dir.join("bad.csv");
    std::fs::write(&trace, "t,rps\n0,10\n").expect("write");
    let tr = trace.display().to_string();
    let out = twinkle(&["policy", "simulate", "policies/examples/rubis.toml", "--trace", &tr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("scales on p99 but the trace has no `p99_ms` column"), "{}", text(&out.stderr));
    let out = twinkle(&["policy", "simulate", "policies/examples/rubis.toml", "--trace", &tr, "--service", "nope"]);
    assert!(text(&out.stderr).contains("no service named `nope`; it has: rubis"), "{}", text(&out.stderr));
    let out = twinkle(&["policy", "simulate", "policies/examples/rubis.toml", "--trace", &tr, "--start-time", "fast"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn data_load_explains_bad_input() {
    for (args, want) in [
        (
            vec!["data", "load", "--app", "nope", "--redis", "redis://127.0.0.1:1"],
            "the apps with data are rubis and tpcw",
        ),
        (
            vec!["data", "load", "--app", "rubis", "--redis", "nowhere"],
            "is not a Redis address: write redis://HOST:PORT",
        ),
        (vec!["data", "load", "--app", "rubis", "--redis", "redis://127.0.0.1:1"], "is redis-server running there?"),
        (vec!["data", "load", "--app", "tpcw", "--redis", "127.0.0.1:1", "--scale", "0"], "--scale 0: give a fraction"),
        (vec!["bench", "app", "--app", "hello"], "the apps with data are rubis and tpcw"),
    ] {
        let out = twinkle(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let help = text(&twinkle(&["data", "load", "--help"]).stdout);
    assert!(help.contains("Examples:") && help.contains("--scale"), "{help}");
}
