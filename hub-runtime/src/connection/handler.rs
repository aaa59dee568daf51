//! [`ConnectionHandler`]: what an endpoint runs for each connection.

use std::future::Future;
use std::pin::Pin;

use super::handle::Connection;

/// A boxed future, as handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs the application side of each connection of an endpoint.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Called once per connection, when its first transport attaches; the connection ends
    /// when the returned future completes.
    fn run(&self, connection: Connection) -> BoxFuture<()>;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn run(&self, connection: Connection) -> BoxFuture<()> {
        Box::pin(self(connection))
    }
}
