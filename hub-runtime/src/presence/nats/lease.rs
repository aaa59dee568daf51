//! Leases and sweeps: each server (incarnation) has a registration `{base}.r.{server}` and a
//! lease `{lease_base}.{server}` in a stream whose messages expire after the lease (the NATS
//! server's clock); a registered server without a lease died or was cut off, and any live
//! server claims it (compare-and-set on its registration), removes its connections from every
//! entry, and deletes its registration.

use std::collections::HashSet;

use bytes::Bytes;

use super::broker::Cas;
use super::state::{self, Key, State};
use super::{unavailable, NatsPresence};
use crate::presence::{Expired, PresenceError, Restored};

/// A server's registration: who claimed it for a sweep, if anyone.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Registration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claimed_by: Option<String>,
}

impl Registration {
    fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A stored registration; one that is not readable counts as claimed by nobody.
    fn decode(payload: &[u8]) -> Registration {
        serde_json::from_slice(payload).unwrap_or_default()
    }
}

impl NatsPresence {
    fn registration_subject(&self, server: &str) -> String {
        format!("{}.r.{server}", self.inner.base)
    }

    fn lease_subject(&self, server: &str) -> String {
        format!("{}.{server}", self.inner.lease_base)
    }

    /// The servers holding a lease (`leases`), or registered.
    async fn servers(&self, leases: bool) -> Result<HashSet<String>, PresenceError> {
        let (broker, filter) = if leases {
            (&self.inner.leases, format!("{}.*", self.inner.lease_base))
        } else {
            (&self.inner.entries, format!("{}.r.*", self.inner.base))
        };
        let subjects = broker.subjects(&filter).await.map_err(unavailable)?;
        Ok(subjects
            .iter()
            .filter_map(|subject| subject.rsplit('.').next())
            .map(str::to_string)
            .collect())
    }

    /// Renews this server's lease; writes its entries again, under a new server name, if it
    /// was swept (see [`PresenceStore::refresh`](crate::presence::PresenceStore::refresh)).
    pub(super) async fn renew(&self) -> Result<Vec<Restored>, PresenceError> {
        let _one_at_a_time = self.inner.renewing.lock().await;
        let (server, registered) = {
            let incarnation = self.lock_incarnation();
            (incarnation.server.clone(), incarnation.registered)
        };
        let entries = &self.inner.entries;
        self.inner
            .leases
            .put(&self.lease_subject(&server), Bytes::new())
            .await
            .map_err(unavailable)?;
        let registration = entries
            .last(&self.registration_subject(&server))
            .await
            .map_err(unavailable)?;
        let claimed = match &registration {
            Some(stored) => Registration::decode(&stored.payload).claimed_by.is_some(),
            None => registered,
        };
        if registration.is_some() && !claimed {
            return Ok(Vec::new());
        }
        // Swept (or being swept) while alive: go on as a new server, whose entries nobody
        // sweeps for the old one. (Or just started: register.)
        let server = if claimed {
            let next = crate::connection::random_id();
            self.inner
                .leases
                .put(&self.lease_subject(&next), Bytes::new())
                .await
                .map_err(unavailable)?;
            tracing::warn!(old = %server, new = %next, "this server's presence entries were swept while it was alive (cut off from NATS longer than its lease): writing them again");
            next
        } else {
            server
        };
        entries
            .put(&self.registration_subject(&server), Registration::default().encode())
            .await
            .map_err(unavailable)?;
        {
            let mut incarnation = self.lock_incarnation();
            incarnation.server = server.clone();
            incarnation.registered = true;
        }
        let own: Vec<_> = self.lock_own().values().cloned().collect();
        let mut restored = Vec::new();
        for entry in own {
            let joined = state::update(entries, &self.inner.base, &entry.key, |state| {
                state::join(state, &entry.connection, &server, entry.info.as_deref())
            })
            .await?;
            if joined.added && joined.count == 1 {
                if let Some(group) = entry.key.group {
                    restored.push(Restored {
                        hub: entry.key.hub,
                        group,
                        user: entry.key.user,
                    });
                }
            }
        }
        Ok(restored)
    }

    /// Sweeps every registered server without a lease.
    pub(super) async fn sweep_dead(&self) -> Result<Vec<Expired>, PresenceError> {
        // Registrations first: a server takes its lease before it registers, so one listed
        // here and not in the leases listed after has no lease indeed.
        let registered = self.servers(false).await?;
        let leased = self.servers(true).await?;
        let mut claimed = Vec::new();
        for server in registered.difference(&leased) {
            if self.claim(server, Some(&leased)).await? {
                claimed.push(server.clone());
            }
        }
        self.remove_servers(&claimed).await
    }

    /// Removes `server`'s entries now, as a sweep does once its lease ran out; the users who
    /// left a group that way. If `server` is alive, its next renewal finds it was swept and
    /// writes its entries again under a new name.
    pub(super) async fn evict_server(&self, server: &str) -> Result<Vec<Expired>, PresenceError> {
        if !self.claim(server, None).await? {
            return Ok(Vec::new());
        }
        self.remove_servers(&[server.to_string()]).await
    }

    /// Claims a server for this one to sweep. With `leased` (the servers holding a lease), a
    /// claim by another live server is left alone.
    async fn claim(&self, server: &str, leased: Option<&HashSet<String>>) -> Result<bool, PresenceError> {
        let me = self.server_name();
        let subject = self.registration_subject(server);
        let Some(stored) = self.inner.entries.last(&subject).await.map_err(unavailable)? else {
            return Ok(false); // swept already
        };
        let current = Registration::decode(&stored.payload);
        match (&current.claimed_by, leased) {
            (Some(by), _) if *by == me => return Ok(true),
            (Some(by), Some(leased)) if leased.contains(by) => return Ok(false),
            _ => {}
        }
        let claim = Registration { claimed_by: Some(me) }.encode();
        let cas = self
            .inner
            .entries
            .compare_and_set(&subject, claim, stored.sequence)
            .await
            .map_err(unavailable)?;
        Ok(cas != Cas::Conflict)
    }

    /// Removes the connections of `servers` (claimed by this one) from every entry, then their
    /// registrations and leases.
    async fn remove_servers(&self, servers: &[String]) -> Result<Vec<Expired>, PresenceError> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let base = &self.inner.base;
        let registrations = format!("{base}.r.");
        let stored = self
            .inner
            .entries
            .scan(&format!("{base}.>"))
            .await
            .map_err(unavailable)?;
        let mut expired = Vec::new();
        for stored in stored {
            if stored.subject.starts_with(&registrations) {
                continue;
            }
            let Some(state) = State::decode(&stored.payload) else {
                continue;
            };
            if !state.connections.values().any(|server| servers.contains(server)) {
                continue;
            }
            let key: Key = state.key();
            if key.subject(base) != stored.subject {
                continue; // not written by a store: left alone
            }
            let last = state::update(&self.inner.entries, base, &key, |state| state::sweep(state, servers)).await?;
            if let (true, Some(group)) = (last, key.group) {
                expired.push(Expired {
                    hub: key.hub,
                    group,
                    user: key.user,
                });
            }
        }
        for server in servers {
            let purged = self.inner.entries.purge(&self.registration_subject(server), None).await;
            purged.map_err(unavailable)?;
            let purged = self.inner.leases.purge(&self.lease_subject(server), None).await;
            purged.map_err(unavailable)?;
        }
        Ok(expired)
    }
}
