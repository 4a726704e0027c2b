//! Connections to upstreams, pooled per worker thread: a worker's requests
//! reuse its own idle keep-alive connections with no lock and no cross-thread
//! hand-off. A connection is taken for one request and comes back when the
//! response body has been read to its end ([`Checkin`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ReqBody;

/// Idle connections kept per upstream per worker.
const MAX_IDLE: usize = 512;

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Io {
        /// The upstream.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// It took longer than the connect timeout.
    #[error("connecting to {addr} took longer than {timeout:?}")]
    Timeout {
        /// The upstream.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The HTTP handshake failed.
    #[error("HTTP handshake with {addr} failed: {source}")]
    Handshake {
        /// The upstream.
        addr: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
}

/// One worker's idle upstream connections, by upstream id.
pub struct ConnPool {
    idle: RefCell<HashMap<u64, Vec<SendRequest<ReqBody>>>>,
}

/// A connection in use; [`Checkin::give_back`] returns it to the pool.
pub struct Checkin {
    pool: Rc<ConnPool>,
    id: u64,
    sender: SendRequest<ReqBody>,
}

impl Checkin {
    /// Returns the connection for reuse (dropped if it has closed).
    pub fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.borrow_mut();
        let list = idle.entry(self.id).or_default();
        if list.len() < MAX_IDLE {
            list.push(self.sender);
        }
    }
}

impl Default for ConnPool {
    fn default() -> Self {
        ConnPool { idle: RefCell::new(HashMap::new()) }
    }
}

impl ConnPool {
    /// An idle connection to upstream `id` that is ready for a request.
    pub fn take(&self, id: u64) -> Option<SendRequest<ReqBody>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&id)?;
        while let Some(s) = list.pop() {
            if s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    /// A new connection to `addr` (its driver runs as a task of this worker).
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<SendRequest<ReqBody>, ConnectError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ConnectError::Io { addr, source }),
            Err(_) => return Err(ConnectError::Timeout { addr, timeout }),
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Handshake { addr, source })?;
        tokio::task::spawn_local(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, "upstream connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// Wraps a connection in use so that it can come back.
    pub fn checkin(self: &Rc<Self>, id: u64, sender: SendRequest<ReqBody>) -> Checkin {
        Checkin { pool: Rc::clone(self), id, sender }
    }

    /// Drops the idle connections of upstreams not in `keep`.
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        self.idle.borrow_mut().retain(|id, _| keep(*id));
    }
}
