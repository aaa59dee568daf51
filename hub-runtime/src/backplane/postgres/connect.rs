//! Opening connections to PostgreSQL: the parsed connection string with the backplane's
//! timeouts and TCP keepalive, and TLS as `sslmode` asks; every attempt bounded.

use std::time::Duration;

use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{connector, read_sslmode};
use super::PostgresOptions;

/// A connection's driver: polled by a task of its own, it delivers notifications.
pub(crate) type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<Socket>>::Stream>;

/// Opens connections with one configuration.
pub(crate) struct Connector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    connect_timeout: Duration,
}

impl Connector {
    /// Parses `url` (a `postgres://` URL or `key=value` pairs) and prepares TLS.
    pub(crate) fn new(url: &str, options: &PostgresOptions) -> Result<Connector, String> {
        let (url, verify) = read_sslmode(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        // The kernel counts keepalive times in whole seconds, up to 32767.
        let idle = options
            .keepalive
            .clamp(Duration::from_secs(1), Duration::from_secs(32_767));
        config
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(idle)
            .keepalives_interval((idle / 3).max(Duration::from_secs(1)))
            .keepalives_retries(3)
            // Unacknowledged writes give up too (Linux), so a vanished server is noticed.
            .tcp_user_timeout(idle.saturating_mul(2));
        Ok(Connector {
            config,
            tls: connector(verify, &options.tls_roots)?,
            connect_timeout: options.connect_timeout,
        })
    }

    /// Connects (TCP, TLS, authentication) within the connect timeout, naming the session
    /// `application_name` (as `pg_stat_activity` shows it).
    pub(crate) async fn connect(&self, application_name: &str) -> Result<(Client, Connection), String> {
        let mut config = self.config.clone();
        config.application_name(application_name);
        match tokio::time::timeout(self.connect_timeout, config.connect(self.tls.clone())).await {
            Ok(Ok(connected)) => Ok(connected),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("no connection within {:?}", self.connect_timeout)),
        }
    }
}

/// An error with its cause (tokio-postgres' own text is often only "error connecting").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}
