//! One served path: how it is offered ([`EndpointOptions`], set by the user) and what the
//! server made of it ([`Endpoint`]).

use std::sync::Arc;

use crate::auth::{Authenticator, Requirement};
use crate::connection::{ConnectionHandler, ConnectionManager, TransportKind};
use crate::history::HistoryRule;
use crate::hub::filter::HubFilter;

/// How one path is served: which transports it offers and who may connect.
///
/// ```
/// use hub_runtime::{EndpointOptions, TransportKind};
/// let options = EndpointOptions::new().disable(TransportKind::WebSockets);
/// assert!(!options.enabled(TransportKind::WebSockets));
/// ```
#[derive(Clone)]
pub struct EndpointOptions {
    pub(super) transports: Vec<TransportKind>,
    pub(super) authenticator: Option<Arc<dyn Authenticator>>,
    pub(super) filters: Vec<Arc<dyn HubFilter>>,
    pub(super) history: Vec<HistoryRule>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions::new()
    }
}

impl EndpointOptions {
    /// Every transport this server implements, anonymous access.
    pub fn new() -> Self {
        EndpointOptions {
            transports: vec![
                TransportKind::WebSockets,
                TransportKind::ServerSentEvents,
                TransportKind::LongPolling,
            ],
            authenticator: None,
            filters: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Stops offering a transport on this endpoint.
    pub fn disable(mut self, transport: TransportKind) -> Self {
        self.transports.retain(|t| *t != transport);
        self
    }

    /// Whether a transport is offered.
    pub fn enabled(&self, transport: TransportKind) -> bool {
        self.transports.contains(&transport)
    }

    /// Decides who each request belongs to (negotiate and every transport request). The
    /// identity's user id is what `clients.user(..)` targets.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Opts the hub's groups that `rule` covers into history (`cx.history`; see
    /// [`crate::history`]). The first rule that covers a group sets its limits. Give every path
    /// of one hub type the same rules.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hub_runtime::history::HistoryRule;
    /// use hub_runtime::EndpointOptions;
    /// let options = EndpointOptions::new()
    ///     .history(HistoryRule::prefix("durable-").max_len(1000).ttl(Duration::from_secs(300)));
    /// # let _ = options;
    /// ```
    pub fn history(mut self, rule: HistoryRule) -> Self {
        self.history.push(rule);
        self
    }

    /// Adds a filter for the hub of this endpoint (after the server's global filters).
    pub fn filter(mut self, filter: impl HubFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }
}

/// One mapped path.
pub(crate) struct Endpoint {
    pub(crate) path: String,
    pub(crate) transports: Vec<TransportKind>,
    pub(crate) handler: Arc<dyn ConnectionHandler>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    /// What the hub's `#[hub(authorize ...)]` requires of every request (nothing: anyone).
    pub(crate) authorize: &'static [Requirement],
    pub(crate) connections: Arc<ConnectionManager>,
}
