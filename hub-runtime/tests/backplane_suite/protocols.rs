//! Both protocols: a JSON and a MessagePack client on each server get the same broadcasts
//! with equal content (strings with escapes and every UTF-8 width, and a structured record),
//! sent from a hub method and from a worker.

use std::collections::BTreeMap;

use serde_json::json;

use crate::common::within;
use crate::fleet::{Fleet, Kind, SERVERS};
use crate::hub::{Record, To};

fn records() -> Vec<Record> {
    vec![
        Record {
            id: 1,
            text: "plain".into(),
            values: vec![0, 1, -1, i64::MAX, i64::MIN, 255, 65_536],
            ratio: 0.5,
            flag: true,
            missing: None,
            tags: BTreeMap::from([("a".into(), 1), ("ü€😀".into(), u32::MAX)]),
        },
        Record {
            id: 2,
            text: "\"quotes\", \\ backslash, \n newline, \u{0} nul, \u{1e} separator, é € 😀".into(),
            values: Vec::new(),
            ratio: -1234.0625,
            flag: false,
            missing: Some(String::new()),
            tags: BTreeMap::new(),
        },
    ]
}

pub async fn json_and_messagepack_clients_get_equal_content<K: Kind>() {
    let Some(fleet) = Fleet::<K>::start().await else { return };
    let mut peers = Vec::new();
    for server in 0..SERVERS {
        peers.push(fleet.json(server, None).await);
        peers.push(fleet.msgpack(server).await);
    }
    for record in records() {
        // From a hub method on A, then from the worker.
        peers[0]
            .call("RecordToAll", vec![serde_json::to_value(&record).unwrap()])
            .await;
        fleet.worker.clients.all().record(record.clone()).await.unwrap();
        for (i, peer) in peers.iter_mut().enumerate() {
            for source in ["hub method", "worker"] {
                let invocation = within("a record", peer.next_invocation()).await;
                assert_eq!(invocation.target, "Record");
                let got: Record = serde_json::from_value(invocation.arguments[0].clone())
                    .unwrap_or_else(|e| panic!("peer {i} ({}): {e}", peer.protocol()));
                assert_eq!(got, record, "peer {i} ({}) from the {source}", peer.protocol());
            }
        }
    }
    let text = records()[1].text.clone();
    peers[1].call("SendTo", vec![json!(To::All), json!(text)]).await;
    for (i, peer) in peers.iter_mut().enumerate() {
        assert_eq!(peer.received().await, text, "peer {i} ({})", peer.protocol());
    }
}
