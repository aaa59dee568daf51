//! Fan-out to 10,000 local connections, and one Echo invocation through the dispatcher, all
//! through the public API and without sockets: the server's warp filter is driven in-process
//! (`warp::test`), the connections use Server-Sent Events (a response body per connection,
//! drained by a task each) and POSTs. A WebSocket version would need 20,000 sockets in one
//! process, above this machine's open-file limit; the SSE transport shares the fan-out path
//! (lifetime manager → outboxes) and differs only in the last step (SSE event vs WS frame).
//!
//! `cargo bench -p hub-runtime --bench fanout`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::BodyExt;
use hub_runtime::prelude::*;
use tokio::sync::{mpsc, Notify};
use warp::filters::BoxedFilter;
use warp::reply::Response;

struct Bench;

#[hub]
impl Bench {
    fn echo(&self, message: String) -> String {
        message
    }
}

const RS: char = '\u{1e}';

async fn negotiate(filter: &BoxedFilter<(Response,)>) -> String {
    let response = warp::test::request()
        .method("POST")
        .path("/bench/negotiate?negotiateVersion=1")
        .reply(filter)
        .await;
    let body: serde_json::Value = serde_json::from_slice(response.body()).expect("negotiate body");
    body["connectionToken"].as_str().expect("a token").to_string()
}

/// Opens one SSE connection; every body chunk goes to `each`.
async fn open(filter: &BoxedFilter<(Response,)>, mut each: impl FnMut(&[u8]) + Send + 'static) -> String {
    let token = negotiate(filter).await;
    let response = warp::test::request()
        .method("GET")
        .path(&format!("/bench?id={token}"))
        .header("accept", "text/event-stream")
        .filter(filter)
        .await
        .expect("event stream");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                each(data);
            }
        }
    });
    let handshake = warp::test::request()
        .method("POST")
        .path(&format!("/bench?id={token}"))
        .body(format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
        .reply(filter)
        .await;
    assert_eq!(handshake.status(), 200);
    token
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

fn server() -> HubServer {
    let options = HubOptions {
        // Nothing here sends client pings; keep the connections for the whole run.
        client_timeout: Duration::from_secs(3600),
        keep_alive_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    HubServer::builder().options(options).hub("/bench", Bench).build()
}

fn fanout(c: &mut Criterion) {
    const CONNECTIONS: usize = 10_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = server();
    let filter = server.filter();
    let handle = server.handle::<Bench>().expect("hub mapped");
    let delivered = Arc::new(AtomicUsize::new(0));
    let goal = Arc::new(AtomicUsize::new(usize::MAX));
    let done = Arc::new(Notify::new());
    runtime.block_on(async {
        for _ in 0..CONNECTIONS {
            let (delivered, goal, done) = (delivered.clone(), goal.clone(), done.clone());
            open(&filter, move |data| {
                let n = count(data, b"\"Receive\"");
                if n > 0 {
                    let total = delivered.fetch_add(n, Ordering::AcqRel) + n;
                    if total == goal.load(Ordering::Acquire) {
                        done.notify_one();
                    }
                }
            })
            .await;
        }
        // Wait for every handshake reply to be through.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    assert_eq!(server.connection_count(), CONNECTIONS);
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(CONNECTIONS as u64));
    group.sample_size(20);
    let payload = ("x".repeat(32),);
    group.bench_function("send_to_all_10000_sse_delivered", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let before = delivered.load(Ordering::Acquire);
                    goal.store(before + CONNECTIONS, Ordering::Release);
                    let started = Instant::now();
                    handle.clients.all().send("Receive", &payload).await.expect("send");
                    tokio::time::timeout(Duration::from_secs(30), done.notified())
                        .await
                        .expect("every connection got the message");
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.bench_function("send_to_all_10000_enqueue_only", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let before = delivered.load(Ordering::Acquire);
                    goal.store(before + CONNECTIONS, Ordering::Release);
                    let started = Instant::now();
                    handle.clients.all().send("Receive", &payload).await.expect("send");
                    total += started.elapsed();
                    // Not timed: let the transports drain so outboxes never fill.
                    tokio::time::timeout(Duration::from_secs(30), done.notified())
                        .await
                        .expect("every connection got the message");
                }
                total
            })
        })
    });
    group.finish();
    server.shutdown();
}

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = server();
    let filter = server.filter();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let token = runtime.block_on(async {
        let token = open(&filter, move |data| {
            let _ = tx.send(data.to_vec());
        })
        .await;
        // The handshake reply.
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        token
    });
    let mut group = c.benchmark_group("dispatch");
    let path = format!("/bench?id={token}");
    group.bench_function("echo_invocation_sse_round_trip", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for i in 0..iters {
                    let body = format!(
                        "{{\"type\":1,\"invocationId\":\"{i}\",\"target\":\"Echo\",\"arguments\":[\"hello\"]}}{RS}"
                    );
                    let response = warp::test::request()
                        .method("POST")
                        .path(&path)
                        .body(body)
                        .reply(&filter)
                        .await;
                    assert_eq!(response.status(), 200);
                    loop {
                        let chunk = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                            .await
                            .expect("a completion")
                            .expect("stream open");
                        if count(&chunk, b"\"type\":3") > 0 {
                            break;
                        }
                    }
                }
                started.elapsed()
            })
        })
    });
    group.finish();
    server.shutdown();
}

criterion_group!(benches, fanout, dispatch);
criterion_main!(benches);
