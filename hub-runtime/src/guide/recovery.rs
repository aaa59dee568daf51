//! # Durable groups: catching up after a lost connection
//!
//! A plain group message reaches the connections in the group at that moment. A client whose
//! connection drops for a few seconds (a train tunnel, a laptop lid, a deploy) misses what was
//! sent meanwhile. For groups where that matters, hub keeps a **history**: the last messages,
//! each with a position, so that a returning client asks for what came after its last position
//! and gets exactly that, then the live messages, with no gap and no duplicate at the seam.
//!
//! ## Opting groups in
//!
//! History is per hub and per group name, set at run time on the hub's endpoint with a
//! [`HistoryRule`](crate::history::HistoryRule): which groups (a prefix, an exact name, or all),
//! how many messages each keeps, and for how long. The store is set once for the server: in
//! memory by default (one server; lost when it stops), or `RedisHistory` (feature `redis`),
//! `PostgresHistory` (feature `postgres`) or `NatsHistory` (feature `nats`, on JetStream), which
//! every server of a fleet shares and which outlive any of them.
//!
//! ```no_run
//! use std::time::Duration;
//! use hub_runtime::history::{HistoryEvent, HistoryRule, Position};
//! use hub_runtime::prelude::*;
//! use hub_runtime::EndpointOptions;
//!
//! struct Feed;
//!
//! #[hub]
//! impl Feed {
//!     /// Appends to the group's history and reaches its subscribers on every server.
//!     async fn publish(&self, cx: &HubContext<Self>, group: String, text: String) -> Result<Position, HubError> {
//!         Ok(cx.history.publish(&group, &text).await?)
//!     }
//!
//!     /// A header, what was missed since `from`, then each new message.
//!     async fn subscribe(
//!         &self,
//!         cx: &HubContext<Self>,
//!         group: String,
//!         from: Option<Position>,
//!     ) -> Result<impl Stream<Item = Result<HistoryEvent<String>, hub_runtime::history::HistoryError>>, HubError> {
//!         Ok(cx.history.subscribe::<String>(&group, from).await?)
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let durable = HistoryRule::prefix("durable-").max_len(1000).ttl(Duration::from_secs(300));
//! let server = HubServer::builder()
//!     // .history(RedisHistory::connect("redis://127.0.0.1:6379").await?) with feature `redis`
//!     .hub_with("/feed", Feed, EndpointOptions::new().history(durable))
//!     .build();
//! server.serve("127.0.0.1:5000").await
//! # }
//! ```
//!
//! ## Positions and epochs
//!
//! A [`Position`](crate::history::Position) is `{"Epoch": "…", "Offset": n}`. The offset counts a
//! group's messages from 1 without gaps, even with several servers publishing at once: the
//! store numbers and delivers in one atomic step (one Lua script on Redis, one transaction on
//! PostgreSQL, a compare-and-set publish to a JetStream stream that republishes what it stored
//! on NATS). The epoch names one unbroken history; when the stored history is lost (the group sat
//! idle past its TTL, Redis restarted empty, the JetStream stream was deleted) the next message
//! starts a new epoch at offset 1.
//!
//! The stream of `subscribe` starts with a header `{"Recovered", "Epoch", "Offset"}` naming the
//! current position. `Recovered: true` means every message after the asked position follows
//! (with no position asked, it is always true and only live messages follow). `Recovered: false`
//! means history no longer covers the gap (the messages were evicted past the maximum length or
//! expired past the TTL, or the epoch is unknown): nothing stale follows, and the application
//! decides what to do (reload a page of state, tell the user). Then each message comes as
//! `{"Offset", "Message"}`. If the epoch changes while the stream is open, a new header with
//! `Recovered: false` comes first. `cx.history.last(group, n)` reads the latest messages, for a
//! first page. Outside hub methods (a background job, a web handler), the hub's
//! [`HubHandle`](crate::HubHandle) has the same `history`.
//!
//! ## The client side (the official JavaScript client)
//!
//! The client keeps the last position it saw, and subscribes with it whenever it (re)connects:
//!
//! ```js
//! let last = null; // e.g. kept in sessionStorage
//! function follow(connection, group) {
//!   connection.stream("Subscribe", group, last).subscribe({
//!     next(item) {
//!       if ("Recovered" in item) {
//!         if (!item.Recovered) showGap();          // missed messages are gone
//!         if (!item.Recovered || last === null || last.Epoch !== item.Epoch) {
//!           last = { Epoch: item.Epoch, Offset: item.Offset };
//!         }
//!       } else {
//!         show(item.Message);
//!         last = { Epoch: last.Epoch, Offset: item.Offset };
//!       }
//!     },
//!     error(err) { /* the connection ended: follow again once reconnected */ },
//!     complete() {},
//!   });
//! }
//! connection.onreconnected(() => follow(connection, "durable-news"));
//! ```
//!
//! Resuming does not depend on stateful reconnect or on reaching the same server: any server of
//! the fleet answers from the shared store. `examples/js/interop/recovery.test.mjs` runs this
//! pattern against the interop server.
//!
//! ## The client side (the Rust client)
//!
//! `hub-client` does all of the above by itself: `connection.follow::<String>("Subscribe",
//! "durable-news")` is a stream of `FollowEvent`s (`Message { position, message }`, and
//! `Subscribed { recovered, position }` each time the server's stream starts). It keeps the
//! last position, and after every automatic reconnect, to this server or another, it calls the
//! stream again from there; `Following::new` does the same over a typed proxy's method, and
//! `resume_from` starts from a position the app saved.
