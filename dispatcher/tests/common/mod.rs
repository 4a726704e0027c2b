//! Real upstreams and a real client for the dispatcher's tests: hyper
//! servers on loopback ports, raw TCP where a test needs to misbehave.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use dispatcher::DispatchConfig;

/// How a test upstream answers.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// 200 with body "port N" after a delay.
    Ok(Duration),
    /// This status, body "port N".
    Status(u16),
    /// 200 with the request's headers as the body ("name: value" lines).
    EchoHeaders,
    /// Reads the whole request, then closes the connection without answering.
    CloseAfterRead,
    /// 200 with the request body as the response body.
    EchoBody,
    /// Reads each request and writes these bytes as the answer (then closes if `close`).
    Raw(&'static str, bool),
}

/// A running test upstream.
pub struct TestUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests it received.
    pub hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    /// Starts one on a free loopback port.
    pub async fn start(b: Behavior) -> TestUpstream {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = l.local_addr().expect("addr");
        let hits = Arc::new(AtomicU64::new(0));
        let h = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                let (b, h) = (b.clone(), Arc::clone(&h));
                tokio::spawn(async move {
                    if let Behavior::Raw(answer, close) = b {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        loop {
                            let Ok(n) = s.read(&mut chunk).await else { return };
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                buf.drain(..end + 4);
                                h.fetch_add(1, Ordering::SeqCst);
                                if s.write_all(answer.as_bytes()).await.is_err() || close {
                                    return;
                                }
                            }
                        }
                    }
                    if let Behavior::CloseAfterRead = b {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        while let Ok(n) = s.read(&mut chunk).await {
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                                let len: usize = head
                                    .lines()
                                    .find_map(|l| {
                                        l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                                    })
                                    .unwrap_or(0);
                                if buf.len() >= end + 4 + len {
                                    h.fetch_add(1, Ordering::SeqCst);
                                    return; // close without an answer
                                }
                            }
                        }
                        return;
                    }
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (b, h) = (b.clone(), Arc::clone(&h));
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            let (status, body) = match b {
                                Behavior::Ok(d) => {
                                    tokio::time::sleep(d).await;
                                    (200, format!("port {}", addr.port()))
                                }
                                Behavior::Status(s) => (s, format!("port {}", addr.port())),
                                Behavior::EchoHeaders => (
                                    200,
                                    headers
                                        .iter()
                                        .map(|(k, v)| format!("{}: {}\n", k, v.to_str().unwrap_or("?")))
                                        .collect(),
                                ),
                                Behavior::EchoBody => (200, String::from_utf8_lossy(&body).into_owned()),
                                Behavior::CloseAfterRead | Behavior::Raw(..) => unreachable!(),
                            };
                            let mut r = Response::new(Full::new(Bytes::from(body)));
                            *r.status_mut() = StatusCode::from_u16(status).expect("status");
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                });
            }
        });
        TestUpstream { addr, hits, task }
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting (existing connections stay).
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// A free loopback port nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// A dispatcher configuration for tests: loopback, any port, two workers,
/// no active health checks unless a test turns them on.
pub fn config(upstreams: Vec<SocketAddr>) -> DispatchConfig {
    let mut c = DispatchConfig::single_service(upstreams);
    c.listen = "127.0.0.1:0".into();
    c.admin_listen = Some("127.0.0.1:0".into());
    c.threads = 2;
    c.active_health = false;
    // The same tests run against both engines: `make test` runs them again
    // with DISPATCH_TEST_ENGINE=hyper (every request through hyper).
    c.fast_path = std::env::var("DISPATCH_TEST_ENGINE").map_or(true, |e| e != "hyper");
    c
}

/// An answer: status, headers, body.
pub type Answer = (StatusCode, HeaderMap, Bytes);

/// One request on a new connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, String> {
    let s = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(s)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut b = Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(addr, "GET", path, &[], "").await.unwrap_or_else(|e| panic!("GET {path} via {addr}: {e}"))
}

/// Writes raw bytes and reads until the peer closes (or `wait` passes).
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// The port an upstream answered from ("port N").
pub fn port_of(body: &Bytes) -> u16 {
    String::from_utf8_lossy(body).trim_start_matches("port ").trim().parse().unwrap_or(0)
}
