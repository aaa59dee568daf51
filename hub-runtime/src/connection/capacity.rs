//! How many connections have started across a server's endpoints, against
//! `max_connections`: a place is reserved atomically when a transport starts, and given back
//! when the connection is forgotten.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Started connections of one server, and their cap.
#[derive(Debug)]
pub(crate) struct Capacity {
    started: AtomicUsize,
    max: Option<usize>,
}

impl Capacity {
    /// At most `max` started connections (`None`: no cap).
    pub(crate) fn new(max: Option<usize>) -> Self {
        Capacity {
            started: AtomicUsize::new(0),
            max,
        }
    }

    /// How many connections hold a place.
    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::Acquire)
    }

    /// Whether no place is left.
    pub(crate) fn is_full(&self) -> bool {
        self.max.is_some_and(|max| self.started() >= max)
    }

    /// Takes a place; `false` when the cap is reached (nothing taken).
    pub(crate) fn try_reserve(&self) -> bool {
        let max = self.max.unwrap_or(usize::MAX);
        self.started
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Gives a place back (once per successful [`Capacity::try_reserve`]).
    pub(crate) fn release(&self) {
        let _ = self
            .started
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::Capacity;

    #[test]
    fn reserves_up_to_the_cap() {
        let capacity = Capacity::new(Some(2));
        assert!(capacity.try_reserve());
        assert!(capacity.try_reserve());
        assert!(!capacity.try_reserve());
        assert!(capacity.is_full());
        capacity.release();
        assert!(capacity.try_reserve());
        assert_eq!(capacity.started(), 2);
    }
}
