//! One conformance suite for every backplane: the same cases run on a fleet of servers on one
//! broker of each kind (`backplane_suite/kinds.rs`), with real servers on loopback ports and
//! real JSON and MessagePack clients: every send target, exactly-once per-sender order,
//! acknowledged group changes, client results, large messages, both protocols, and (for the
//! distributed kinds) a broker restart mid-traffic.
//!
//! The in-memory backplane is a fleet of one: every case but the restart runs on one server.
//! A missing broker skips its cases locally and fails them under `CI=true`.

mod common;
mod msgpack_client;

#[path = "backplane_suite/client_results.rs"]
mod client_results;
#[path = "backplane_suite/fleet.rs"]
mod fleet;
#[path = "backplane_suite/groups.rs"]
mod groups;
#[path = "backplane_suite/hub.rs"]
mod hub;
#[path = "backplane_suite/kinds.rs"]
mod kinds;
#[path = "backplane_suite/large.rs"]
mod large;
#[path = "backplane_suite/ordering.rs"]
mod ordering;
#[path = "backplane_suite/peer.rs"]
mod peer;
#[path = "backplane_suite/protocols.rs"]
mod protocols;
#[path = "backplane_suite/restart.rs"]
mod restart;
#[path = "backplane_suite/targets.rs"]
mod targets;

/// One case as a test of the kind: `case!(Kind, module::case)`.
macro_rules! case {
    ($kind:ty, $module:ident :: $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            crate::$module::$name::<$kind>().await
        }
    };
}

/// Every case for a backplane kind: `suite!(distributed: Kind)` for one whose servers share a
/// broker (adds the broker restart), `suite!(single: Kind)` for a fleet of one.
macro_rules! suite {
    (distributed: $kind:ty) => {
        suite!(single: $kind);
        case!($kind, restart::a_broker_restart_mid_traffic_loses_only_what_it_must);
    };
    (single: $kind:ty) => {
        case!($kind, targets::every_target_reaches_every_server);
        case!($kind, ordering::every_message_arrives_once_in_sender_order);
        case!($kind, groups::group_changes_are_acknowledged_across_servers);
        case!($kind, client_results::a_client_result_comes_back_across_servers);
        case!($kind, client_results::a_client_result_for_an_unknown_connection_fails);
        case!($kind, client_results::an_unanswered_client_result_times_out_and_leaves_nothing_pending);
        case!($kind, large::large_messages_cross_servers_intact);
        case!($kind, protocols::json_and_messagepack_clients_get_equal_content);
    };
}

mod in_memory {
    suite!(single: crate::kinds::InMemory);
}

mod redis {
    suite!(distributed: crate::kinds::Redis);
}

#[cfg(feature = "postgres")]
mod postgres {
    suite!(distributed: crate::kinds::Postgres);
}
#[cfg(feature = "nats")]
mod nats {
    suite!(distributed: crate::kinds::Nats);
}
