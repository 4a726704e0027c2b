//! Worker threads: each runs a single-threaded tokio runtime with its own
//! listening socket (SO_REUSEPORT: the kernel spreads connections over the
//! workers), its own upstream connection pools and measurement buckets. A
//! request is served start to end on the thread that accepted it.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::client::ConnPool;
use crate::proxy::{handle, Worker};
use crate::Shared;

/// Runs futures of HTTP/2 streams on the worker's own thread.
#[derive(Clone, Copy)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// A listening socket that other sockets may bind too (one per worker).
pub fn bind_shared(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// The HTTP server settings of client connections.
fn builder(shared: &Shared) -> auto::Builder<LocalExec> {
    let t = &shared.cfg.timeouts;
    let l = &shared.cfg.limits;
    let mut b = auto::Builder::new(LocalExec);
    b.http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(t.client_header)
        .max_buf_size(l.max_header_bytes.max(8192))
        .max_headers(l.max_headers.max(1));
    b.http2().timer(TokioTimer::new()).max_header_list_size(l.max_header_bytes.min(u32::MAX as usize) as u32);
    b
}

/// Runs worker `i` on the current thread until shutdown, then lets its
/// connections finish for up to the shutdown grace time.
pub fn worker_main(
    i: usize,
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    limit: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::from_std(listener)?;
        let worker = Rc::new(Worker {
            up: crate::fast::UpPool::default(),
            conns: Rc::new(ConnPool::default()),
            rec: shared.stats.recorder(i),
            shared: Arc::clone(&shared),
        });
        let builder = Rc::new(builder(&shared));
        let open = Rc::new(Cell::new(0usize));
        // Idle connections to upstreams that left every pool are dropped.
        let w = Rc::clone(&worker);
        let housekeeping = tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let live: Vec<u64> = w
                    .shared
                    .services
                    .iter()
                    .flat_map(|s| s.upstreams().iter().map(|u| u.id).collect::<Vec<_>>())
                    .collect();
                w.conns.retain(|id| live.contains(&id));
                w.up.retain(|id| live.contains(&id));
            }
        });
        let mut stop = shutdown.clone();
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                p = Arc::clone(&limit).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = stop.changed() => break,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off a little.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            open.set(open.get() + 1);
            let (w, b, o, s) = (Rc::clone(&worker), Rc::clone(&builder), Rc::clone(&open), shutdown.clone());
            tokio::task::spawn_local(async move {
                serve_conn(w, b, stream, peer, s).await;
                o.set(o.get() - 1);
                drop(permit);
            });
        }
        drop(listener);
        let deadline = Instant::now() + shared.cfg.timeouts.shutdown_grace;
        while open.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if open.get() > 0 {
            tracing::warn!(worker = i, connections = open.get(), "shutdown grace time over; closing the rest");
        }
        housekeeping.abort();
        Ok(())
    })
}

/// Serves one client connection: requests until the client leaves, the
/// connection idles past its limit, or the dispatcher shuts down (in-flight
/// responses finish first: graceful shutdown of the connection).
async fn serve_conn(
    w: Rc<Worker>,
    builder: Rc<auto::Builder<LocalExec>>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    if w.shared.fast_path {
        match crate::fast::serve(&w, &mut stream, peer, &mut shutdown).await {
            crate::fast::Exit::Closed => {}
            crate::fast::Exit::Handoff(pre) => {
                serve_hyper(w, builder, crate::fast::Rewind::new(pre, stream), peer, shutdown).await
            }
        }
    } else {
        serve_hyper(w, builder, stream, peer, shutdown).await
    }
}

/// Serves a connection with hyper (HTTP/1.x and HTTP/2).
async fn serve_hyper<I>(
    w: Rc<Worker>,
    builder: Rc<auto::Builder<LocalExec>>,
    stream: I,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let last = Rc::new(Cell::new(Instant::now()));
    let busy = Rc::new(Cell::new(0u32));
    let idle = w.shared.cfg.timeouts.client_idle;
    let (l2, b2) = (Rc::clone(&last), Rc::clone(&busy));
    let svc = service_fn(move |req| {
        let (w, last, busy) = (Rc::clone(&w), Rc::clone(&l2), Rc::clone(&b2));
        busy.set(busy.get() + 1);
        async move {
            let r = handle(w, peer, req).await;
            busy.set(busy.get() - 1);
            last.set(Instant::now());
            r
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    // While a request is in flight the idle clock does not run out; look again later.
    let mut not_before = Instant::now();
    loop {
        let deadline = tokio::time::Instant::from_std((last.get() + idle).max(not_before));
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "client connection ended: {e}");
                }
                break;
            }
            _ = tokio::time::sleep_until(deadline), if !closing => {
                if busy.get() == 0 && last.get().elapsed() >= idle {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else if busy.get() > 0 {
                    not_before = Instant::now() + idle;
                }
            }
            _ = shutdown.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}
