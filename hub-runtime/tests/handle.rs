//! `HubHandle` outside hub methods: aborting a connection by id, the local connections of a
//! user, whether a connection is local. Real clients on one in-process server.

mod common;

use std::sync::{Arc, Mutex};

use common::TestServer;
use hub_runtime::hub::Abort;
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, ConnectionError, EndpointOptions, Identity, RequestContext};
use serde_json::json;

struct Desk {
    disconnected: Arc<Mutex<Vec<String>>>,
}

#[hub]
impl Desk {
    fn echo(&self, message: String) -> String {
        message
    }

    #[hub(on_disconnected)]
    fn gone(&self, cx: &HubContext<Self>, error: Option<ConnectionError>) {
        let why = error.map(|e| e.message().to_string()).unwrap_or_else(|| "none".into());
        self.disconnected
            .lock()
            .unwrap()
            .push(format!("{} {why}", cx.connection_id()));
    }
}

fn user_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}

async fn server() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let disconnected = Arc::new(Mutex::new(Vec::new()));
    let desk = Desk {
        disconnected: disconnected.clone(),
    };
    let endpoint = EndpointOptions::new().authenticator(user_from_query);
    let server = TestServer::start(HubServer::builder().hub_with("/desk", desk, endpoint).build()).await;
    (server, disconnected)
}

#[tokio::test]
async fn aborting_a_connection_closes_it_like_the_hub_context_does() {
    let (server, disconnected) = server().await;
    let handle = server.server.handle::<Desk>().expect("Desk is mapped");
    let mut doomed = server.connect("/desk").await;
    let mut other = server.connect("/desk").await;
    let id = doomed.connection_id.clone().unwrap();
    assert_eq!(server.server.connection_count(), 2);

    assert_eq!(handle.abort(&id), Abort::Closing);
    // The client gets a Close message without reconnect, then the socket ends.
    assert_eq!(doomed.expect_close_message().await, json!({"type": 7}));
    common::eventually("the connection is counted out", || {
        server.server.connection_count() == 1
    })
    .await;
    common::eventually("on_disconnected ran", || {
        disconnected.lock().unwrap().contains(&format!("{id} none"))
    })
    .await;
    assert!(!handle.is_local(&id));
    // Gone now, and never known: nothing to abort.
    assert_eq!(handle.abort(&id), Abort::NotLocal);
    assert_eq!(handle.abort("no-such-connection"), Abort::NotLocal);
    // The other connection is untouched.
    assert_eq!(other.call_ok("Echo", json!(["still here"])).await, json!("still here"));
}

#[tokio::test]
async fn local_connections_of_users_and_whether_a_connection_is_local() {
    let (server, _) = server().await;
    let handle = server.server.handle::<Desk>().expect("Desk is mapped");
    let ann1 = server.connect_with_query("/desk", "user=ann").await;
    let ann2 = server.connect_with_query("/desk", "user=ann").await;
    let bob = server.connect_with_query("/desk", "user=bob").await;
    let anonymous = server.connect("/desk").await;
    let id = |c: &common::Client| c.connection_id.clone().unwrap();

    let mut ann = vec![id(&ann1), id(&ann2)];
    ann.sort();
    assert_eq!(handle.local_user_connections("ann"), ann);
    assert_eq!(handle.local_user_connections("bob"), vec![id(&bob)]);
    assert!(handle.local_user_connections("carol").is_empty());
    for client in [&ann1, &ann2, &bob, &anonymous] {
        assert!(handle.is_local(&id(client)));
    }
    assert!(!handle.is_local("no-such-connection"));
    // The connection token is not a connection id.
    assert!(!handle.is_local(ann1.connection_token.as_deref().unwrap()));

    // A user's connection that leaves is no longer listed, nor local.
    let left = id(&ann1);
    ann1.close().await;
    common::eventually("ann's first connection leaves", || !handle.is_local(&left)).await;
    assert_eq!(handle.local_user_connections("ann"), vec![id(&ann2)]);

    // Aborting every connection of a user leaves the others.
    for connection in handle.local_user_connections("bob") {
        assert_eq!(handle.abort(&connection), Abort::Closing);
    }
    common::eventually("bob is signed out", || handle.local_user_connections("bob").is_empty()).await;
    assert!(handle.is_local(&id(&ann2)) && handle.is_local(&id(&anonymous)));
}
