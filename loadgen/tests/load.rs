//! The load generator against real HTTP servers started here: rates,
//! profiles, coordinated-omission correction, error classification.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::{Get, Mode, Plan, Profile, Rubis, Think, Tpcw, Workload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the test server answers.
#[derive(Clone, Copy)]
enum Server {
    /// 200 at once, except during [stall_from, stall_from + 1 s) after its start, when answers wait until then.
    Ok { stall_from: Option<Duration> },
    /// Every request gets this status.
    Status(u16),
    /// 200 after this delay.
    Delay(Duration),
    /// Reads requests, never answers.
    Silent,
    /// Closes the connection on the first request.
    Close,
    /// 200 with `Set-Cookie: sid=s3`; counts requests that send it back.
    Cookie,
}

/// Starts a keep-alive HTTP server on its own thread; returns its address and request count.
fn server(kind: Server) -> (SocketAddr, Arc<AtomicU64>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicU64::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            let start = Instant::now();
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                let h = Arc::clone(&h);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buf.drain(..end + 4).collect();
                            let with_cookie = head.windows(14).any(|w| w == b"Cookie: sid=s3");
                            if !matches!(kind, Server::Cookie) || with_cookie {
                                h.fetch_add(1, Ordering::SeqCst);
                            }
                            let status = match kind {
                                Server::Ok { stall_from } => {
                                    if let Some(from) = stall_from {
                                        let until = from + Duration::from_secs(1);
                                        let now = start.elapsed();
                                        if now >= from && now < until {
                                            tokio::time::sleep(until - now).await;
                                        }
                                    }
                                    200
                                }
                                Server::Status(s) => s,
                                Server::Delay(d) => {
                                    tokio::time::sleep(d).await;
                                    200
                                }
                                Server::Silent => {
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                    return;
                                }
                                Server::Close => return,
                                Server::Cookie => 200,
                            };
                            let cookie =
                                if matches!(kind, Server::Cookie) { "set-cookie: sid=s3; Path=/\r\n" } else { "" };
                            let resp = format!("HTTP/1.1 {status} X\r\n{cookie}content-length: 2\r\n\r\nok");
                            if s.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
    });
    (addr, hits)
}

fn plan(addr: SocketAddr, mode: Mode, secs: f64) -> Plan {
    Plan {
        addr,
        workload: Arc::new(Get::new("test", "/")),
        mode,
        duration: Duration::from_secs_f64(secs),
        threads: 2,
        timeout: Duration::from_millis(500),
    }
}

fn open(rate: Profile, connections: usize) -> Mode {
    Mode::Open { rate, connections }
}

#[test]
fn an_open_loop_keeps_its_rate() {
    let (addr, hits) = server(Server::Ok { stall_from: None });
    let r = loadgen::run(&plan(addr, open(Profile::constant(400.0), 8), 3.0), false).expect("run");
    assert!((r.rps - 400.0).abs() < 20.0, "asked 400 req/s, got {:.1}", r.rps);
    assert_eq!(r.requests, r.responses + r.errors["total"] - r.errors["status_4xx"] - r.errors["status_5xx"]);
    assert!(hits.load(Ordering::SeqCst) >= r.responses);
}

#[test]
fn a_stall_shows_in_the_corrected_percentiles_only() {
    let (addr, _) = server(Server::Ok { stall_from: Some(Duration::from_secs(2)) });
    let mut p = plan(addr, open(Profile::constant(1000.0), 4), 5.0);
    p.timeout = Duration::from_secs(5);
    let r = loadgen::run(&p, false).expect("run");
    assert!(r.responses > 4500, "{} responses", r.responses);
    assert!(r.latency_ms.p999 >= 800.0, "a 1 s stall must show in the corrected p99.9: {:?}", r.latency_ms);
    assert!(r.latency_ms.p90 >= 50.0, "a fifth of the requests were due during the stall: {:?}", r.latency_ms);
    assert!(
        r.uncorrected_latency_ms.p999 < 200.0,
        "measured from the actual send, only a handful of requests see the stall: {:?}",
        r.uncorrected_latency_ms
    );
}

