//! Real VMs, started as users start them (`twinkle vm run`), spoken to over
//! real TCP and HTTP. Needs /dev/kvm: without it every test fails saying so.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::require_kvm;

fn twinkle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_twinkle"))
}

/// A running `twinkle vm run`, killed when dropped.
struct VmProc {
    child: Child,
    addr: SocketAddr,
}

impl VmProc {
    fn start(app: &str, extra: &[&str]) -> VmProc {
        require_kvm();
        let mut child = twinkle()
            .args(["vm", "run", "--app", app, "--listen", "127.0.0.1:0", "--mem-mib", "64"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twinkle vm run");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        let vm = VmProc { child, addr };
        vm.wait_healthy();
        vm
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = get(self.addr, "/health") {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the VM did not answer /health within 10 s");
    }
}

impl Drop for VmProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<Resp> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Resp { status, headers, body })
}

fn request(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(raw)?;
    read_response(&mut BufReader::new(s))
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<Resp> {
    request(addr, format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
}

#[test]
fn hello_answers_http() {
    let vm = VmProc::start("hello", &[]);
    let r = get(vm.addr, "/").expect("GET /");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"Hello from a twinkle VM!\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(get(vm.addr, "/health").expect("health").body, b"ok\n");
    assert_eq!(get(vm.addr, "/missing").expect("404").status, 404);
    assert_eq!(request(vm.addr, b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n").expect("405").status, 405);
    // HEAD: the length of the body that GET would send, and no body.
    let mut s = TcpStream::connect(vm.addr).expect("connect");
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read until close");
    assert!(raw.contains("Content-Length: 25\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "HEAD must have no body: {raw:?}");
}

#[test]
fn malformed_and_oversized_requests_are_refused() {
    let vm = VmProc::start("hello", &[]);
    assert_eq!(request(vm.addr, b"GARBAGE\r\n\r\n").expect("400").status, 400);
    let r = request(vm.addr, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n").expect("413");
    assert_eq!(r.status, 413);
    let r = request(vm.addr, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
        .expect("400");
    assert_eq!(r.status, 400);
    let r = request(vm.addr, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .expect("501");
    assert_eq!(r.status, 501);
    // The VM still serves afterwards.
    assert_eq!(get(vm.addr, "/health").expect("health").status, 200);
}

#[test]
fn keep_alive_and_pipelining() {
    let vm = VmProc::start("hello", &[]);
    let s = TcpStream::connect(vm.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    // Three requests in one write: answered in order on one connection.
    w.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    assert_eq!(read_response(&mut r).expect("1").body, b"ok\n");
    assert_eq!(read_response(&mut r).expect("2").body, b"abc");
    assert_eq!(read_response(&mut r).expect("3").status, 200);
    // And later requests on the same connection.
    for i in 0..50 {
        let body = format!("request {i}");
        w.write_all(
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        )
        .expect("write");
        assert_eq!(read_response(&mut r).expect("response").body, body.as_bytes());
    }
}

#[test]
fn large_bodies_cross_ring_buffers_intact() {
    let vm = VmProc::start("hello", &[]);
    let body: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    for _ in 0..3 {
        let mut raw = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        raw.extend_from_slice(&body);
        let r = request(vm.addr, &raw).expect("echo 1 MiB");
        assert_eq!(r.status, 200);
        assert!(r.body == body, "echoed body differs");
    }
    let r = get(vm.addr, "/bytes?n=6000000").expect("6 MB");
    assert_eq!(r.body.len(), 6_000_000);
    assert!(r.body.iter().enumerate().all(|(i, b)| *b == b'a' + (i % 26) as u8));
}

#[test]
fn a_thousand_concurrent_connections() {
    let vm = VmProc::start("hello", &[]);
    let mut conns: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(vm.addr).expect("connect")).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let body = format!("conn {i}");
        c.write_all(
            format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        )
        .expect("write");
    }
    for (i, c) in conns.into_iter().enumerate() {
        let r = read_response(&mut BufReader::new(c)).expect("response");
        assert_eq!(r.body, format!("conn {i}").as_bytes());
    }
}

#[test]
fn clients_that_vanish_mid_request_do_not_hurt() {
    let vm = VmProc::start("hello", &[]);
    for _ in 0..20 {
        let mut s = TcpStream::connect(vm.addr).expect("connect");
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\npartial").expect("write");
        drop(s);
        let mut s = TcpStream::connect(vm.addr).expect("connect");
        s.write_all(b"GET /hea").expect("write");
        let _ = s.shutdown(Shutdown::Both);
    }
    // A client that stops reading a large response, then leaves.
    let mut s = TcpStream::connect(vm.addr).expect("connect");
    s.write_all(b"GET /bytes?n=8000000 HTTP/1.1\r\nHost: t\r\n\r\n").expect("write");
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    assert_eq!(get(vm.addr, "/health").expect("health").status, 200);
}

#[test]
fn outbound_connections_reach_named_endpoints() {
    let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = echo.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let (mut s, _) = echo.accept().expect("accept");
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("read to half-close");
            s.write_all(b"echo: ").expect("write");
            s.write_all(&got).expect("write");
        }
    });
    let vm = VmProc::start("hello", &["--connect", &format!("echo=127.0.0.1:{port}")]);
    for word in ["one", "two", "three"] {
        let r = get(vm.addr, &format!("/upstream/echo?msg={word}")).expect("upstream");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("echo: {word}\n").as_bytes());
    }
    assert_eq!(get(vm.addr, "/upstream/nosuch").expect("404").status, 404);
    server.join().expect("echo server");
}

fn run_to_end(args: &[&str]) -> (i32, String) {
    require_kvm();
    let out = twinkle().args(args).output().expect("run twinkle");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_crash_mode_ends_the_vm_with_a_message() {
    let cases: &[(&str, i32, &str)] = &[
        ("exit:7", 7, ""),
        ("panic", 101, "guest panicked: panicked at"),
        ("null", 134, "page fault (vector 14) at rip 0x"),
        ("stack", 134, "stack overflow: the stack guard page was hit"),
        ("ud", 134, "invalid opcode (vector 6)"),
        ("div", 134, "guest crashed"),
        ("oob", 134, "beyond the 64 MiB of guest memory"),
        ("gp", 134, "general protection fault (vector 13)"),
        ("hlt", 134, "general protection fault"),
        ("badcall", 134, "unknown hypercall 999"),
        ("badptr", 134, "bad pointer to log"),
        ("ring", 134, "submission tail 1000000 is 1000000 entries ahead"),
        ("badlen", 134, "exceeds the 1048576 byte limit"),
        ("oom", 101, "memory allocation of"),
    ];
    for (mode, code, msg) in cases {
        let (got, err) = run_to_end(&["vm", "run", "--app", "crash", "--mem-mib", "64", "--arg", mode]);
        assert_eq!(got, *code, "mode {mode}: exit code; stderr: {err}");
        assert!(err.contains(msg), "mode {mode}: expected {msg:?} in stderr: {err}");
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let (code, err) = run_to_end(&["vm", "run", "--app", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no embedded app named \"nosuch\"; embedded apps: hello, crash, memtouch"), "{err}");
    let (code, err) = run_to_end(&["vm", "run", "--app", "hello", "--mem-mib", "7"]);
    assert_eq!(code, 1);
    assert!(err.contains("--mem-mib 7 must be an even number of at least 8"), "{err}");
    let (code, err) = run_to_end(&["vm", "run", "--app", "hello", "--connect", "redis"]);
    assert_eq!(code, 1);
    assert!(err.contains("expected NAME=HOST:PORT"), "{err}");
    let not_elf = std::env::temp_dir().join(format!("twinkle-not-elf-{}", std::process::id()));
    std::fs::write(&not_elf, b"#!/bin/sh\necho hi\n").expect("write");
    let (code, err) = run_to_end(&["vm", "run", "--elf", &not_elf.display().to_string()]);
    let _ = std::fs::remove_file(&not_elf);
    assert_eq!(code, 1);
    assert!(err.contains("not a valid ELF file"), "{err}");
}

#[test]
fn memtouch_reports_a_checksum_and_exits_cleanly() {
    let (code, err) = run_to_end(&[
        "vm",
        "run",
        "--app",
        "memtouch",
        "--mem-mib",
        "64",
        "--arg",
        "mib=16",
        "--arg",
        "pattern=random",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("memtouch: checksum="), "{err}");
    assert!(err.contains("ready after"), "{err}");
}

#[test]
fn an_idle_vm_uses_almost_no_cpu() {
    let vm = VmProc::start("hello", &[]);
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", vm.child.id())).expect("stat");
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(500));
    let before = ticks();
    std::thread::sleep(Duration::from_secs(3));
    let used = ticks() - before;
    // 3 s at 100 ticks/s = 300 ticks for a busy core; idle must stay near zero.
    assert!(used <= 6, "an idle VM used {used} ticks of CPU in 3 s");
}

#[test]
fn the_control_socket_reports_pauses_resumes_and_stops() {
    use std::os::unix::net::UnixStream;
    let sock = std::env::temp_dir().join(format!("twinkle-ctl-{}.sock", std::process::id()));
    let sock_s = sock.display().to_string();
    let mut vm = VmProc::start("hello", &["--control", &sock_s]);
    let c = UnixStream::connect(&sock).expect("control socket");
    let mut w = c.try_clone().expect("clone");
    let mut r = BufReader::new(c);
    let mut ask = |req: &str| -> String {
        w.write_all(format!("{req}\n").as_bytes()).expect("write");
        let mut line = String::new();
        r.read_line(&mut line).expect("read");
        line
    };
    let status = ask(r#"{"op":"status"}"#);
    assert!(status.contains(r#""protocol":1"#) && status.contains(r#""state":"ready""#), "{status}");
    assert!(ask(r#"{"op":"pause"}"#).contains(r#""state":"paused""#));
    // A paused VM does not answer...
    let mut s = TcpStream::connect(vm.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").expect("write");
    let mut buf = [0u8; 64];
    assert!(s.read(&mut buf).is_err(), "a paused VM answered");
    assert!(ask(r#"{"op":"status"}"#).contains(r#""state":"paused""#));
    // ...and answers the same request once resumed.
    assert!(ask(r#"{"op":"resume"}"#).contains(r#""state":"running""#));
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let resp = read_response(&mut BufReader::new(s)).expect("answer after resume");
    assert_eq!(resp.body, b"ok\n");
    assert!(ask("not json").contains(r#""ok":false"#));
    assert!(ask(r#"{"op":"stop"}"#).contains("stopping"));
    let status = vm.child.wait().expect("wait");
    assert_eq!(status.code(), Some(143));
    assert!(!sock.exists(), "the control socket file is removed when the VM ends");
}

#[test]
fn the_boot_benchmark_prints_its_json() {
    require_kvm();
    let out = twinkle()
        .args(["bench", "boot", "--runs", "2", "--http-secs", "1", "--rounds", "1", "--connections", "4", "--json"])
        .output()
        .expect("run the benchmark");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "\"cold_boot_to_first_response_ms\"",
        "\"vm_create_ms\"",
        "\"elf_load_ms\"",
        "\"vm_over_native\"",
        "\"p99\"",
        "\"rps\"",
    ] {
        assert!(text.contains(key), "missing {key} in {text}");
    }
}

#[test]
fn a_client_that_half_closes_still_gets_its_answer() {
    let vm = VmProc::start("hello", &[]);
    let mut s = TcpStream::connect(vm.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello").expect("write");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the VM answers, then closes");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nhello"), "{text}");
}

#[test]
fn the_clock_page_gives_the_guest_real_time() {
    let vm = VmProc::start("hello", &[]);
    let read = || -> (u64, u64) {
        let r = get(vm.addr, "/time").expect("time");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let mut it = text.split_whitespace().map(|v| v.parse::<u64>().expect("number"));
        (it.next().expect("mono"), it.next().expect("wall"))
    };
    let (m1, w1) = read();
    std::thread::sleep(Duration::from_millis(300));
    let (m2, w2) = read();
    let host = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("epoch").as_nanos() as u64;
    assert!(host.abs_diff(w2) < 1_000_000_000, "guest wall clock {w2} is more than 1 s from the host's {host}");
    let dm = m2 - m1;
    assert!((250_000_000..5_000_000_000).contains(&dm), "monotonic advanced {dm} ns over a 300 ms sleep");
    assert!(w2 > w1);
}

#[test]
fn the_free_page_bitmap_tracks_the_guest_heap() {
    let sock = std::env::temp_dir().join(format!("twinkle-bitmap-{}.sock", std::process::id()));
    let vm = VmProc::start("hello", &["--control", &sock.display().to_string()]);
    let free = || -> (u64, u64) {
        let out = twinkle()
            .args(["vm", "control", "--socket", &sock.display().to_string(), "status"])
            .output()
            .expect("vm control");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let num = |key: &str| -> u64 {
            let at = text.find(key).unwrap_or_else(|| panic!("no {key} in {text}"));
            text[at + key.len()..]
                .trim_start_matches([':', ' ', '"'])
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number")
        };
        (num("\"free_pages\""), num("\"pages\""))
    };
    let (free_before, pages) = free();
    assert_eq!(pages, 64 * 256, "a 64 MiB guest has 16384 pages");
    // The heap is most of memory and almost all free in an idle hello.
    assert!(free_before > pages / 2 && free_before < pages, "free {free_before} of {pages}");
    // Large responses are allocated page-wise and freed again.
    for _ in 0..3 {
        assert_eq!(get(vm.addr, "/bytes?n=4000000").expect("4 MB").body.len(), 4_000_000);
    }
    let (free_after, _) = free();
    assert!(free_before.abs_diff(free_after) < 64, "pages leaked: {free_before} free before, {free_after} after");
}
