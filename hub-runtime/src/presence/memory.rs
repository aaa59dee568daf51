//! [`InMemoryPresence`]: presence for one server, in this process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{
    Expired, GroupEntry, JoinOutcome, LeaveOutcome, Member, PresenceError, PresenceStore, Restored, UserEntry,
};

/// A user's connections, by user (sorted).
type Users = BTreeMap<String, Connections>;

/// One user's connections (never none: a user without connections is removed). Most users
/// have one, kept without a set's table (over 100 bytes for every connection online).
#[derive(Debug)]
enum Connections {
    One(String),
    Many(HashSet<String>),
}

impl Connections {
    /// Adds `connection` (nothing changes if it is there already).
    fn insert(&mut self, connection: &str) {
        match self {
            Connections::One(only) if only == connection => {}
            Connections::One(only) => {
                let only = std::mem::take(only);
                *self = Connections::Many(HashSet::from([only, connection.to_string()]));
            }
            Connections::Many(set) => {
                set.insert(connection.to_string());
            }
        }
    }

    /// Removes `connection`: `None` if it was not there, else whether none are left.
    fn remove(&mut self, connection: &str) -> Option<bool> {
        match self {
            Connections::One(only) => (only == connection).then_some(true),
            Connections::Many(set) => set.remove(connection).then_some(set.is_empty()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Connections::One(_) => 1,
            Connections::Many(set) => set.len(),
        }
    }
}

/// A group: its users' connections, and their info.
#[derive(Debug, Default)]
struct Group {
    users: Users,
    info: HashMap<String, String>,
}

/// Presence kept in this process: right for one server (with the in-memory backplane), the
/// default store. With several servers each would see only its own connections: give them a
/// shared store such as `RedisPresence` (feature `redis`).
///
/// ```
/// use hub_runtime::presence::{GroupEntry, InMemoryPresence, PresenceStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), hub_runtime::presence::PresenceError> {
/// let store = InMemoryPresence::new();
/// let entry = |connection: &str| GroupEntry {
///     hub: "Chat".into(),
///     group: "lobby".into(),
///     user: "ann".into(),
///     connection: connection.into(),
///     info: None,
/// };
/// assert!(store.join(&entry("c1")).await?.first);
/// assert!(!store.join(&entry("c2")).await?.first); // ann's second tab
/// assert_eq!(store.members("Chat", "lobby").await?[0].connections, 2);
/// assert!(!store.leave(&entry("c1")).await?.last);
/// assert!(store.leave(&entry("c2")).await?.last);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct InMemoryPresence {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// By hub, then group.
    groups: HashMap<String, HashMap<String, Group>>,
    /// By hub.
    online: HashMap<String, Users>,
}

