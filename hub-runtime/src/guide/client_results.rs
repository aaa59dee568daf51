//! # Client results
//!
//! Sometimes the server needs an answer from a client: "do you confirm?", "what is on your
//! screen?". A [`#[hub_client]`](macro@crate::hub_client) method with a return type is a client
//! result: calling it sends the question and awaits the client's answer.
//!
//! ```
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait AskClient {
//!     // The client answers with a bool.
//!     fn confirm(&self, question: String) -> bool;
//! }
//!
//! struct Orders;
//!
//! #[hub(client = AskClient)]
//! impl Orders {
//!     async fn delete_all(&self, cx: &HubContext<Self>) -> Result<String, HubError> {
//!         let sure = cx.clients.caller().confirm("Delete every order?".into()).await?;
//!         Ok(if sure { "deleted".into() } else { "kept".into() })
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! In JavaScript the client answers by returning a value from its handler:
//! `connection.on("Confirm", question => window.confirm(question))`.
//!
//! ## One connection only
//!
//! A question goes to exactly one connection: `caller()` or `client(id)`. Calling a client
//! result on `all()`, a group or a user does not compile, since there would be many answers.
//!
//! ## When there is no answer
//!
//! The call returns a [`ClientResultError`](crate::ClientResultError): the connection does not
//! exist or disconnected, the client answered with an error, the answer did not decode into the
//! return type, or no answer came within `HubOptions::client_result_timeout` (30 s by default).
//! `?` turns it into a [`HubError`](crate::HubError); match on it to handle each case.
//!
//! ```
//! use hub_runtime::prelude::*;
//! use hub_runtime::ClientResultError;
//!
//! #[hub_client]
//! trait AskClient {
//!     fn pick_colour(&self) -> String;
//! }
//!
//! struct Paint;
//!
//! #[hub(client = AskClient)]
//! impl Paint {
//!     async fn colour_of(&self, cx: &HubContext<Self>, id: String) -> Result<String, HubError> {
//!         match cx.clients.client(id).pick_colour().await {
//!             Ok(colour) => Ok(colour),
//!             Err(ClientResultError::Timeout) => Ok("white".into()),
//!             Err(other) => Err(other.into()),
//!         }
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! A client result may be awaited from inside a hub method of the very connection that is
//! asked (as above), from a background task through a [`HubHandle`](crate::HubHandle), and
//! across servers sharing a backplane.
