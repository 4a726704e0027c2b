//! The dispatcher with real TCP and HTTP: hyper upstreams on loopback, a
//! real client, raw sockets where a client must misbehave.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, dead_addr, get, port_of, raw, send, Behavior, TestUpstream};
use dispatcher::Dispatcher;
use http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spread_over_equal_upstreams() {
    let ups = [
        TestUpstream::start(Behavior::Ok(Duration::ZERO)).await,
        TestUpstream::start(Behavior::Ok(Duration::ZERO)).await,
        TestUpstream::start(Behavior::Ok(Duration::ZERO)).await,
    ];
    let d = Dispatcher::start(config(ups.iter().map(|u| u.addr).collect())).expect("start");
    for _ in 0..300 {
        let (s, _, _) = get(d.local_addr(), "/").await;
        assert_eq!(s, StatusCode::OK);
    }
    for u in &ups {
        assert!((50..=150).contains(&u.hits()), "each of 3 upstreams should get about 100 of 300: {}", u.hits());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_less_loaded_upstream_gets_more() {
    let slow = TestUpstream::start(Behavior::Ok(Duration::from_millis(40))).await;
    let fast = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let d = Arc::new(Dispatcher::start(config(vec![slow.addr, fast.addr])).expect("start"));
    let addr = d.local_addr();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let (s, _, _) = get(addr, "/").await;
                assert_eq!(s, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    assert!(
        fast.hits() > 3 * slow.hits(),
        "least-request selection should favour the fast upstream: fast {} slow {}",
        fast.hits(),
        slow.hits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_are_retried_elsewhere_even_for_post() {
    let live = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let mut cfg = config(vec![dead_addr(), live.addr]);
    cfg.services[0].health.eject_after = 0; // keep the dead one in play: every request may meet it
    let d = Dispatcher::start(cfg).expect("start");
    for i in 0..40 {
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        let (s, _, b) = send(d.local_addr(), method, "/", &[], "payload").await.expect("answer");
        assert_eq!(s, StatusCode::OK, "{method} #{i}: {b:?}");
        assert_eq!(port_of(&b), live.addr.port());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_reached_the_upstream_is_not_retried_but_a_get_is() {
    let breaker = TestUpstream::start(Behavior::CloseAfterRead).await;
    let mut cfg = config(vec![breaker.addr]);
    cfg.services[0].health.eject_after = 0;
    let d = Dispatcher::start(cfg).expect("start");
    let (s, _, b) = send(d.local_addr(), "POST", "/bid", &[], "amount=5").await.expect("answer");
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{b:?}");
    assert_eq!(breaker.hits(), 1, "the POST went out once and must not be repeated");
    let (s, _, _) = send(d.local_addr(), "GET", "/item", &[], "").await.expect("answer");
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(breaker.hits(), 1 + 3, "a GET is tried once and retried twice (policy default attempts = 2)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upstream_is_ejected_and_comes_back() {
    let bad = TestUpstream::start(Behavior::Status(500)).await;
    let good = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let mut cfg = config(vec![bad.addr, good.addr]);
    {
        let h = &mut cfg.services[0].health;
        h.eject_after = 3;
        h.eject_for = policies::units::Dur(Duration::from_millis(800));
        h.max_ejected_pct = 50;
    }
    cfg.services[0].retry.attempts = 0;
    let d = Dispatcher::start(cfg).expect("start");
    let mut five = 0;
    for _ in 0..60 {
        let (s, _, _) = get(d.local_addr(), "/").await;
        if s == StatusCode::INTERNAL_SERVER_ERROR {
            five += 1;
        }
    }
    assert_eq!(five, 3, "three 500s in a row eject the bad upstream; the rest go to the good one");
    let st = d.shared().status(Duration::from_secs(10));
    let bad_view = st.services[0].upstreams.iter().find(|u| u.view.addr == bad.addr).expect("listed");
    assert!(bad_view.view.ejected, "{bad_view:?}");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let before = bad.hits();
    for _ in 0..20 {
        let _ = get(d.local_addr(), "/").await;
    }
    assert!(bad.hits() > before, "after the ejection time the upstream takes requests again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_held_until_an_upstream_arrives() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let d = Dispatcher::start(config(vec![])).expect("start");
    let addr = d.local_addr();
    let t0 = Instant::now();
    let waiting = tokio::spawn(async move { get(addr, "/").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.shared().status(Duration::from_secs(1)).services[0].held, 1, "the request waits");
    // Through the admin API, as the provisioner would.
    let admin = d.admin_addr().expect("admin");
    let body = format!("{{\"addr\":\"{}\"}}", up.addr);
    let (s, _, b) = send(admin, "POST", "/services/default/upstreams", &[], &body).await.expect("admin");
    assert_eq!(s, StatusCode::CREATED, "{b:?}");
    let (s, _, b) = waiting.await.expect("client");
    assert_eq!(s, StatusCode::OK);
    assert_eq!(port_of(&b), up.addr.port());
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_ends_with_503_and_retry_after() {
    let mut cfg = config(vec![]);
    cfg.services[0].hold.max_wait = policies::units::Dur(Duration::from_millis(200));
    let d = Dispatcher::start(cfg).expect("start");
    let t0 = Instant::now();
    let (s, h, b) = get(d.local_addr(), "/").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["retry-after"], "1");
    assert!(String::from_utf8_lossy(&b).contains("no ready upstream"), "{b:?}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_changes_under_load_lose_no_request() {
    let a = TestUpstream::start(Behavior::Ok(Duration::from_millis(2))).await;
    let b = TestUpstream::start(Behavior::Ok(Duration::from_millis(2))).await;
    let c = TestUpstream::start(Behavior::Ok(Duration::from_millis(2))).await;
    let d = Dispatcher::start(config(vec![a.addr, b.addr])).expect("start");
    let addr = d.local_addr();
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            for _ in 0..60 {
                match common::send(addr, "POST", "/", &[], "x").await {
                    Ok((s, _, _)) if s == StatusCode::OK => {}
                    other => bad.push(format!("{other:?}")),
                }
            }
            bad
        }));
    }
    let sh = d.shared();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sh.remove_upstream("default", a.addr).expect("drain a");
    sh.add_upstream("default", c.addr).expect("add c");
    tokio::time::sleep(Duration::from_millis(100)).await;
    sh.remove_upstream("default", b.addr).expect("drain b");
    let mut failures = Vec::new();
    for t in clients {
        failures.extend(t.await.expect("client"));
    }
    assert!(failures.is_empty(), "{} of 480 requests failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert!(c.hits() > 0);
    let after = (a.hits(), b.hits());
    for _ in 0..10 {
        get(addr, "/").await;
    }
    assert_eq!((a.hits(), b.hits()), after, "drained upstreams get nothing new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_and_oversized_requests_are_refused() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let mut cfg = config(vec![up.addr]);
    cfg.limits.max_body_bytes = 1000;
    cfg.limits.max_headers = 20;
    cfg.limits.max_header_bytes = 8192;
    let d = Dispatcher::start(cfg).expect("start");
    let addr = d.local_addr();
    let wait = Duration::from_secs(3);

    // Content-Length and Transfer-Encoding together: hyper frames the body by
    // Transfer-Encoding alone, drops Content-Length and closes the connection
    // after one answer (RFC 9112 6.1): the request smuggled behind it is never
    // parsed, let alone forwarded.
    let (r, closed) = raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
        wait,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400") || r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(closed, "the connection must close after ambiguous framing");
    assert_eq!(r.matches("HTTP/1.1 ").count(), 1, "the smuggled request must not be answered: {r}");
    assert!(up.hits() <= 1, "the smuggled GET must not reach the upstream");
    let before = up.hits();

    let (r, _) = raw(addr, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", wait).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");

    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..30 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (r, _) = raw(addr, many.as_bytes(), wait).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");

    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let (r, closed) = raw(addr, big.as_bytes(), wait).await;
    assert!(r.starts_with("HTTP/1.1 431") || r.is_empty(), "{r}");
    assert!(closed);

    let (r, _) = raw(addr, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", wait).await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert_eq!(up.hits(), before, "nothing refused reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off_at_the_header_timeout() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let mut cfg = config(vec![up.addr]);
    cfg.timeouts.client_header = Duration::from_millis(500);
    let d = Dispatcher::start(cfg).expect("start");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(d.local_addr()).await.expect("connect");
    let t0 = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let mut buf = [0u8; 1024];
    // Trickle a header byte every 100 ms; the server must not wait forever.
    let closed = loop {
        if t0.elapsed() > Duration::from_secs(5) {
            break false;
        }
        if s.write_all(b"X").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => break true,
            Err(_) => {}
        }
    };
    assert!(closed, "still open after 5 s of trickled headers");
    assert!(t0.elapsed() < Duration::from_secs(3), "closed only after {:?}", t0.elapsed());
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_added_and_hop_by_hop_ones_removed() {
    let up = TestUpstream::start(Behavior::EchoHeaders).await;
    let d = Dispatcher::start(config(vec![up.addr])).expect("start");
    let (s, h, b) = send(
        d.local_addr(),
        "GET",
        "/",
        &[("connection", "keep-alive, x-private"), ("x-private", "1"), ("x-app", "yes")],
        "",
    )
    .await
    .expect("answer");
    assert_eq!(s, StatusCode::OK);
    let seen = String::from_utf8_lossy(&b);
    assert!(seen.contains("x-forwarded-for: 127.0.0.1"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: http"), "{seen}");
    assert!(seen.contains("via: 1.1 twinkle"), "{seen}");
    assert!(seen.contains("x-app: yes"), "{seen}");
    assert!(!seen.contains("x-private"), "named in Connection: hop-by-hop: {seen}");
    assert!(h.get_all("via").iter().any(|v| v == "1.1 twinkle"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_changes_the_pool_and_reports_it() {
    let a = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let d = Dispatcher::start(config(vec![])).expect("start");
    let admin = d.admin_addr().expect("admin");
    let body = format!("{{\"addr\":\"{}\"}}", a.addr);
    let (s, _, _) = send(admin, "POST", "/services/default/upstreams", &[], &body).await.expect("add");
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, b) = send(admin, "POST", "/services/default/upstreams", &[], &body).await.expect("again");
    assert_eq!(s, StatusCode::CONFLICT, "{b:?}");
    let (s, _, b) = send(admin, "POST", "/services/nope/upstreams", &[], &body).await.expect("unknown");
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&b).contains("services: default"), "{b:?}");
    let (s, _, b) =
        send(admin, "POST", "/services/default/upstreams", &[], "{\"addr\":\"nowhere\"}").await.expect("bad");
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b:?}");
    for _ in 0..5 {
        assert_eq!(get(d.local_addr(), "/").await.0, StatusCode::OK);
    }
    let (s, _, b) = get(admin, "/status").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).expect("status is JSON");
    let svc = &v["services"][0];
    assert_eq!(svc["name"], "default");
    assert_eq!(svc["requests"], 5);
    assert_eq!(svc["upstreams"][0]["addr"], a.addr.to_string());
    assert!(svc["p99_ms"].as_f64().is_some());
    let (s, _, b) = get(admin, "/services/default/window?seconds=5").await;
    assert_eq!(s, StatusCode::OK);
    let w: serde_json::Value = serde_json::from_slice(&b).expect("JSON");
    assert_eq!(w["requests"], 5);
    let path = format!("/services/default/upstreams/{}", a.addr);
    let (s, _, _) = send(admin, "DELETE", &path, &[], "").await.expect("delete");
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(admin, "DELETE", &path, &[], "").await.expect("delete again");
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_admin_api_when_configured() {
    let mut cfg = config(vec![]);
    cfg.admin_token = Some("s3cret".into());
    let d = Dispatcher::start(cfg).expect("start");
    let admin = d.admin_addr().expect("admin");
    let (s, _, _) = get(admin, "/status").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(admin, "GET", "/status", &[("authorization", "Bearer wrong")], "").await.expect("answer");
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(admin, "GET", "/status", &[("authorization", "Bearer s3cret")], "").await.expect("answer");
    assert_eq!(s, StatusCode::OK);

    let mut open = config(vec![]);
    open.admin_listen = Some("0.0.0.0:0".into());
    let e = Dispatcher::start(open).err().expect("an admin API open to the network without a token is refused");
    assert!(e.to_string().contains("give it a token"), "{e}");
}

/// A sample line of the Prometheus text format: `name{labels} value`.
fn prometheus_sample_ok(line: &str) -> bool {
    let (series, value) = match line.rsplit_once(' ') {
        Some(x) => x,
        None => return false,
    };
    let value_ok = value.parse::<f64>().is_ok() || value == "NaN" || value == "+Inf" || value == "-Inf";
    let name_end = series.find('{').unwrap_or(series.len());
    let name = &series[..name_end];
    let name_ok = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels = &series[name_end..];
    let labels_ok = labels.is_empty()
        || (labels.starts_with('{')
            && labels.ends_with('}')
            && labels[1..labels.len() - 1].split(',').all(|kv| {
                kv.split_once('=').is_some_and(|(k, v)| {
                    !k.is_empty()
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && v.starts_with('"')
                        && v.ends_with('"')
                        && v.len() >= 2
                })
            }));
    value_ok && name_ok && labels_ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let d = Dispatcher::start(config(vec![up.addr])).expect("start");
    for _ in 0..7 {
        get(d.local_addr(), "/").await;
    }
    let (s, h, b) = get(d.admin_addr().expect("admin"), "/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    let text = String::from_utf8_lossy(&b);
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().expect("name");
            let kind = it.next().expect("kind");
            assert!(["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind), "{line}");
            typed.insert(name.to_string());
        } else if line.starts_with("# HELP ") || line.is_empty() {
        } else {
            assert!(prometheus_sample_ok(line), "not a Prometheus sample line: {line:?}");
            let name = line.split(['{', ' ']).next().expect("name");
            let base = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(typed.contains(name) || typed.contains(base), "sample before its TYPE: {line}");
        }
    }
    assert!(text.contains("twinkle_requests_total{service=\"default\",class=\"2xx\"} 7"), "{text}");
    assert!(text.contains("twinkle_request_duration_seconds_count{service=\"default\"} 7"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    let slow = TestUpstream::start(Behavior::Ok(Duration::from_millis(500))).await;
    let d = Dispatcher::start(config(vec![slow.addr])).expect("start");
    let addr = d.local_addr();
    let inflight = tokio::spawn(async move { get(addr, "/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || d.shutdown()).await.expect("shutdown");
    let (s, _, _) = inflight.await.expect("client");
    assert_eq!(s, StatusCode::OK, "the request in flight at shutdown completes");
    assert!(t0.elapsed() >= Duration::from_millis(300), "shutdown waited for it");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no new connections after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_checks_take_a_dead_upstream_out_and_bring_it_back() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let other = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let mut cfg = config(vec![up.addr, other.addr]);
    cfg.active_health = true;
    {
        let h = &mut cfg.services[0].health;
        h.interval = policies::units::Dur(Duration::from_millis(100));
        h.timeout = policies::units::Dur(Duration::from_millis(50));
        h.unhealthy_after = 2;
        h.healthy_after = 1;
    }
    let d = Dispatcher::start(cfg).expect("start");
    let addr = up.addr;
    up.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = d.shared().status(Duration::from_secs(1));
    let v = st.services[0].upstreams.iter().find(|u| u.view.addr == addr).expect("listed");
    assert!(!v.view.healthy, "a stopped upstream fails its checks: {v:?}");
    let back = tokio::net::TcpListener::bind(addr).await;
    if let Ok(l) = back {
        // The port is ours again: answer health checks on it.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = d.shared().status(Duration::from_secs(1));
        let v = st.services[0].upstreams.iter().find(|u| u.view.addr == addr).expect("listed");
        assert!(v.view.healthy, "it answers again: {v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_every_framing_arrive_whole() {
    let up = TestUpstream::start(Behavior::EchoBody).await;
    let d = Dispatcher::start(config(vec![up.addr])).expect("start");
    // Buffered (small, Content-Length) and streamed (large) request bodies.
    for n in [10usize, 10_000, 300_000] {
        let body: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let (s, _, b) = send(d.local_addr(), "POST", "/echo", &[], &body).await.expect("answer");
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b.len(), n, "{n}-byte body");
        assert_eq!(&b[..], body.as_bytes());
    }
    // A chunked request body, streamed through.
    let (r, _) = raw(
        d.local_addr(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("hello world"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_close_delimited_interim_and_head_responses_are_relayed() {
    let wait = Duration::from_secs(3);
    let chunked = TestUpstream::start(Behavior::Raw(
        "HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-up: 1\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        false,
    ))
    .await;
    let d = Dispatcher::start(config(vec![chunked.addr])).expect("start");
    // Two requests on one connection: the chunked answer must end exactly.
    let (r, _) = raw(
        d.local_addr(),
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 2, "{r}");
    assert!(!r.contains("103"), "interim responses are not relayed: {r}");
    assert_eq!(r.matches("4\r\nabcd\r\n0\r\n\r\n").count(), 2, "{r}");
    assert!(r.contains("x-up: 1"), "{r}");
    drop(d);

    let eof = TestUpstream::start(Behavior::Raw("HTTP/1.1 200 OK\r\n\r\nuntil the end", true)).await;
    let d = Dispatcher::start(config(vec![eof.addr])).expect("start");
    let (r, _) = raw(d.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", wait).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("until the end"), "{r}");
    let lower = r.to_ascii_lowercase();
    // Relayed as it came (ended by closing the client connection too), or re-framed as chunked.
    assert!(
        lower.contains("connection: close") || lower.contains("transfer-encoding: chunked"),
        "the client must be able to tell where the body ends: {r}"
    );
    drop(d);

    let head = TestUpstream::start(Behavior::Raw("HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n", false)).await;
    let d = Dispatcher::start(config(vec![head.addr])).expect("start");
    let (r, _) = raw(
        d.local_addr(),
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(
        r.matches("content-length: 1234").count(),
        2,
        "HEAD keeps the announced length, and no body follows: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let up = TestUpstream::start(Behavior::EchoHeaders).await;
    let d = Dispatcher::start(config(vec![up.addr])).expect("start");
    let mut reqs = String::new();
    for i in 0..5 {
        reqs.push_str(&format!("GET /{i} HTTP/1.1\r\nHost: x\r\nX-Seq: {i}\r\n\r\n"));
    }
    reqs.push_str("GET /last HTTP/1.1\r\nHost: x\r\nX-Seq: 5\r\nConnection: close\r\n\r\n");
    let (r, closed) = raw(d.local_addr(), reqs.as_bytes(), Duration::from_secs(3)).await;
    assert!(closed);
    let order: Vec<usize> = (0..6).map(|i| r.find(&format!("x-seq: {i}")).unwrap_or(usize::MAX)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "answers out of order or missing: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_and_http_2_clients_are_served_by_hyper() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let d = Dispatcher::start(config(vec![up.addr])).expect("start");
    let (r, closed) = raw(d.local_addr(), b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", Duration::from_secs(3)).await;
    assert!(r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with(&format!("port {}", up.addr.port())), "{r}");
    assert!(closed, "HTTP/1.0 without keep-alive closes");

    // HTTP/2 with prior knowledge (h2c).
    let s = tokio::net::TcpStream::connect(d.local_addr()).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, http_body_util::Full<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(s),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/h2", d.local_addr()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(port_of(&body), up.addr.port());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_requests_get_404_and_bad_heads_400() {
    let up = TestUpstream::start(Behavior::Ok(Duration::ZERO)).await;
    let mut cfg = config(vec![up.addr]);
    cfg.services[0].route = policies::model::Route { host: "shop.example.com".into(), path_prefix: "/".into() };
    let d = Dispatcher::start(cfg).expect("start");
    let wait = Duration::from_secs(3);
    let (r, _) =
        raw(d.local_addr(), b"POST / HTTP/1.1\r\nHost: other.example.com\r\nContent-Length: 3\r\n\r\nabc", wait).await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    assert!(r.contains("no service takes host"), "{r}");
    let (r, _) =
        raw(d.local_addr(), b"GET / HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n", wait).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let (r, closed) = raw(d.local_addr(), b"GET / HTTP/1.1\r\nHost shop.example.com\r\n\r\n", wait).await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(closed);
    let (r, _) = raw(d.local_addr(), b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", wait).await;
    assert!(r.starts_with("HTTP/1.1 400") || r.starts_with("HTTP/1.1 404"), "no Host: {r}");
    assert_eq!(up.hits(), 1);
}
