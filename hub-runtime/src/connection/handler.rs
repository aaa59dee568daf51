//! [`ConnectionHandler`]: what an endpoint runs for each connection.

use std::future::Future;

use futures_util::future::BoxFuture;

use super::handle::Connection;

/// Runs the application side of each connection of an endpoint.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Called once per connection, when its first transport attaches; the connection ends
    /// when the returned future completes.
    fn run(&self, connection: Connection) -> BoxFuture<'static, ()>;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn run(&self, connection: Connection) -> BoxFuture<'static, ()> {
        Box::pin(self(connection))
    }
}
