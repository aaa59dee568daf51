//! Which groups of a hub keep a history, and how much.

use std::time::Duration;

use super::HistoryLimits;

/// Which group names a [`HistoryRule`] covers.
///
/// ```
/// use hub_runtime::history::GroupPattern;
/// assert!(GroupPattern::Prefix("durable-".into()).matches("durable-a"));
/// assert!(GroupPattern::Exact("news".into()).matches("news"));
/// assert!(!GroupPattern::Exact("news".into()).matches("news2"));
/// assert!(GroupPattern::Any.matches("anything"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupPattern {
    /// Every group whose name starts with this.
    Prefix(String),
    /// Exactly this group.
    Exact(String),
    /// Every group.
    Any,
}

impl GroupPattern {
    /// Whether `group` matches.
    pub fn matches(&self, group: &str) -> bool {
        match self {
            GroupPattern::Prefix(prefix) => group.starts_with(prefix.as_str()),
            GroupPattern::Exact(name) => group == name,
            GroupPattern::Any => true,
        }
    }
}

/// Opts groups of a hub into history: set on the hub's endpoint with
/// [`EndpointOptions::history`](crate::EndpointOptions::history) (give every path of one hub
/// type the same rules). The first rule that matches a group decides its limits.
///
/// ```
/// use std::time::Duration;
/// use hub_runtime::history::{GroupPattern, HistoryRule};
/// let rule = HistoryRule::prefix("durable-").max_len(500).ttl(Duration::from_secs(60));
/// assert!(rule.groups.matches("durable-news"));
/// assert!(!rule.groups.matches("news"));
/// assert_eq!(rule.limits.max_len, 500);
/// assert_eq!(HistoryRule::new(GroupPattern::Any).limits.max_len, 1000);
/// // Limits never drop to nothing.
/// let tiny = HistoryRule::prefix("x").max_len(0).ttl(Duration::ZERO);
/// assert_eq!((tiny.limits.max_len, tiny.limits.ttl), (1, Duration::from_millis(1)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRule {
    /// The groups covered.
    pub groups: GroupPattern,
    /// How much each keeps.
    pub limits: HistoryLimits,
}

impl HistoryRule {
    /// The default limits: 1000 messages, 300 s.
    pub const DEFAULT_LIMITS: HistoryLimits = HistoryLimits {
        max_len: 1000,
        ttl: Duration::from_secs(300),
    };

    /// Covers `groups` with the default limits.
    pub fn new(groups: GroupPattern) -> Self {
        HistoryRule {
            groups,
            limits: Self::DEFAULT_LIMITS,
        }
    }

    /// Covers the groups whose name starts with `prefix`, with the default limits.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        HistoryRule::new(GroupPattern::Prefix(prefix.into()))
    }

    /// Keeps at most `max_len` messages per group (at least 1).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.limits.max_len = max_len.max(1);
        self
    }

    /// Keeps no message longer than `ttl` (at least 1 ms).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.limits.ttl = ttl.max(Duration::from_millis(1));
        self
    }
}
