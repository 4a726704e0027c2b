//! rubis: the RUBiS-like auction site in a twinkle VM.
//!
//! At start it loads the data set from Redis (the `redis` endpoint:
//! `--connect redis=HOST:PORT`), builds its indexes, then calls `ready`
//! (the point a snapshot is taken) and serves the 26 interactions under
//! `/PHP/` and `GET /health`. Redis unreachable at start: it says so and
//! tries again every second; while serving: the page is a 503 and a log line.

#![no_std]
#![no_main]

extern crate alloc;

use http::{Handler, Request, Response};
use redis_guest::Redis;
use rubis_app::App;
use twinkle_rt::net::Net;

twinkle_rt::entry!(main);

struct Rubis {
    app: App,
    redis: Redis,
}

impl Handler for Rubis {
    fn batch(&mut self, _net: &mut Net) {
        self.app.new_requests();
    }

    fn handle(&mut self, net: &mut Net, req: &Request<'_>) -> Response {
        let now = (twinkle_rt::clock::wall_ns() / 1_000_000_000) as i64;
        let mut store = self.redis.with(net);
        let mut page = self.app.handle(&mut store, now, req.method, req.target, req.body);
        let heap = twinkle_rt::allocator().used_pages() * 4096;
        if req.path() == "/health" && page.status == 200 && heap > 0 {
            // What the instance holds in memory (the benchmark reports it;
            // native builds use the host's allocator and say nothing).
            page.body = alloc::format!("{} heap_bytes={heap}\n", page.body.trim_end());
        }
        if page.status == 503 {
            twinkle_rt::warn!("rubis: {} answered 503: storage tier unavailable", req.path());
        }
        let ty = if page.html { "text/html; charset=utf-8" } else { "text/plain; charset=utf-8" };
        Response::new(page.status, ty, page.body.into_bytes())
    }
}

fn main() -> u8 {
    let mut net = Net::new();
    let mut redis = Redis::new(&net, "redis");
    let started = twinkle_rt::clock::monotonic_ns();
    let app = loop {
        let mut store = redis.with(&mut net);
        match App::load(&mut store, &mut |line| twinkle_rt::info!("rubis: {line}")) {
            Ok(app) => break app,
            Err(e) => {
                twinkle_rt::warn!("rubis: cannot load the data set: {e}; trying again in 1 s");
                net.idle(0, 1_000_000_000);
            }
        }
    };
    let ms = (twinkle_rt::clock::monotonic_ns() - started) / 1_000_000;
    let heap_mib = twinkle_rt::allocator().used_pages() * 4096 >> 20;
    twinkle_rt::info!(
        "rubis: ready in {ms} ms: {} users, {} items, {} bids, {} comments, log at {}; heap {heap_mib} MiB",
        app.db.users.len(),
        app.db.items.len(),
        app.db.bids.len(),
        app.db.comments.len(),
        app.log_position()
    );
    twinkle_rt::hypercall::ready();
    http::serve_on(net, &mut Rubis { app, redis }, http::Config::default())
}
