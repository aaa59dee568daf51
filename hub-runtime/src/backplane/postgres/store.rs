//! A command session for the PostgreSQL stores (presence, history): one connection shared by
//! every statement (tokio-postgres pipelines them), opened again on the next statement after it
//! was lost, each statement bounded by the response timeout. A statement that gets no answer in
//! time gives the connection up too (a frozen backend or a half-open socket would otherwise time
//! out every later statement): the next statement opens a new one. Every operation of a store is
//! one statement (a call of one of its functions), so it is one transaction of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::connect::{describe, Connector};
use super::PostgresOptions;

struct Live {
    client: Client,
    prepared: std::sync::Mutex<HashMap<String, Statement>>,
    driver: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One shared command connection of a store.
pub(crate) struct StoreSession {
    connector: Connector,
    application_name: &'static str,
    /// Run once on every new connection before any statement (creates the store's tables and
    /// functions unless they exist).
    setup: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    live: tokio::sync::Mutex<Option<Arc<Live>>>,
}

impl StoreSession {
    /// A session connecting to `url` with `options`' timeouts, keepalive and TLS; nothing is
    /// opened until the first statement.
    pub(crate) fn new(
        url: &str,
        options: &PostgresOptions,
        application_name: &'static str,
        setup: String,
    ) -> Result<StoreSession, String> {
        Ok(StoreSession {
            connector: Connector::new(url, options)?,
            application_name,
            setup,
            connect_timeout: options.connect_timeout,
            response_timeout: options.response_timeout,
            live: tokio::sync::Mutex::new(None),
        })
    }

    async fn live(&self) -> Result<Arc<Live>, String> {
        let opening = async {
            let mut live = self.live.lock().await;
            if let Some(session) = live.as_ref().filter(|s| !s.client.is_closed()) {
                return Ok(session.clone());
            }
            *live = None;
            let (client, connection) = self.connector.connect(self.application_name).await?;
            let driver = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %describe(&e), "postgres store connection ended");
                }
            });
            let session = Arc::new(Live {
                client,
                prepared: std::sync::Mutex::new(HashMap::new()),
                driver,
            });
            let setup = tokio::time::timeout(self.response_timeout * 4, session.client.batch_execute(&self.setup));
            match setup.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("could not create the store's tables: {}", describe(&e))),
                Err(_) => return Err("creating the store's tables took too long".into()),
            }
            *live = Some(session.clone());
            Ok(session)
        };
        let limit = self.connect_timeout.saturating_add(self.response_timeout * 4);
        match tokio::time::timeout(limit, opening).await {
            Ok(result) => result,
            Err(_) => Err(format!("no session within {limit:?}")),
        }
    }

    /// Connects now (and creates the tables) unless connected.
    pub(crate) async fn open(&self) -> Result<(), String> {
        self.live().await.map(|_| ())
    }

    /// Runs `sql` (prepared once per connection) with `params`; its rows.
    pub(crate) async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, String> {
        let live = self.live().await?;
        let run = async {
            let cached = live
                .prepared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(sql)
                .cloned();
            let statement = match cached {
                Some(statement) => statement,
                None => {
                    let statement = live.client.prepare(sql).await?;
                    live.prepared
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(sql.to_string(), statement.clone());
                    statement
                }
            };
            live.client.query(&statement, params).await
        };
        match tokio::time::timeout(self.response_timeout, run).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => {
                self.forget(&live).await;
                Err(format!("no answer within {:?}", self.response_timeout))
            }
        }
    }

    /// Gives `silent` up unless another statement did already: the next statement connects anew.
    async fn forget(&self, silent: &Arc<Live>) {
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|current| Arc::ptr_eq(current, silent)) {
            tracing::warn!(
                application = self.application_name,
                "a postgres store connection stopped answering; opening a new one"
            );
            *live = None;
        }
    }
}
