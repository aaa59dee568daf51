//! The subscription connection: kept up with backoff, resubscribed after a reconnect, PINGed
//! so that a Redis that stops answering is noticed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::oneshot;

use super::Inner;

/// Keeps the subscription connection: connects (with backoff), subscribes every wanted
/// channel, delivers what arrives, and starts over when the connection is lost or stops
/// answering.
pub(super) async fn subscriber(inner: Arc<Inner>, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        if ready.as_ref().is_some_and(|r| r.is_closed()) {
            // `connect_with` gave up waiting: nobody holds this backplane.
            return;
        }
        let connecting = tokio::time::timeout(inner.options.connect_timeout, inner.client.get_async_pubsub()).await;
        match connecting {
            Ok(Ok(pubsub)) => {
                let (sink, stream) = pubsub.split();
                let (generation, channels) = inner.subscriptions.connecting();
                // One SUBSCRIBE for everything (given longer, for its size); if Redis refuses
                // it, each channel is subscribed (and retried) on its own.
                let mut bulk = sink.clone();
                let wait = inner.options.response_timeout.saturating_mul(2);
                let subscribed = channels.is_empty()
                    || matches!(tokio::time::timeout(wait, bulk.subscribe(&channels)).await, Ok(Ok(())));
                let done: &[String] = if subscribed { &channels } else { &[] };
                inner.subscriptions.connected(generation, sink.clone(), done);
                if let Some(ready) = ready.take() {
                    if ready.send(()).is_err() {
                        // `connect_with` gave up (or was dropped) just before: nobody holds this
                        // backplane. Its connections close as this task ends.
                        inner.subscriptions.disconnected(generation);
                        tracing::debug!("redis backplane subscribed after connect_with gave up; stopping");
                        return;
                    }
                } else {
                    tracing::info!("redis backplane reconnected and resubscribed");
                    inner.refresh_publisher().await;
                }
                backoff = Duration::from_millis(100);
                listen(&inner, sink, stream).await;
                inner.subscriptions.disconnected(generation);
                inner.metrics.gap();
                tracing::warn!("redis backplane subscription lost; reconnecting (local delivery continues)");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "redis backplane cannot connect; retrying"),
            Err(_) => tracing::warn!("redis backplane cannot connect (timed out); retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Delivers what arrives on the subscription connection until it ends or a PING goes
/// unanswered.
async fn listen(inner: &Arc<Inner>, mut sink: PubSubSink, mut stream: PubSubStream) {
    let (keepalive, response_timeout) = (inner.options.keepalive, inner.options.response_timeout);
    let health = async move {
        loop {
            tokio::time::sleep(keepalive).await;
            let ping = tokio::time::timeout(response_timeout, sink.ping::<redis::Value>()).await;
            if !matches!(ping, Ok(Ok(_))) {
                tracing::warn!("redis backplane subscription does not answer PING; reconnecting");
                return;
            }
        }
    };
    let messages = async {
        while let Some(message) = stream.next().await {
            let channel = message.get_channel_name().to_string();
            inner.dispatch(&channel, message.get_payload_bytes());
        }
    };
    tokio::select! {
        () = health => {}
        () = messages => {}
    }
}
