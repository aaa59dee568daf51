//! Encode and decode of every hub message type, in both protocols.
//!
//! `cargo bench -p hub-runtime --bench protocol`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hub_runtime::protocol::{HubMessage, HubProtocol, JsonProtocol, MessagePackProtocol, OutMessage, OutResult};

fn messages<'a>(
    small: &'a (&'a str,),
    large: &'a (String,),
    no_ids: &'a [String],
) -> Vec<(&'static str, OutMessage<'a>)> {
    vec![
        (
            "invocation_32B",
            OutMessage::Invocation {
                invocation_id: Some("17"),
                target: "Receive",
                arguments: small,
                stream_ids: no_ids,
            },
        ),
        (
            "invocation_1KiB",
            OutMessage::Invocation {
                invocation_id: None,
                target: "Receive",
                arguments: large,
                stream_ids: no_ids,
            },
        ),
        (
            "stream_item",
            OutMessage::StreamItem {
                invocation_id: "17",
                item: &42i64,
            },
        ),
        (
            "completion_value_32B",
            OutMessage::Completion {
                invocation_id: "17",
                result: OutResult::Value(&small.0),
            },
        ),
        (
            "completion_void",
            OutMessage::Completion {
                invocation_id: "17",
                result: OutResult::Void,
            },
        ),
        (
            "completion_error",
            OutMessage::Completion {
                invocation_id: "17",
                result: OutResult::Error("An unexpected error occurred invoking 'Echo' on the server."),
            },
        ),
        (
            "stream_invocation",
            OutMessage::StreamInvocation {
                invocation_id: "17",
                target: "Counter",
                arguments: &(10i32, 100i32),
                stream_ids: no_ids,
            },
        ),
        (
            "cancel_invocation",
            OutMessage::CancelInvocation { invocation_id: "17" },
        ),
        ("ping", OutMessage::Ping),
        (
            "close",
            OutMessage::Close {
                error: Some("Server is shutting down."),
                allow_reconnect: true,
            },
        ),
        ("ack", OutMessage::Ack { sequence_id: 1234 }),
        ("sequence", OutMessage::Sequence { sequence_id: 1234 }),
    ]
}

fn protocols() -> [(&'static str, &'static dyn HubProtocol); 2] {
    [("json", &JsonProtocol), ("messagepack", &MessagePackProtocol)]
}

fn encode(c: &mut Criterion) {
    let small = ("x".repeat(32).leak() as &str,);
    let large = ("y".repeat(1024),);
    let no_ids: Vec<String> = Vec::new();
    let mut group = c.benchmark_group("encode");
    for (pname, protocol) in protocols() {
        for (name, message) in messages(&small, &large, &no_ids) {
            let mut buf = Vec::with_capacity(2048);
            protocol.write(&message, &mut buf).expect("encodes");
            group.throughput(Throughput::Bytes(buf.len() as u64));
            group.bench_with_input(BenchmarkId::new(pname, name), &message, |b, message| {
                b.iter(|| {
                    buf.clear();
                    protocol.write(black_box(message), &mut buf).expect("encodes");
                    black_box(buf.len())
                })
            });
        }
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let small = ("x".repeat(32).leak() as &str,);
    let large = ("y".repeat(1024),);
    let no_ids: Vec<String> = Vec::new();
    let mut group = c.benchmark_group("decode");
    for (pname, protocol) in protocols() {
        for (name, message) in messages(&small, &large, &no_ids) {
            let bytes = protocol.encode(&message).expect("encodes");
            let mut out: Vec<HubMessage> = Vec::with_capacity(4);
            protocol.parse_into(&bytes, &mut out).expect("decodes");
            assert_eq!(out.len(), 1, "{pname} {name}");
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            group.bench_with_input(BenchmarkId::new(pname, name), &bytes, |b, bytes| {
                b.iter(|| {
                    out.clear();
                    protocol.parse_into(black_box(bytes), &mut out).expect("decodes");
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
