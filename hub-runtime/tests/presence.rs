//! Presence across servers on one real `redis-server` (tests/common/brokers.rs starts one per
//! test): the shared cases (`presence_support/cases.rs`) on `RedisPresence`.

#[path = "presence_support/cases.rs"]
mod cases;
mod common;
mod presence_support;

use std::time::Duration;

use cases::{Detached, Fleet};
use common::brokers::Redis;
use common::{within, TestServer};
use hub_runtime::backplane::{RedisBackplane, RedisOptions};
use hub_runtime::presence::{RedisPresence, RedisPresenceOptions};
use hub_runtime::HubServer;
use presence_support::with_rooms;

struct RedisFleet {
    redis: Redis,
}

async fn store(url: &str, ttl: Duration) -> RedisPresence {
    let options = RedisPresenceOptions {
        ttl,
        ..Default::default()
    };
    within("connect the presence store", RedisPresence::connect_with(url, options))
        .await
        .expect("a presence store")
}

async fn start(url: &str, presence: RedisPresence) -> TestServer {
    let options = RedisOptions {
        group_ack_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let backplane = within("connect the backplane", RedisBackplane::connect_with(url, options))
        .await
        .expect("a backplane");
    TestServer::start(with_rooms(HubServer::builder().backplane(backplane).presence(presence))).await
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    within("connect to redis", client.get_multiplexed_async_connection())
        .await
        .unwrap()
}

impl Fleet for RedisFleet {
    type Store = RedisPresence;

    async fn store(&self, ttl: Duration) -> RedisPresence {
        store(&self.redis.url, ttl).await
    }

    async fn start(&self, presence: RedisPresence) -> TestServer {
        start(&self.redis.url, presence).await
    }

    fn detached(&self) -> Detached {
        let url = self.redis.url.clone();
        Box::new(move || Box::pin(async move { start(&url, store(&url, cases::TTL).await).await }))
    }

    fn server_name(store: &RedisPresence) -> String {
        store.server_name().to_string()
    }

    async fn info_users(&self) -> Vec<String> {
        let mut connection = connection(&self.redis.url).await;
        let keys: Vec<String> = within(
            "KEYS",
            redis::cmd("KEYS")
                .arg("hub:presence:*:gi:room")
                .query_async(&mut connection),
        )
        .await
        .unwrap();
        let mut users = Vec::new();
        for key in keys {
            let mut found: Vec<String> = within("HKEYS", redis::cmd("HKEYS").arg(key).query_async(&mut connection))
                .await
                .unwrap();
            users.append(&mut found);
        }
        users
    }

    async fn leaseholders(&self) -> Vec<String> {
        let mut connection = connection(&self.redis.url).await;
        within(
            "ZRANGE",
            redis::cmd("ZRANGE")
                .arg("hub:presence:servers")
                .arg(0)
                .arg(-1)
                .query_async(&mut connection),
        )
        .await
        .unwrap()
    }

    async fn end_lease(&self, server: &str) {
        let mut connection = connection(&self.redis.url).await;
        let _: i64 = within(
            "ZADD",
            redis::cmd("ZADD")
                .arg("hub:presence:servers")
                .arg(0)
                .arg(server)
                .query_async(&mut connection),
        )
        .await
        .unwrap();
    }

    async fn end_lease_and_sweep(&self, server: &str) -> Vec<String> {
        let mut connection = connection(&self.redis.url).await;
        let (swept,): (Vec<String>,) = within(
            "ZADD and sweep",
            redis::pipe()
                .atomic()
                .cmd("ZADD")
                .arg("hub:presence:servers")
                .arg(0)
                .arg(server)
                .ignore()
                .cmd("EVAL")
                .arg(include_str!("../src/presence/redis/sweep.lua"))
                .arg(1)
                .arg("hub:presence:servers")
                .arg("hub:presence:")
                .arg(16)
                .query_async(&mut connection),
        )
        .await
        .unwrap();
        swept
    }
}

macro_rules! case {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let Some(redis) = Redis::start().await else { return };
            cases::$name(&RedisFleet { redis }).await;
        }
    };
}

case!(members_and_online_users_are_seen_from_every_server);
case!(a_user_on_two_servers_joins_once_and_leaves_once);
case!(first_connections_joining_on_two_servers_at_once_make_one_joined);
case!(the_store_decides_first_and_last_atomically);
case!(presence_info_is_seen_from_every_server);
case!(the_members_of_a_dead_server_leave_within_the_ttl_once);
case!(a_stopped_server_stops_renewing_its_lease);
case!(a_server_swept_while_alive_writes_its_entries_again);
case!(the_users_of_a_server_swept_while_alive_leave_and_come_back);
