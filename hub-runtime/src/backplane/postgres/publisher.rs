//! The publishing connection: one session shared by every publish (tokio-postgres pipelines
//! concurrent statements on it), opened again on the next publish after it was lost. Each
//! NOTIFY is a statement of its own outside any explicit transaction, so PostgreSQL never
//! folds two of them. A publish fails at once when PostgreSQL cannot be reached: getting a
//! session is bounded by the connect timeout, every statement by the response timeout.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::connect::{describe, Connector};
use super::large::PayloadSql;

const NOTIFY: &str = "SELECT pg_notify($1::text, $2::text)";

/// A live publishing session and its prepared statements.
pub(super) struct Session {
    client: Client,
    notify: Statement,
    store: Statement,
    clean: Statement,
    driver: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Which prepared statement to run.
enum Which {
    Notify,
    Store,
    Clean,
}

pub(super) struct Publisher {
    connector: Arc<Connector>,
    sql: Arc<PayloadSql>,
    application_name: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    live: tokio::sync::Mutex<Option<Arc<Session>>>,
}

impl Publisher {
    pub(super) fn new(
        connector: Arc<Connector>,
        sql: Arc<PayloadSql>,
        application_name: String,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Publisher {
        Publisher {
            connector,
            sql,
            application_name,
            connect_timeout,
            response_timeout,
            live: tokio::sync::Mutex::new(None),
        }
    }

    /// The live session, opened if there is none (or it was lost); bounded by the connect
    /// timeout, waiting for another caller's attempt included.
    pub(super) async fn session(&self) -> Result<Arc<Session>, String> {
        let opening = async {
            let mut live = self.live.lock().await;
            if let Some(session) = live.as_ref().filter(|s| !s.client.is_closed()) {
                return Ok(session.clone());
            }
            *live = None;
            let session = Arc::new(self.open().await?);
            *live = Some(session.clone());
            Ok(session)
        };
        match tokio::time::timeout(self.connect_timeout, opening).await {
            Ok(result) => result,
            Err(_) => Err(format!("no connection within {:?}", self.connect_timeout)),
        }
    }

    async fn open(&self) -> Result<Session, String> {
        let (client, connection) = self.connector.connect(&self.application_name).await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %describe(&e), "postgres backplane publishing connection ended");
            }
        });
        // The payload table first (unless it exists): the statements name it.
        let prepare = async {
            self.sql.create(&client).await?;
            Ok::<_, String>((
                client.prepare(NOTIFY).await.map_err(|e| describe(&e))?,
                client
                    .prepare(&self.sql.store_and_notify)
                    .await
                    .map_err(|e| describe(&e))?,
                client.prepare(&self.sql.clean).await.map_err(|e| describe(&e))?,
            ))
        };
        match tokio::time::timeout(self.response_timeout, prepare).await {
            Ok(Ok((notify, store, clean))) => Ok(Session {
                client,
                notify,
                store,
                clean,
                driver,
            }),
            Ok(Err(e)) => {
                driver.abort();
                Err(e)
            }
            Err(_) => {
                driver.abort();
                Err(format!("no answer within {:?}", self.response_timeout))
            }
        }
    }

    /// Forgets `session` if it is still the live one (it failed: the next publish opens
    /// another).
    async fn forget(&self, session: &Arc<Session>) {
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|l| Arc::ptr_eq(l, session)) {
            *live = None;
        }
    }

    async fn run(&self, which: Which, params: &[&(dyn ToSql + Sync)]) -> Result<(), String> {
        let session = self.session().await?;
        let statement = match which {
            Which::Notify => &session.notify,
            Which::Store => &session.store,
            Which::Clean => &session.clean,
        };
        match tokio::time::timeout(self.response_timeout, session.client.execute(statement, params)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                // A statement PostgreSQL refused leaves the session usable; anything else
                // (the connection broke) does not.
                if e.as_db_error().is_none() {
                    self.forget(&session).await;
                }
                Err(describe(&e))
            }
            Err(_) => {
                self.forget(&session).await;
                Err(format!("no answer within {:?}", self.response_timeout))
            }
        }
    }

    /// `pg_notify(channel, text)`.
    pub(super) async fn notify(&self, channel: &str, text: &str) -> Result<(), String> {
        self.run(Which::Notify, &[&channel, &text]).await
    }

    /// Stores `frame` in the payload table and notifies its reference on `channel`.
    pub(super) async fn store_and_notify(&self, channel: &str, frame: &[u8], origin: &str) -> Result<(), String> {
        self.run(Which::Store, &[&frame, &channel, &origin]).await
    }

    /// Deletes stored payloads older than `retention`.
    pub(super) async fn clean(&self, retention: Duration) -> Result<(), String> {
        self.run(Which::Clean, &[&retention.as_secs_f64()]).await
    }
}
