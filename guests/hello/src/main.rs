//! hello: the smallest useful web app in a twinkle VM.
//!
//! `GET /` a greeting, `GET /health` "ok", `POST /echo` the body back,
//! `GET /bytes?n=N` N bytes (up to 8 MiB), `GET /time` the guest's monotonic
//! and wall-clock nanoseconds, `GET /upstream/NAME?msg=TEXT`
//! sends TEXT and a newline to the `--connect` endpoint NAME, half-closes, and
//! answers with everything the endpoint sent back; anything else 404.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use http::{Handler, Request, Response};
use twinkle_rt::abi::Op;
use twinkle_rt::net::Net;

twinkle_rt::entry!(main);

struct Hello {
    served: u64,
}

impl Handler for Hello {
    fn handle(&mut self, net: &mut Net, req: &Request<'_>) -> Response {
        self.served += 1;
        if let Some(name) = req.path().strip_prefix("/upstream/") {
            return upstream(net, name, req.query("msg").unwrap_or(""));
        }
        match (req.method, req.path()) {
            ("GET" | "HEAD", "/") => Response::text(200, "Hello from a twinkle VM!\n"),
            ("GET" | "HEAD", "/health") => Response::text(200, "ok\n"),
            ("GET", "/time") => {
                let (mono, wall) = twinkle_rt::clock::now();
                Response::text(200, &alloc::format!("{mono} {wall}\n"))
            }
            ("POST" | "PUT", "/echo") => Response::new(200, "application/octet-stream", req.body.to_vec()),
            ("GET", "/bytes") => match req.query("n").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n <= 8 << 20 => {
                    let body = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                    Response::new(200, "application/octet-stream", body)
                }
                _ => Response::text(400, "n must be a number of bytes up to 8388608\n"),
            },
            (_, "/" | "/health" | "/echo" | "/bytes") => Response::text(405, "method not allowed\n"),
            _ => Response::text(404, "not found\n"),
        }
    }
}

/// One round trip to an outbound endpoint, in blocking style.
fn upstream(net: &mut Net, name: &str, msg: &str) -> Response {
    let Some(endpoint) = net.endpoint(name) else {
        return Response::text(404, "no such endpoint; start the VM with --connect NAME=HOST:PORT\n");
    };
    let c = net.call(Op::Connect, endpoint, 0, 0);
    if c.result < 0 {
        return Response::text(502, "connect failed\n");
    }
    let conn = c.conn;
    let mut out: Vec<u8> = msg.as_bytes().to_vec();
    out.push(b'\n');
    let sent = net.call(Op::Send, conn, out.as_ptr() as u64, out.len() as u32);
    let _ = net.call(Op::Shutdown, conn, 0, 0);
    let mut reply = Vec::new();
    let mut buf = alloc::vec![0u8; 16 << 10];
    while sent.result >= 0 && reply.len() < 1 << 20 {
        let r = net.call(Op::Recv, conn, buf.as_mut_ptr() as u64, buf.len() as u32);
        if r.result <= 0 {
            break;
        }
        reply.extend_from_slice(&buf[..r.result as usize]);
    }
    let _ = net.call(Op::Close, conn, 0, 0);
    if sent.result < 0 {
        return Response::text(502, "send failed\n");
    }
    Response::new(200, "application/octet-stream", reply)
}

fn main() -> u8 {
    twinkle_rt::info!("hello: serving");
    twinkle_rt::hypercall::ready();
    http::serve(&mut Hello { served: 0 }, http::Config::default())
}
