//! `twinkle dispatch` as a user runs it: routes from a policy file, static
//! upstreams, the admin API, clear errors, and a clean exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `twinkle dispatch ARGS` and reads its two address lines.
fn dispatch(args: &[&str]) -> (Proc, SocketAddr, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .arg("dispatch")
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--no-health-checks"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start twinkle dispatch");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("listening line");
    let listen = line.trim().strip_prefix("listening on ").and_then(|a| a.parse().ok());
    line.clear();
    out.read_line(&mut line).expect("admin line");
    let admin = line.trim().strip_prefix("admin on ").and_then(|a| a.parse().ok());
    match (listen, admin) {
        (Some(l), Some(a)) => (Proc(child), l, a),
        _ => {
            let mut err = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("twinkle dispatch did not start: {line:?} {err}");
        }
    }
}

/// One request; returns the status line and the body.
fn request(addr: SocketAddr, host: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn routes_of_a_policy_file_go_to_their_upstreams() {
    let (rubis, tpcw, admin_up) = (common::http_server(), common::http_server(), common::http_server());
    let (r, t, a) = (format!("rubis={rubis}"), format!("tpcw={tpcw}"), format!("tpcw-admin={admin_up}"));
    let (_p, addr, admin) = dispatch(&[
        "--policy",
        "policies/examples/two-services.toml",
        "--upstream",
        &r,
        "--upstream",
        &t,
        "--upstream",
        &a,
    ]);
    let port = |b: &str| b.trim_start_matches("port ").parse::<u16>().unwrap_or(0);
    let (s, b) = request(addr, "auction.example.com", "/PutBid");
    assert!(s.contains("200"), "{s}");
    assert_eq!(port(&b), rubis.port());
    let (_, b) = request(addr, "books.example.com", "/home");
    assert_eq!(port(&b), tpcw.port());
    let (_, b) = request(addr, "books.example.com:8080", "/admin/confirm");
    assert_eq!(port(&b), admin_up.port(), "longest prefix wins");
    let (s, b) = request(addr, "elsewhere.example.org", "/");
    assert!(s.contains("404"), "{s}");
    assert!(b.contains("no service takes host"), "{b}");
    let (s, b) = request(admin, "127.0.0.1", "/status");
    assert!(s.contains("200"), "{s}");
    for name in ["\"rubis\"", "\"tpcw\"", "\"tpcw-admin\""] {
        assert!(b.contains(name), "{b}");
    }
}

#[test]
fn sigterm_ends_the_dispatcher_cleanly() {
    let up = common::http_server();
    let u = up.to_string();
    let (mut p, addr, _) = dispatch(&["--upstream", &u]);
    assert!(request(addr, "x", "/").0.contains("200"));
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = p.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "SIGTERM is a normal shutdown");
}

#[test]
fn bad_upstream_arguments_say_what_to_write() {
    let out = Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .args(["dispatch", "--policy", "policies/examples/two-services.toml", "--upstream", "127.0.0.1:1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("say which one takes it: --upstream SERVICE=127.0.0.1:1"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .args(["dispatch", "--upstream", "not-an-address"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"not-an-address\" is not an address of the form IP:PORT"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .args(["dispatch", "--policy", "policies/examples/two-services.toml", "--upstream", "shop=127.0.0.1:1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no service named \"shop\" (services: rubis, tpcw, tpcw-admin)"), "{err}");
}
