//! BroadcastHub durable groups: `Publish` numbers a `durable-*` group's messages and refuses
//! other groups; `Subscribe` from a position sends the header, exactly the missed messages,
//! then live ones.

use futures_util::StreamExt;
use hub_client::{HubConnection, HubConnectionBuilder};
use hub_examples::interop_contract::{BroadcastHubProxy, RecoveryHeader, RecoveryItem, RecoveryMessage};

use crate::report::{expect_eq, within, Context, Failure, Report, CALLBACK_TIMEOUT};
use crate::{Pair, Target};

async fn connect(target: &Target, pair: Pair) -> Result<HubConnection, Failure> {
    let connection = HubConnectionBuilder::new(target.url("/broadcast"))
        .transports([pair.transport])
        .protocol(pair.protocol)
        .build()
        .context("building the connection")?;
    connection.start().await.context("start")?;
    Ok(connection)
}

fn message(offset: i64, text: &str) -> RecoveryItem {
    RecoveryItem::Message(RecoveryMessage {
        offset,
        message: text.to_string(),
    })
}

async fn resume(target: &Target, pair: Pair) -> Result<(), Failure> {
    let group = format!("durable-{}-{}", target.run_id, pair.label().replace('/', "-"));
    let publisher = connect(target, pair).await?;
    let subscriber = connect(target, pair).await?;
    let outcome = async {
        let hub = BroadcastHubProxy::new(&publisher);
        let first = hub.publish(group.clone(), "m1".into()).await.context("Publish")?;
        let second = hub.publish(group.clone(), "m2".into()).await.context("Publish")?;
        expect_eq("offsets", (first.offset, second.offset), (1, 2))?;
        expect_eq("one epoch", &second.epoch, &first.epoch)?;
        let refused = hub.publish(format!("plain-{}", target.run_id), "m".into()).await;
        if refused.is_ok() {
            return Err("Publish to a group not named durable-* succeeded".to_string());
        }

        let mut stream = BroadcastHubProxy::new(&subscriber).subscribe(group.clone(), Some(first.clone()));
        let mut next = async || match within(CALLBACK_TIMEOUT, "the next Subscribe item", stream.next()).await? {
            Some(item) => item.context("Subscribe"),
            None => Err("the Subscribe stream ended".to_string()),
        };
        let header = RecoveryItem::Header(RecoveryHeader {
            recovered: true,
            epoch: first.epoch.clone(),
            offset: 2,
        });
        expect_eq("the header", next().await?, header)?;
        expect_eq("the missed message", next().await?, message(2, "m2"))?;
        hub.publish(group.clone(), "m3".into()).await.context("Publish")?;
        expect_eq("the live message", next().await?, message(3, "m3"))
    }
    .await;
    for connection in [publisher, subscriber] {
        let _ = tokio::time::timeout(CALLBACK_TIMEOUT, connection.stop()).await;
    }
    outcome
}

pub async fn run(report: &mut Report, target: &Target, pair: Pair) {
    report
        .check(
            pair,
            "BroadcastHub Publish + Subscribe from a position",
            resume(target, pair),
        )
        .await;
}
