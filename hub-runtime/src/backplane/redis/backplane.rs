//! [`Backplane`] for [`RedisBackplane`]: publishing, remote group changes and client results,
//! and the subscriptions that follow local connections, users and groups.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use super::{AwaitedReturn, RedisBackplane, Route};
use crate::backplane::wire::{encode_group_command, encode_message, encode_message_with};
use crate::backplane::SendTarget;
use crate::backplane::{Backplane, BackplaneError, BackplaneStats, EncodedMessage, GroupChange, LocalHub};
use crate::protocol::CompletionResult;

impl Backplane for RedisBackplane {
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
            let subscriptions = &inner.subscriptions;
            subscriptions
                .add(inner.channel(&hub, "all"), Route::All(hub.clone()))
                .await;
            subscriptions
                .add(
                    inner.channel(&hub, "internal:groups"),
                    Route::GroupCommands(hub.clone()),
                )
                .await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(subscribe);
            }
            Err(_) => tracing::warn!("attach the Redis backplane from inside a tokio runtime"),
        }
    }

    fn publish(
        &self,
        hub: &str,
        target: &SendTarget,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        let inner = self.inner.clone();
        let origin = &inner.server;
        let none: &[String] = &[];
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut add = |channel: String, excluded: &[String], groups: Option<&[String]>| {
            out.push((channel, encode_message(excluded, &message, origin, groups)));
        };
        match target {
            SendTarget::All => add(inner.channel(hub, "all"), none, None),
            SendTarget::AllExcept(excluded) => add(inner.channel(hub, "all"), excluded, None),
            SendTarget::Connection(id) => add(inner.channel(hub, &format!("connection:{id}")), none, None),
            SendTarget::Connections(ids) => {
                let mut seen = std::collections::HashSet::new();
                for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                    add(inner.channel(hub, &format!("connection:{id}")), none, None);
                }
            }
            SendTarget::Group(group) => add(inner.channel(hub, &format!("group:{group}")), none, None),
            SendTarget::Groups(groups) => add(inner.channel(hub, "all"), none, Some(groups)),
            SendTarget::GroupExcept(group, excluded) => {
                add(inner.channel(hub, &format!("group:{group}")), excluded, None)
            }
            SendTarget::User(user) => add(inner.channel(hub, &format!("user:{user}")), none, None),
            SendTarget::Users(users) => {
                let mut seen = std::collections::HashSet::new();
                for user in users.iter().filter(|u| seen.insert(u.as_str())) {
                    add(inner.channel(hub, &format!("user:{user}")), none, None);
                }
            }
        }
        Box::pin(async move {
            let mut result = Ok(());
            for (channel, payload) in out {
                if let Err(e) = inner.publish(&channel, payload).await {
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
        let channel = inner.channel(hub, "internal:groups");
        let payload = encode_group_command(id, &inner.server, change, group, connection_id);
        let connection = connection_id.to_string();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            inner.acks.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
            if let Err(e) = inner.publish(&channel, payload).await {
                inner.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                return Err(e);
            }
            match tokio::time::timeout(inner.options.group_ack_timeout, rx).await {
                Ok(Ok(outcome)) => outcome,
                _ => {
                    inner.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    Err(BackplaneError::UnknownConnection(connection))
                }
            }
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
        let id = invocation_id.to_string();
        let channel = inner.channel(hub, &format!("connection:{connection_id}"));
        let reply_to = inner.channel_for_returns(&inner.server);
        let payload = encode_message_with(&[], &message, &inner.server, None, Some((&id, &reply_to)));
        let connection = connection_id.to_string();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            inner
                .returns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), tx);
            // However this ends (answered, failed, timed out or cancelled by the caller), the
            // entry goes.
            let _awaited = AwaitedReturn {
                inner: inner.clone(),
                id,
            };
            match inner.publish_counted(&channel, payload).await {
                Err(e) => Err(e),
                Ok(0) => Err(BackplaneError::UnknownConnection(connection)),
                Ok(_) => rx
                    .await
                    .map_err(|_| BackplaneError::Unavailable("the backplane was dropped".into())),
            }
        })
    }

    fn connection_added(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let connection = (
            inner.channel(hub, &format!("connection:{connection_id}")),
            Route::Connection(hub.into(), connection_id.into()),
        );
        let user = user.map(|u| {
            (
                inner.channel(hub, &format!("user:{u}")),
                Route::User(hub.into(), u.into()),
            )
        });
        Box::pin(async move {
            let subscriptions = &inner.subscriptions;
            match user {
                // Both at once: neither waits for the other's answer.
                Some((channel, route)) => {
                    tokio::join!(
                        subscriptions.add(connection.0, connection.1),
                        subscriptions.add(channel, route)
                    );
                }
                None => subscriptions.add(connection.0, connection.1).await,
            }
        })
    }

    fn connection_removed(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let connection = inner.channel(hub, &format!("connection:{connection_id}"));
        let user = user.map(|u| inner.channel(hub, &format!("user:{u}")));
        Box::pin(async move {
            let subscriptions = &inner.subscriptions;
            match user {
                Some(channel) => {
                    tokio::join!(subscriptions.remove(connection), subscriptions.remove(channel));
                }
                None => subscriptions.remove(connection).await,
            }
        })
    }

    fn group_added(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let channel = inner.channel(hub, &format!("group:{group}"));
        let route = Route::Group(hub.into(), group.into());
        Box::pin(async move { inner.subscriptions.add(channel, route).await })
    }

    fn group_removed(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        let channel = inner.channel(hub, &format!("group:{group}"));
        Box::pin(async move { inner.subscriptions.remove(channel).await })
    }
}
