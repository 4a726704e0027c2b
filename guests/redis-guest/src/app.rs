//! What every storage-backed guest app does around its pages: load the data
//! set from Redis at start (trying again every second while Redis or the
//! data is missing), log how long that took and what it holds, call
//! `ready`, then serve HTTP on the same rings, telling the app about each
//! batch of requests and logging every 503. Every Redis operation has a
//! timeout (`--arg redis_timeout_ms=N`, default 5 s): a Redis that stops
//! answering makes requests 503s, not a stalled VM.

use alloc::string::String;

use http::{Handler, Request, Response};
use storage::{Store, StoreError};
use twinkle_rt::net::Net;
use webpage::Page;

use crate::Redis;

/// A web application whose state lives in Redis.
pub trait StoreApp: Sized {
    /// Its name, for log lines.
    const NAME: &'static str;
    /// Loads the data set and builds the in-memory state.
    fn load(store: &mut dyn Store, progress: &mut dyn FnMut(&str)) -> Result<Self, StoreError>;
    /// The requests handled from now on arrived after this call.
    fn new_requests(&mut self);
    /// Answers one request (`now`: Unix seconds).
    fn handle(&mut self, store: &mut dyn Store, now: i64, method: &str, target: &str, body: &[u8]) -> Page;
    /// What it holds, for the ready log line.
    fn summary(&self) -> String;
}

struct Served<A> {
    app: A,
    redis: Redis,
    requests: u64,
}

impl<A: StoreApp> Handler for Served<A> {
    fn batch(&mut self, _net: &mut Net) {
        self.app.new_requests();
    }

    fn completion(&mut self, net: &mut Net, cqe: twinkle_rt::abi::Cqe) {
        self.redis.completion(net, cqe);
    }

    fn handle(&mut self, net: &mut Net, req: &Request<'_>) -> Response {
        self.requests += 1;
        let now = (twinkle_rt::clock::wall_ns() / 1_000_000_000) as i64;
        let mut store = self.redis.with(net);
        let mut page = self.app.handle(&mut store, now, req.method, req.target, req.body);
        if req.path() == "/health" && page.status == 200 {
            // Requests served and Redis round trips since start (how well
            // catch-ups are shared by batches), and what the instance holds
            // in memory (native builds use the host's allocator: no figure).
            let heap = twinkle_rt::allocator().used_pages() * 4096;
            let mut line = alloc::format!(
                "{} requests={} redis_round_trips={}",
                page.body.trim_end(),
                self.requests,
                self.redis.round_trips
            );
            if heap > 0 {
                line.push_str(&alloc::format!(" heap_bytes={heap}"));
            }
            line.push('\n');
            page.body = line;
        }
        if page.status == 503 {
            twinkle_rt::warn!("{}: {} answered 503: storage tier unavailable", A::NAME, req.path());
        }
        Response::new(page.status, page.content_type(), page.body.into_bytes())
    }
}

/// The guest program's main: load, `ready`, serve. Redis is the endpoint
/// called `redis` (`--connect redis=HOST:PORT`).
pub fn run<A: StoreApp>() -> ! {
    let mut net = Net::new();
    let mut redis = Redis::new(&net, "redis");
    // `--arg redis_timeout_ms=N`: how long a Redis operation may take
    // before the request is answered 503 (default 5 s).
    if let Some(ms) = twinkle_rt::arg_value("redis_timeout_ms").and_then(|v| v.parse().ok()) {
        redis.set_timeout(ms);
    }
    let started = twinkle_rt::clock::monotonic_ns();
    let app = loop {
        let mut store = redis.with(&mut net);
        match A::load(&mut store, &mut |line| twinkle_rt::info!("{}: {line}", A::NAME)) {
            Ok(app) => break app,
            Err(e) => {
                twinkle_rt::warn!("{}: cannot load the data set: {e}; trying again in 1 s", A::NAME);
                net.idle(0, 1_000_000_000);
            }
        }
    };
    let ms = (twinkle_rt::clock::monotonic_ns() - started) / 1_000_000;
    let heap_mib = twinkle_rt::allocator().used_pages() * 4096 >> 20;
    twinkle_rt::info!("{}: ready in {ms} ms: {}; heap {heap_mib} MiB", A::NAME, app.summary());
    twinkle_rt::hypercall::ready();
    http::serve_on(net, &mut Served { app, redis, requests: 0 }, http::Config::default())
}
