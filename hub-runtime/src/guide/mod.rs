//! # The user guide
//!
//! A walk through hub for someone writing their first real-time server with it. Every example
//! in these chapters is compiled as a doc test, so what you read here builds against this
//! version of the crate. Read the chapters in this order:
//!
//! 1. [`hubs`]: a hub, its methods and what they take and return, the wire names clients call,
//!    and the hooks that run when a client connects or leaves.
//! 2. [`clients`]: calling methods on clients through typed proxies, groups and users.
//! 3. [`streaming`]: streams from the server to a client, and from a client to the server.
//! 4. [`client_results`]: asking one client a question and awaiting its answer.
//! 5. [`filters`]: middleware around every call: refusing, timing, logging, rewriting results.
//! 6. [`coming_from_aspnet`]: the ASP.NET Core SignalR names you know, and hub's name for each.
//! 7. [`auth`]: who a client is (authenticators, JSON Web Tokens) and what it may call.
//! 8. [`testing`]: serving a hub on a free port in a test and talking to it like a client.
//! 9. [`scale_out`]: several servers as one through a backplane (Redis), and what crosses them.
//! 10. [`recovery`]: durable groups: positions, and a client catching up after a lost
//!     connection with exactly what it missed.
//! 11. [`deploying`]: load balancers and sticky sessions, proxies, TLS, metrics, health, shutdown
//!     and the limits to set in production.
//! 12. [`hosting`]: the hubs inside axum, hyper, tower middleware or warp, under a prefix, with
//!     the application's own authentication, and the traps.
//! 13. [`typed_clients`]: one contract crate for the server, Rust clients (hub-client) and
//!     TypeScript, checked by the compiler on every side.
//!
//! The crate's front page ([`crate`]) has the shortest complete server and the list of
//! optional features.

pub mod auth;
pub mod client_results;
pub mod clients;
pub mod coming_from_aspnet;
pub mod deploying;
pub mod filters;
pub mod hosting;
pub mod hubs;
pub mod recovery;
pub mod scale_out;
pub mod streaming;
pub mod testing;
pub mod typed_clients;
