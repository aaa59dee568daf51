//! Client results across servers: asked on A of a connection on B or C (from a `HubHandle`
//! and from a hub method), the client's value comes back; a connection no server owns fails
//! soon; a client that never answers fails after the hub's client-result timeout, and nothing
//! stays pending.

use std::time::{Duration, Instant};

use hub_runtime::{ClientResultError, HubOptions};
use serde_json::json;

use crate::common::{eventually, within};
use crate::fleet::{Fleet, Kind};
use crate::peer::Peer;

/// The hub's client-result timeout in these cases.
const RESULT_TIMEOUT: Duration = Duration::from_secs(1);

async fn fleet<K: Kind>() -> Option<Fleet<K>> {
    Fleet::start_with(HubOptions {
        client_result_timeout: RESULT_TIMEOUT,
        ..Default::default()
    })
    .await
}

/// Expects the `Result(argument)` invocation, and returns its invocation id.
async fn asked(peer: &mut Peer, argument: i64) -> String {
    let invocation = within("the client result reaches the client", peer.next_invocation()).await;
    assert_eq!(invocation.target, "Result");
    assert_eq!(invocation.arguments, [json!(argument)]);
    invocation.id.expect("a client result has an invocation id")
}

pub async fn a_client_result_comes_back_across_servers<K: Kind>() {
    let Some(fleet) = fleet::<K>().await else { return };
    let mut a = fleet.json(0, None).await;
    let mut b = fleet.json(1, None).await;
    let mut c = fleet.msgpack(2).await;
    for (peer, value) in [(&mut b, 42), (&mut c, 43)] {
        let handle = fleet.server(0).handle.clone();
        let id = peer.id.clone();
        let asking = tokio::spawn(async move { handle.clients.client(id).invoke::<_, i64>("Result", &(1,)).await });
        let invocation = asked(peer, 1).await;
        peer.answer(&invocation, json!(value)).await;
        assert_eq!(
            within("the result", asking).await.unwrap(),
            Ok(value),
            "{}",
            peer.protocol()
        );
    }
    // From a hub method on A.
    let asking = a.invoke("Ask", vec![json!(c.id), json!(7)]).await;
    let invocation = asked(&mut c, 7).await;
    c.answer(&invocation, json!(70)).await;
    assert_eq!(a.completion(&asking).await, Ok(json!(70)));
    if fleet.pending_client_results().is_some() {
        eventually("nothing pending after the answers", || {
            fleet.pending_client_results() == Some(0)
        })
        .await;
    }
}

pub async fn a_client_result_for_an_unknown_connection_fails<K: Kind>() {
    let Some(fleet) = fleet::<K>().await else { return };
    let started = Instant::now();
    let result = within(
        "a client result for nobody",
        fleet
            .server(0)
            .handle
            .clients
            .client("nobody")
            .invoke::<_, i64>("Result", &(1,)),
    )
    .await;
    assert_eq!(result, Err(ClientResultError::NoConnection("nobody".into())));
    assert!(started.elapsed() < RESULT_TIMEOUT, "took {:?}", started.elapsed());
    if fleet.pending_client_results().is_some() {
        eventually("nothing pending after the failure", || {
            fleet.pending_client_results() == Some(0)
        })
        .await;
    }
}

pub async fn an_unanswered_client_result_times_out_and_leaves_nothing_pending<K: Kind>() {
    let Some(fleet) = fleet::<K>().await else { return };
    let mut b = fleet.json(1, None).await;
    let handle = fleet.server(0).handle.clone();
    let id = b.id.clone();
    let started = Instant::now();
    let asking = tokio::spawn(async move { handle.clients.client(id).invoke::<_, i64>("Result", &(5,)).await });
    let late = asked(&mut b, 5).await;
    // The client never answers.
    assert_eq!(
        within("the client-result timeout", asking).await.unwrap(),
        Err(ClientResultError::Timeout)
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= RESULT_TIMEOUT - Duration::from_millis(50),
        "timed out after {elapsed:?}"
    );
    if fleet.pending_client_results().is_some() {
        eventually("nothing pending on any server", || {
            fleet.pending_client_results() == Some(0)
        })
        .await;
    }
    // A late answer is ignored; the next client result works.
    b.answer(&late, json!(1)).await;
    let handle = fleet.server(0).handle.clone();
    let id = b.id.clone();
    let asking = tokio::spawn(async move { handle.clients.client(id).invoke::<_, i64>("Result", &(6,)).await });
    let invocation = asked(&mut b, 6).await;
    b.answer(&invocation, json!(60)).await;
    assert_eq!(within("the next result", asking).await.unwrap(), Ok(60));
}
