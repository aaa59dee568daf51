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

#[cfg(feature = "postgres")]
pub struct Postgres;

#[cfg(feature = "postgres")]
impl Kind for Postgres {
    const DISTRIBUTED: bool = true;
    type Broker = brokers::Postgres;
    type Backplane = hub_runtime::backplane::PostgresBackplane;

    async fn start_broker() -> Option<brokers::Postgres> {
        brokers::Postgres::start().await
    }

    async fn backplane(broker: &brokers::Postgres) -> hub_runtime::backplane::PostgresBackplane {
        use hub_runtime::backplane::{PostgresBackplane, PostgresOptions};
        let options = PostgresOptions {
            group_ack_timeout: SHORT,
            owner_timeout: Duration::from_millis(500),
            connect_timeout: SHORT,
            response_timeout: SHORT,
            ..Default::default()
        };
        within(
            "connect to PostgreSQL",
            PostgresBackplane::connect_with(&broker.url, options),
        )
        .await
        .expect("the PostgreSQL backplane")
    }

    fn pending_client_results(backplane: &hub_runtime::backplane::PostgresBackplane) -> Option<usize> {
        Some(backplane.pending_client_results())
    }

    async fn stop_broker(broker: &mut brokers::Postgres) {
        broker.stop().await
    }

    async fn restart_broker(broker: &mut brokers::Postgres) {
        broker.restart().await
    }
}

#[cfg(feature = "nats")]
pub struct Nats;

#[cfg(feature = "nats")]
impl Kind for Nats {
    const DISTRIBUTED: bool = true;
    type Broker = brokers::Nats;
    type Backplane = hub_runtime::backplane::NatsBackplane;

    async fn start_broker() -> Option<brokers::Nats> {
        brokers::Nats::start().await
    }

    async fn backplane(broker: &brokers::Nats) -> hub_runtime::backplane::NatsBackplane {
        use hub_runtime::backplane::{NatsBackplane, NatsOptions};
        let options = NatsOptions {
            group_ack_timeout: SHORT,
            connect_timeout: SHORT,
            response_timeout: SHORT,
            ..Default::default()
        };
        within("connect to NATS", NatsBackplane::connect_with(&broker.url, options))
            .await
            .expect("the NATS backplane")
    }

    fn pending_client_results(backplane: &hub_runtime::backplane::NatsBackplane) -> Option<usize> {
        Some(backplane.pending_client_results())
    }

    async fn stop_broker(broker: &mut brokers::Nats) {
        broker.stop().await
    }

    async fn restart_broker(broker: &mut brokers::Nats) {
        broker.restart().await
    }
}
