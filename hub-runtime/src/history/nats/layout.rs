//! Names and shapes on NATS: the stream of each set of limits, the subject of each group, the
//! headers every stored message carries, and reading them back without trusting them.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, DiscardPolicy, Republish, RetentionPolicy, StorageType};
use async_nats::HeaderMap;

use super::super::{Durable, HistoryKey, HistoryLimits, Position};
use crate::backplane::nats::subjects::token;

/// The epoch of the group's history this message belongs to.
pub(super) const EPOCH: &str = "Hub-Epoch";
/// The message's offset in its epoch; 0 marks the start of an epoch nothing was published to yet.
pub(super) const OFFSET: &str = "Hub-Offset";
/// JetStream's compare-and-set: stored only if the subject's last message has this stream
/// sequence (0: the subject has none).
pub(super) const EXPECTED_LAST: &str = "Nats-Expected-Last-Subject-Sequence";

/// The names of one prefix's streams and subjects.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// The first subject token(s).
    pub(super) prefix: String,
}

impl Layout {
    /// `{prefix}_history_{max_len}_{ttl ms}`: one stream per set of limits (a stream name may
    /// not hold `.`, so the prefix's dots and any other odd character become `_`).
    pub(super) fn stream(&self, limits: HistoryLimits) -> String {
        let prefix: String = self
            .prefix
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        format!("{prefix}_history_{}", limits_token(limits))
    }

    /// `{prefix}._history.{max_len}_{ttl ms}.{hub}.{group}`: where a group's messages are
    /// published and stored.
    pub(super) fn subject(&self, key: &HistoryKey, limits: HistoryLimits) -> String {
        format!(
            "{}._history.{}.{}.{}",
            self.prefix,
            limits_token(limits),
            token(&key.hub),
            token(&key.group)
        )
    }

    /// `{prefix}._history_live.{hub}.{group}`: where the stream republishes a group's messages
    /// once stored (the same for every set of limits, so watching needs none).
    pub(super) fn live(&self, key: &HistoryKey) -> String {
        format!(
            "{}._history_live.{}.{}",
            self.prefix,
            token(&key.hub),
            token(&key.group)
        )
    }

    /// `{prefix}._confirm`: nobody listens; a request there confirms earlier subscriptions.
    pub(super) fn confirm(&self) -> String {
        format!("{}._confirm", self.prefix)
    }

    /// The stream of `limits`: its groups' subjects, at most `max_len` messages per subject and
    /// none older than the TTL, on disk, each stored message republished to its group's live
    /// subject.
    pub(super) fn config(&self, limits: HistoryLimits) -> Config {
        let subjects = format!("{}._history.{}.*.*", self.prefix, limits_token(limits));
        Config {
            name: self.stream(limits),
            description: Some("hub: durable groups' history".into()),
            subjects: vec![subjects.clone()],
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: i64::try_from(limits.max_len.max(1)).unwrap_or(i64::MAX),
            max_age: max_age(limits.ttl),
            storage: StorageType::File,
            num_replicas: 1,
            republish: Some(Republish {
                source: subjects,
                destination: format!("{}._history_live.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}", self.prefix),
                headers_only: false,
            }),
            ..Default::default()
        }
    }
}

/// `{max_len}_{ttl ms}`.
fn limits_token(limits: HistoryLimits) -> String {
    format!("{}_{}", limits.max_len.max(1), max_age(limits.ttl).as_millis())
}

/// The TTL in whole milliseconds (at least one).
fn max_age(ttl: Duration) -> Duration {
    Duration::from_millis(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// What a stored message says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) epoch: String,
    pub(super) offset: i64,
}

/// The stamp in a message's headers; `None` when they are missing or malformed.
pub(super) fn stamp(headers: Option<&HeaderMap>) -> Option<Stamp> {
    let headers = headers?;
    let epoch = headers.get(EPOCH)?.as_str();
    let offset = headers.get(OFFSET)?.as_str().parse::<i64>().ok()?;
    if epoch.is_empty() || offset < 0 {
        return None;
    }
    Some(Stamp {
        epoch: epoch.to_string(),
        offset,
    })
}

/// The headers of a message to store.
pub(super) fn headers(stamp: &Stamp, expected_last: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(EPOCH, stamp.epoch.as_str());
    headers.insert(OFFSET, stamp.offset.to_string().as_str());
    headers.insert(EXPECTED_LAST, expected_last.to_string().as_str());
    headers
}

/// A stored message as history: `None` for an epoch's start marker or malformed data.
pub(super) fn durable(headers: Option<&HeaderMap>, payload: &[u8]) -> Option<Durable> {
    let stamp = stamp(headers)?;
    if stamp.offset == 0 {
        return None;
    }
    let text = std::str::from_utf8(payload).ok()?;
    Some(Durable {
        position: Position::new(stamp.epoch, stamp.offset),
        payload: text.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HistoryLimits {
        HistoryLimits {
            max_len: 100,
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn names_are_valid_for_nats() {
        let layout = Layout {
            prefix: "app.hub".into(),
        };
        assert_eq!(layout.stream(limits()), "app_hub_history_100_60000");
        let key = HistoryKey {
            hub: "Chat".into(),
            group: "a.b *>".into(),
        };
        let subject = layout.subject(&key, limits());
        assert_eq!(subject.split('.').count(), 6, "{subject}");
        assert!(!subject.contains(['*', '>', ' ']), "{subject}");
        assert_eq!(layout.live(&key).split('.').count(), 5);
    }

    #[test]
    fn malformed_stamps_are_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(stamp(Some(&headers)), None);
        headers.insert(EPOCH, "e");
        headers.insert(OFFSET, "x");
        assert_eq!(stamp(Some(&headers)), None);
        headers.insert(OFFSET, "-3");
        assert_eq!(stamp(Some(&headers)), None);
        headers.insert(OFFSET, "0");
        assert_eq!(durable(Some(&headers), b"\"m\""), None, "a marker is no message");
        headers.insert(OFFSET, "2");
        assert_eq!(durable(Some(&headers), &[0xff, 0xfe]), None, "not UTF-8");
        let message = durable(Some(&headers), b"\"m\"").expect("a message");
        assert_eq!(message.position, Position::new("e", 2));
        assert_eq!(stamp(None), None);
    }
}
