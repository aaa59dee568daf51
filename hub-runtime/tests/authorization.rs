//! `#[hub(authorize ...)]` over real sockets: method-level requirements answer a refused
//! invocation with a Completion error and keep the connection; hub-level requirements make the
//! endpoint refuse negotiate and transport requests (401 without an identity, 403 when the
//! identity falls short). Identities come from a query-string authenticator; the JWT
//! authenticator end to end (with the `jwt` feature).

mod common;

use common::{Events, TestServer};
#[cfg(feature = "jwt")]
use hub_runtime::auth::jsonwebtoken::{encode, get_current_timestamp, EncodingKey, Header};
use hub_runtime::prelude::*;
#[cfg(feature = "jwt")]
use hub_runtime::JwtAuthenticator;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use serde_json::json;

/// `?user=alice&role=admin&scope=write`: a user, with a claim for every `role` and `scope`.
fn from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    let Some(user) = request.query("user") else {
        return Ok(None);
    };
    let mut identity = Identity::user(user);
    for (kind, value) in request.query_pairs() {
        if kind == "role" || kind == "scope" {
            identity = identity.with_claim(kind.as_str(), value.as_str());
        }
    }
    Ok(Some(identity))
}

fn can_write(identity: &Identity) -> bool {
    identity.has_claim("scope", "write")
}

struct Guarded {
    events: Events,
}

#[hub]
impl Guarded {
    fn open(&self) -> &'static str {
        "open"
    }

    #[hub(authorize)]
    fn who_am_i(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.user_id().map(str::to_owned)
    }

    #[hub(authorize(role = "admin"))]
    fn admin(&self) -> &'static str {
        "admin"
    }

    #[hub(authorize(role = "admin, editor"))]
    fn edit(&self) -> &'static str {
        "edited"
    }

    #[hub(authorize(claim = "scope", value = "write"))]
    fn write(&self) -> &'static str {
        "written"
    }

    #[hub(authorize(claim = "scope"))]
    fn scoped(&self) -> &'static str {
        "scoped"
    }

    #[hub(authorize(policy = can_write))]
    fn by_policy(&self) -> &'static str {
        "policy"
    }

    #[hub(authorize(role = "admin"))]
    #[hub(authorize(policy = can_write))]
    fn admin_writer(&self) -> &'static str {
        "both"
    }

    #[hub(name = "Notify", authorize(role = "admin"))]
    fn notify(&self, message: String) {
        self.events.push(format!("notified {message}"));
    }

    #[hub(authorize(role = "admin"))]
    fn counted(&self) -> impl Stream<Item = i32> {
        futures_util::stream::iter([1, 2, 3])
    }
}

async fn guarded_server() -> (TestServer, Events) {
    let events = Events::default();
    let server = HubServer::builder()
        .hub_with(
            "/guarded",
            Guarded { events: events.clone() },
            EndpointOptions::new().authenticator(from_query),
        )
        .build();
    (TestServer::start(server).await, events)
}

const UNAUTHORIZED: &str = "because user is unauthorized";

fn refusal(method: &str) -> String {
    format!("Failed to invoke '{method}' {UNAUTHORIZED}")
}

#[tokio::test]
async fn anonymous_callers_are_refused_every_guarded_method_and_stay_connected() {
    let (server, _) = guarded_server().await;
    let mut client = server.connect("/guarded").await;
    for method in ["WhoAmI", "Admin", "Edit", "Write", "Scoped", "ByPolicy", "AdminWriter"] {
        assert_eq!(client.call_err(method, json!([])).await, refusal(method));
    }
    // The text quotes the target as the client sent it, with no trailing period.
    assert_eq!(client.call_err("admin", json!([])).await, refusal("admin"));
    // The connection stays and open methods still answer.
    assert_eq!(client.call_ok("Open", json!([])).await, "open");
    client.close().await;
}

