//! # Authentication and authorization
//!
//! Two steps decide what a client may do. An endpoint's **authenticator** looks at each HTTP
//! request and says who it belongs to, an [`Identity`](crate::Identity), or refuses it with 401.
//! Then `#[hub(authorize ...)]` on a hub or a method says which identities may connect or call.
//!
//! ## Authenticators
//!
//! Any function `Fn(&RequestContext) -> Result<Option<Identity>, AuthError>` is an
//! [`Authenticator`](crate::Authenticator). It sees negotiate and every transport request of
//! its endpoint. `Ok(None)` admits the request anonymously; `Err` refuses it. Attach it with
//! [`EndpointOptions`](crate::EndpointOptions) and `hub_with`.
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//! use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
//!
//! struct Desk;
//!
//! #[hub]
//! impl Desk {
//!     fn whoami(&self, cx: &HubContext<Self>) -> Option<String> {
//!         cx.user_id().map(str::to_owned)
//!     }
//! }
//!
//! // A toy: trusts whatever name the bearer token holds. Check a real token here.
//! fn by_token(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
//!     match request.bearer_token() {
//!         Some(name) if !name.is_empty() => Ok(Some(Identity::user(name).with_claim("role", "staff"))),
//!         Some(_) => Err(AuthError::new("empty token")),
//!         None => Ok(None),
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let endpoint = EndpointOptions::new().authenticator(by_token);
//!     HubServer::builder().hub_with("/desk", Desk, endpoint).build().serve("127.0.0.1:5000").await
//! }
//! ```
//!
//! `RequestContext::bearer_token` reads `Authorization: Bearer …` or, as browsers must send it
//! on WebSockets and Server-Sent Events, the `access_token` query parameter. The official
//! clients send it when you set `accessTokenFactory`.
//!
//! ## JSON Web Tokens
//!
//! With the `jwt` feature, `JwtAuthenticator` validates bearer tokens for you: HS256 with
//! `JwtAuthenticator::hs256(secret)`, RS256 with `rs256_pem`, and `issuer`, `audience` and
//! `leeway` to check more. The user id is the `nameid` claim, else `sub` (change it with
//! `user_id_claim`).
//!
//! ```no_run
//! # #[cfg(feature = "jwt")]
//! # fn main() {
//! use hub_runtime::prelude::*;
//! use hub_runtime::EndpointOptions;
//!
//! struct Desk;
//!
//! #[hub(authorize)]
//! impl Desk {}
//!
//! let jwt = JwtAuthenticator::hs256(b"a long random secret")
//!     .issuer("https://login.example.com")
//!     .audience("desk");
//! let server = HubServer::builder()
//!     .hub_with("/desk", Desk, EndpointOptions::new().authenticator(jwt))
//!     .build();
//! # let _ = server;
//! # }
//! # #[cfg(not(feature = "jwt"))]
//! # fn main() {}
//! ```
//!
//! ## Authorization
//!
//! `#[hub(authorize)]` on the `impl` requires an identity of every connection (401 otherwise).
//! On a method it guards that method only: a refused call gets an error, the connection stays.
//!
//! | attribute | requires |
//! |---|---|
//! | `authorize` | any identity |
//! | `authorize(role = "admin, owner")` | one of these roles |
//! | `authorize(claim = "scope")` | the claim, with any value |
//! | `authorize(claim = "scope", value = "write")` | the claim with that value |
//! | `authorize(policy = a_fn)` | `a_fn(&Identity)` returns `true` |
//!
//! Several `authorize(...)` in one attribute must all hold.
//!
//! ```
//! use hub_runtime::prelude::*;
//! use hub_runtime::Identity;
//!
//! fn is_staff(identity: &Identity) -> bool {
//!     identity.is_in_role("staff")
//! }
//!
//! struct Desk;
//!
//! #[hub]
//! impl Desk {
//!     fn open(&self) -> &'static str {
//!         "anyone may call this"
//!     }
//!
//!     #[hub(authorize(role = "admin"))]
//!     fn close(&self) {}
//!
//!     #[hub(authorize(claim = "scope", value = "write"), authorize(policy = is_staff))]
//!     fn edit(&self, text: String) -> String {
//!         text
//!     }
//! }
//! # fn main() {}
//! ```
