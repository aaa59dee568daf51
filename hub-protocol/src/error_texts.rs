//! The texts the reference server (ASP.NET Core SignalR) sends when something fails, worded as
//! it words them.
//!
//! Clients show these texts to their users and tests compare them, so a server that speaks the
//! protocol sends the same words: each text here is the reference's, its `{0}`, `{1}`
//! placeholders filled by the function of the same name (a constant when there are none).
//! The table tests at the end of this file list every text with the reference's format string
//! as written in its source.
//!
//! Most texts are a plain sentence; with detailed errors on (and always for a `HubException`)
//! the reference appends the error's kind and text: [`with_detail`].

use crate::TransferFormat;

/// `{message} {kind}: {detail}`: a text with the error behind it appended, as the reference
/// does for a `HubException` always and for other errors with detailed errors on
/// (`ErrorMessageHelper.BuildErrorMessage`).
pub fn with_detail(message: &str, kind: &str, detail: &str) -> String {
    format!("{message} {kind}: {detail}")
}

// ---- Invocations: the error of a Completion ------------------------------------------------

/// A hub method failed (or panicked): `An unexpected error occurred invoking '{0}' on the
/// server.`
pub fn invocation_failed(method: &str) -> String {
    format!("An unexpected error occurred invoking '{method}' on the server.")
}

/// An invocation's arguments could not be bound: `Failed to invoke '{0}' due to an error on
/// the server.` (followed by the binding error's detail, see [`with_detail`]).
pub fn binding_failed(method: &str) -> String {
    format!("Failed to invoke '{method}' due to an error on the server.")
}

/// The detail of an invocation of a method the hub does not have (a `HubException`, so
/// always sent: [`unknown_method`]).
pub const METHOD_DOES_NOT_EXIST: &str = "Method does not exist.";

/// The whole text for an invocation of a method the hub does not have: [`binding_failed`]
/// with `HubException: Method does not exist.` appended.
pub fn unknown_method(method: &str) -> String {
    with_detail(&binding_failed(method), "HubException", METHOD_DOES_NOT_EXIST)
}

/// The caller may not invoke the method: `Failed to invoke '{0}' because user is unauthorized`
/// (no final period, as in the reference).
pub fn unauthorized(method: &str) -> String {
    format!("Failed to invoke '{method}' because user is unauthorized")
}

/// A stream invocation reused the id of one still running: `Invocation ID '{0}' is already in
/// use.`
pub fn invocation_id_in_use(id: &str) -> String {
    format!("Invocation ID '{id}' is already in use.")
}

/// A streaming method was invoked with a plain Invocation: `The client attempted to invoke the
/// streaming '{0}' method with a non-streaming invocation.`
pub fn streaming_method_invoked(method: &str) -> String {
    format!("The client attempted to invoke the streaming '{method}' method with a non-streaming invocation.")
}

/// A plain method was invoked with a StreamInvocation: `The client attempted to invoke the
/// non-streaming '{0}' method with a streaming invocation.`
pub fn non_streaming_method_streamed(method: &str) -> String {
    format!("The client attempted to invoke the non-streaming '{method}' method with a streaming invocation.")
}

/// The binding detail for a wrong number of arguments: `Invocation provides {0} argument(s) but
/// target expects {1}.`
pub fn argument_count(provided: usize, expected: usize) -> String {
    format!("Invocation provides {provided} argument(s) but target expects {expected}.")
}

/// The binding detail for arguments of the wrong types.
pub const ARGUMENT_TYPES: &str = "Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.";

/// The detail for a wrong number of client streams: `Client sent {0} stream(s), Hub method
/// expects {1}.`
pub fn stream_count(sent: usize, expected: usize) -> String {
    format!("Client sent {sent} stream(s), Hub method expects {expected}.")
}

/// A server-to-client stream failed after it started.
pub const STREAM_FAILED: &str = "An error occurred on the server while streaming results.";

// ---- The connection: Close messages and what ends a connection ------------------------------

/// The error of a Close message when the server ends a connection because of an error (the
/// error appended with detailed errors on, see [`with_detail`]).
pub const CONNECTION_CLOSED_WITH_ERROR: &str = "Connection closed with an error.";

/// The client sent nothing (not even a ping) for the client timeout.
pub const CLIENT_TIMEOUT: &str = "Client hasn't sent a message/ping within the configured ClientTimeoutInterval.";

/// A Sequence message (stateful reconnect) named a message the server never received.
pub const SEQUENCE_ID_TOO_LARGE: &str = "Sequence ID greater than amount of messages we've received.";

/// One message was larger than the maximum: `The maximum message size of {0}B was exceeded. The
/// message size can be configured in AddHubOptions.`
pub fn message_too_large(limit: usize) -> String {
    format!("The maximum message size of {limit}B was exceeded. The message size can be configured in AddHubOptions.")
}

// ---- The handshake: the error of a handshake response ----------------------------------------

/// Every handshake error caused by a malformed request (the request's problem appended with
/// detailed errors on, see [`with_detail`]).
pub const HANDSHAKE_FAILED: &str = "An unexpected error occurred during connection handshake.";

