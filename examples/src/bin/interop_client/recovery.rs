//! BroadcastHub durable groups: `Publish` numbers a `durable-*` group's messages and refuses
//! other groups; `Subscribe` from a position sends the header, exactly the missed messages,
//! then live ones. And hub-client's `Following` over the typed proxy's `Subscribe`: after a
//! lost connection it reconnects and resumes by itself, each message once and in order; from
//! a position history no longer has, it says not recovered and sends nothing stale.

use std::time::Duration;

use futures_util::StreamExt;
use hub_client::{FollowEvent, Following, HubConnection, HubConnectionBuilder, Position, RetryContext};
use hub_examples::interop_contract::{
    self as contract, BroadcastHubProxy, RecoveryHeader, RecoveryItem, RecoveryMessage,
};

use crate::report::{expect_eq, within, Context, Failure, Report, CALLBACK_TIMEOUT};
use crate::stateful::{upstream_address, Relay, GAP};
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

/// The typed proxy's `Subscribe` as a [`Following`]: the contract's position and items
/// mapped to hub-client's.
fn follow(connection: &HubConnection, group: &str) -> Following<String> {
    let calls = connection.clone();
    let group = group.to_string();
    Following::new(connection, move |from: Option<Position>| {
        let from = from.map(|p| contract::Position {
            epoch: p.epoch,
            offset: p.offset,
        });
        BroadcastHubProxy::new(&calls)
            .subscribe(group.clone(), from)
            .map(|item| {
                item.map(|item| match item {
                    RecoveryItem::Header(h) => hub_client::RecoveryItem::Header(hub_client::RecoveryHeader {
                        recovered: h.recovered,
                        epoch: h.epoch,
                        offset: h.offset,
                    }),
                    RecoveryItem::Message(m) => hub_client::RecoveryItem::Message(hub_client::RecoveryMessage {
                        offset: m.offset,
                        message: m.message,
                    }),
                })
            })
    })
}

/// The next event of a following, which must come in time and not be an error.
async fn next_event(following: &mut Following<String>) -> Result<FollowEvent<String>, Failure> {
    match within(CALLBACK_TIMEOUT, "the next followed event", following.next()).await? {
        Some(event) => event.context("Following"),
        None => Err("the following ended".to_string()),
    }
}

fn followed(position: &Position, text: &str) -> FollowEvent<String> {
    FollowEvent::Message {
        position: position.clone(),
        message: text.to_string(),
    }
}

fn to_position(position: contract::Position) -> Position {
    Position::new(position.epoch, position.offset)
}

/// A follower through a relay, reconnecting by itself: the relay cuts it while two messages
/// are published; it resumes with exactly those, then the live ones.
async fn follow_across_a_reconnect(target: &Target, pair: Pair) -> Result<(), Failure> {
    let group = format!("durable-{}-{}-follow", target.run_id, pair.label().replace('/', "-"));
    let relay = Relay::start(upstream_address(&target.base_url)?).await?;
    let follower = HubConnectionBuilder::new(format!("http://{}/broadcast", relay.address))
        .transports([pair.transport])
        .protocol(pair.protocol)
        .automatic_reconnect_with(|_: &RetryContext<'_>| Some(Duration::from_millis(100)))
        .build()
        .context("building the connection")?;
    follower.start().await.context("start")?;
    let publisher = connect(target, pair).await?;
    let hub = BroadcastHubProxy::new(&publisher);
    let mut following = follow(&follower, &group);
    let FollowEvent::Subscribed {
        recovered: true,
        position,
    } = next_event(&mut following).await?
    else {
        return Err("the first event was not a recovered header".into());
    };
    expect_eq("the first header's offset", position.offset, 0)?;
    let first = to_position(hub.publish(group.clone(), "m1".into()).await.context("Publish")?);
    expect_eq(
        "the first message",
        next_event(&mut following).await?,
        followed(&first, "m1"),
    )?;

    relay.cut_and_hold();
    let mut missed = Vec::new();
    for text in ["m2", "m3"] {
        let position = to_position(hub.publish(group.clone(), text.into()).await.context("Publish")?);
        missed.push(followed(&position, text));
    }
    tokio::time::sleep(GAP).await;
    relay.release();
    // A new connection resubscribes (a header, then the missed messages); a long-polling
    // connection may outlive the cut (its next poll goes on with the same stream), and then the
    // missed messages simply follow. Either way: each once, in order, nothing else.
    let header = FollowEvent::Subscribed {
        recovered: true,
        position: Position::new(first.epoch.clone(), 3),
    };
    let mut event = next_event(&mut following).await?;
    if matches!(event, FollowEvent::Subscribed { .. }) {
        expect_eq("the header after the reconnect", event, header)?;
        event = next_event(&mut following).await?;
    }
    let mut missed = missed.into_iter();
    if let Some(expected) = missed.next() {
        expect_eq("the first missed message", event, expected)?;
    }
    for expected in missed {
        expect_eq("a missed message", next_event(&mut following).await?, expected)?;
    }
    let live = to_position(hub.publish(group.clone(), "m4".into()).await.context("Publish")?);
    expect_eq(
        "the live message",
        next_event(&mut following).await?,
        followed(&live, "m4"),
    )?;
    drop(following);
    for connection in [publisher, follower] {
        let _ = tokio::time::timeout(CALLBACK_TIMEOUT, connection.stop()).await;
    }
    Ok(())
}

/// Resuming from a position of an epoch the group never had: not recovered, nothing stale,
/// then the live messages.
async fn follow_from_a_lost_position(target: &Target, pair: Pair) -> Result<(), Failure> {
    let group = format!("durable-{}-{}-lost", target.run_id, pair.label().replace('/', "-"));
    let connection = connect(target, pair).await?;
    let hub = BroadcastHubProxy::new(&connection);
    let current = to_position(hub.publish(group.clone(), "old".into()).await.context("Publish")?);
    let mut following = follow(&connection, &group).resume_from(Position::new("no such epoch", 1));
    let header = FollowEvent::Subscribed {
        recovered: false,
        position: current.clone(),
    };
    expect_eq("the header", next_event(&mut following).await?, header)?;
    let live = to_position(hub.publish(group.clone(), "new".into()).await.context("Publish")?);
    expect_eq(
        "the next message",
        next_event(&mut following).await?,
        followed(&live, "new"),
    )?;
    drop(following);
    let _ = tokio::time::timeout(CALLBACK_TIMEOUT, connection.stop()).await;
    Ok(())
}

pub async fn run(report: &mut Report, target: &Target, pair: Pair) {
    report
        .check(
            pair,
            "BroadcastHub Publish + Subscribe from a position",
            resume(target, pair),
        )
        .await;
    report
        .check(
            pair,
            "hub-client Following resumes by itself after a lost connection",
            follow_across_a_reconnect(target, pair),
        )
        .await;
    report
        .check(
            pair,
            "hub-client Following from a lost position: not recovered, nothing stale",
            follow_from_a_lost_position(target, pair),
        )
        .await;
}