impl InMemoryPresence {
    /// An empty store.
    pub fn new() -> Self {
        InMemoryPresence::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `connection` to `user`'s set; whether the set was empty before.
fn add(users: &mut Users, user: &str, connection: &str) -> bool {
    match users.get_mut(user) {
        Some(connections) => {
            connections.insert(connection);
            false
        }
        None => {
            users.insert(user.to_string(), Connections::One(connection.to_string()));
            true
        }
    }
}

/// Removes `connection` from `user`'s set; whether that emptied it (and removed the user).
fn remove(users: &mut Users, user: &str, connection: &str) -> bool {
    let Some(connections) = users.get_mut(user) else {
        return false;
    };
    if connections.remove(connection) != Some(true) {
        return false;
    }
    users.remove(user);
    true
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, Result<T, PresenceError>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl PresenceStore for InMemoryPresence {
    fn join(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<JoinOutcome, PresenceError>> {
        let mut state = self.state();
        let group = state
            .groups
            .entry(entry.hub.clone())
            .or_default()
            .entry(entry.group.clone())
            .or_default();
        let first = add(&mut group.users, &entry.user, &entry.connection);
        if let Some(info) = &entry.info {
            group.info.insert(entry.user.clone(), info.clone());
        }
        ready(JoinOutcome { first })
    }

    fn leave(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<LeaveOutcome, PresenceError>> {
        let mut state = self.state();
        let mut last = false;
        if let Some(groups) = state.groups.get_mut(&entry.hub) {
            if let Some(group) = groups.get_mut(&entry.group) {
                last = remove(&mut group.users, &entry.user, &entry.connection);
                if last {
                    group.info.remove(&entry.user);
                }
                if group.users.is_empty() {
                    groups.remove(&entry.group);
                }
            }
        }
        ready(LeaveOutcome { last })
    }

    fn members(&self, hub: &str, group: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>> {
        let state = self.state();
        let members = state
            .groups
            .get(hub)
            .and_then(|groups| groups.get(group))
            .map(|group| {
                group
                    .users
                    .iter()
                    .map(|(user, connections)| Member {
                        user: user.clone(),
                        connections: connections.len() as u64,
                        info: group.info.get(user).and_then(|info| serde_json::from_str(info).ok()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ready(members)
    }

    fn connect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let mut state = self.state();
        add(
            state.online.entry(entry.hub.clone()).or_default(),
            &entry.user,
            &entry.connection,
        );
        ready(())
    }

    fn disconnect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let mut state = self.state();
        if let Some(users) = state.online.get_mut(&entry.hub) {
            remove(users, &entry.user, &entry.connection);
        }
        ready(())
    }

    fn online(&self, hub: &str, user: &str) -> BoxFuture<'static, Result<bool, PresenceError>> {
        let online = self
            .state()
            .online
            .get(hub)
            .is_some_and(|users| users.contains_key(user));
        ready(online)
    }

    fn ttl(&self) -> Option<Duration> {
        None
    }

    fn refresh(&self) -> BoxFuture<'static, Result<Vec<Restored>, PresenceError>> {
        ready(Vec::new())
    }

    fn sweep(&self) -> BoxFuture<'static, Result<Vec<Expired>, PresenceError>> {
        ready(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(group: &str, user: &str, connection: &str) -> GroupEntry {
        GroupEntry {
            hub: "H".into(),
            group: group.into(),
            user: user.into(),
            connection: connection.into(),
            info: None,
        }
    }

    #[tokio::test]
    async fn first_and_last_per_user_and_group() {
        let store = InMemoryPresence::new();
        assert!(store.join(&entry("g", "ann", "1")).await.unwrap().first);
        // The same connection again changes nothing.
        assert!(!store.join(&entry("g", "ann", "1")).await.unwrap().first);
        assert!(!store.join(&entry("g", "ann", "2")).await.unwrap().first);
        assert!(store.join(&entry("g", "bob", "3")).await.unwrap().first);
        assert!(store.join(&entry("other", "ann", "1")).await.unwrap().first);
        let members = store.members("H", "g").await.unwrap();
        assert_eq!(
            members,
            vec![
                Member {
                    user: "ann".into(),
                    connections: 2,
                    info: None
                },
                Member {
                    user: "bob".into(),
                    connections: 1,
                    info: None
                }
            ]
        );
        assert!(!store.leave(&entry("g", "ann", "1")).await.unwrap().last);
        assert!(!store.leave(&entry("g", "ann", "1")).await.unwrap().last);
        assert!(store.leave(&entry("g", "ann", "2")).await.unwrap().last);
        assert!(!store.leave(&entry("g", "nobody", "9")).await.unwrap().last);
        assert_eq!(store.members("H", "g").await.unwrap().len(), 1);
        assert!(store.members("Other", "g").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_lone_connection_stays_until_it_leaves_itself() {
        let store = InMemoryPresence::new();
        assert!(store.join(&entry("g", "ann", "1")).await.unwrap().first);
        // Another connection of the same user that never joined takes nothing away.
        assert!(!store.leave(&entry("g", "ann", "2")).await.unwrap().last);
        assert_eq!(store.members("H", "g").await.unwrap()[0].connections, 1);
        assert!(store.leave(&entry("g", "ann", "1")).await.unwrap().last);
        assert!(store.members("H", "g").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_latest_info_shows_until_the_user_leaves() {
        let store = InMemoryPresence::new();
        let with = |connection: &str, info: &str| GroupEntry {
            info: Some(info.into()),
            ..entry("g", "ann", connection)
        };
        store.join(&with("1", r#"{"name":"Ann"}"#)).await.unwrap();
        store.join(&entry("g", "ann", "2")).await.unwrap();
        let info = |members: Vec<Member>| members[0].info.clone();
        assert_eq!(
            info(store.members("H", "g").await.unwrap()),
            Some(serde_json::json!({"name": "Ann"}))
        );
        store.join(&with("3", r#""away""#)).await.unwrap();
        assert_eq!(
            info(store.members("H", "g").await.unwrap()),
            Some(serde_json::json!("away"))
        );
        for connection in ["1", "2", "3"] {
            store.leave(&entry("g", "ann", connection)).await.unwrap();
        }
        store.join(&entry("g", "ann", "4")).await.unwrap();
        assert_eq!(info(store.members("H", "g").await.unwrap()), None);
    }

    #[tokio::test]
    async fn online_while_a_connection_lasts() {
        let store = InMemoryPresence::new();
        let user = |connection: &str| UserEntry {
            hub: "H".into(),
            user: "ann".into(),
            connection: connection.into(),
        };
        assert!(!store.online("H", "ann").await.unwrap());
        store.connect(&user("1")).await.unwrap();
        store.connect(&user("2")).await.unwrap();
        store.disconnect(&user("1")).await.unwrap();
        assert!(store.online("H", "ann").await.unwrap());
        assert!(!store.online("Other", "ann").await.unwrap());
        store.disconnect(&user("2")).await.unwrap();
        assert!(!store.online("H", "ann").await.unwrap());
    }
}
