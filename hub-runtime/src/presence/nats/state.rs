//! What the store keeps for one user in one group (or for one user of a hub), and how it
//! changes: read the subject's last message, change it, write it back on condition that no
//! other write came meanwhile (the stream sequence read), or read again.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::broker::{Broker, Cas};
use super::unavailable;
use crate::backplane::nats::subjects::token;
use crate::presence::PresenceError;

/// How often a change is tried against other servers' writes to the same user before it
/// gives up.
const ATTEMPTS: u32 = 500;

/// Whose entry: a user in a group of a hub, or a user of a hub (`group` `None`: online users).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) hub: String,
    pub(super) group: Option<String>,
    pub(super) user: String,
}

impl Key {
    /// Its subject under `base`: `{base}.g.{hub}.{group}.{user}` or `{base}.u.{hub}.{user}`,
    /// each name one subject token (see `backplane::nats::subjects`).
    pub(super) fn subject(&self, base: &str) -> String {
        match &self.group {
            Some(group) => format!("{base}.g.{}.{}.{}", token(&self.hub), token(group), token(&self.user)),
            None => format!("{base}.u.{}.{}", token(&self.hub), token(&self.user)),
        }
    }
}

/// A user's connections in a group (or to a hub), as one message on the key's subject.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct State {
    pub(super) hub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) group: Option<String>,
    pub(super) user: String,
    /// Connection id → the server (incarnation) that holds it.
    #[serde(default)]
    pub(super) connections: BTreeMap<String, String>,
    /// The user's info in the group (JSON text), while it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) info: Option<String>,
}

impl State {
    fn empty(key: &Key) -> State {
        State {
            hub: key.hub.clone(),
            group: key.group.clone(),
            user: key.user.clone(),
            connections: BTreeMap::new(),
            info: None,
        }
    }

    pub(super) fn key(&self) -> Key {
        Key {
            hub: self.hub.clone(),
            group: self.group.clone(),
            user: self.user.clone(),
        }
    }

    /// A stored state; `None` for one that is not JSON of this shape (bad data is overwritten).
    pub(super) fn decode(payload: &[u8]) -> Option<State> {
        serde_json::from_slice(payload).ok()
    }
}

/// What a change decided.
pub(super) enum Change<R> {
    /// Nothing to write.
    Keep(R),
    /// Write this state (with no connections: the entry is gone).
    Write(State, R),
}

/// Applies `change` to the state of `key` atomically: if another server wrote the subject
/// between the read and the write, reads again and applies it again.
pub(super) async fn update<R>(
    broker: &Broker,
    base: &str,
    key: &Key,
    mut change: impl FnMut(State) -> Change<R>,
) -> Result<R, PresenceError> {
    let subject = key.subject(base);
    for attempt in 0..ATTEMPTS {
        let last = broker.last(&subject).await.map_err(unavailable)?;
        let expected = last.as_ref().map_or(0, |stored| stored.sequence);
        let state = match last.and_then(|stored| State::decode(&stored.payload)) {
            Some(state) if state.key() != *key => {
                // Two long names hashed to one subject token: refuse rather than mix them.
                return Err(unavailable(format!("presence entries collide on subject {subject}")));
            }
            // No connections left: no info either (the user left).
            Some(state) if !state.connections.is_empty() => state,
            _ => State::empty(key),
        };
        let (state, result) = match change(state) {
            Change::Keep(result) => return Ok(result),
            Change::Write(state, result) => (state, result),
        };
        let payload = Bytes::from(serde_json::to_vec(&state).map_err(unavailable)?);
        match broker
            .compare_and_set(&subject, payload, expected)
            .await
            .map_err(unavailable)?
        {
            Cas::Written(sequence) => {
                if state.connections.is_empty() {
                    // Best effort: a leftover empty state reads as no entry.
                    if let Err(error) = broker.purge(&subject, Some(sequence)).await {
                        tracing::debug!(%error, "could not purge an empty presence entry");
                    }
                }
                return Ok(result);
            }
            Cas::Conflict => {
                // Others write the same user: step aside a little, more as it goes on.
                let most = u64::from(attempt.min(20));
                let pause = rand::rng().random_range(0..=most);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
    Err(unavailable(format!(
        "{subject} kept changing under {ATTEMPTS} attempts to write it"
    )))
}

/// How many connections a user has after a join, and whether the join added one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Joined {
    pub(super) added: bool,
    pub(super) count: usize,
}

/// Adds `connection` of `server` (with `info`, which replaces the user's if given). A
/// connection there already under another server name (this server before it was swept) is
/// moved to `server`, not added.
pub(super) fn join(mut state: State, connection: &str, server: &str, info: Option<&str>) -> Change<Joined> {
    let before = state.connections.insert(connection.to_string(), server.to_string());
    let added = before.is_none();
    let count = state.connections.len();
    let joined = Joined { added, count };
    if before.as_deref() == Some(server) && (info.is_none() || state.info.as_deref() == info) {
        return Change::Keep(joined);
    }
    if let Some(info) = info {
        state.info = Some(info.to_string());
    }
    Change::Write(state, joined)
}

/// Removes `connection`; the user's count after it, or `None` if it was not there.
pub(super) fn leave(mut state: State, connection: &str) -> Change<Option<usize>> {
    if state.connections.remove(connection).is_none() {
        return Change::Keep(None);
    }
    let count = state.connections.len();
    if count == 0 {
        state.info = None;
    }
    Change::Write(state, Some(count))
}

/// Removes every connection held by one of `servers`; whether that removed the user's last.
pub(super) fn sweep(mut state: State, servers: &[String]) -> Change<bool> {
    let before = state.connections.len();
    state.connections.retain(|_, server| !servers.contains(server));
    if state.connections.len() == before {
        return Change::Keep(false);
    }
    let last = state.connections.is_empty();
    if last {
        state.info = None;
    }
    Change::Write(state, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            hub: "H".into(),
            group: Some("g".into()),
            user: "ann".into(),
        }
    }

    #[test]
    fn joins_and_leaves_count_connections() {
        let Change::Write(state, joined) = join(State::empty(&key()), "c1", "s1", Some("1")) else {
            panic!("a first join writes");
        };
        assert_eq!(joined, Joined { added: true, count: 1 });
        assert!(matches!(
            join(state.clone(), "c1", "s1", None),
            Change::Keep(Joined { added: false, .. })
        ));
        let Change::Write(moved, joined) = join(state.clone(), "c1", "s2", None) else {
            panic!("a connection of a swept server moves");
        };
        assert!(!joined.added);
        assert_eq!(moved.connections["c1"], "s2");
        assert!(matches!(leave(state.clone(), "c9"), Change::Keep(None)));
        let Change::Write(left, Some(0)) = leave(state, "c1") else {
            panic!("the last leave writes");
        };
        assert_eq!(left.info, None);
    }

    #[test]
    fn bad_payloads_and_sweeps() {
        assert_eq!(State::decode(b"\xff not json"), None);
        assert_eq!(State::decode(b"[1,2]"), None);
        let mut state = State::empty(&key());
        state.connections.insert("a".into(), "dead".into());
        state.connections.insert("b".into(), "live".into());
        let Change::Write(state, false) = sweep(state, &["dead".to_string()]) else {
            panic!("the dead server's connection goes");
        };
        assert!(matches!(
            sweep(state.clone(), &["dead".to_string()]),
            Change::Keep(false)
        ));
        assert!(matches!(sweep(state, &["live".to_string()]), Change::Write(_, true)));
        assert_ne!(key().subject("p"), Key { group: None, ..key() }.subject("p"));
    }
}
