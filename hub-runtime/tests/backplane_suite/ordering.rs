//! Exactly once, in each sender's order: two senders on different servers (a hub method on A,
//! a `HubHandle` on B) send numbered messages to everyone at the same time; every client on
//! every server gets each number once, each sender's in increasing order.

use std::collections::BTreeMap;

use serde_json::json;

use crate::common::within;
use crate::fleet::{Fleet, Kind, SERVERS};

const COUNT: u32 = 200;

pub async fn every_message_arrives_once_in_sender_order<K: Kind>() {
    let Some(fleet) = Fleet::<K>::start().await else { return };
    let mut peers = Vec::new();
    for server in 0..SERVERS {
        peers.push(fleet.json(server, None).await);
        peers.push(fleet.msgpack(server).await);
    }
    // Sender "a": a hub method on A (not awaited: its Receives and Completion interleave).
    let burst = peers[0].invoke("Burst", vec![json!("a"), json!(COUNT)]).await;
    // Sender "b": B's handle.
    let b = fleet.server(1).handle.clone();
    let sending = tokio::spawn(async move {
        for n in 0..COUNT {
            b.clients.all().receive(format!("b:{n}")).await.expect("send from B");
        }
    });
    for (i, peer) in peers.iter_mut().enumerate() {
        let mut next: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..2 * COUNT {
            let text = within(&format!("peer {i} gets all {} messages", 2 * COUNT), peer.received()).await;
            let (tag, n) = text.split_once(':').expect("tag:number");
            let n: u32 = n.parse().expect("a number");
            let expected = next.entry(tag.to_string()).or_insert(0);
            assert_eq!(
                n,
                *expected,
                "peer {i} ({}): sender {tag}'s messages out of order or repeated",
                peer.protocol()
            );
            *expected += 1;
        }
        assert_eq!(
            next.values().collect::<Vec<_>>(),
            [&COUNT, &COUNT],
            "peer {i}: {next:?}"
        );
    }
    within("B's sender finishes", sending).await.expect("B's sender");
    assert_eq!(peers[0].completion(&burst).await, Ok(serde_json::Value::Null));
    // Nothing more (no copy arrives late): a marker from the worker comes next everywhere.
    fleet.worker.clients.all().receive("end".into()).await.unwrap();
    for (i, peer) in peers.iter_mut().enumerate() {
        assert!(peer.until("end").await.is_empty(), "peer {i} got more than one copy");
    }
}
