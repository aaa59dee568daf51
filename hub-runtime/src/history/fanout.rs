//! The local half of live delivery: who on this server watches which group's history, and
//! handing each new message to them. Every store uses it; a distributed store feeds it from
//! its broker subscription and subscribes while a group has watchers here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{Durable, HistoryKey};

/// How many events a watcher may fall behind before it is told of a gap (it then reads the
/// missed messages from history).
const WATCH_CAPACITY: usize = 1024;

/// What a watch yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// A new message of the group.
    Message(Durable),
    /// Some messages may have been lost on the way (the watcher fell behind, or the store's
    /// subscription was broken for a while): read them from history.
    Gap,
}

/// What runs when a group has no watcher left on this server (a distributed store
/// unsubscribes).
type OnIdle = Box<dyn Fn(&HistoryKey) + Send + Sync>;

struct Group {
    sender: broadcast::Sender<LiveEvent>,
    watchers: usize,
}

/// The watchers of each group on this server.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use hub_runtime::history::{Durable, Fanout, HistoryKey, LiveEvent, Position};
/// let fanout = Arc::new(Fanout::new());
/// let key = HistoryKey { hub: "Chat".into(), group: "durable-room".into() };
/// let mut watch = fanout.watch(&key);
/// assert!(fanout.is_watched(&key));
/// let message = Durable { position: Position::new("e", 1), payload: "\"hi\"".into() };
/// fanout.send(&key, LiveEvent::Message(message.clone()));
/// assert_eq!(watch.next().await, Some(LiveEvent::Message(message)));
/// drop(watch);
/// assert!(!fanout.is_watched(&key));
/// # });
/// ```
pub struct Fanout {
    groups: Mutex<HashMap<HistoryKey, Group>>,
    on_idle: Option<OnIdle>,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout::new()
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").field("groups", &self.keys().len()).finish()
    }
}

impl Fanout {
    /// No watchers.
    pub fn new() -> Self {
        Fanout {
            groups: Mutex::new(HashMap::new()),
            on_idle: None,
        }
    }

    /// No watchers; `on_idle` runs when a group's last watcher is dropped.
    pub fn with_on_idle(on_idle: impl Fn(&HistoryKey) + Send + Sync + 'static) -> Self {
        Fanout {
            groups: Mutex::new(HashMap::new()),
            on_idle: Some(Box::new(on_idle)),
        }
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<HistoryKey, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new watch of `key` (see [`Fanout::is_watched`]).
    pub fn watch(self: &Arc<Self>, key: &HistoryKey) -> Watch {
        let mut groups = self.groups();
        let receiver = match groups.get_mut(key) {
            Some(group) => {
                group.watchers += 1;
                group.sender.subscribe()
            }
            None => {
                let (sender, receiver) = broadcast::channel(WATCH_CAPACITY);
                groups.insert(key.clone(), Group { sender, watchers: 1 });
                receiver
            }
        };
        Watch {
            receiver,
            _guard: Guard {
                fanout: self.clone(),
                key: key.clone(),
            },
        }
    }

    /// Hands `event` to the group's watchers here (none: nothing happens).
    pub fn send(&self, key: &HistoryKey, event: LiveEvent) {
        if let Some(group) = self.groups().get(key) {
            let _ = group.sender.send(event);
        }
    }

    /// Tells every watcher that messages may have been lost (after a broken subscription).
    pub fn gap_all(&self) {
        for group in self.groups().values() {
            let _ = group.sender.send(LiveEvent::Gap);
        }
    }

    /// Whether the group has a watcher here.
    pub fn is_watched(&self, key: &HistoryKey) -> bool {
        self.groups().contains_key(key)
    }

    /// The groups watched here.
    pub fn keys(&self) -> Vec<HistoryKey> {
        self.groups().keys().cloned().collect()
    }

    fn release(&self, key: &HistoryKey) {
        let idle = {
            let mut groups = self.groups();
            match groups.get_mut(key) {
                Some(group) if group.watchers > 1 => {
                    group.watchers -= 1;
                    false
                }
                Some(_) => {
                    groups.remove(key);
                    true
                }
                None => false,
            }
        };
        if idle {
            if let Some(on_idle) = &self.on_idle {
                on_idle(key);
            }
        }
    }
}

/// Drops the watcher's count when the watch is dropped.
struct Guard {
    fanout: Arc<Fanout>,
    key: HistoryKey,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.fanout.release(&self.key);
    }
}

/// The new messages of one group on this server, from [`HistoryStore::watch`](super::HistoryStore::watch).
/// Dropping it stops watching.
pub struct Watch {
    receiver: broadcast::Receiver<LiveEvent>,
    _guard: Guard,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("group", &self._guard.key.group).finish()
    }
}

impl Watch {
    /// The next event; a watcher that fell behind gets one [`LiveEvent::Gap`] for everything
    /// it missed. `None` when the store is gone.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(LiveEvent::Gap),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
