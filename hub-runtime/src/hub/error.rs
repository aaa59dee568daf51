//! Errors a hub method returns, and how they reach the caller.

use std::borrow::Cow;
use std::fmt;

use crate::options::HubOptions;

mod convert;

/// An error from a hub method (or hook).
///
/// The caller always sees the base text (`An unexpected error occurred invoking 'X' on the
/// server.`). The error's kind and message are appended only when detailed errors are on, or
/// when the error is meant for clients ([`HubError::for_client`], the equivalent of .NET's
/// `HubException`) — internal messages never leak by default.
///
/// A hub method may also return `anyhow::Result<T>` (feature `anyhow`, on by default) or
/// `Result<T, Box<dyn std::error::Error + Send + Sync>>`: both convert into a `HubError` (kind
/// `Exception`, the message with its causes), and a `HubError` inside them is kept as it is.
/// hub's own errors ([`SendError`](crate::SendError), [`GroupError`](crate::GroupError), …),
/// `std::io::Error` and `serde_json::Error` convert with `?` (kind: the error type's name). For
/// an error type of your own, implement `From<MyError> for HubError`, with
/// [`HubError::from_error`] to keep its type name and message.
///
/// ```
/// use hub_runtime::HubError;
/// let e = HubError::for_client("room is full");
/// assert_eq!(e.detail(), "HubException: room is full");
/// let e = HubError::new("something broke").with_kind("InvalidOperationException");
/// assert_eq!(e.detail(), "InvalidOperationException: something broke");
/// assert!(!e.is_for_client());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HubError {
    kind: Cow<'static, str>,
    message: String,
    for_client: bool,
}

impl HubError {
    /// An internal error: its message reaches clients only with detailed errors on.
    pub fn new(message: impl Into<String>) -> Self {
        HubError {
            kind: Cow::Borrowed("Exception"),
            message: message.into(),
            for_client: false,
        }
    }

    /// An error meant for the client: its message is always shown (kind `HubException`).
    pub fn for_client(message: impl Into<String>) -> Self {
        HubError {
            kind: Cow::Borrowed("HubException"),
            message: message.into(),
            for_client: true,
        }
    }

    /// Sets the kind shown before the message (a .NET exception type name, for example).
    pub fn with_kind(mut self, kind: impl Into<Cow<'static, str>>) -> Self {
        self.kind = kind.into();
        self
    }

    /// The error's kind (`HubException`, `InvalidOperationException`, a Rust type name…).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether clients always see the message.
    pub fn is_for_client(&self) -> bool {
        self.for_client
    }

    /// `Kind: message`, as appended to the base text.
    pub fn detail(&self) -> String {
        format!("{}: {}", self.kind, self.message)
    }

    /// The text a client sees: `base`, plus the detail when allowed.
    pub(crate) fn client_text(&self, base: &str, detail: ErrorDetail) -> String {
        if detail == ErrorDetail::Shown || self.for_client {
            format!("{base} {}", self.detail())
        } else {
            base.to_string()
        }
    }
}

/// Whether the texts a client gets for failures carry their detail (the error's kind and
/// message, a panic's text): `HubOptions::detailed_errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorDetail {
    /// Only errors meant for clients say more than the base text.
    Hidden,
    /// Every failure's detail follows the base text.
    Shown,
}

impl ErrorDetail {
    /// What the options ask for.
    pub(crate) fn of(options: &HubOptions) -> Self {
        if options.detailed_errors {
            ErrorDetail::Shown
        } else {
            ErrorDetail::Hidden
        }
    }
}

impl fmt::Debug for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HubError({}: {})", self.kind, self.message)
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for HubError {}

/// Why a connection ended, as `on_disconnected` sees it (`None` there means a clean close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    message: String,
}

impl ConnectionError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConnectionError {
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_follow_the_reference_server() {
        let base = "An unexpected error occurred invoking 'X' on the server.";
        let internal = HubError::new("secret");
        assert_eq!(internal.client_text(base, ErrorDetail::Hidden), base);
        assert_eq!(
            internal.client_text(base, ErrorDetail::Shown),
            format!("{base} Exception: secret")
        );
        let visible = HubError::for_client("nope");
        assert_eq!(
            visible.client_text(base, ErrorDetail::Hidden),
            format!("{base} HubException: nope")
        );
        let io: HubError = std::io::Error::other("disk").into();
        assert_eq!(io.kind(), "Error");
        let parse = HubError::from_error(&"x".parse::<i32>().unwrap_err());
        assert_eq!(parse.kind(), "ParseIntError");
    }
}
