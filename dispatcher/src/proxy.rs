//! The request path, top to bottom: route -> check -> hold while no upstream
//! is ready -> pick an upstream (P2C over outstanding requests) -> send on a
//! pooled connection -> retry within the budget -> record the latency.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use crate::body::{ReqBody, RespBody};
use crate::client::{ConnPool, ConnectError};
use crate::hygiene::{self, Framing};
use crate::pool::{Service, Upstream};
use crate::stats::{ErrorKind, Recorder};
use crate::Shared;

/// Request bodies up to this size are read whole first, so that a retry can
/// send them again; larger ones are streamed (and never retried once sent).
const BUFFER_LIMIT: u64 = 64 * 1024;

/// What a worker thread's requests share: its upstream connections and its
/// measurement buckets, plus the dispatcher-wide state.
pub struct Worker {
    /// Dispatcher-wide state.
    pub shared: Arc<Shared>,
    /// This worker's idle upstream connections.
    pub conns: Rc<ConnPool>,
    /// This worker's measurements.
    pub rec: Recorder,
    /// This worker's idle upstream connections of the fast path.
    pub up: crate::fast::UpPool,
}

/// A response the proxy writes itself.
pub fn local(status: StatusCode, msg: impl Into<Bytes>, close: bool) -> Response<RespBody> {
    let mut r = Response::new(RespBody::local(msg));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::SERVER, HeaderValue::from_static("twinkle"));
    if close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// Serves one client request.
pub async fn handle(w: Rc<Worker>, peer: SocketAddr, req: Request<Incoming>) -> Result<Response<RespBody>, Infallible> {
    let t0 = Instant::now();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let Some(si) = w.shared.route(host, req.uri().path()) else {
        w.shared.unrouted.fetch_add(1, Ordering::Relaxed);
        let msg = format!("no service takes host {host:?} path {:?}\n", req.uri().path());
        return Ok(local(StatusCode::NOT_FOUND, msg, false));
    };
    let svc = Arc::clone(&w.shared.services[si]);
    let framing = match hygiene::check(&req, &w.shared.cfg.limits) {
        Ok(f) => f,
        Err(r) => {
            tracing::debug!(%peer, reason = r.reason, "request refused");
            w.rec.service(si, t0.elapsed(), r.status.as_u16(), Some(ErrorKind::BadRequest));
            return Ok(local(r.status, format!("{}\n", r.reason), r.close));
        }
    };
    svc.inflight.fetch_add(1, Ordering::Relaxed);
    svc.earn_retry();
    let out = forward(&w, &svc, req, framing, peer).await;
    svc.inflight.fetch_sub(1, Ordering::Relaxed);
    w.rec.service(si, t0.elapsed(), out.status, out.error);
    Ok(out.response)
}

struct Outcome {
    response: Response<RespBody>,
    status: u16,
    error: Option<ErrorKind>,
}

