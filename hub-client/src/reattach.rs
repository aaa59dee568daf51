//! Stateful reconnect's way back: the same connection's WebSocket opened again (its token as
//! `id`, no negotiate, no handshake), once, right after the socket dropped, as the official
//! clients try.

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use crate::config::{Config, TransportKind};
use crate::error::{Error, Result};
use crate::negotiate::factory_token;
use crate::transport::Transport;
use crate::url::HubUrl;

/// Where the bearer token of a re-opened WebSocket comes from.
#[derive(Clone)]
pub(crate) enum Bearer {
    /// The access-token factory, asked again (as for the first socket).
    Factory,
    /// The token negotiate's redirect gave (or none).
    Fixed(Option<String>),
}

/// What opening the connection's WebSocket again needs.
#[derive(Clone)]
pub(crate) struct Reattach {
    pub(crate) config: Config,
    /// The URL negotiate ended at.
    pub(crate) url: HubUrl,
    /// The connection token, sent as `id`.
    pub(crate) token: String,
    pub(crate) bearer: Bearer,
}

impl Reattach {
    /// Opens the WebSocket again, within the handshake timeout.
    pub(crate) fn open(&self) -> BoxFuture<'static, Result<Transport>> {
        let Reattach {
            config,
            url,
            token,
            bearer,
        } = self.clone();
        async move {
            let timeout = config.handshake_timeout;
            let open = async {
                let bearer = match bearer {
                    Bearer::Factory => factory_token(&config).await?,
                    Bearer::Fixed(token) => token,
                };
                Transport::open(
                    &config,
                    TransportKind::WebSockets,
                    &url,
                    Some(&token),
                    bearer.as_deref(),
                )
                .await
            };
            tokio::time::timeout(timeout, open)
                .await
                .map_err(|_| Error::Transport("re-opening the WebSocket timed out".into()))?
        }
        .boxed()
    }
}
