//! Binding invocations to hub methods: names, arguments, errors, and what goes back.

mod common;

use common::TestServer;
use hub_runtime::prelude::*;
use serde_json::json;

struct Calc;

#[hub]
impl Calc {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    fn echo(&self, message: String) -> String {
        message
    }

    fn nothing(&self) {}

    fn fail(&self) -> Result<(), HubError> {
        Err(HubError::new("secret"))
    }

    fn fail_visible(&self) -> Result<i32, HubError> {
        Err(HubError::for_client("visible"))
    }

    fn fail_io(&self) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("disk on fire"))
    }

    #[hub(name = "Custom")]
    fn renamed(&self) -> &'static str {
        "renamed"
    }
}

async fn server(detailed_errors: bool) -> TestServer {
    let options = HubOptions {
        detailed_errors,
        ..Default::default()
    };
    TestServer::start(HubServer::builder().options(options).hub("/calc", Calc).build()).await
}

const NO_METHOD: &str = "Failed to invoke 'Nope' due to an error on the server. HubException: Method does not exist.";

#[tokio::test]
async fn results_and_void_completions() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    let id = client.invoke("Add", json!([2, 3])).await;
    assert_eq!(client.recv().await, json!({"type": 3, "invocationId": id, "result": 5}));
    // A method returning nothing: a Completion with neither result nor error.
    let id = client.invoke("Nothing", json!([])).await;
    assert_eq!(client.recv().await, json!({"type": 3, "invocationId": id}));
}

#[tokio::test]
async fn unknown_method() {
    for detailed in [false, true] {
        let server = server(detailed).await;
        let mut client = server.connect("/calc").await;
        assert_eq!(
            client.call_err("Nope", json!([])).await,
            NO_METHOD,
            "detailed: {detailed}"
        );
        // The connection goes on.
        assert_eq!(client.call_ok("Add", json!([1, 1])).await, 2);
    }
}

#[tokio::test]
async fn wrong_argument_count() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(
        client.call_err("Add", json!([1])).await,
        "Failed to invoke 'Add' due to an error on the server."
    );
    assert_eq!(
        client.call_err("Add", json!([1, 2, 3])).await,
        "Failed to invoke 'Add' due to an error on the server."
    );
    assert_eq!(client.call_ok("Add", json!([1, 2])).await, 3);
}

#[tokio::test]
async fn wrong_argument_count_detailed() {
    let server = server(true).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(
        client.call_err("Add", json!([1])).await,
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 2."
    );
    assert_eq!(
        client.call_err("Nothing", json!([true])).await,
        "Failed to invoke 'Nothing' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 0."
    );
}

#[tokio::test]
async fn wrong_argument_types() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(
        client.call_err("Add", json!(["one", 2])).await,
        "Failed to invoke 'Add' due to an error on the server."
    );
    assert_eq!(
        client.call_err("Echo", json!([{"a": 1}])).await,
        "Failed to invoke 'Echo' due to an error on the server."
    );
}

#[tokio::test]
async fn wrong_argument_types_detailed() {
    let server = server(true).await;
    let mut client = server.connect("/calc").await;
    let expected =
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. \
                    Make sure that the types of the provided values match the types of the hub method being invoked.";
    assert_eq!(client.call_err("Add", json!([1, "two"])).await, expected);
    assert_eq!(client.call_err("Add", json!([1.5, 2])).await, expected);
}

#[tokio::test]
async fn internal_errors_are_hidden_unless_detailed() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(
        client.call_err("Fail", json!([])).await,
        "An unexpected error occurred invoking 'Fail' on the server."
    );
    assert_eq!(
        client.call_err("FailIo", json!([])).await,
        "An unexpected error occurred invoking 'FailIo' on the server."
    );

    let server = self::server(true).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(
        client.call_err("Fail", json!([])).await,
        "An unexpected error occurred invoking 'Fail' on the server. Exception: secret"
    );
    assert_eq!(
        client.call_err("FailIo", json!([])).await,
        "An unexpected error occurred invoking 'FailIo' on the server. Error: disk on fire"
    );
}

