//! `hub-bench hub-server`: the hub server of the feature-cost scenarios (`--scenario presence`
//! and `--scenario history`), a separate process the harness starts on loopback, joined to
//! the round's private redis-server as a backplane, with presence in Redis (`RedisPresence`)
//! and history in Redis (`RedisHistory`).
//!
//! Two hubs whose methods are the same code, differing only in what is measured:
//! - `/presence`: `#[hub(presence(joined = "Joined", left = "Left"))]`;
//! - `/presence-quiet`: `#[hub(presence)]` (members and online users, no events);
//! - `/plain`: no presence. It also has the history methods: `Publish` to a `durable-*` group
//!   (a [`HistoryRule`] covers those) with `Subscribe`, and `SendToGroup` to any group.
//!
//! A connection's user is its `user` query parameter, as in the interop example.

use std::net::SocketAddr;
use std::time::Duration;

use hub_runtime::backplane::RedisBackplane;
use hub_runtime::history::{HistoryError, HistoryEvent, HistoryRule, RedisHistory};
use hub_runtime::prelude::*;
use hub_runtime::presence::{RedisPresence, RedisPresenceOptions};
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};

/// The prefix of the groups that keep a history.
pub const DURABLE_PREFIX: &str = "durable-";

#[hub_client]
trait BenchClient {
    fn receive(&self, message: String);
    /// A user's first connection joined the group.
    fn joined(&self, group: String, user: String);
    /// A user's last connection left the group.
    fn left(&self, group: String, user: String);
}

/// The hub with presence: join and leave events, members in Redis.
struct PresenceHub;

#[hub(client = BenchClient, presence(joined = "Joined", left = "Left"))]
impl PresenceHub {
    async fn join_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }
}

/// The hub with presence but no events: members and online users in Redis only.
struct QuietPresenceHub;

#[hub(client = BenchClient, presence)]
impl QuietPresenceHub {
    async fn join_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }
}

/// The same hub without presence, plus the history methods.
struct PlainHub;

#[hub(client = BenchClient)]
impl PlainHub {
    async fn join_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.add(cx.connection_id(), &group).await?)
    }

    async fn leave_group(&self, cx: &HubContext<Self>, group: String) -> Result<(), HubError> {
        Ok(cx.groups.remove(cx.connection_id(), &group).await?)
    }

    /// The plain fan-out: every connection of the group gets `Receive(message)`.
    async fn send_to_group(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<(), HubError> {
        Ok(cx.clients.group(group).receive(message).await?)
    }

    /// The durable fan-out: appends to the group's history and delivers to its `Subscribe`
    /// streams; returns the new offset.
    async fn publish(&self, cx: &HubContext<Self>, group: String, message: String) -> Result<i64, HubError> {
        Ok(cx.history.publish(&group, &message).await?.offset)
    }

    /// The group's messages from now on, as a stream of their texts (the header is dropped).
    async fn subscribe(
        &self,
        cx: &HubContext<Self>,
        group: String,
    ) -> Result<impl Stream<Item = Result<String, HistoryError>>, HubError> {
        let events = cx.history.subscribe::<String>(&group, None).await?;
        Ok(events.filter_map(|event| async move {
            match event {
                Ok(HistoryEvent::Item(item)) => Some(Ok(item.message)),
                Ok(HistoryEvent::Header(_)) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }
}

/// The `user` query parameter.
fn user_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}

/// Runs the server until SIGTERM or Ctrl-C: `--addr H:P --redis URL`.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut redis = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--redis" => redis = Some(value()?),
            other => return Err(format!("hub-server: unknown argument '{other}'")),
        }
    }
    let redis = redis.ok_or("hub-server: --redis URL is required")?;
    // The hub's usual runtime shape: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(addr, &redis))
}

async fn serve(addr: SocketAddr, redis: &str) -> Result<(), String> {
    let server = build(redis).await?;
    let (listener, bound) = hub_runtime::server::bind(addr).await.map_err(|e| e.to_string())?;
    println!("listening on http://{bound}");
    let routes = server.filter();
    server
        .serve_with(listener, routes, hub_runtime::server::shutdown_signal())
        .await;
    Ok(())
}

/// The server with both hubs, joined to Redis at `redis` (backplane, presence, history).
pub async fn build(redis: &str) -> Result<HubServer, String> {
    let backplane = RedisBackplane::connect(redis)
        .await
        .map_err(|e| format!("backplane: {e}"))?;
    let presence = RedisPresence::connect_with(
        redis,
        RedisPresenceOptions {
            ttl: Duration::from_secs(30),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("presence: {e}"))?;
    let history = RedisHistory::connect(redis)
        .await
        .map_err(|e| format!("history: {e}"))?;
    let durable = HistoryRule::prefix(DURABLE_PREFIX)
        .max_len(1000)
        .ttl(Duration::from_secs(300));
    Ok(HubServer::builder()
        .backplane(backplane)
        .presence(presence)
        .history(history)
        .hub_with(
            "/presence",
            PresenceHub,
            EndpointOptions::new().authenticator(user_from_query),
        )
        .hub_with(
            "/presence-quiet",
            QuietPresenceHub,
            EndpointOptions::new().authenticator(user_from_query),
        )
        .hub_with(
            "/plain",
            PlainHub,
            EndpointOptions::new().authenticator(user_from_query).history(durable),
        )
        .build())
}
