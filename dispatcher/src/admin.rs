//! The admin API: status, Prometheus metrics, and pool membership.
//!
//! - `GET /status[?window=10]`: JSON, every service and upstream.
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /services/NAME/window?seconds=N`: what the scaling policy reads.
//! - `POST /services/NAME/upstreams` with `{"addr": "IP:PORT"}`: add.
//! - `DELETE /services/NAME/upstreams/IP:PORT`: drain and remove.
//!
//! With a token configured every request needs `Authorization: Bearer TOKEN`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::error::DispatchError;
use crate::stats::ErrorKind;
use crate::{parse_addr, Shared};

/// Window of the status page and the metrics' quantiles unless asked otherwise.
const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// Serves the admin API on `listener` until shutdown.
pub async fn serve(shared: Arc<Shared>, listener: std::net::TcpListener, mut stop: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("admin listener: {e}");
            return;
        }
    };
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    continue;
                }
            },
        };
        let sh = Arc::clone(&shared);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let sh = Arc::clone(&sh);
                async move { Ok::<_, Infallible>(route(&sh, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, v: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(v) {
        Ok(mut b) => {
            b.push(b'\n');
            reply(status, "application/json", b)
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode the answer: {e}")),
    }
}

fn problem(status: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    json_value(status, serde_json::json!({ "error": msg }))
}

fn json_value(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    reply(status, "application/json", b)
}

fn query_secs(req: &Request<Incoming>, key: &str) -> Option<Duration> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse::<u64>().ok().map(Duration::from_secs)).flatten()
    })
}

fn error_status(e: &DispatchError) -> StatusCode {
    match e {
        DispatchError::UnknownService { .. } | DispatchError::UnknownUpstream { .. } => StatusCode::NOT_FOUND,
        DispatchError::DuplicateUpstream { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn route(sh: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(token) = &sh.cfg.admin_token {
        let given = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or(b"");
        let want = format!("Bearer {token}");
        if !same(given, want.as_bytes()) {
            let mut r = problem(StatusCode::UNAUTHORIZED, "this admin API needs Authorization: Bearer TOKEN");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), parts.as_slice()) {
        (&Method::GET, ["status"]) => {
            json(StatusCode::OK, &sh.status(query_secs(&req, "window").unwrap_or(DEFAULT_WINDOW)))
        }
        (&Method::GET, ["metrics"]) => reply(StatusCode::OK, "text/plain; version=0.0.4", metrics(sh)),
        (&Method::GET, ["services", name, "window"]) => {
            let w = query_secs(&req, "seconds").unwrap_or(DEFAULT_WINDOW);
            match sh.window(name, w) {
                Ok(s) => json_value(
                    StatusCode::OK,
                    serde_json::json!({
                        "service": name,
                        "window_s": w.as_secs(),
                        "requests": s.requests,
                        "rps": s.rps,
                        "inflight": s.inflight,
                        "latency": s.latency.map(|l| serde_json::json!({
                            "p50_ms": l.p50_ms, "p90_ms": l.p90_ms, "p95_ms": l.p95_ms,
                            "p99_ms": l.p99_ms, "mean_ms": l.mean_ms,
                        })),
                    }),
                ),
                Err(e) => problem(error_status(&e), &e.to_string()),
            }
        }
        (&Method::POST, ["services", name, "upstreams"]) => {
            let name = name.to_string();
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("cannot read the body: {e}")),
            };
            let addr = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => match v.get("addr").and_then(|a| a.as_str()) {
                    Some(a) => a.to_string(),
                    None => return problem(StatusCode::BAD_REQUEST, "the body must be {\"addr\": \"IP:PORT\"}"),
                },
                Err(e) => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        &format!("the body is not JSON ({e}); send {{\"addr\": \"IP:PORT\"}}"),
                    )
                }
            };
            match parse_addr("upstream", &addr).and_then(|a| sh.add_upstream(&name, a)) {
                Ok(v) => json(StatusCode::CREATED, &v),
                Err(e) => problem(error_status(&e), &e.to_string()),
            }
        }
        (&Method::DELETE, ["services", name, "upstreams", addr]) => {
            match parse_addr("upstream", addr).and_then(|a| sh.remove_upstream(name, a)) {
                Ok(v) => json(StatusCode::OK, &v),
                Err(e) => problem(error_status(&e), &e.to_string()),
            }
        }
        _ => problem(
            StatusCode::NOT_FOUND,
            "endpoints: GET /status, GET /metrics, GET /services/NAME/window?seconds=N, \
             POST /services/NAME/upstreams {\"addr\":\"IP:PORT\"}, DELETE /services/NAME/upstreams/IP:PORT",
        ),
    }
}

/// Prometheus text exposition (version 0.0.4).
pub fn metrics(sh: &Shared) -> String {
    let mut o = String::new();
    let classes = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
    let mut windows = Vec::new();
    for s in &sh.services {
        windows.push(sh.stats.service(s.index, DEFAULT_WINDOW));
    }
    let _ = writeln!(o, "# HELP twinkle_requests_total Requests answered, by service and status class.");
    let _ = writeln!(o, "# TYPE twinkle_requests_total counter");
    for (s, m) in sh.services.iter().zip(&windows) {
        for (i, c) in classes.iter().enumerate() {
            let _ = writeln!(
                o,
                "twinkle_requests_total{{service=\"{}\",class=\"{c}\"}} {}",
                s.cfg.name, m.totals.by_class[i]
            );
        }
    }
    let _ = writeln!(o, "# HELP twinkle_proxy_errors_total Requests the proxy could not serve, by kind.");
    let _ = writeln!(o, "# TYPE twinkle_proxy_errors_total counter");
    for (s, m) in sh.services.iter().zip(&windows) {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "twinkle_proxy_errors_total{{service=\"{}\",kind=\"{}\"}} {}",
                s.cfg.name,
                k.name(),
                m.totals.errors[i]
            );
        }
    }
    let _ = writeln!(o, "# HELP twinkle_request_duration_seconds Response time over the last 10 s.");
    let _ = writeln!(o, "# TYPE twinkle_request_duration_seconds summary");
    for (s, m) in sh.services.iter().zip(&windows) {
        let l = m.latency();
        for (q, v) in [("0.5", l.map(|l| l.p50_ms)), ("0.9", l.map(|l| l.p90_ms)), ("0.99", l.map(|l| l.p99_ms))] {
            let v = v.map_or("NaN".to_string(), |ms| format!("{}", ms / 1e3));
            let _ = writeln!(o, "twinkle_request_duration_seconds{{service=\"{}\",quantile=\"{q}\"}} {v}", s.cfg.name);
        }
        let _ = writeln!(
            o,
            "twinkle_request_duration_seconds_sum{{service=\"{}\"}} {}",
            s.cfg.name,
            m.totals.latency_sum_us as f64 / 1e6
        );
        let _ =
            writeln!(o, "twinkle_request_duration_seconds_count{{service=\"{}\"}} {}", s.cfg.name, m.totals.requests);
    }
    type Gauge = (&'static str, &'static str, fn(&crate::pool::Service) -> u32);
    let gauges: [Gauge; 2] = [
        ("twinkle_inflight", "Requests in flight.", |s| s.inflight.load(std::sync::atomic::Ordering::Relaxed)),
        ("twinkle_held", "Requests waiting for a ready upstream.", |s| {
            s.held.load(std::sync::atomic::Ordering::Relaxed)
        }),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} gauge");
        for s in &sh.services {
            let _ = writeln!(o, "{name}{{service=\"{}\"}} {}", s.cfg.name, get(s));
        }
    }
    let _ = writeln!(o, "# HELP twinkle_upstreams Upstreams by state.");
    let _ = writeln!(o, "# TYPE twinkle_upstreams gauge");
    for s in &sh.services {
        let pool = s.upstreams();
        let ejected = pool.iter().filter(|u| u.ejected()).count();
        let eligible = pool.iter().filter(|u| u.eligible()).count();
        let n = &s.cfg.name;
        let _ = writeln!(o, "twinkle_upstreams{{service=\"{n}\",state=\"eligible\"}} {eligible}");
        let _ = writeln!(o, "twinkle_upstreams{{service=\"{n}\",state=\"ejected\"}} {ejected}");
        let _ = writeln!(o, "twinkle_upstreams{{service=\"{n}\",state=\"in_pool\"}} {}", pool.len());
        let _ = writeln!(o, "twinkle_upstreams{{service=\"{n}\",state=\"draining\"}} {}", s.draining().len());
    }
    let _ = writeln!(o, "# HELP twinkle_upstream_requests_total Attempts per upstream, by status class.");
    let _ = writeln!(o, "# TYPE twinkle_upstream_requests_total counter");
    for s in &sh.services {
        for u in s.upstreams().iter() {
            let m = sh.stats.upstream(u.id, DEFAULT_WINDOW);
            for (i, c) in classes.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "twinkle_upstream_requests_total{{service=\"{}\",upstream=\"{}\",class=\"{c}\"}} {}",
                    s.cfg.name, u.addr, m.totals.by_class[i]
                );
            }
        }
    }
    let _ = writeln!(o, "# HELP twinkle_unrouted_requests_total Requests that matched no service (404).");
    let _ = writeln!(o, "# TYPE twinkle_unrouted_requests_total counter");
    let _ = writeln!(o, "twinkle_unrouted_requests_total {}", sh.unrouted.load(std::sync::atomic::Ordering::Relaxed));
    o
}