impl Outcome {
    fn error(status: StatusCode, kind: ErrorKind, msg: String) -> Outcome {
        let mut response = local(status, msg, false);
        if kind == ErrorKind::NoUpstream {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Outcome { response, status: status.as_u16(), error: Some(kind) }
    }
}

/// Why an attempt got no response.
enum Failure {
    /// No connection (nothing was sent).
    Connect(ConnectError),
    /// The connection failed after the request (or part of it) went out.
    Reset(hyper::Error),
    /// No response head within the upstream response timeout.
    Timeout,
}

impl Failure {
    fn kind(&self) -> ErrorKind {
        match self {
            Failure::Connect(_) => ErrorKind::Connect,
            Failure::Reset(_) => ErrorKind::Reset,
            Failure::Timeout => ErrorKind::Timeout,
        }
    }
}

/// The request as the upstream gets it: HTTP/1.1, origin-form target, Host set.
fn upstream_parts(mut parts: Parts, peer: SocketAddr) -> Parts {
    hygiene::to_upstream(&mut parts.headers, peer);
    if parts.uri.authority().is_some() {
        if !parts.headers.contains_key(header::HOST) {
            if let Some(Ok(v)) = parts.uri.authority().map(|a| HeaderValue::from_str(a.as_str())) {
                parts.headers.insert(header::HOST, v);
            }
        }
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Ok(u) = pq.parse::<Uri>() {
            parts.uri = u;
        }
    }
    parts.version = Version::HTTP_11;
    parts
}

fn rebuild(parts: &Parts, body: ReqBody) -> Request<ReqBody> {
    let mut r = Request::new(body);
    *r.method_mut() = parts.method.clone();
    *r.uri_mut() = parts.uri.clone();
    *r.version_mut() = parts.version;
    *r.headers_mut() = parts.headers.clone();
    r
}

async fn forward(w: &Worker, svc: &Service, req: Request<Incoming>, framing: Framing, peer: SocketAddr) -> Outcome {
    let t = &w.shared.cfg.timeouts;
    let (parts, incoming) = req.into_parts();
    let parts = upstream_parts(parts, peer);
    let mut body = match framing {
        Framing::None => ReqBody::Empty,
        Framing::Length(n) if n <= BUFFER_LIMIT => {
            match tokio::time::timeout(t.client_header, incoming.collect()).await {
                Ok(Ok(c)) => ReqBody::Full(Some(c.to_bytes())),
                Ok(Err(e)) => {
                    return Outcome::error(
                        StatusCode::BAD_REQUEST,
                        ErrorKind::BadRequest,
                        format!("the request body ended early: {e}\n"),
                    )
                }
                Err(_) => {
                    return Outcome::error(
                        StatusCode::REQUEST_TIMEOUT,
                        ErrorKind::BadRequest,
                        "the request body did not arrive in time\n".into(),
                    )
                }
            }
        }
        _ => ReqBody::Stream(Limited::new(incoming, w.shared.cfg.limits.max_body_bytes as usize)),
    };
    let safe = hygiene::idempotent(&parts.method) && body.replay().is_some();
    let mut attempts_left = svc.cfg.retry.attempts;
    let mut tried: Vec<u64> = Vec::new();
    loop {
        let up = match svc.pick(&tried) {
            Some(u) => u,
            None => match hold(svc).await {
                Some(u) => u,
                None => {
                    return Outcome::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorKind::NoUpstream,
                        format!(
                            "service {} has no ready upstream (waited up to {:?})\n",
                            svc.cfg.name, svc.cfg.hold.max_wait.0
                        ),
                    )
                }
            },
        };
        tried.push(up.id);
        let this_body = match body.replay() {
            Some(b) => b,
            None => std::mem::replace(&mut body, ReqBody::Empty),
        };
        let t1 = Instant::now();
        up.inflight.fetch_add(1, Ordering::Relaxed);
        let res = attempt(w, &up, &parts, this_body, t.upstream_connect, t.upstream_response).await;
        up.inflight.fetch_sub(1, Ordering::Relaxed);
        match res {
            Ok((resp, sender)) => {
                let status = resp.status().as_u16();
                w.rec.upstream(up.id, t1.elapsed(), status, None);
                if status >= 500 {
                    passive_failure(svc, &up);
                } else {
                    up.success();
                }
                if svc.retry_status(status, safe, attempts_left) {
                    attempts_left -= 1;
                    tracing::debug!(service = %svc.cfg.name, upstream = %up.addr, status, "retrying");
                    continue;
                }
                let (mut rp, rb) = resp.into_parts();
                hygiene::to_client(&mut rp.headers);
                let response = Response::from_parts(rp, RespBody::upstream(rb, w.conns.checkin(up.id, sender)));
                return Outcome { response, status, error: None };
            }
            Err((failure, returned)) => {
                let kind = failure.kind();
                let gateway =
                    if kind == ErrorKind::Timeout { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
                w.rec.upstream(up.id, t1.elapsed(), gateway.as_u16(), Some(kind));
                passive_failure(svc, &up);
                if let Some(b) = returned {
                    body = b;
                }
                // A streamed body that went out cannot be sent again.
                if svc.retry_failure(kind, safe, body.replay().is_some(), attempts_left) {
                    attempts_left -= 1;
                    tracing::debug!(service = %svc.cfg.name, upstream = %up.addr, ?kind, "retrying");
                    continue;
                }
                let msg = match &failure {
                    Failure::Connect(e) => format!("upstream unreachable: {e}\n"),
                    Failure::Reset(e) => format!("upstream {} failed: {e}\n", up.addr),
                    Failure::Timeout => {
                        format!("upstream {} did not answer within {:?}\n", up.addr, t.upstream_response)
                    }
                };
                return Outcome::error(gateway, kind, msg);
            }
        }
    }
}

/// Counts a failure against `up` and ejects it when the streak is long enough.
pub(crate) fn passive_failure(svc: &Service, up: &Upstream) {
    let streak = up.failure();
    if let Some(d) = svc.maybe_eject(up, streak) {
        tracing::warn!(service = %svc.cfg.name, upstream = %up.addr, "ejected for {d:?} after {streak} failures in a row");
    }
}

/// One try against one upstream. On failure, the body comes back when it was
/// not sent (so it can go elsewhere).
async fn attempt(
    w: &Worker,
    up: &Upstream,
    parts: &Parts,
    body: ReqBody,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<(Response<Incoming>, SendRequest<ReqBody>), (Failure, Option<ReqBody>)> {
    let mut body = body;
    // A pooled connection may have been closed by the upstream meanwhile:
    // hyper hands the request back unsent, and it goes out on a new one.
    let mut pooled = w.conns.take(up.id);
    loop {
        let fresh = pooled.is_none();
        let mut sender = match pooled.take() {
            Some(s) => s,
            None => match w.conns.connect(up.addr, connect_timeout).await {
                Ok(s) => s,
                Err(e) => return Err((Failure::Connect(e), Some(body))),
            },
        };
        let fut = sender.try_send_request(rebuild(parts, body));
        match tokio::time::timeout(response_timeout, fut).await {
            Ok(Ok(resp)) => return Ok((resp, sender)),
            Ok(Err(mut e)) => match e.take_message() {
                Some(req) if !fresh => {
                    body = req.into_body();
                    continue;
                }
                Some(req) => return Err((Failure::Reset(e.into_error()), Some(req.into_body()))),
                None => return Err((Failure::Reset(e.into_error()), None)),
            },
            Err(_) => return Err((Failure::Timeout, None)),
        }
    }
}

/// Waits for an upstream of `svc` to become ready, up to the hold limits.
pub(crate) async fn hold(svc: &Service) -> Option<Arc<Upstream>> {
    let h = &svc.cfg.hold;
    if h.max_wait.0.is_zero() {
        return None;
    }
    if svc.held.fetch_add(1, Ordering::Relaxed) >= h.max_queue {
        svc.held.fetch_sub(1, Ordering::Relaxed);
        return None;
    }
    let deadline = Instant::now() + h.max_wait.0;
    let got = loop {
        let notified = svc.available.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(u) = svc.pick(&[]) {
            break Some(u);
        }
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        // Woken by a new upstream; ejections end without a wake-up, so look again now and then.
        let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(100)), notified).await;
    };
    svc.held.fetch_sub(1, Ordering::Relaxed);
    got
}