#[tokio::test]
async fn each_requirement_admits_whom_it_names() {
    let (server, _) = guarded_server().await;

    let mut plain = server.connect_with_query("/guarded", "user=plain").await;
    assert_eq!(plain.call_ok("WhoAmI", json!([])).await, "plain");
    for method in ["Admin", "Edit", "Write", "Scoped", "ByPolicy", "AdminWriter"] {
        assert_eq!(plain.call_err(method, json!([])).await, refusal(method));
    }

    let mut editor = server
        .connect_with_query("/guarded", "user=ed&role=editor&scope=read")
        .await;
    assert_eq!(editor.call_ok("Edit", json!([])).await, "edited");
    assert_eq!(editor.call_ok("Scoped", json!([])).await, "scoped");
    assert_eq!(editor.call_err("Admin", json!([])).await, refusal("Admin"));
    assert_eq!(editor.call_err("Write", json!([])).await, refusal("Write"));
    assert_eq!(editor.call_err("ByPolicy", json!([])).await, refusal("ByPolicy"));

    let mut writer = server
        .connect_with_query("/guarded", "user=w&scope=read&scope=write")
        .await;
    assert_eq!(writer.call_ok("Write", json!([])).await, "written");
    assert_eq!(writer.call_ok("ByPolicy", json!([])).await, "policy");
    assert_eq!(writer.call_err("AdminWriter", json!([])).await, refusal("AdminWriter"));

    let mut admin = server.connect_with_query("/guarded", "user=root&role=admin").await;
    assert_eq!(admin.call_ok("Admin", json!([])).await, "admin");
    assert_eq!(admin.call_ok("Edit", json!([])).await, "edited");
    assert_eq!(
        admin.call_err("AdminWriter", json!([])).await,
        refusal("AdminWriter"),
        "stacked authorize attributes must all hold"
    );

    let mut both = server
        .connect_with_query("/guarded", "user=boss&role=admin&scope=write")
        .await;
    assert_eq!(both.call_ok("AdminWriter", json!([])).await, "both");

    for client in [plain, editor, writer, admin, both] {
        client.close().await;
    }
}

#[tokio::test]
async fn a_refused_non_blocking_invocation_gets_no_reply_and_does_not_run() {
    let (server, events) = guarded_server().await;
    let mut client = server.connect_with_query("/guarded", "user=plain").await;
    client.send_invocation("Notify", json!(["refused"])).await;
    // A round trip after it: had the refusal been answered, its message would come first.
    assert_eq!(client.call_ok("Open", json!([])).await, "open");
    assert!(events.snapshot().is_empty(), "the method ran: {:?}", events.snapshot());

    let mut admin = server.connect_with_query("/guarded", "user=root&role=admin").await;
    admin.send_invocation("Notify", json!(["allowed"])).await;
    events
        .wait_for("the admin's notification", |e| e == "notified allowed")
        .await;
    client.close().await;
    admin.close().await;
}

