//! hello: the smallest useful web app in a twinkle VM.
//!
//! `GET /` a greeting, `GET /health` "ok", `POST /echo` the body back,
//! `GET /bytes?n=N` N bytes (up to 8 MiB), anything else 404.

#![no_std]
#![no_main]

extern crate alloc;

use http::{Handler, Request, Response};

twinkle_rt::entry!(main);

struct Hello {
    served: u64,
}

impl Handler for Hello {
    fn handle(&mut self, req: &Request<'_>) -> Response {
        self.served += 1;
        match (req.method, req.path()) {
            ("GET" | "HEAD", "/") => Response::text(200, "Hello from a twinkle VM!\n"),
            ("GET" | "HEAD", "/health") => Response::text(200, "ok\n"),
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

fn main() -> u8 {
    twinkle_rt::info!("hello: serving");
    twinkle_rt::hypercall::ready();
    http::serve(&mut Hello { served: 0 }, http::Config::default())
}
