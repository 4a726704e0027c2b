//! Active health checks (a GET of the service's health path to every
//! upstream, every interval) and the dispatcher's housekeeping: sampling
//! in-flight counts for the windows, forgetting drained upstreams.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Shared;

/// Whether `addr` answers `GET path` with a 2xx within `timeout`.
pub async fn probe(addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let check = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(path)
            .header(header::HOST, addr.to_string())
            .header(header::USER_AGENT, "twinkle-health")
            .body(Empty::new())
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        Some(resp.status().is_success())
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
}

/// Checks every upstream of service `si` once per interval, forever.
pub async fn check_service(shared: Arc<Shared>, si: usize) {
    let svc = Arc::clone(&shared.services[si]);
    let h = svc.cfg.health.clone();
    let mut tick = tokio::time::interval(h.interval.0.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pool = svc.upstreams().clone();
        let checks = pool.iter().map(|u| {
            let (u, path, svc) = (Arc::clone(u), h.path.clone(), Arc::clone(&svc));
            async move {
                let ok = probe(u.addr, &path, h.timeout.0).await;
                match u.checked(ok, h.unhealthy_after.max(1), h.healthy_after.max(1)) {
                    Some(true) => {
                        tracing::info!(service = %svc.cfg.name, upstream = %u.addr, "healthy again");
                        svc.available.notify_waiters();
                    }
                    Some(false) => {
                        tracing::warn!(service = %svc.cfg.name, upstream = %u.addr, path = %path, "unhealthy: active checks failed")
                    }
                    None => {}
                }
            }
        });
        futures_join_all(checks).await;
    }
}

/// Runs the futures concurrently and waits for all of them.
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(fs: impl Iterator<Item = F>) {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}

/// Samples in-flight counts every 100 ms and forgets drained upstreams.
pub async fn housekeeping(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let second = shared.stats.now_second();
        for (i, svc) in shared.services.iter().enumerate() {
            shared.inflight[i].sample(second, f64::from(svc.inflight.load(Ordering::Relaxed)));
            for id in svc.reap_drained() {
                shared.stats.forget_upstream(id);
            }
        }
    }
}
