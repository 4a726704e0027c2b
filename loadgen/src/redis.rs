//! A small blocking Redis client for the host side (the data loader and the
//! tests that compare Redis with what clients saw): commands are queued and
//! sent as one pipeline, replies read back in order. The protocol code is
//! `resp`, shared with the guest apps.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub use resp::Reply;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL is not `redis://HOST:PORT` (or `HOST:PORT`).
    #[error("{0:?} is not a Redis address: write redis://HOST:PORT (for example redis://127.0.0.1:6379)")]
    Url(String),
    /// Connecting failed.
    #[error("cannot connect to Redis at {addr}: {error} (is redis-server running there? `redis-server --port {port}` starts one)", port = addr.port())]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// Talking failed.
    #[error("Redis at {addr}: {error}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The server's bytes are not RESP.
    #[error("Redis at {addr} sent something that is not RESP: {problem}")]
    Protocol {
        /// The server.
        addr: SocketAddr,
        /// What was wrong.
        problem: String,
    },
    /// The server closed the connection.
    #[error("Redis at {0} closed the connection")]
    Closed(SocketAddr),
    /// A command got an error reply.
    #[error("Redis at {addr} refused {command}: {message}")]
    Command {
        /// The server.
        addr: SocketAddr,
        /// The command's name.
        command: String,
        /// Redis's message.
        message: String,
    },
}

/// A connection with a queue of commands not sent yet.
pub struct Redis {
    s: TcpStream,
    addr: SocketAddr,
    out: Vec<u8>,
    queued: Vec<String>,
    buf: Vec<u8>,
}

impl Redis {
    /// Connects to `redis://HOST:PORT` or `HOST:PORT`.
    pub fn connect(url: &str) -> Result<Redis, RedisError> {
        let hostport = url.strip_prefix("redis://").unwrap_or(url).trim_end_matches('/');
        let addr = hostport
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| RedisError::Url(url.to_string()))?;
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|error| RedisError::Connect { addr, error })?;
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        Ok(Redis { s, addr, out: Vec::new(), queued: Vec::new(), buf: Vec::new() })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a command (sent by [`Redis::flush`]).
    pub fn queue(&mut self, args: &[&[u8]]) {
        resp::command(&mut self.out, args);
        self.queued.push(String::from_utf8_lossy(args.first().copied().unwrap_or(b"?")).into_owned());
    }

    /// Commands queued and not yet sent.
    pub fn pending(&self) -> usize {
        self.queued.len()
    }

    /// Sends the queue and returns the replies in order. An error reply
    /// makes the whole pipeline an error (the first one, naming its
    /// command), after every reply has been read: the connection stays in
    /// step for the next commands.
    pub fn flush(&mut self) -> Result<Vec<Reply>, RedisError> {
        let (replies, names) = self.exchange()?;
        let first_error = replies.iter().zip(&names).find_map(|(r, name)| match r {
            Reply::Error(message) => {
                Some(RedisError::Command { addr: self.addr, command: name.clone(), message: message.clone() })
            }
            _ => None,
        });
        match first_error {
            Some(e) => Err(e),
            None => Ok(replies),
        }
    }

    /// Sends the queue and returns every reply in order, error replies
    /// included (the storage tier's contract: the app decides what an error
    /// reply means).
    pub fn flush_all(&mut self) -> Result<Vec<Reply>, RedisError> {
        self.exchange().map(|(replies, _)| replies)
    }

    fn exchange(&mut self) -> Result<(Vec<Reply>, Vec<String>), RedisError> {
        let io = |addr| move |error| RedisError::Io { addr, error };
        let names = std::mem::take(&mut self.queued);
        let out = std::mem::take(&mut self.out);
        self.s.write_all(&out).map_err(io(self.addr))?;
        let mut replies = Vec::with_capacity(names.len());
        let mut chunk = vec![0u8; 64 * 1024];
        while replies.len() < names.len() {
            match resp::parse(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    replies.push(reply);
                }
                Ok(None) => {
                    let n = self.s.read(&mut chunk).map_err(io(self.addr))?;
                    if n == 0 {
                        return Err(RedisError::Closed(self.addr));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => return Err(RedisError::Protocol { addr: self.addr, problem: e.to_string() }),
            }
        }
        Ok((replies, names))
    }

    /// One command, now.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        self.queue(args);
        let mut r = self.flush()?;
        r.pop().ok_or(RedisError::Closed(self.addr))
    }
}

/// The apps' storage contract on this connection: the host runs the same
/// app code as the guests (tests, the native build's reference).
impl storage::Store for Redis {
    fn exec(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Reply>, storage::StoreError> {
        for c in cmds {
            self.queue(c);
        }
        self.flush_all().map_err(|e| storage::StoreError::Unavailable(e.to_string()))
    }
}