#[tokio::test]
async fn streaming_methods_are_guarded_before_the_invocation_kind_is_checked() {
    let (server, _) = guarded_server().await;
    let mut client = server.connect_with_query("/guarded", "user=plain").await;
    client
        .send(&json!({"type": 4, "invocationId": "s1", "target": "Counted", "arguments": []}))
        .await;
    let reply = client.recv_skip_pings().await;
    assert_eq!(reply["type"], 3, "{reply}");
    assert_eq!(reply["invocationId"], "s1");
    assert_eq!(reply["error"], refusal("Counted"));
    // A plain invocation of the stream method: still the authorization text, revealing nothing.
    assert_eq!(client.call_err("Counted", json!([])).await, refusal("Counted"));

    let mut admin = server.connect_with_query("/guarded", "user=root&role=admin").await;
    admin
        .send(&json!({"type": 4, "invocationId": "s2", "target": "Counted", "arguments": []}))
        .await;
    let mut items = Vec::new();
    loop {
        let message = admin.recv_skip_pings().await;
        match message["type"].as_i64() {
            Some(2) => items.push(message["item"].clone()),
            Some(3) => {
                assert!(message.get("error").is_none(), "{message}");
                break;
            }
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(items, [json!(1), json!(2), json!(3)]);
    client.close().await;
    admin.close().await;
}

struct Members;

#[hub(authorize(role = "member"))]
impl Members {
    fn echo(&self, message: String) -> String {
        message
    }
}

struct Private;

#[hub(authorize)]
impl Private {
    fn echo(&self, message: String) -> String {
        message
    }
}

#[tokio::test]
async fn a_hub_level_authorize_refuses_at_the_endpoint() {
    let server = HubServer::builder()
        .hub_with("/members", Members, EndpointOptions::new().authenticator(from_query))
        .hub("/private", Private)
        .build();
    let server = TestServer::start(server).await;

    let anonymous = server.negotiate("/members", "negotiateVersion=1").await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(anonymous.body, "", "an empty body, so clients show the reason phrase");
    let outsider = server.negotiate("/members", "negotiateVersion=1&user=bob").await;
    assert_eq!(outsider.status, 403, "{outsider:?}");
    assert_eq!(outsider.body, "");

    // Transport requests too, including a WebSocket without negotiate.
    assert_eq!(
        common::Client::open_status(&server.ws_url("/members")).await,
        401,
        "skipNegotiation without an identity"
    );
    assert_eq!(
        common::Client::open_status(&server.ws_url("/members?user=bob")).await,
        403
    );
    let negotiated = server
        .negotiate("/members", "negotiateVersion=1&user=ann&role=member")
        .await;
    assert_eq!(negotiated.status, 200, "{negotiated:?}");
    let token = negotiated.json()["connectionToken"].as_str().unwrap().to_string();
    let poll = server.http("GET", &format!("/members?id={token}"), &[], "").await;
    assert_eq!(poll.status, 401, "a poll without the identity");
    let first_poll = server
        .http("GET", &format!("/members?id={token}&user=ann&role=member"), &[], "")
        .await;
    assert_eq!(first_poll.status, 200, "the member's first poll starts the connection");
    let post = server
        .http("POST", &format!("/members?id={token}&user=bob"), &[], "")
        .await;
    assert_eq!(post.status, 403, "a POST by someone else");

    let mut member = server.connect_with_query("/members", "user=ann&role=member").await;
    assert_eq!(member.call_ok("Echo", json!(["hi"])).await, "hi");
    member.close().await;

    // A hub that requires authorization, mapped without an authenticator: nobody gets in.
    assert_eq!(server.negotiate("/private", "negotiateVersion=1").await.status, 401);
    assert_eq!(
        server.negotiate("/private", "negotiateVersion=1&user=x").await.status,
        401
    );
}

#[cfg(feature = "jwt")]
struct Jwt;

#[cfg(feature = "jwt")]
#[hub(authorize)]
impl Jwt {
    fn who_am_i(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.user_id().map(str::to_owned)
    }

    #[hub(authorize(role = "admin"))]
    fn admin(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.identity().and_then(|i| i.claim("tenant")).map(str::to_owned)
    }
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn the_jwt_authenticator_end_to_end() {
    const SECRET: &[u8] = b"integration-test-secret-32-bytes";
    let server = HubServer::builder()
        .hub_with(
            "/jwt",
            Jwt,
            EndpointOptions::new().authenticator(JwtAuthenticator::hs256(SECRET).audience("tests")),
        )
        .build();
    let server = TestServer::start(server).await;
    let token =
        |claims: serde_json::Value| encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
    let exp = get_current_timestamp() + 60;

    let user = token(json!({"sub": "u1", "aud": "tests", "exp": exp}));
    let mut client = server.connect_with_query("/jwt", &format!("access_token={user}")).await;
    assert_eq!(client.call_ok("WhoAmI", json!([])).await, "u1");
    assert_eq!(client.call_err("Admin", json!([])).await, refusal("Admin"));
    client.close().await;

    let admin = token(json!({"nameid": "a1", "role": ["user", "admin"], "tenant": "t", "aud": "tests", "exp": exp}));
    let mut client = server
        .connect_with_query("/jwt", &format!("access_token={admin}"))
        .await;
    assert_eq!(client.call_ok("WhoAmI", json!([])).await, "a1");
    assert_eq!(client.call_ok("Admin", json!([])).await, "t");
    client.close().await;

    // By header, at negotiate.
    let bearer = format!("Bearer {admin}");
    let by_header = server
        .http(
            "POST",
            "/jwt/negotiate?negotiateVersion=1",
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(by_header.status, 200);

    let wrong_audience = token(json!({"sub": "u1", "aud": "others", "exp": exp}));
    let expired = token(json!({"sub": "u1", "aud": "tests", "exp": get_current_timestamp() - 3600}));
    for refused in [wrong_audience.as_str(), expired.as_str(), "garbage", ""] {
        let response = server
            .negotiate("/jwt", &format!("negotiateVersion=1&access_token={refused}"))
            .await;
        assert_eq!(response.status, 401, "{refused:?}");
        assert_eq!(response.body, "");
    }
}
