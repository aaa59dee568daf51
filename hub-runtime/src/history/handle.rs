//! What hub methods use: `cx.history`, one hub's durable groups on the server's store.

use std::sync::Arc;

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::recovery::{self, HistoryEvent, HistoryItem};
use super::{HistoryError, HistoryKey, HistoryLimits, HistoryRule, Position, SharedStore};

/// One hub's durable groups: publishing to them, reading their last messages, and resuming
/// from a position. `cx.history` in a hub method; which groups are durable is set per endpoint
/// with [`EndpointOptions::history`](crate::EndpointOptions::history), the store with
/// [`HubServerBuilder::history`](crate::HubServerBuilder::history).
///
/// ```
/// use hub_runtime::history::{HistoryEvent, Position, RecoveryHeader};
/// use hub_runtime::prelude::*;
///
/// struct News;
///
/// #[hub]
/// impl News {
///     /// Appends to the group's history and delivers to its subscribers.
///     async fn publish(&self, cx: &HubContext<Self>, group: String, text: String) -> Result<Position, HubError> {
///         Ok(cx.history.publish(&group, &text).await?)
///     }
///
///     /// What was missed since `from` (a header first), then every new message.
///     async fn subscribe(
///         &self,
///         cx: &HubContext<Self>,
///         group: String,
///         from: Option<Position>,
///     ) -> Result<impl Stream<Item = Result<HistoryEvent<String>, HubError>>, HubError> {
///         let events = cx.history.subscribe::<String>(&group, from).await?;
///         Ok(events.map(|event| event.map_err(HubError::from)))
///     }
/// }
/// ```
#[derive(Clone)]
pub struct History {
    store: SharedStore,
    hub: Arc<str>,
    rules: Arc<[HistoryRule]>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("hub", &self.hub)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// The latest messages of a group, from [`History::last`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent<T> {
    /// The group's current position.
    pub position: Position,
    /// The messages, oldest first.
    pub items: Vec<HistoryItem<T>>,
}

impl History {
    pub(crate) fn new(store: SharedStore, hub: &str, rules: Vec<HistoryRule>) -> Self {
        History {
            store,
            hub: hub.into(),
            rules: rules.into(),
        }
    }

    /// The limits of `group`'s history, or `None` when no rule covers it.
    pub fn limits(&self, group: &str) -> Option<HistoryLimits> {
        self.rules.iter().find(|r| r.groups.matches(group)).map(|r| r.limits)
    }

    fn durable(&self, group: &str) -> Result<(HistoryKey, HistoryLimits), HistoryError> {
        let limits = self
            .limits(group)
            .ok_or_else(|| HistoryError::NotDurable(group.to_string()))?;
        let key = HistoryKey {
            hub: self.hub.clone(),
            group: group.to_string(),
        };
        Ok((key, limits))
    }

    /// Appends `message` (as JSON) to the group's history and delivers it to the group's
    /// subscribers on every server (not to the group's members: that is
    /// `cx.clients.group(..)`). Returns its position. Fails with
    /// [`HistoryError::NotDurable`] for a group no rule covers.
    pub async fn publish<T: Serialize + ?Sized>(&self, group: &str, message: &T) -> Result<Position, HistoryError> {
        let (key, limits) = self.durable(group)?;
        let payload = serde_json::to_string(message).map_err(|e| HistoryError::Encode(e.to_string()))?;
        self.store.append(&key, limits, payload.into()).await
    }

    /// At most the `count` latest messages the group still keeps, oldest first.
    pub async fn last<T: DeserializeOwned>(&self, group: &str, count: usize) -> Result<Recent<T>, HistoryError> {
        let (key, limits) = self.durable(group)?;
        let latest = self.store.last(&key, limits, count).await?;
        let items = latest
            .messages
            .iter()
            .map(|d| {
                serde_json::from_str(&d.payload)
                    .map(|message| HistoryItem {
                        offset: d.position.offset,
                        message,
                    })
                    .map_err(|e| HistoryError::Decode(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Recent {
            position: latest.position,
            items,
        })
    }

    /// The group's messages from `from` on: first a [`HistoryEvent::Header`] with the current
    /// position and whether everything after `from` follows (`recovered`; always for `None`,
    /// which asks for new messages only), then the missed messages, then each new one as it is
    /// published, in offset order, without gaps or duplicates. When the group's epoch changes
    /// meanwhile, a header with `recovered: false` comes before the new epoch's messages. The
    /// stream ends with an error if the store fails or a message does not decode as `T`.
    pub async fn subscribe<T: DeserializeOwned + Send + 'static>(
        &self,
        group: &str,
        from: Option<Position>,
    ) -> Result<impl Stream<Item = Result<HistoryEvent<T>, HistoryError>> + Send + 'static, HistoryError> {
        let (key, limits) = self.durable(group)?;
        recovery::subscribe(self.store.clone(), key, limits, from).await
    }
}
