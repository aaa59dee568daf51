//! [`Backplane`] for [`PostgresBackplane`]: publishing on the hub's channel, remote group
//! changes and client results. Connections, users and groups coming and going change nothing
//! here (every server of a hub receives all of its messages and filters), so those hooks keep
//! their defaults.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use super::channels::hub_channel;
use super::frame::{Kind, Target};
use super::{AwaitedReturn, Awaiting, PostgresBackplane};
use crate::backplane::wire::{encode_group_command, encode_message, encode_message_with};
use crate::backplane::{Backplane, BackplaneError, BackplaneStats, EncodedMessage, GroupChange, LocalHub, SendTarget};
use crate::protocol::CompletionResult;

impl Backplane for PostgresBackplane {
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
        let channel = hub_channel(&inner.options.prefix, hub);
        let listen = async move {
            if inner
                .listening
                .add(channel.clone(), inner.options.response_timeout)
                .await
                .is_err()
            {
                // The listening connection reconnects and LISTENs to everything again.
                let failed = inner.metrics.failed_subscription();
                tracing::warn!(%channel, failed, "postgres did not take a LISTEN; reconnecting");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(listen);
            }
            Err(_) => tracing::warn!("attach the PostgreSQL backplane from inside a tokio runtime"),
        }
    }

    fn publish(
        &self,
        hub: &str,
        target: &SendTarget,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        let inner = self.inner.clone();
        let none: &[String] = &[];
        let (excluded, groups) = match target {
            SendTarget::AllExcept(excluded) | SendTarget::GroupExcept(_, excluded) => (excluded.as_slice(), None),
            SendTarget::Groups(groups) => (none, Some(groups.as_slice())),
            _ => (none, None),
        };
        let body = encode_message(excluded, &message, &inner.server, groups);
        let frame_target = Target::of(target);
        let channel = hub_channel(&inner.options.prefix, hub);
        let hub = hub.to_string();
        Box::pin(async move {
            inner
                .publish_frame(&channel, Kind::Message, &hub, Some(&frame_target), &body)
                .await
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
        let channel = hub_channel(&inner.options.prefix, hub);
        let body = encode_group_command(id, &inner.server, change, group, connection_id);
        let (hub, connection) = (hub.to_string(), connection_id.to_string());
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            inner.acks.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
            let forget = || inner.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            if let Err(e) = inner
                .publish_frame(&channel, Kind::GroupCommand, &hub, None, &body)
                .await
            {
                forget();
                return Err(e);
            }
            match tokio::time::timeout(inner.options.group_ack_timeout, rx).await {
                Ok(Ok(outcome)) => outcome,
                _ => {
                    forget();
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
        let channel = hub_channel(&inner.options.prefix, hub);
        let reply = (id.as_str(), inner.server_channel.as_str());
        let body = encode_message_with(&[], &message, &inner.server, None, Some(reply));
        let target = Target::Connections(vec![connection_id.to_string()]);
        let (hub, connection) = (hub.to_string(), connection_id.to_string());
        Box::pin(async move {
            let (accepted_tx, accepted) = oneshot::channel();
            let (result_tx, mut result) = oneshot::channel();
            inner.returns.lock().unwrap_or_else(|p| p.into_inner()).insert(
                id.clone(),
                Awaiting {
                    accepted: Some(accepted_tx),
                    result: result_tx,
                },
            );
            // However this ends (answered, failed, timed out or cancelled by the caller), the
            // entry goes.
            let _awaited = AwaitedReturn {
                inner: inner.clone(),
                id,
            };
            inner
                .publish_frame(&channel, Kind::Message, &hub, Some(&target), &body)
                .await?;
            let dropped = || BackplaneError::Unavailable("the backplane was dropped".into());
            // The owner says at once that it took the invocation (its answer may come first
            // if that notice was lost).
            let owned = tokio::time::timeout(inner.options.owner_timeout, async {
                tokio::select! {
                    // An answer that came first wins: taking it dropped the "accepted" sender.
                    biased;
                    answer = &mut result => Some(Some(answer)),
                    taken = accepted => taken.is_ok().then_some(None),
                }
            })
            .await;
            match owned {
                Err(_) | Ok(None) => Err(BackplaneError::UnknownConnection(connection)),
                Ok(Some(Some(answer))) => answer.map_err(|_| dropped()),
                Ok(Some(None)) => result.await.map_err(|_| dropped()),
            }
        })
    }
}
