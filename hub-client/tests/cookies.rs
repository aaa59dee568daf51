//! Cookies: those negotiate sets come back on every transport's requests (an expired one
//! does not), beside the user's own.

mod common;

use common::{within, TestServer};
use hub_client::{HubConnectionBuilder, Protocol, TransportKind};
use hub_runtime::prelude::*;
use warp::Filter;

struct Plain;

#[hub]
impl Plain {
    fn cookie(&self, cx: &HubContext<Self>, name: String) -> Option<String> {
        cx.request().cookie(&name)
    }
}

/// The hubs, with negotiate answers setting `session=abc` and expiring `stale`.
async fn server() -> TestServer {
    TestServer::start_wrapped(HubServer::builder().hub("/hub", Plain).build(), |hubs| {
        warp::path::full()
            .and(hubs)
            .map(|path: warp::path::FullPath, mut response: warp::reply::Response| {
                if path.as_str().ends_with("/negotiate") {
                    let headers = response.headers_mut();
                    headers.append("set-cookie", "session=abc; Path=/; HttpOnly".parse().unwrap());
                    headers.append("set-cookie", "stale=; Max-Age=0".parse().unwrap());
                }
                response
            })
            .boxed()
    })
    .await
}

#[tokio::test]
async fn negotiate_cookies_and_the_users_own_reach_every_transport() {
    let server = server().await;
    let pairs = [
        (TransportKind::WebSockets, Protocol::Json),
        (TransportKind::ServerSentEvents, Protocol::Json),
        (TransportKind::LongPolling, Protocol::MessagePack),
    ];
    for (transport, protocol) in pairs {
        let connection = HubConnectionBuilder::new(server.url("/hub"))
            .transports([transport])
            .protocol(protocol)
            .cookie("mine", "1")
            .cookie("stale", "old")
            .build()
            .unwrap();
        within("start", connection.start()).await.unwrap();
        for (name, expected) in [("session", Some("abc")), ("mine", Some("1")), ("stale", None)] {
            let value: Option<String> = within("cookie", connection.invoke("Cookie", (name,))).await.unwrap();
            assert_eq!(value.as_deref(), expected, "{transport:?}: cookie {name}");
        }
        connection.stop().await;
    }
}
