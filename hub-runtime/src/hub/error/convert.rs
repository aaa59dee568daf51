//! What converts into a [`HubError`]: boxed errors, `anyhow::Error`, hub's own errors, and any
//! error type through [`HubError::from_error`].

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;

use super::HubError;

impl HubError {
    /// An internal error made from any `std::error::Error`: kind the error type's name
    /// (`ParseIntError`), message its text. A `HubError` comes back as it is.
    ///
    /// Use it to let `?` convert an error type of your own in hub methods that return
    /// `Result<T, HubError>`:
    ///
    /// ```
    /// use hub_runtime::HubError;
    ///
    /// #[derive(Debug)]
    /// struct RoomFull;
    /// impl std::fmt::Display for RoomFull {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("the room is full")
    ///     }
    /// }
    /// impl std::error::Error for RoomFull {}
    ///
    /// impl From<RoomFull> for HubError {
    ///     fn from(e: RoomFull) -> Self {
    ///         HubError::from_error(&e)
    ///     }
    /// }
    ///
    /// let e: HubError = RoomFull.into();
    /// assert_eq!(e.detail(), "RoomFull: the room is full");
    /// assert!(!e.is_for_client());
    /// ```
    pub fn from_error<E: Error + 'static>(error: &E) -> HubError {
        if let Some(hub) = (error as &dyn Any).downcast_ref::<HubError>() {
            return hub.clone();
        }
        HubError {
            kind: Cow::Borrowed(short_type_name::<E>()),
            message: error.to_string(),
            for_client: false,
        }
    }

    /// A boxed error: the `HubError` it holds, or an internal error (kind `Exception`) whose
    /// message is the error's text followed by its causes (`outer: inner`).
    fn from_dyn(error: &(dyn Error + 'static)) -> HubError {
        if let Some(hub) = error.downcast_ref::<HubError>() {
            return hub.clone();
        }
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HubError::new(message)
    }
}

/// The last segment of a type's path, without generic arguments (`ParseIntError`).
fn short_type_name<E: ?Sized>() -> &'static str {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// What a hub method returning `Result<T, Box<dyn Error + Send + Sync>>` fails with.
///
/// ```
/// use hub_runtime::HubError;
/// let boxed: Box<dyn std::error::Error + Send + Sync> = "no such room".into();
/// assert_eq!(HubError::from(boxed).detail(), "Exception: no such room");
/// let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(HubError::for_client("full"));
/// assert!(HubError::from(boxed).is_for_client());
/// ```
impl From<Box<dyn Error + Send + Sync>> for HubError {
    fn from(error: Box<dyn Error + Send + Sync>) -> Self {
        HubError::from_dyn(&*error)
    }
}

/// Like `Box<dyn Error + Send + Sync>`, for errors that are not `Send`.
impl From<Box<dyn Error>> for HubError {
    fn from(error: Box<dyn Error>) -> Self {
        HubError::from_dyn(&*error)
    }
}

/// What a hub method returning `anyhow::Result<T>` fails with: the `HubError` the error holds
/// (context added to it is not shown), or an internal error (kind `Exception`) whose message is
/// the error with its causes, as `{:#}` prints it.
///
/// ```
/// use anyhow::Context;
/// use hub_runtime::HubError;
/// let e = Err::<(), _>(std::io::Error::other("disk full")).context("saving the room").unwrap_err();
/// assert_eq!(HubError::from(e).detail(), "Exception: saving the room: disk full");
/// let e = anyhow::Error::new(HubError::for_client("room is full")).context("joining");
/// assert_eq!(HubError::from(e).detail(), "HubException: room is full");
/// ```
#[cfg(feature = "anyhow")]
impl From<anyhow::Error> for HubError {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast_ref::<HubError>() {
            Some(hub) => hub.clone(),
            None => HubError::new(format!("{error:#}")),
        }
    }
}

/// `?` on these errors in hub methods returning `Result<T, HubError>`: kind the type's name.
macro_rules! from_errors {
    ($($ty:ty),* $(,)?) => {$(
        impl From<$ty> for HubError {
            fn from(error: $ty) -> Self {
                HubError::from_error(&error)
            }
        }
    )*};
}

from_errors!(
    crate::clients::SendError,
    crate::backplane::GroupError,
    crate::backplane::BackplaneError,
    crate::presence::PresenceError,
    crate::history::HistoryError,
    crate::connection::OutboxError,
    crate::auth::AuthError,
    crate::hub::ConnectionError,
    crate::protocol::EncodeError,
    crate::protocol::DecodeError,
    crate::protocol::ProtocolError,
    crate::protocol::handshake::HandshakeError,
    std::io::Error,
    serde_json::Error,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("could not save")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn own_errors_keep_the_old_kinds_and_texts() {
        let e: HubError = crate::clients::SendError::GroupNameTooLong(8).into();
        assert_eq!(e.detail(), "SendError: a group name may be at most 8 bytes long");
        let e: HubError = crate::backplane::GroupError::LimitReached(2).into();
        assert_eq!(e.detail(), "GroupError: a connection may belong to at most 2 groups");
        let e: HubError = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert_eq!(e.kind(), "Error");
        assert!(!e.is_for_client());
    }

    #[test]
    fn boxed_errors_carry_their_causes_and_keep_a_hub_error() {
        let boxed: Box<dyn Error + Send + Sync> = Box::new(Outer(std::io::Error::other("disk full")));
        assert_eq!(HubError::from(boxed).detail(), "Exception: could not save: disk full");
        let boxed: Box<dyn Error> = Box::new(HubError::new("x").with_kind("TimeoutException"));
        assert_eq!(HubError::from(boxed).kind(), "TimeoutException");
        let same = HubError::from_error(&HubError::for_client("hi"));
        assert_eq!(same, HubError::for_client("hi"));
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn anyhow_errors_carry_their_causes_and_keep_a_hub_error() {
        let e = anyhow::Error::new(Outer(std::io::Error::other("disk full")));
        assert_eq!(HubError::from(e).message(), "could not save: disk full");
        let e = anyhow::Error::new(HubError::for_client("room is full"));
        assert!(HubError::from(e).is_for_client());
    }
}
