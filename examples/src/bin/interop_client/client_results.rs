//! Client results from outside any hub call: `GET /clientresult/{connectionId}` makes the server
//! invoke the client method `Result` on that connection and answer with its value or error.

use crate::report::{expect_eq, Context, Failure, Report};
use crate::session::{ResultAnswer, TestHubSession};
use crate::{Pair, Target};

/// What the main TestHub session's handler answers `Result` with.
pub const CLIENT_RESULT: i64 = 42;

/// The error text of a client result no handler answered (the official clients' wording).
const NO_RESULT: &str = "Client didn't provide a result.";

pub async fn run(report: &mut Report, target: &Target, pair: Pair, session: &Result<TestHubSession, Failure>) {
    report
        .check(pair, "client result /clientresult/{id} → value", async {
            let session = session.as_ref()?;
            let body = client_result(target, &session.connection_id()?).await?;
            expect_eq("/clientresult", body, CLIENT_RESULT.to_string())?;
            // The connection goes on serving hub calls.
            let echoed = session
                .hub()
                .echo("after a client result".into())
                .await
                .context("Echo")?;
            expect_eq("Echo after the client result", echoed.as_str(), "after a client result")
        })
        .await;
    report
        .check(
            pair,
            "client result /clientresult/{id} → error (the handler fails)",
            answer_of(target, pair, Some(ResultAnswer::Fail), crate::session::HANDLER_ERROR),
        )
        .await;
    report
        .check(
            pair,
            "client result /clientresult/{id} → error (no handler)",
            answer_of(target, pair, None, NO_RESULT),
        )
        .await;
}

/// On a connection of its own whose handler answers as `answer` says, `/clientresult` answers
/// `expected`, and the connection still works.
async fn answer_of(target: &Target, pair: Pair, answer: Option<ResultAnswer>, expected: &str) -> Result<(), Failure> {
    let session = TestHubSession::start(target, pair, answer).await?;
    let outcome = async {
        let body = client_result(target, &session.connection_id()?).await?;
        expect_eq("/clientresult", body.as_str(), expected)?;
        let echoed = session.hub().echo("after an error".into()).await.context("Echo")?;
        expect_eq(
            "Echo after the client result's error",
            echoed.as_str(),
            "after an error",
        )
    }
    .await;
    session.stop().await;
    outcome
}

/// `GET /clientresult/{id}`'s body.
async fn client_result(target: &Target, connection_id: &str) -> Result<String, Failure> {
    let id: String = form_urlencoded::byte_serialize(connection_id.as_bytes()).collect();
    target.http.get_ok(&target.url(&format!("/clientresult/{id}"))).await
}
