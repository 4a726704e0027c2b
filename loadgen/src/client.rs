//! One keep-alive HTTP/1.1 connection of the load generator: a request is
//! written from prepared bytes, the response head parsed in place and the body
//! read by its framing into a buffer the connection reuses. No allocation per
//! request once the buffers have grown.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use httpwire::ChunkScanner;

/// How a request failed, as the report counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// No connection could be made.
    Connect,
    /// No whole response within the timeout.
    Timeout,
    /// The connection was closed or reset before a whole response.
    Reset,
}

/// A response: its status and body (kept only when asked).
pub struct Response<'a> {
    /// Status code.
    pub status: u16,
    /// The body, when the caller asked for it (session workloads read links from it).
    pub body: &'a [u8],
    /// The server will close the connection after this response.
    pub close: bool,
    /// The `name=value` parts of its Set-Cookie headers, `; `-separated.
    pub set_cookie: &'a [u8],
}

/// One connection.
pub struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    body: Vec<u8>,
    cookies: Vec<u8>,
}

impl Conn {
    /// Connects (within `timeout`).
    pub async fn open(addr: SocketAddr, timeout: Duration) -> Result<Conn, Failure> {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(Conn { s, buf: Vec::with_capacity(16 * 1024), body: Vec::new(), cookies: Vec::new() })
            }
            _ => Err(Failure::Connect),
        }
    }

    /// Sends `req` and reads the whole response by `deadline`.
    pub async fn exchange(
        &mut self,
        req: &[u8],
        head_request: bool,
        keep_body: bool,
        deadline: &mut Pin<&mut Sleep>,
    ) -> Result<Response<'_>, Failure> {
        if self.s.write_all(req).await.is_err() {
            return Err(Failure::Reset);
        }
        self.buf.clear();
        self.body.clear();
        self.cookies.clear();
        // The head.
        let (status, framing, close, head_len) = loop {
            if !self.buf.is_empty() {
                let mut table = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
                let mut r = httparse::Response::new(&mut []);
                match httparse::ParserConfig::default()
                    .parse_response_with_uninit_headers(&mut r, &self.buf, &mut table)
                {
                    Ok(httparse::Status::Complete(n)) => {
                        let code = r.code.unwrap_or(0);
                        if (100..200).contains(&code) {
                            self.buf.drain(..n);
                            continue;
                        }
                        let mut framing = Framing::Close;
                        let mut close = r.version == Some(0);
                        for h in r.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                let len = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok());
                                framing = match len {
                                    Some(n) => Framing::Length(n),
                                    None => return Err(Failure::Reset),
                                };
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                framing = Framing::Chunked;
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                close |= h.value.eq_ignore_ascii_case(b"close");
                            } else if h.name.eq_ignore_ascii_case("set-cookie") {
                                let pair = h.value.split(|b| *b == b';').next().unwrap_or(b"").trim_ascii();
                                if !pair.is_empty() {
                                    if !self.cookies.is_empty() {
                                        self.cookies.extend_from_slice(b"; ");
                                    }
                                    self.cookies.extend_from_slice(pair);
                                }
                            }
                        }
                        if head_request || code == 204 || code == 304 {
                            framing = Framing::Length(0);
                        }
                        break (code, framing, close || framing == Framing::Close, n);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(_) => return Err(Failure::Reset),
                }
            }
            self.fill(deadline).await?;
        };
        // The body.
        let mut pos = head_len;
        match framing {
            Framing::Length(n) => {
                let mut left = n;
                loop {
                    let take = ((self.buf.len() - pos) as u64).min(left);
                    if keep_body {
                        self.body.extend_from_slice(&self.buf[pos..pos + take as usize]);
                    }
                    left -= take;
                    if left == 0 {
                        break;
                    }
                    self.buf.clear();
                    pos = 0;
                    self.fill(deadline).await?;
                }
            }
            Framing::Chunked => {
                let mut sc = ChunkScanner::default();
                loop {
                    let used = sc.advance(&self.buf[pos..]).map_err(|_| Failure::Reset)?;
                    if keep_body {
                        self.body.extend_from_slice(&self.buf[pos..pos + used]);
                    }
                    if sc.done() {
                        break;
                    }
                    self.buf.clear();
                    pos = 0;
                    self.fill(deadline).await?;
                }
            }
            Framing::Close => loop {
                if keep_body {
                    self.body.extend_from_slice(&self.buf[pos..]);
                }
                self.buf.clear();
                pos = 0;
                match self.fill(deadline).await {
                    Ok(_) => {}
                    Err(Failure::Reset) => break,
                    Err(e) => return Err(e),
                }
            },
        }
        Ok(self.response(status, close))
    }

    fn response(&self, status: u16, close: bool) -> Response<'_> {
        Response { status, body: &self.body, close, set_cookie: &self.cookies }
    }

    /// Reads more into `buf`; a closed connection is `Reset`, the deadline `Timeout`.
    async fn fill(&mut self, deadline: &mut Pin<&mut Sleep>) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        tokio::select! {
            r = self.s.read_buf(&mut self.buf) => match r {
                Ok(0) | Err(_) => Err(Failure::Reset),
                Ok(n) => Ok(n),
            },
            _ = deadline.as_mut() => Err(Failure::Timeout),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// Resets `sleep` to fire `d` from now.
pub fn arm(sleep: &mut Pin<&mut Sleep>, d: Duration) {
    sleep.as_mut().reset(Instant::now() + d);
}
