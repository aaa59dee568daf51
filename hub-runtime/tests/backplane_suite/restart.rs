//! The broker restarted mid-traffic (distributed backplanes): a sender on A keeps sending to
//! everyone while the broker is down for a while. A's clients get every message throughout
//! (local delivery never stops); after the restart the other servers' clients get new
//! messages again, never one twice; the loss is counted in the backplanes' stats; and a group
//! joined before the outage still receives across servers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hub_runtime::HubOptions;
use serde_json::json;

use crate::common::within;
use crate::fleet::{Fleet, Kind};
use crate::peer::Peer;

/// How long the broker stays down.
const OUTAGE: Duration = Duration::from_millis(1500);

/// How long the other servers may take to receive again after the restart.
const RECOVERY: Duration = Duration::from_secs(15);

/// A client reading in the background: the numbers it got, until "end".
struct Reader {
    seen: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<Peer>,
}

impl Reader {
    fn start(mut peer: Peer) -> Reader {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let text = tokio::time::timeout(RECOVERY, peer.received())
                    .await
                    .expect("a reader waited too long for a message");
                if text == "end" {
                    return peer;
                }
                record.lock().unwrap().push(text.parse().expect("a number"));
            }
        });
        Reader { seen, task }
    }

    fn last(&self) -> Option<u64> {
        self.seen.lock().unwrap().last().copied()
    }

    /// Waits until it got a number of at least `n`.
    async fn reaches(&self, n: u64, what: &str) {
        let deadline = tokio::time::Instant::now() + RECOVERY;
        while self.last().is_none_or(|last| last < n) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {RECOVERY:?}: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> (Peer, Vec<u64>) {
        let peer = tokio::time::timeout(RECOVERY + Duration::from_secs(1), self.task)
            .await
            .expect("the reader ends")
            .expect("the reader does not panic");
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        (peer, seen)
    }
}

pub async fn a_broker_restart_mid_traffic_loses_only_what_it_must<K: Kind>() {
    // Pings keep the clients' per-frame read bound (common::TIMEOUT) from firing while nothing
    // else arrives: RECOVERY is the bound on the silence.
    let options = HubOptions {
        keep_alive_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let Some(mut fleet) = Fleet::<K>::start_with(options).await else {
        return;
    };
    let on_a = fleet.json(0, None).await;
    let mut on_b = fleet.json(1, None).await;
    let on_c = fleet.msgpack(2).await;
    on_b.call("Join", vec![json!("kept")]).await;

    // A's handle sends 0, 1, 2 … every 20 ms until told to stop.
    let next = Arc::new(AtomicU64::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = {
        let (handle, next, stop) = (fleet.server(0).handle.clone(), next.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let n = next.load(Ordering::SeqCst);
                // Fails while the broker is down (after delivering locally).
                let _ = handle.clients.all().receive(n.to_string()).await;
                next.store(n + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let readers: Vec<Reader> = [on_a, on_b, on_c].into_iter().map(Reader::start).collect();
    for (reader, name) in readers.iter().zip(["A", "B", "C"]) {
        reader.reaches(5, &format!("{name} receives before the outage")).await;
    }

    fleet.stop_broker().await;
    let stopped_at = next.load(Ordering::SeqCst);
    tokio::time::sleep(OUTAGE).await;
    fleet.restart_broker().await;
    let restarted_at = next.load(Ordering::SeqCst);
    // At one message per 20 ms the outage spans dozens; a sender held up by the broker
    // (and with it local delivery) gets few out.
    assert!(
        restarted_at - stopped_at >= 10,
        "only {} messages were sent while the broker was down",
        restarted_at - stopped_at
    );
    assert!(
        readers[0].last().is_some_and(|last| last + 5 >= restarted_at),
        "A's client kept receiving during the outage ({:?} of {restarted_at})",
        readers[0].last()
    );
    for (reader, name) in readers.iter().zip(["A", "B", "C"]).skip(1) {
        reader
            .reaches(restarted_at, &format!("{name} receives again after the restart"))
            .await;
    }
    stop.cancel();
    within("the sender stops", sender).await.unwrap();
    fleet.worker.clients.all().receive("end".into()).await.unwrap();
    let sent = next.load(Ordering::SeqCst);

    let mut peers = Vec::new();
    for (reader, name) in readers.into_iter().zip(["A", "B", "C"]) {
        let (peer, seen) = reader.finish().await;
        if name == "A" {
            assert_eq!(
                seen,
                (0..sent).collect::<Vec<_>>(),
                "A's client got every message in order"
            );
        } else {
            assert!(
                seen.windows(2).all(|w| w[0] < w[1]),
                "{name}'s client got a message twice or out of order: {seen:?}"
            );
            assert!(
                seen.iter().any(|&n| n >= restarted_at),
                "{name} got nothing after the restart"
            );
        }
        peers.push(peer);
    }
    let stats = fleet.stats();
    assert!(
        stats
            .iter()
            .any(|s| s.gaps > 0 || s.failed_publishes > 0 || s.lost_messages > 0),
        "the outage (messages {stopped_at}..{restarted_at}) was not counted: {stats:?}"
    );

    // The group joined before the outage still gets messages from other servers.
    fleet
        .server(2)
        .handle
        .clients
        .group("kept")
        .receive("kept".into())
        .await
        .unwrap();
    peers[1].expect("kept").await;
    fleet.worker.clients.all().receive("marker".into()).await.unwrap();
    assert!(peers[1].until("marker").await.is_empty());
    assert!(peers[2].until("marker").await.is_empty());
}
