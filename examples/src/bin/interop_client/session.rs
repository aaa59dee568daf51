//! A connection to TestHub with the typed handler of its client interface
//! (`TestHubClientHandler`), recording what the hub calls on it.

use hub_client::{HubConnection, HubConnectionBuilder};
use hub_examples::interop_contract::{CustomObject, TestHubClientHandler, TestHubProxy};
use tokio::sync::{mpsc, Mutex};

use crate::report::{within, Context, Failure, CALLBACK_TIMEOUT};
use crate::{Pair, Target};

/// A call of TestHub on its client.
#[derive(Debug, Clone, PartialEq)]
pub enum TestHubEvent {
    Message(String),
    CustomObject(CustomObject),
    StreamCanceled,
}

/// How the handler answers the client result `Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultAnswer {
    /// With this value.
    Value(i64),
    /// By failing with [`HANDLER_ERROR`] (the contract declares `Result<i64, String>`: the
    /// error's text becomes the Completion's error).
    Fail,
}

/// The text the handler fails with.
pub const HANDLER_ERROR: &str = "the client refuses to answer";

/// The handler: forwards each call to the session.
struct Recorder {
    events: mpsc::UnboundedSender<TestHubEvent>,
    answer: ResultAnswer,
}

impl TestHubClientHandler for Recorder {
    async fn message(&self, message: String) {
        let _ = self.events.send(TestHubEvent::Message(message));
    }

    async fn custom_object(&self, value: CustomObject) {
        let _ = self.events.send(TestHubEvent::CustomObject(value));
    }

    async fn stream_canceled(&self) {
        let _ = self.events.send(TestHubEvent::StreamCanceled);
    }

    async fn result(&self) -> Result<i64, String> {
        match self.answer {
            ResultAnswer::Value(value) => Ok(value),
            ResultAnswer::Fail => Err(HANDLER_ERROR.to_string()),
        }
    }
}

/// A started connection to `/testhub` over one pair.
pub struct TestHubSession {
    pub connection: HubConnection,
    events: Mutex<mpsc::UnboundedReceiver<TestHubEvent>>,
}

impl TestHubSession {
    /// Connects to `/testhub` over `pair`, with the typed handler answering `Result` as
    /// `answer` says, or with no handler at all for `None`.
    pub async fn start(target: &Target, pair: Pair, answer: Option<ResultAnswer>) -> Result<Self, Failure> {
        let connection = HubConnectionBuilder::new(target.url("/testhub"))
            .transports([pair.transport])
            .protocol(pair.protocol)
            .build()
            .context("building the connection")?;
        let (events, received) = mpsc::unbounded_channel();
        if let Some(answer) = answer {
            Recorder { events, answer }.register(&connection);
        }
        connection.start().await.context("start")?;
        Ok(TestHubSession {
            connection,
            events: Mutex::new(received),
        })
    }

    /// The typed proxy of TestHub on this connection.
    pub fn hub(&self) -> TestHubProxy<&HubConnection> {
        TestHubProxy::new(&self.connection)
    }

    /// The connection id negotiate gave.
    pub fn connection_id(&self) -> Result<String, Failure> {
        self.connection
            .connection_id()
            .ok_or_else(|| "the connection has no connection id".to_string())
    }

    /// The next call of the kind `select` picks (other calls are skipped), within
    /// [`CALLBACK_TIMEOUT`].
    pub async fn next<T>(&self, what: &str, select: impl Fn(TestHubEvent) -> Option<T>) -> Result<T, Failure> {
        let mut events = self.events.lock().await;
        within(CALLBACK_TIMEOUT, what, async {
            loop {
                match events.recv().await {
                    Some(event) => {
                        if let Some(picked) = select(event) {
                            return Ok(picked);
                        }
                    }
                    None => return Err(format!("{what}: the handler is gone")),
                }
            }
        })
        .await?
    }

    /// Stops the connection (a stop that hangs is abandoned after a while: the checks are done).
    pub async fn stop(self) {
        let _ = tokio::time::timeout(CALLBACK_TIMEOUT, self.connection.stop()).await;
    }
}
