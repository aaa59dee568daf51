//! TestHub's calls: values, errors, and the hub calling the client back.

use hub_examples::interop_contract::{ComplexObject, CustomObject};
use hub_runtime::types::{Binary, DateTime};

use crate::report::{expect_eq, Context, Failure, Report};
use crate::session::{TestHubEvent, TestHubSession};
use crate::Pair;

/// Text outside ASCII, with characters JSON and MessagePack encode in their own ways.
const NON_ASCII: &str = "grüße 👋 \u{0} \"quoted\" \\ \u{1e} 日本語";

pub async fn run(report: &mut Report, pair: Pair, session: &Result<TestHubSession, Failure>) {
    report
        .check(pair, "Echo (non-ASCII)", async {
            let echoed = session.as_ref()?.hub().echo(NON_ASCII.into()).await.context("Echo")?;
            expect_eq("Echo", echoed.as_str(), NON_ASCII)
        })
        .await;
    report
        .check(pair, "GetCallerConnectionId equals the connection's id", async {
            let session = session.as_ref()?;
            let id = session
                .hub()
                .get_caller_connection_id()
                .await
                .context("GetCallerConnectionId")?;
            expect_eq("GetCallerConnectionId", id, session.connection_id()?)
        })
        .await;
    report
        .check(pair, "GetActiveTransportName", async {
            let name = session.as_ref()?.hub().get_active_transport_name().await;
            expect_eq(
                "GetActiveTransportName",
                name.context("GetActiveTransportName")?.as_str(),
                pair.transport.name(),
            )
        })
        .await;
    report
        .check(pair, "ThrowException text", throw_exception(session))
        .await;
    report
        .check(pair, "InvokeWithString → Message", async {
            let session = session.as_ref()?;
            let text = format!("message from server {NON_ASCII}");
            session
                .hub()
                .invoke_with_string(text.clone())
                .await
                .context("InvokeWithString")?;
            let received = session
                .next("the client method Message", |e| match e {
                    TestHubEvent::Message(text) => Some(text),
                    _ => None,
                })
                .await?;
            expect_eq("Message's argument", received, text)
        })
        .await;
    report
        .check(pair, "SendCustomObject → CustomObject", async {
            let session = session.as_ref()?;
            let sent = CustomObject {
                name: "test name ✓".into(),
                value: -42,
            };
            session
                .hub()
                .send_custom_object(sent.clone())
                .await
                .context("SendCustomObject")?;
            let received = session
                .next("the client method CustomObject", |e| match e {
                    TestHubEvent::CustomObject(value) => Some(value),
                    _ => None,
                })
                .await?;
            expect_eq("CustomObject's argument", received, sent)
        })
        .await;
    report
        .check(
            pair,
            "EchoComplexObject round trip (bytes, date-time)",
            echo_complex_object(session),
        )
        .await;
    report
        .check(pair, "SendComplexObject", async {
            let received = session
                .as_ref()?
                .hub()
                .send_complex_object()
                .await
                .context("SendComplexObject")?;
            let expected = ComplexObject {
                string: "hello world".into(),
                int_array: vec![1, 2, 3],
                byte_array: Binary(vec![1, 2, 3]),
                guid: "00010203-0405-0607-0706-050403020100".into(),
                date_time: DateTime::from_unix(946_684_800, 0).ok_or("2000-01-01 is a valid date")?,
            };
            expect_eq("SendComplexObject", received, expected)
        })
        .await;
}

async fn throw_exception(session: &Result<TestHubSession, Failure>) -> Result<(), Failure> {
    let session = session.as_ref()?;
    let message = "boom ✗";
    match session.hub().throw_exception(message.into()).await {
        Ok(()) => Err("ThrowException succeeded".into()),
        Err(hub_client::Error::Hub(text)) => expect_eq(
            "ThrowException's error",
            text,
            format!("An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: {message}"),
        ),
        Err(other) => Err(format!("ThrowException failed without the hub's error: {other}")),
    }?;
    // The connection stays usable.
    let after = session
        .hub()
        .echo("after throw".into())
        .await
        .context("Echo after ThrowException")?;
    expect_eq("Echo after ThrowException", after.as_str(), "after throw")
}

async fn echo_complex_object(session: &Result<TestHubSession, Failure>) -> Result<(), Failure> {
    let sent = ComplexObject {
        string: "complex ✓".into(),
        int_array: vec![i32::MIN, -1, 0, 1, i32::MAX],
        // Every byte value: base64 in JSON, `bin` in MessagePack.
        byte_array: Binary((0..=255).collect()),
        guid: "00010203-0405-0607-0706-050403020100".into(),
        // 2024-02-29T12:34:56.789Z: fractional seconds survive both encodings.
        date_time: DateTime::from_unix(1_709_210_096, 789_000_000).ok_or("a valid date")?,
    };
    let echoed = session
        .as_ref()?
        .hub()
        .echo_complex_object(sent.clone())
        .await
        .context("EchoComplexObject")?;
    expect_eq("EchoComplexObject", echoed, sent)
}
