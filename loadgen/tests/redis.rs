//! The host Redis client against a real redis-server started on a free port.

mod common;

use common::redis_server;

use loadgen::redis::{Redis, RedisError, Reply};

#[test]
fn commands_pipeline_and_errors_name_the_command() {
    let srv = redis_server();
    let mut r = Redis::connect(&format!("redis://127.0.0.1:{}", srv.1)).expect("connect");
    assert_eq!(r.call(&[b"SET", b"k", b"v a l"]).expect("SET"), Reply::Simple("OK".into()));
    assert_eq!(r.call(&[b"GET", b"k"]).expect("GET").as_bytes(), Some(&b"v a l"[..]));
    assert_eq!(r.call(&[b"GET", b"missing"]).expect("GET"), Reply::Bulk(None));
    for _ in 0..10_000 {
        r.queue(&[b"INCR", b"n"]);
    }
    let replies = r.flush().expect("pipeline");
    assert_eq!(replies.len(), 10_000);
    assert_eq!(replies.last().and_then(Reply::as_int), Some(10_000));
    let big = vec![b'x'; 3 << 20];
    r.call(&[b"SET", b"big", &big]).expect("SET 3 MiB");
    assert_eq!(r.call(&[b"STRLEN", b"big"]).expect("STRLEN").as_int(), Some(3 << 20));
    match r.call(&[b"INCR", b"k"]) {
        Err(RedisError::Command { command, message, .. }) => {
            assert_eq!(command, "INCR");
            assert!(message.contains("not an integer"), "{message}");
        }
        other => panic!("INCR of a string must fail: {other:?}"),
    }
    // An error in the middle of a pipeline: every reply is still read, so
    // the next command gets its own answer.
    r.queue(&[b"SET", b"a", b"1"]);
    r.queue(&[b"INCR", b"k"]);
    r.queue(&[b"SET", b"b", b"2"]);
    let e = r.flush().expect_err("the INCR fails");
    assert!(e.to_string().contains("refused INCR"), "{e}");
    assert_eq!(r.call(&[b"GET", b"b"]).expect("GET").as_bytes(), Some(&b"2"[..]));
    assert_eq!(r.call(&[b"PING"]).expect("PING"), Reply::Simple("PONG".into()));
}

#[test]
fn bad_addresses_are_named() {
    let e = Redis::connect("redis://nowhere.invalid:notaport").err().expect("refused");
    assert!(e.to_string().contains("write redis://HOST:PORT"), "{e}");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let e = Redis::connect(&dead.to_string()).err().expect("nothing listens");
    assert!(e.to_string().contains(&format!("Redis at {dead}")), "{e}");
}