/// The handshake did not complete in time, or grew larger than the maximum message size.
pub const HANDSHAKE_CANCELED: &str = "Handshake was canceled.";

/// The handshake asked for a protocol the server does not speak: `The protocol '{0}' is not
/// supported.`
pub fn protocol_not_supported(protocol: &str) -> String {
    format!("The protocol '{protocol}' is not supported.")
}

/// The handshake asked for a newer version than the server speaks: `The server does not
/// support version {0} of the '{1}' protocol.`
pub fn version_not_supported(version: u32, protocol: &str) -> String {
    format!("The server does not support version {version} of the '{protocol}' protocol.")
}

/// The protocol needs a transfer format the transport lacks: `Cannot use the '{0}' protocol on
/// the current transport. The transport does not support '{1}' transfer format.`
pub fn transfer_format_not_supported(protocol: &str, format: TransferFormat) -> String {
    format!(
        "Cannot use the '{protocol}' protocol on the current transport. The transport does not support '{}' transfer format.",
        format.as_str()
    )
}

// ---- Reading messages: what is wrong with the input ------------------------------------------

/// A JSON message (or the handshake) lacks a property: `Missing required property '{0}'.`
pub fn missing_property(name: &str) -> String {
    format!("Missing required property '{name}'.")
}

/// A JSON property has the wrong type: `Expected '{0}' to be of type {1}.` (the type as
/// System.Text.Json names token types: `Number`, `String`…).
pub fn expected_type(property: &str, json_type: &str) -> String {
    format!("Expected '{property}' to be of type {json_type}.")
}

/// A JSON Completion carries both a result and an error.
pub const ERROR_AND_RESULT: &str = "The 'error' and 'result' properties are mutually exclusive.";

/// A MessagePack length prefix announces more than 2 GiB.
pub const MESSAGES_OVER_2GB: &str = "Messages over 2GB in size are not supported.";

/// A MessagePack Completion's result kind is not 1, 2 or 3.
pub const INVALID_RESULT_KIND: &str = "Invalid invocation result kind.";

/// A MessagePack field is not a string: `Reading '{0}' as String failed.`
pub fn reading_string_failed(field: &str) -> String {
    format!("Reading '{field}' as String failed.")
}

/// A MessagePack field is not a 32-bit integer: `Reading '{0}' as Int32 failed.`
pub fn reading_int32_failed(field: &str) -> String {
    format!("Reading '{field}' as Int32 failed.")
}

/// A MessagePack field is not a boolean: `Reading '{0}' as Boolean failed.`
pub fn reading_boolean_failed(field: &str) -> String {
    format!("Reading '{field}' as Boolean failed.")
}

/// A MessagePack field is not an array: `Reading array length for '{0}' failed.`
pub fn reading_array_length_failed(field: &str) -> String {
    format!("Reading array length for '{field}' failed.")
}

/// A MessagePack field is not a map: `Reading map length for '{0}' failed.`
pub fn reading_map_length_failed(field: &str) -> String {
    format!("Reading map length for '{field}' failed.")
}

// ---- Negotiate: the error of a negotiate response --------------------------------------------

/// Negotiate asked for a version the server does not speak: `The client requested version
/// '{0}', but the server does not support this version.`
pub fn negotiate_version_not_supported(version: &str) -> String {
    format!("The client requested version '{version}', but the server does not support this version.")
}

