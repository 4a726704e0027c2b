//! The table of bad policies: every file in tests/bad/ ends with the exact
//! diagnostics `policy check` must give (`# expect: LINE:COL: PATH: MESSAGE`
//! followed by `#   hint: HINT`). The test fails if any message changes, is
//! missing, or an unexpected one appears.

use std::path::Path;

use policies::{load_policy_file, PolicyError};

fn expectations(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(e) = line.strip_prefix("# expect: ") {
            out.push((e.to_string(), String::new()));
        } else if let Some(h) = line.strip_prefix("#   hint: ") {
            if let Some(last) = out.last_mut() {
                last.1 = h.to_string();
            }
        }
    }
    out
}

#[test]
fn every_bad_file_gives_exactly_its_expected_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/bad exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "the table should cover many mistakes, found {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{} has no `# expect:` line", file.display());
        let got = match load_policy_file(file) {
            Ok(_) => {
                failures.push(format!("{}: accepted, but it is invalid", file.display()));
                continue;
            }
            Err(PolicyError::Invalid { diagnostics }) => diagnostics,
            Err(other) => panic!("{}: unexpected error kind: {other}", file.display()),
        };
        let prefix = format!("{}:", file.display());
        let got: Vec<(String, String)> = got
            .iter()
            .map(|d| {
                let head = d.headline();
                let head = head.strip_prefix(&prefix).unwrap_or(&head).to_string();
                (head, d.hint.clone().unwrap_or_default())
            })
            .collect();
        if got != expected {
            failures.push(format!("{}:\n  expected {expected:#?}\n  got      {got:#?}", file.display()));
        }
        // Every diagnostic must carry a position, a hint and a rendered snippet.
        for d in load_policy_file(file).err().iter().flat_map(|e| e.diagnostics().to_vec()) {
            assert!(d.location.is_some(), "{}: {} has no location", file.display(), d.headline());
            assert!(d.hint.is_some(), "{}: {} has no hint", file.display(), d.headline());
            assert!(d.to_string().contains(" | "), "{}: no snippet", file.display());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let e = load_policy_file(Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/policy.toml"), "{e}");
}
