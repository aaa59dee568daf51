//! Who may use an endpoint: the authenticator (and the hub's requirements) for every
//! request, the same user for every request of one connection, and the origin of browser
//! WebSockets and event streams.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use http::StatusCode;
use warp::reply::Response;

use super::request::{text, Request};
use super::{Endpoint, ServerInner};
use crate::auth::{self, Identity};
use crate::connection::{ConnectionShared, RequestContext};

/// 401 with an empty body: the official clients then show the reason phrase (`Unauthorized`).
fn unauthorized() -> Response {
    text(StatusCode::UNAUTHORIZED, "")
}

/// 403 with an empty body: authenticated, but the hub's `#[hub(authorize ...)]` says no.
fn forbidden() -> Response {
    text(StatusCode::FORBIDDEN, "")
}

/// Runs the endpoint's authenticator, then the hub's `#[hub(authorize ...)]` requirements:
/// a refusal or a missing identity where one is required is 401, an identity that falls
/// short is 403.
/// An authenticator or a requirement's policy that panics (user code) costs its request a
/// 500 (logged); the server goes on.
pub(super) async fn authenticate(
    endpoint: &Endpoint,
    context: &RequestContext,
) -> Result<Option<Arc<Identity>>, Response> {
    let attempt = match std::panic::catch_unwind(AssertUnwindSafe(|| endpoint.authenticator.authenticate(context))) {
        Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    let outcome = attempt.map_err(|panic| {
        tracing::error!(path = %endpoint.path, panic = panic_message(&*panic), "the authenticator panicked");
        text(StatusCode::INTERNAL_SERVER_ERROR, "")
    })?;
    let identity = match outcome {
        Ok(identity) => identity,
        Err(e) => {
            tracing::debug!(path = %endpoint.path, reason = %e.reason, "request refused by the authenticator");
            return Err(unauthorized());
        }
    };
    let authorized = std::panic::catch_unwind(AssertUnwindSafe(|| {
        auth::authorized(endpoint.authorize, identity.as_ref())
    }))
    .map_err(|panic| {
        tracing::error!(path = %endpoint.path, panic = panic_message(&*panic), "the hub's authorization policy panicked");
        text(StatusCode::INTERNAL_SERVER_ERROR, "")
    })?;
    if !authorized {
        return Err(match identity {
            None => {
                tracing::debug!(path = %endpoint.path, "request refused: the hub requires an authenticated user");
                unauthorized()
            }
            Some(_) => {
                tracing::debug!(path = %endpoint.path, "request refused: the user does not meet the hub's requirements");
                forbidden()
            }
        });
    }
    Ok(identity.map(Arc::new))
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not text)")
}

/// Authenticates a request on an existing connection, which must come from the user who
/// negotiated it (and started its transport): another user is 403, no identity where the
/// connection has one is 401. The connection's token alone does not let another user in.
pub(super) async fn authenticate_same_user(
    endpoint: &Endpoint,
    shared: &ConnectionShared,
    context: &RequestContext,
) -> Result<Option<Arc<Identity>>, Response> {
    let identity = authenticate(endpoint, context).await?;
    let owner = shared.lock().identity.clone();
    let Some(owner) = owner else {
        return Ok(identity);
    };
    match &identity {
        None => {
            tracing::debug!(connection = %shared.id, "request without the identity its connection has");
            Err(unauthorized())
        }
        Some(who) if who.user_id() != owner.user_id() => {
            tracing::warn!(connection = %shared.id, "request from another user than the connection's");
            Err(forbidden())
        }
        Some(_) => Ok(identity),
    }
}

/// Browsers send `Origin` on WebSocket upgrades and event streams, which CORS does not
/// protect (any page may open them). A cross-origin one is refused (403) unless the CORS
/// allow list names its origin; same-origin requests, and clients that send no `Origin`
/// (not browsers), pass.
pub(super) fn cross_origin_refused(inner: &ServerInner, endpoint: &Endpoint, request: &Request) -> Option<Response> {
    let origin = request.headers.get(http::header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or_default();
    if same_origin(origin, request.authority.as_deref()) || inner.cors.as_ref().is_some_and(|c| c.allows(origin)) {
        return None;
    }
    tracing::debug!(path = %endpoint.path, %origin, "cross-origin request refused");
    Some(text(StatusCode::FORBIDDEN, "Origin not allowed."))
}

/// Whether `origin` (`scheme://host[:port]`) names the host and port the request was sent to
/// (a missing port is the scheme's default).
fn same_origin(origin: &str, authority: Option<&str>) -> bool {
    let (Some((scheme, rest)), Some(authority)) = (origin.split_once("://"), authority) else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return false,
    };
    let (Ok(origin), Ok(target)) = (
        rest.parse::<http::uri::Authority>(),
        authority.parse::<http::uri::Authority>(),
    ) else {
        return false;
    };
    origin.host().eq_ignore_ascii_case(target.host())
        && origin.port_u16().unwrap_or(default_port) == target.port_u16().unwrap_or(default_port)
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn origins() {
        assert!(same_origin("http://localhost:5000", Some("localhost:5000")));
        assert!(same_origin("HTTPS://Example.com", Some("example.com")));
        assert!(same_origin("https://example.com", Some("example.com:443")));
        assert!(same_origin("http://[::1]:80", Some("[::1]")));
        assert!(!same_origin("http://localhost:5001", Some("localhost:5000")));
        assert!(!same_origin("https://example.com", Some("example.com:80")));
        assert!(!same_origin("http://evil.example", Some("example.com")));
        assert!(!same_origin("null", Some("example.com")));
        assert!(!same_origin("http://example.com", None));
    }
}
