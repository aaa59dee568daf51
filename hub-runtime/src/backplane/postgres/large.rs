//! The payload table: frames too large for a notification are stored there, and only a
//! reference is notified. Several servers read one row, so rows are not deleted on reading:
//! each server deletes the rows older than the retention
//! ([`PostgresOptions::payload_retention`](super::PostgresOptions::payload_retention)) now
//! and then. The table is `UNLOGGED` (the rows are transient: no WAL for megabytes that live a
//! minute; a crash empties it, losing only what was in flight anyway).

use tokio_postgres::Client;

use super::channels::{payload_table, quote_identifier};
use super::connect::describe;

/// The SQL statements on the payload table (its name depends on the prefix).
pub(super) struct PayloadSql {
    create: String,
    /// `$1` frame, `$2` channel, `$3` origin: inserts the row and notifies its reference in
    /// one statement (one implicit transaction: the row is there when the notification is).
    pub(super) store_and_notify: String,
    /// `$1` id.
    pub(super) fetch: String,
    /// `$1` retention in seconds.
    pub(super) clean: String,
    table: String,
}

impl PayloadSql {
    pub(super) fn new(prefix: &str) -> PayloadSql {
        let table = payload_table(prefix);
        let quoted = quote_identifier(&table);
        PayloadSql {
            create: format!(
                "CREATE UNLOGGED TABLE IF NOT EXISTS {quoted} (id bigserial PRIMARY KEY, \
                 created timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)"
            ),
            store_and_notify: format!(
                "WITH stored AS (INSERT INTO {quoted} (body) VALUES ($1::bytea) RETURNING id) \
                 SELECT pg_notify($2::text, '#' || stored.id::text || ':' || $3::text) FROM stored"
            ),
            fetch: format!("SELECT body FROM {quoted} WHERE id = $1::bigint"),
            clean: format!("DELETE FROM {quoted} WHERE created < now() - make_interval(secs => $1::float8)"),
            table,
        }
    }

    /// Creates the table unless it exists. Servers starting together may race to create it
    /// (PostgreSQL then reports a duplicate type): the table exists afterwards all the same.
    pub(super) async fn create(&self, client: &Client) -> Result<(), String> {
        let Err(error) = client.batch_execute(&self.create).await else {
            return Ok(());
        };
        let exists = client
            .query_one(
                "SELECT to_regclass($1::text) IS NOT NULL",
                &[&quote_identifier(&self.table)],
            )
            .await
            .ok()
            .and_then(|row| row.try_get::<_, bool>(0).ok())
            .unwrap_or(false);
        if exists {
            Ok(())
        } else {
            Err(format!(
                "could not create the table {}: {}",
                self.table,
                describe(&error)
            ))
        }
    }
}
