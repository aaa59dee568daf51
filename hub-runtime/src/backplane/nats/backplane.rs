//! [`Backplane`] for [`NatsBackplane`]: publishing, remote group changes and client results,
//! and the subscriptions that follow local connections, users and groups.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::frames::Kind;
use super::requests::{read_ack, read_return};
use super::{InFlight, NatsBackplane, Route};
use crate::backplane::wire::{encode_group_command, encode_message, encode_message_with};
use crate::backplane::{Backplane, BackplaneError, BackplaneStats, EncodedMessage, GroupChange, LocalHub, SendTarget};
use crate::protocol::CompletionResult;

/// One payload to publish: its subject, the name it carries, and the wire envelope.
struct Outgoing {
    subject: String,
    name: Option<String>,
    payload: Vec<u8>,
}

impl Backplane for NatsBackplane {
    fn is_distributed(&self) -> bool {
        true
    }

    fn stats(&self) -> BackplaneStats {
        self.inner.metrics.stats()
    }

    fn attach_hub(&self, hub: &str, local: Arc<dyn LocalHub>) {
        self.inner
            .hubs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hub.to_string(), local);
        let inner = self.inner.clone();
        let hub = hub.to_string();
        let subscribe = async move {
            let subject = inner.subjects(&hub).all();
            inner.subscriptions.add(subject, Route::All(hub)).await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(subscribe);
            }
            Err(_) => tracing::warn!("attach the NATS backplane from inside a tokio runtime"),
        }
    }

    fn publish(
        &self,
        hub: &str,
        target: &SendTarget,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        let inner = self.inner.clone();
        let subjects = inner.subjects(hub);
        let origin = inner.server.as_str();
        let none: &[String] = &[];
        let mut out: Vec<Outgoing> = Vec::new();
        let mut add = |subject: String, name: Option<&str>, excluded: &[String], groups: Option<&[String]>| {
            out.push(Outgoing {
                subject,
                name: name.map(str::to_owned),
                payload: encode_message(excluded, &message, origin, groups),
            });
        };
        match target {
            SendTarget::All => add(subjects.all(), None, none, None),
            SendTarget::AllExcept(excluded) => add(subjects.all(), None, excluded, None),
            SendTarget::Connection(id) => add(subjects.connection(id), Some(id), none, None),
            SendTarget::Connections(ids) => {
                let mut seen = HashSet::new();
                for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                    add(subjects.connection(id), Some(id), none, None);
                }
            }
            SendTarget::Group(group) => add(subjects.group(group), Some(group), none, None),
            SendTarget::Groups(groups) => add(subjects.all(), None, none, Some(groups)),
            SendTarget::GroupExcept(group, excluded) => add(subjects.group(group), Some(group), excluded, None),
            SendTarget::User(user) => add(subjects.user(user), Some(user), none, None),
            SendTarget::Users(users) => {
                let mut seen = HashSet::new();
                for user in users.iter().filter(|u| seen.insert(u.as_str())) {
                    add(subjects.user(user), Some(user), none, None);
                }
            }
        }
        Box::pin(async move {
            let mut result = Ok(());
            for outgoing in out {
                let sent = match inner.frames(Kind::Message, outgoing.name.as_deref(), &outgoing.payload) {
                    Ok(frames) => inner.publish(outgoing.subject, frames).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = sent {
                    result = Err(e);
                }
            }
            result
        })
    }

    fn change_remote_group(
        &self,
        hub: &str,
        connection_id: &str,
        group: &str,
        change: GroupChange,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        let inner = self.inner.clone();
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let subject = inner.subjects(hub).connection(connection_id);
        let payload = encode_group_command(id, &inner.server, change, group, connection_id);
        let connection = connection_id.to_string();
        Box::pin(async move {
            let timeout = inner.options.group_ack_timeout;
            let answer = inner
                .request(subject, Kind::GroupCommand, &connection, &payload, timeout)
                .await?;
            read_ack(answer, id, connection)
        })
    }

    fn invoke_remote(
        &self,
        hub: &str,
        connection_id: &str,
        invocation_id: &str,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<CompletionResult, BackplaneError>> {
        let inner = self.inner.clone();
        let subject = inner.subjects(hub).connection(connection_id);
        // The answer comes as the request's reply: no return address.
        let payload = encode_message_with(&[], &message, &inner.server, None, Some((invocation_id, "")));
        let (connection, invocation_id) = (connection_id.to_string(), invocation_id.to_string());
        Box::pin(async move {
            // However this ends (answered, failed, timed out or cancelled), it is no longer
            // pending.
            let _awaited = InFlight::start(&inner.awaited);
            let timeout = inner.options.client_result_timeout;
            let answer = inner
                .request(subject, Kind::Invocation, &connection, &payload, timeout)
                .await?;
            read_return(answer, &invocation_id, connection)
        })
    }

    fn connection_added(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let subjects = inner.subjects(hub);
        let connection = (
            subjects.connection(connection_id),
            Route::Connection(hub.into(), connection_id.into()),
        );
        let user = user.map(|u| (subjects.user(u), Route::User(hub.into(), u.into())));
        Box::pin(async move {
            let subscriptions = &inner.subscriptions;
            match user {
                // Both at once: neither waits for the other's confirmation.
                Some((subject, route)) => {
                    tokio::join!(
                        subscriptions.add(connection.0, connection.1),
                        subscriptions.add(subject, route)
                    );
                }
                None => subscriptions.add(connection.0, connection.1).await,
            }
        })
    }

    fn connection_removed(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let subjects = inner.subjects(hub);
        let connection = subjects.connection(connection_id);
        let user = user.map(|u| subjects.user(u));
        Box::pin(async move {
            let subscriptions = &inner.subscriptions;
            match user {
                Some(subject) => {
                    tokio::join!(subscriptions.remove(connection), subscriptions.remove(subject));
                }
                None => subscriptions.remove(connection).await,
            }
        })
    }

    fn group_added(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let subject = inner.subjects(hub).group(group);
        let route = Route::Group(hub.into(), group.into());
        Box::pin(async move { inner.subscriptions.add(subject, route).await })
    }

    fn group_removed(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let subject = inner.subjects(hub).group(group);
        Box::pin(async move { inner.subscriptions.remove(subject).await })
    }
}
