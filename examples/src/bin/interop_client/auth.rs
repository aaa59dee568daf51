//! HubWithAuthorization (`/authorizedhub`): refused without a token, served with one from
//! `/generateJwtToken` given by an access-token factory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hub_client::HubConnectionBuilder;
use hub_examples::interop_contract::HubWithAuthorizationProxy;

use crate::report::{expect_eq, Context, Failure, Report, CALLBACK_TIMEOUT};
use crate::{Pair, Target};

pub async fn run(report: &mut Report, target: &Target, pair: Pair) {
    report
        .check(pair, "/authorizedhub without a token → 401", async {
            let connection = builder(target, pair).build().context("building the connection")?;
            match connection.start().await {
                Err(hub_client::Error::NegotiateStatus { status: 401, .. }) => Ok(()),
                Err(other) => Err(format!("start: expected negotiate's 401, got: {other}")),
                Ok(()) => {
                    connection.stop().await;
                    Err("start succeeded without a token".into())
                }
            }
        })
        .await;
    report
        .check(
            pair,
            "/authorizedhub with a /generateJwtToken token (access-token factory)",
            with_token(target, pair),
        )
        .await;
}

fn builder(target: &Target, pair: Pair) -> HubConnectionBuilder {
    HubConnectionBuilder::new(target.url("/authorizedhub"))
        .transports([pair.transport])
        .protocol(pair.protocol)
}

async fn with_token(target: &Target, pair: Pair) -> Result<(), Failure> {
    let calls = Arc::new(AtomicUsize::new(0));
    let factory_calls = calls.clone();
    let http = target.http.clone();
    let token_url = target.url("/generateJwtToken");
    // A fresh token on every call: one lives 5 s only.
    let connection = builder(target, pair)
        .access_token_factory(move || {
            factory_calls.fetch_add(1, Ordering::SeqCst);
            let (http, token_url) = (http.clone(), token_url.clone());
            async move { http.get_ok(&token_url).await }
        })
        .build()
        .context("building the connection")?;
    connection.start().await.context("start")?;
    let outcome = async {
        if calls.load(Ordering::SeqCst) == 0 {
            return Err("the access-token factory was never called".to_string());
        }
        let hub = HubWithAuthorizationProxy::new(&connection);
        let name = hub.get_user_name_identifier().await.context("GetUserNameIdentifier")?;
        expect_eq("GetUserNameIdentifier", name.as_str(), "testuser")?;
        let text = format!("authorized over {} ✓", pair.label());
        let echoed = hub.echo(text.clone()).await.context("Echo")?;
        expect_eq("Echo", echoed, text)
    }
    .await;
    let _ = tokio::time::timeout(CALLBACK_TIMEOUT, connection.stop()).await;
    outcome
}