#[tokio::test]
async fn errors_for_the_client_are_always_shown() {
    for detailed in [false, true] {
        let server = server(detailed).await;
        let mut client = server.connect("/calc").await;
        assert_eq!(
            client.call_err("FailVisible", json!([])).await,
            "An unexpected error occurred invoking 'FailVisible' on the server. HubException: visible"
        );
    }
}

#[tokio::test]
async fn non_blocking_invocations_get_no_reply_even_when_they_fail() {
    let server = server(true).await;
    let mut client = server.connect("/calc").await;
    client.send_invocation("Fail", json!([])).await;
    client.send_invocation("FailVisible", json!([])).await;
    client.send_invocation("Nope", json!([])).await;
    client.send_invocation("Add", json!(["wrong"])).await;
    client.send_invocation("Add", json!([1, "wrong"])).await;
    client.send_invocation("Add", json!([1, 2])).await;
    // The first reply is the one for this blocking invocation.
    let id = client.invoke("Echo", json!(["after"])).await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": id, "result": "after"})
    );
}

#[tokio::test]
async fn method_names_match_case_insensitively() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(client.call_ok("add", json!([1, 2])).await, 3);
    assert_eq!(client.call_ok("ADD", json!([2, 2])).await, 4);
    assert_eq!(client.call_ok("eChO", json!(["x"])).await, "x");
}

#[tokio::test]
async fn error_texts_name_the_method_as_the_client_wrote_it() {
    // The reference server formats its texts with the invocation's target, as received.
    let server = server(true).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(
        client.call_err("failvisible", json!([])).await,
        "An unexpected error occurred invoking 'failvisible' on the server. HubException: visible"
    );
    assert_eq!(
        client.call_err("ADD", json!([1])).await,
        "Failed to invoke 'ADD' due to an error on the server. InvalidDataException: Invocation provides 1 argument(s) but target expects 2."
    );
    assert_eq!(
        client.call_err("add", json!(["x", 1])).await,
        "Failed to invoke 'add' due to an error on the server. InvalidDataException: Error binding arguments. \
         Make sure that the types of the provided values match the types of the hub method being invoked."
    );
    client
        .send(&json!({"type": 4, "invocationId": "s", "target": "aDD", "arguments": [1, 2]}))
        .await;
    assert_eq!(
        client.recv().await["error"],
        "The client attempted to invoke the non-streaming 'aDD' method with a streaming invocation."
    );
}

#[tokio::test]
async fn renamed_methods_use_their_wire_name() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    assert_eq!(client.call_ok("Custom", json!([])).await, "renamed");
    assert_eq!(client.call_ok("custom", json!([])).await, "renamed");
    assert_eq!(
        client.call_err("Renamed", json!([])).await,
        "Failed to invoke 'Renamed' due to an error on the server. HubException: Method does not exist."
    );
}

#[tokio::test]
async fn stream_invocation_of_a_plain_method_is_refused() {
    let server = server(false).await;
    let mut client = server.connect("/calc").await;
    client
        .send(&json!({"type": 4, "invocationId": "s1", "target": "Add", "arguments": [1, 2]}))
        .await;
    assert_eq!(
        client.recv().await,
        json!({
            "type": 3,
            "invocationId": "s1",
            "error": "The client attempted to invoke the non-streaming 'Add' method with a streaming invocation."
        })
    );
    // An unknown method is unknown whatever the invocation kind.
    client
        .send(&json!({"type": 4, "invocationId": "s2", "target": "Nope", "arguments": []}))
        .await;
    assert_eq!(
        client.recv().await,
        json!({"type": 3, "invocationId": "s2", "error": NO_METHOD})
    );
    assert_eq!(client.call_ok("Add", json!([1, 2])).await, 3);
}