/// Negotiate's `negotiateVersion` is not an integer.
pub const NEGOTIATE_VERSION_NOT_INTEGER: &str = "The client requested a non-integer protocol version.";

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills a reference format string's `{0}`, `{1}`… as .NET's string interpolation would.
    fn reference(format: &str, args: &[&str]) -> String {
        let mut text = format.to_owned();
        for (i, arg) in args.iter().enumerate() {
            text = text.replace(&format!("{{{i}}}"), arg);
        }
        text
    }

    /// An entry: a format string as written in the reference's source (dotnet/aspnetcore,
    /// src/SignalR: the hub dispatcher, HubConnectionHandler, HubConnectionContext,
    /// MessageBuffer, the JSON and MessagePack protocols, HttpConnectionDispatcher), its
    /// arguments, and our text. A text the reference composes (`unknown_method`) is written out
    /// whole.
    struct Row<'a>(&'a str, Vec<&'a str>, String);

    /// Checks each entry: the reference's format filled with the arguments is our text.
    fn check(table: &[Row<'_>]) {
        for Row(format, args, ours) in table {
            assert_eq!(&reference(format, args), ours, "{format}");
            assert!(!ours.contains('{'), "a placeholder is left in {ours:?}");
        }
    }

    #[test]
    fn invocation_texts_render_as_the_reference_does() {
        check(&[
            Row("{0} {1}: {2}", vec!["A.", "HubException", "B"], with_detail("A.", "HubException", "B")),
            Row(
                "An unexpected error occurred invoking '{0}' on the server.",
                vec!["Echo"],
                invocation_failed("Echo"),
            ),
            Row(
                "Failed to invoke '{0}' due to an error on the server.",
                vec!["Echo"],
                binding_failed("Echo"),
            ),
            Row("Method does not exist.", vec![], METHOD_DOES_NOT_EXIST.into()),
            Row(
                "Failed to invoke '{0}' due to an error on the server. HubException: Method does not exist.",
                vec!["Nope"],
                unknown_method("Nope"),
            ),
            Row(
                "Failed to invoke '{0}' because user is unauthorized",
                vec!["Admin"],
                unauthorized("Admin"),
            ),
            Row(
                "Invocation ID '{0}' is already in use.",
                vec!["7"],
                invocation_id_in_use("7"),
            ),
            Row(
                "The client attempted to invoke the streaming '{0}' method with a non-streaming invocation.",
                vec!["Counter"],
                streaming_method_invoked("Counter"),
            ),
            Row(
                "The client attempted to invoke the non-streaming '{0}' method with a streaming invocation.",
                vec!["Echo"],
                non_streaming_method_streamed("Echo"),
            ),
            Row(
                "Invocation provides {0} argument(s) but target expects {1}.",
                vec!["1", "2"],
                argument_count(1, 2),
            ),
            Row(
                "Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.",
                vec![],
                ARGUMENT_TYPES.into(),
            ),
            Row(
                "Client sent {0} stream(s), Hub method expects {1}.",
                vec!["0", "1"],
                stream_count(0, 1),
            ),
            Row(
                "An error occurred on the server while streaming results.",
                vec![],
                STREAM_FAILED.into(),
            ),
        ]);
    }

    #[test]
    fn connection_texts_render_as_the_reference_does() {
        check(&[
            Row(
                "Connection closed with an error.",
                vec![],
                CONNECTION_CLOSED_WITH_ERROR.into(),
            ),
            Row(
                "Client hasn't sent a message/ping within the configured ClientTimeoutInterval.",
                vec![],
                CLIENT_TIMEOUT.into(),
            ),
            Row(
                "Sequence ID greater than amount of messages we've received.",
                vec![],
                SEQUENCE_ID_TOO_LARGE.into(),
            ),
            Row(
                "The maximum message size of {0}B was exceeded. The message size can be configured in AddHubOptions.",
                vec!["32768"],
                message_too_large(32768),
            ),
        ]);
    }

    #[test]
    fn handshake_texts_render_as_the_reference_does() {
        check(&[
            Row(
                "An unexpected error occurred during connection handshake.",
                vec![],
                HANDSHAKE_FAILED.into(),
            ),
            Row("Handshake was canceled.", vec![], HANDSHAKE_CANCELED.into()),
            Row(
                "The protocol '{0}' is not supported.",
                vec!["xml"],
                protocol_not_supported("xml"),
            ),
            Row(
                "The server does not support version {0} of the '{1}' protocol.",
                vec!["3", "json"],
                version_not_supported(3, "json"),
            ),
            Row(
                "Cannot use the '{0}' protocol on the current transport. The transport does not support '{1}' transfer format.",
                vec!["messagepack", "Binary"],
                transfer_format_not_supported("messagepack", TransferFormat::Binary),
            ),
        ]);
    }

    #[test]
    fn message_reading_texts_render_as_the_reference_does() {
        check(&[
            Row(
                "Missing required property '{0}'.",
                vec!["target"],
                missing_property("target"),
            ),
            Row(
                "Expected '{0}' to be of type {1}.",
                vec!["version", "Number"],
                expected_type("version", "Number"),
            ),
            Row(
                "The 'error' and 'result' properties are mutually exclusive.",
                vec![],
                ERROR_AND_RESULT.into(),
            ),
            Row(
                "Messages over 2GB in size are not supported.",
                vec![],
                MESSAGES_OVER_2GB.into(),
            ),
            Row("Invalid invocation result kind.", vec![], INVALID_RESULT_KIND.into()),
            Row(
                "Reading '{0}' as String failed.",
                vec!["target"],
                reading_string_failed("target"),
            ),
            Row(
                "Reading '{0}' as Int32 failed.",
                vec!["messageType"],
                reading_int32_failed("messageType"),
            ),
            Row(
                "Reading '{0}' as Boolean failed.",
                vec!["allowReconnect"],
                reading_boolean_failed("allowReconnect"),
            ),
            Row(
                "Reading array length for '{0}' failed.",
                vec!["arguments"],
                reading_array_length_failed("arguments"),
            ),
            Row(
                "Reading map length for '{0}' failed.",
                vec!["headers"],
                reading_map_length_failed("headers"),
            ),
        ]);
    }

    #[test]
    fn negotiate_texts_render_as_the_reference_does() {
        check(&[
            Row(
                "The client requested version '{0}', but the server does not support this version.",
                vec!["9"],
                negotiate_version_not_supported("9"),
            ),
            Row(
                "The client requested a non-integer protocol version.",
                vec![],
                NEGOTIATE_VERSION_NOT_INTEGER.into(),
            ),
        ]);
    }
}
