//! Every send target reaches its connections on every server, each once, and nobody else:
//! sent from a hub method on server A and from a worker.
//!
//! Absence is proven with a marker: right after a message, its sender sends a marker to every
//! connection; one sender's messages arrive in order, so what a client got before the marker
//! is everything the message brought it.

use serde_json::json;

use crate::fleet::{Fleet, Kind};
use crate::hub::{send, To};
use crate::peer::Peer;

/// Where a message is sent from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// `SendTo` invoked by the first client (on server A).
    HubMethod,
    /// The fleet's worker (`HubHandle`).
    Worker,
}

/// Sends `Receive(text)` to `to` from `source`.
async fn send_from<K: Kind>(fleet: &Fleet<K>, sender: &mut Peer, source: Source, to: &To, text: &str) {
    match source {
        Source::HubMethod => {
            sender
                .call("SendTo", vec![serde_json::to_value(to).unwrap(), json!(text)])
                .await;
        }
        Source::Worker => send(&fleet.worker.clients, to, text.to_string())
            .await
            .unwrap_or_else(|e| panic!("sending to {to:?}: {e}")),
    }
}

pub async fn every_target_reaches_every_server<K: Kind>() {
    let Some(fleet) = Fleet::<K>::start().await else { return };
    // Server A: the sender (user ua, group g1) and a connection of user ub.
    // Server B: user ub in g1, user uc in g2. Server C: user ud in g1 and g2, and a
    // MessagePack connection without a user or groups.
    let mut peers = [
        fleet.json(0, Some("ua")).await,
        fleet.json(0, Some("ub")).await,
        fleet.json(1, Some("ub")).await,
        fleet.json(1, Some("uc")).await,
        fleet.json(2, Some("ud")).await,
        fleet.msgpack(2).await,
    ];
    let ids: Vec<String> = peers.iter().map(|p| p.id.clone()).collect();
    for (peer, group) in [(0, "g1"), (2, "g1"), (3, "g2"), (4, "g1"), (4, "g2")] {
        peers[peer].call("Join", vec![json!(group)]).await;
    }
    let [a1, a2, b1, b2, c1, c2] = [0, 1, 2, 3, 4, 5];
    let id = |i: usize| ids[i].clone();
    let targets: Vec<(To, Vec<usize>)> = vec![
        (To::All, vec![a1, a2, b1, b2, c1, c2]),
        (To::AllExcept(vec![id(b1), id(c2)]), vec![a1, a2, b2, c1]),
        (To::Client(id(b1)), vec![b1]),
        (To::Client(id(c2)), vec![c2]),
        (To::Clients(vec![id(a2), id(b1), id(c2)]), vec![a2, b1, c2]),
        (To::Group("g1".into()), vec![a1, b1, c1]),
        (To::Groups(vec!["g1".into(), "g2".into()]), vec![a1, b1, b2, c1]),
        (To::GroupExcept("g1".into(), vec![id(c1)]), vec![a1, b1]),
        (To::User("ub".into()), vec![a2, b1]),
        (To::Users(vec!["ub".into(), "ud".into()]), vec![a2, b1, c1]),
        (To::Others, vec![a2, b1, b2, c1, c2]),
        (To::OthersInGroup("g1".into()), vec![b1, c1]),
    ];
    for source in [Source::HubMethod, Source::Worker] {
        for (to, expected) in &targets {
            if source == Source::Worker && matches!(to, To::Others | To::OthersInGroup(_)) {
                continue;
            }
            let text = format!("{to:?} from {source:?}");
            let marker = format!("marker after {text}");
            send_from(&fleet, &mut peers[a1], source, to, &text).await;
            // Its receivers first, then a marker to everyone: nobody may have (another) copy.
            for &i in expected.iter() {
                peers[i].expect(&text).await;
            }
            send_from(&fleet, &mut peers[a1], source, &To::All, &marker).await;
            for (i, peer) in peers.iter_mut().enumerate() {
                let got = peer.until(&marker).await;
                assert!(got.is_empty(), "{text}: what peer {i} got besides its copy: {got:?}");
            }
        }
    }
}
