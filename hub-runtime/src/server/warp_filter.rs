//! The server as a warp [`Filter`]: reads what the handlers need of a request with warp's
//! extractors and answers through [`routes::respond`](super::routes::respond).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use super::request::{Body, PeerAddr, Request};
use super::routes::{self, Resolved};
use super::ServerInner;

/// The request body as a stream of `Bytes`.
fn body_stream() -> impl Filter<Extract = (Body,), Error = warp::Rejection> + Clone {
    fn boxed<S, B>(stream: S) -> Body
    where
        S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: warp::Buf,
    {
        Box::pin(stream.map(|chunk| {
            chunk
                .map(|mut buf| {
                    let len = buf.remaining();
                    buf.copy_to_bytes(len)
                })
                .map_err(Into::into)
        }))
    }
    warp::body::stream().map(boxed)
}

/// The peer's address: warp's own server records it one way, the built-in server (and
/// anyone else) as a [`PeerAddr`] extension.
fn peer() -> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Clone {
    warp::addr::remote()
        .and(warp::ext::optional::<PeerAddr>())
        .map(|warp_addr: Option<SocketAddr>, ours: Option<PeerAddr>| ours.map(|PeerAddr(addr)| addr).or(warp_addr))
}

/// The server's routes as one filter. It matches what is left of the path after the filters
/// before it (`warp::path("api").and(server.filter())` serves a hub mapped at `/chat` under
/// `/api/chat`), and rejects paths it does not serve, so it composes with `.or(...)`.
pub(super) fn filter(inner: Arc<ServerInner>) -> BoxedFilter<(Response,)> {
    let routed = {
        let inner = inner.clone();
        warp::path::tail().and_then(move |tail: warp::path::Tail| {
            let found = routes::resolve(&inner, &format!("/{}", tail.as_str()));
            async move { found.ok_or_else(warp::reject::not_found) }
        })
    };
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let upgrade = warp::ext::optional::<hyper::upgrade::OnUpgrade>();
    routed
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(peer())
        .and(warp::host::optional())
        .and(upgrade)
        .and(body_stream())
        .then(
            move |resolved: Resolved,
                  method,
                  headers,
                  query,
                  remote,
                  authority: Option<warp::host::Authority>,
                  upgrade,
                  body| {
                let request = Request {
                    method,
                    headers,
                    query,
                    remote,
                    authority: authority.map(|a| a.as_str().to_owned()),
                    extensions: http::Extensions::new(),
                };
                routes::respond(inner.clone(), resolved, request, upgrade, body)
            },
        )
        .boxed()
}
