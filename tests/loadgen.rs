//! `twinkle loadgen` as a user runs it: a real run against a real server,
//! the report files, and clear errors for bad input.

mod common;

use std::io::Read;
use std::process::Command;

fn twinkle(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_twinkle")).args(args).output().expect("run twinkle");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tpcw_run_writes_its_report() {
    let addr = common::http_server();
    let dir = std::env::temp_dir().join(format!("twinkle-loadgen-cli-{}", std::process::id()));
    let url = format!("http://{addr}/");
    let out_dir = dir.display().to_string();
    let (ok, stdout, stderr) = twinkle(&[
        "loadgen",
        "--target",
        &url,
        "--workload",
        "tpcw",
        "--mix",
        "browsing",
        "--users",
        "4",
        "--think",
        "0",
        "--duration",
        "1s",
        "--threads",
        "1",
        "--json",
        "--out",
        &out_dir,
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    for key in ["requests", "errors", "duration_s", "rps", "latency_ms", "per_interaction"] {
        assert!(v.get(key).is_some(), "no {key} in {stdout}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(v["latency_ms"][key].is_number(), "latency_ms.{key}");
    }
    assert!(v["requests"].as_u64().unwrap_or(0) > 100);
    assert_eq!(v["per_interaction"]["Home"]["target_pct"], 29.0);
    for f in ["summary.json", "series.csv", "interactions.csv", "latency.svg", "throughput.svg"] {
        let mut text = String::new();
        std::fs::File::open(dir.join(f))
            .and_then(|mut h| h.read_to_string(&mut text))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!text.is_empty(), "{f} is empty");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_named() {
    let (ok, _, err) = twinkle(&["loadgen", "--target", "http://127.0.0.1:1/", "--duration", "1s"]);
    assert!(!ok);
    assert!(err.contains("say how much load: --users N"), "{err}");
    let (ok, _, err) = twinkle(&["loadgen", "--target", "ftp://x/", "--users", "1"]);
    assert!(!ok);
    assert!(err.contains("only http://HOST:PORT/PATH URLs are supported"), "{err}");
    let (ok, _, err) = twinkle(&["loadgen", "--target", "http://127.0.0.1:1/", "--profile", "stair:base=1"]);
    assert!(!ok);
    assert!(err.contains("unknown shape \"stair\""), "{err}");
    let (ok, _, err) = twinkle(&[
        "loadgen",
        "--target",
        "http://127.0.0.1:1/",
        "--workload",
        "rubis",
        "--mix",
        "ordering",
        "--users",
        "1",
    ]);
    assert!(!ok);
    assert!(err.contains("RUBiS has the mixes bidding and browsing"), "{err}");
    let (ok, _, err) = twinkle(&["loadgen", "--target", "http://127.0.0.1:1/", "--rate", "fast"]);
    assert!(!ok);
    assert!(err.contains("is not a rate (requests per second, e.g. 500 or 500/s)"), "{err}");
    let (ok, _, err) = twinkle(&["loadgen", "--target", "http://127.0.0.1:1/", "--users", "1", "--think", "mean=soon"]);
    assert!(!ok);
    assert!(err.contains("is not a duration"), "{err}");
}
