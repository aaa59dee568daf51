//! What `#[hub]` and `#[hub_client]` know about an interface, as constant data, for renderers
//! outside the macros (a TypeScript client generator, documentation, tests).
//!
//! Both macros implement [`Describe`] for the type they generate: the hub type of a `#[hub]`
//! impl block, and the proxy struct of a `#[hub_client]` trait. The descriptor lists only what
//! goes over the wire: injected parameters (`&HubContext<Self>`, `CancellationToken`) and skipped
//! methods or connection hooks are left out.
//!
//! ```
//! use hub_runtime::descriptor::{Describe, ParamKind, ReturnKind, Role};
//! use hub_runtime::prelude::*;
//!
//! #[hub_client]
//! trait ChatClient {
//!     /// A message for everyone.
//!     fn receive_message(&self, user: &str, text: String);
//! }
//!
//! struct Chat;
//!
//! #[hub(client = ChatClient)]
//! impl Chat {
//!     /// Sends a message to everyone.
//!     async fn send_message(&self, cx: &HubContext<Self>, text: String) -> Result<(), HubError> {
//!         cx.clients.all().receive_message("someone", text).await?;
//!         Ok(())
//!     }
//! }
//!
//! const HUB: &hub_runtime::descriptor::HubDescriptor = &<Chat as Describe>::DESCRIPTOR;
//! assert_eq!(HUB.role, Role::Hub);
//! assert_eq!(HUB.name, "Chat");
//! let send = &HUB.methods[0];
//! assert_eq!((send.name, send.wire_name), ("send_message", "SendMessage"));
//! assert_eq!(send.docs, "Sends a message to everyone.");
//! assert_eq!(send.params.len(), 1); // the context is injected, not sent
//! assert_eq!((send.params[0].name, send.params[0].rust_type), ("text", "String"));
//! assert_eq!(send.params[0].kind, ParamKind::Argument);
//! assert_eq!(send.returns, ReturnKind::Unit);
//!
//! // A client interface: borrowed parameter types appear in their owned form.
//! let client = <ChatClient as Describe>::DESCRIPTOR;
//! assert_eq!(client.role, Role::Client);
//! assert_eq!(client.methods[0].wire_name, "ReceiveMessage");
//! assert_eq!(client.methods[0].params[0].rust_type, "String");
//! ```

/// Which side implements the described methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A hub (`#[hub]`): the server implements the methods, clients call them.
    Hub,
    /// A client interface (`#[hub_client]`): clients implement the methods, the hub calls them.
    Client,
}

/// One hub or client interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HubDescriptor {
    /// The Rust name of the hub type or of the client trait.
    pub name: &'static str,
    /// Whether this is a hub or a client interface.
    pub role: Role,
    /// The doc comment of the impl block or trait (lines joined by `\n`, empty without one).
    pub docs: &'static str,
    /// The methods, in declaration order.
    pub methods: &'static [MethodDescriptor],
}

impl HubDescriptor {
    /// The method with this wire name, matched case-insensitively as the server matches
    /// invocations (Unicode lowercase, so `ÉCHELLE` finds `Échelle`).
    pub fn method(&self, wire_name: &str) -> Option<&'static MethodDescriptor> {
        let wanted = wire_name.to_lowercase();
        self.methods.iter().find(|m| m.wire_name.to_lowercase() == wanted)
    }
}

/// One method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodDescriptor {
    /// The Rust name (`send_message`).
    pub name: &'static str,
    /// The name on the wire (`SendMessage`, or what `#[hub(name = "...")]` says).
    pub wire_name: &'static str,
    /// The parameters sent over the wire, in order.
    pub params: &'static [ParamDescriptor],
    /// What the method returns.
    pub returns: ReturnKind,
    /// The method's doc comment (lines joined by `\n`, empty without one).
    pub docs: &'static str,
}

/// How a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// An argument in the invocation's `arguments`.
    Argument,
    /// A client-to-server stream (`ClientStream<T>`), bound through the invocation's
    /// `streamIds`; `rust_type` is the item type `T`.
    Upload,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamDescriptor {
    /// The parameter's name (`argN` for a pattern that is not a plain name).
    pub name: &'static str,
    /// The Rust type as written, with borrowed types in their owned form (`&str` → `String`,
    /// `&[T]` → `Vec<T>`), as a client holds them.
    pub rust_type: &'static str,
    /// Argument or client-to-server stream.
    pub kind: ParamKind,
    /// The parameter's doc comment (lines joined by `\n`, empty without one).
    pub docs: &'static str,
}

/// What a method returns (Rust types as written, with the `Result` of a fallible method
/// removed: an error reaches the caller as the Completion's error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnKind {
    /// Nothing: a Completion without a result (hub), or a plain send (client).
    Unit,
    /// One value.
    Value {
        /// Its Rust type.
        rust_type: &'static str,
    },
    /// A server-to-client stream (a streaming hub method).
    Stream {
        /// The Rust type of one item.
        item_type: &'static str,
    },
    /// A client result: the client's handler returns a value the hub awaits.
    ClientResult {
        /// Its Rust type.
        rust_type: &'static str,
    },
}

/// Implemented by `#[hub]` for the hub type and by `#[hub_client]` for the proxy struct.
pub trait Describe {
    /// The interface, as the macro saw it.
    const DESCRIPTOR: HubDescriptor;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHELLE: MethodDescriptor = MethodDescriptor {
        name: "echelle",
        wire_name: "Échelle",
        params: &[],
        returns: ReturnKind::Unit,
        docs: "",
    };

    #[test]
    fn methods_are_found_case_insensitively_beyond_ascii() {
        let hub = HubDescriptor {
            name: "Maps",
            role: Role::Hub,
            docs: "",
            methods: &[ECHELLE],
        };
        assert_eq!(hub.method("ÉCHELLE").map(|m| m.name), Some("echelle"));
        assert_eq!(hub.method("échelle").map(|m| m.name), Some("echelle"));
        assert!(hub.method("Echelle").is_none());
    }
}
