//! Transports: move frames between a socket (or HTTP requests) and a logical connection.

pub(crate) mod websocket;
