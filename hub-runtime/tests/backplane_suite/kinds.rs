//! The backplanes under test. Adding one: a [`Kind`] here, and one `suite!` line in
//! `backplane_suite.rs`.

use std::time::Duration;

use hub_runtime::backplane::{InMemoryBackplane, RedisBackplane, RedisOptions};

use crate::common::{brokers, within};
use crate::fleet::Kind;

/// The timeouts the backplanes get in the suite (group acknowledgements, broker answers).
pub const SHORT: Duration = Duration::from_secs(1);

/// The default backplane: a fleet of one.
pub struct InMemory;

impl Kind for InMemory {
    const DISTRIBUTED: bool = false;
    type Broker = ();
    type Backplane = InMemoryBackplane;

    async fn start_broker() -> Option<()> {
        Some(())
    }

    async fn backplane(_: &()) -> InMemoryBackplane {
        InMemoryBackplane
    }
}

pub struct Redis;

impl Kind for Redis {
    const DISTRIBUTED: bool = true;
    type Broker = brokers::Redis;
    type Backplane = RedisBackplane;

    async fn start_broker() -> Option<brokers::Redis> {
        brokers::Redis::start().await
    }

    async fn backplane(broker: &brokers::Redis) -> RedisBackplane {
        let options = RedisOptions {
            group_ack_timeout: SHORT,
            connect_timeout: SHORT,
            response_timeout: SHORT,
            ..Default::default()
        };
        within("connect to Redis", RedisBackplane::connect_with(&broker.url, options))
            .await
            .expect("the Redis backplane")
    }

    fn pending_client_results(backplane: &RedisBackplane) -> Option<usize> {
        Some(backplane.pending_client_results())
    }

    async fn stop_broker(broker: &mut brokers::Redis) {
        broker.stop().await
    }

    async fn restart_broker(broker: &mut brokers::Redis) {
        broker.restart().await
    }
}

// postgres: added at merge (`PostgresBackplane::connect(&broker.url)`, broker `brokers::Postgres`).
// nats: added at merge (`NatsBackplane::connect(&broker.url)`, broker `brokers::Nats`).