#[test]
fn profiles_shape_the_load_per_second() {
    let (addr, _) = server(Server::Ok { stall_from: None });
    let rate = Profile::parse("step:base=100,peak=500,at=2s,hold=2s").expect("profile");
    let r = loadgen::run(&plan(addr, open(rate, 8), 5.0), false).expect("run");
    let at = |t: usize| r.series.get(t).map_or(0, |s| s.rps) as f64;
    assert!((at(1) - 100.0).abs() <= 15.0, "second 1: {}", at(1));
    assert!((at(3) - 500.0).abs() <= 50.0, "second 3: {}", at(3));
    assert!((at(4) - 100.0).abs() <= 25.0, "second 4: {}", at(4));

    // Closed loop, no think time, a server that takes 100 ms: each user makes
    // ~10 requests a second, so the rate follows the user count.
    let (addr, _) = server(Server::Delay(Duration::from_millis(100)));
    let users = Profile::parse("step:base=2,peak=6,at=1500ms").expect("profile");
    let mut p = plan(addr, Mode::Closed { users, think: Think { mean: Duration::ZERO, max: Duration::ZERO } }, 3.0);
    p.timeout = Duration::from_secs(5);
    let r = loadgen::run(&p, false).expect("run");
    let at = |t: usize| r.series.get(t).map_or(0, |s| s.rps) as f64;
    assert!((14.0..=22.0).contains(&at(0)), "2 users: {:?}", r.series);
    assert!((45.0..=62.0).contains(&at(2)), "6 users: {:?}", r.series);
}

#[test]
fn errors_are_classified() {
    let think0 = Think { mean: Duration::ZERO, max: Duration::ZERO };
    let closed = |n: f64| Mode::Closed { users: Profile::constant(n), think: think0 };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let r = loadgen::run(&plan(dead, closed(2.0), 0.5), false).expect("run");
    assert!(r.errors["connect"] > 0 && r.responses == 0, "{:?}", r.errors);

    let (addr, _) = server(Server::Status(503));
    let r = loadgen::run(&plan(addr, closed(2.0), 0.5), false).expect("run");
    assert!(r.errors["status_5xx"] > 0 && r.errors["status_5xx"] == r.responses, "{:?}", r.errors);
    let (addr, _) = server(Server::Status(404));
    let r = loadgen::run(&plan(addr, closed(2.0), 0.5), false).expect("run");
    assert!(r.errors["status_4xx"] > 0, "{:?}", r.errors);

    let (addr, _) = server(Server::Silent);
    let r = loadgen::run(&plan(addr, closed(2.0), 1.5), false).expect("run");
    assert!(r.errors["timeout"] >= 2, "{:?}", r.errors);

    let (addr, _) = server(Server::Close);
    let r = loadgen::run(&plan(addr, closed(2.0), 0.5), false).expect("run");
    assert!(r.errors["reset"] > 0, "{:?}", r.errors);

    // Nothing is dropped: every request sent is a response or an error.
    for (k, v) in &r.errors {
        assert!(k == "total" || *v <= r.errors["total"]);
    }
}

#[test]
fn session_mixes_converge_to_their_targets_over_http() {
    let (addr, _) = server(Server::Ok { stall_from: None });
    let think0 = Think { mean: Duration::ZERO, max: Duration::ZERO };
    let workloads: Vec<(&str, Arc<dyn Workload>)> = vec![
        ("tpcw shopping", Arc::new(Tpcw::new("test", "shopping", 0.1).expect("mix"))),
        ("tpcw ordering", Arc::new(Tpcw::new("test", "ordering", 0.1).expect("mix"))),
        ("rubis bidding", Arc::new(Rubis::new("test", "bidding", 0.01).expect("mix"))),
    ];
    for (name, w) in workloads {
        let mut p = plan(addr, Mode::Closed { users: Profile::constant(16.0), think: think0 }, 3.0);
        p.workload = w;
        let r = loadgen::run(&p, false).expect("run");
        assert!(r.requests > 10_000, "{name}: only {} requests", r.requests);
        assert_eq!(r.errors["total"], r.errors["cancelled"], "{name}: {:?}", r.errors);
        for (interaction, i) in &r.per_interaction {
            let target = i.target_pct.expect("a target mix");
            assert!(
                (i.share_pct - target).abs() <= 2.0,
                "{name} {interaction}: {:.2}% achieved vs {:.2}% target",
                i.share_pct,
                target
            );
        }
    }
}

#[test]
fn sessions_send_their_cookies_back() {
    let (addr, with_cookie) = server(Server::Cookie);
    let think0 = Think { mean: Duration::ZERO, max: Duration::ZERO };
    let mut p = plan(addr, Mode::Closed { users: Profile::constant(2.0), think: think0 }, 1.0);
    p.workload = Arc::new(Rubis::new("test", "bidding", 0.01).expect("mix"));
    let r = loadgen::run(&p, false).expect("run");
    let back = with_cookie.load(Ordering::SeqCst);
    // Every request but each session's first (about 1 in 51) carries the cookie.
    assert!(back as f64 >= 0.9 * r.responses as f64, "{back} of {} requests sent the cookie back", r.responses);
}
