//! Typed per-connection state.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Typed values stored per connection (one value per type), for state that lives as long as
/// the connection: a chosen nickname, a rate-limit bucket, a session.
///
/// ```
/// use hub_runtime::hub::Items;
/// #[derive(Clone, Debug, PartialEq)]
/// struct Nick(String);
/// let items = Items::default();
/// items.insert(Nick("ada".into()));
/// assert_eq!(items.get::<Nick>(), Some(Nick("ada".into())));
/// items.with_mut(|n: &mut Nick| n.0.push('!'));
/// assert_eq!(items.get::<Nick>().unwrap().0, "ada!");
/// ```
#[derive(Default)]
pub struct Items {
    values: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl Items {
    /// Stores a value, returning the previous one of that type.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.lock()
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast().ok())
            .map(|b| *b)
    }

    /// A clone of the stored value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock()
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Removes and returns the stored value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        self.lock()
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast().ok())
            .map(|b| *b)
    }

    /// Runs `f` on the stored value of type `T`, if any.
    pub fn with_mut<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.lock()
            .get_mut(&TypeId::of::<T>())
            .and_then(|v| v.downcast_mut::<T>())
            .map(f)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Box<dyn Any + Send + Sync>>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items").field("len", &self.lock().len()).finish()
    }
}
