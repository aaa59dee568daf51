//! A hub mapped at an endpoint: the hub, its method table, and what every connection of the
//! endpoint shares (options, filters, the shutdown signal, the goodbyes).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::close::Goodbyes;
use super::filter::Filters;
use super::Hub;
use crate::clients::lifetime::LifetimeManager;
use crate::history::History;
use crate::options::HubOptions;

/// A hub mapped at an endpoint: the connection handler of hub connections.
pub(crate) struct HubEndpoint<H: Hub> {
    pub(super) hub: Arc<H>,
    pub(super) manager: Arc<LifetimeManager>,
    pub(super) options: Arc<HubOptions>,
    /// Each method under its declared name and under its lowercase name (method names are
    /// fixed at compile time, so a fast hash is safe here).
    methods: rustc_hash::FxHashMap<String, usize>,
    pub(super) shutdown: CancellationToken,
    pub(super) filters: Filters,
    /// Per protocol, the Close message a slow consumer is sent (encoded when first needed).
    pub(super) goodbyes: Goodbyes,
    /// The hub's durable groups (`cx.history`).
    pub(super) history: History,
}

impl<H: Hub> HubEndpoint<H> {
    pub(crate) fn new(
        hub: Arc<H>,
        manager: Arc<LifetimeManager>,
        options: Arc<HubOptions>,
        shutdown: CancellationToken,
        filters: Filters,
        history: History,
    ) -> Self {
        let methods = H::__METHODS
            .iter()
            .enumerate()
            .flat_map(|(i, m)| [(m.name.to_string(), i), (m.name.to_lowercase(), i)])
            .collect();
        let goodbyes = Goodbyes::new(manager.protocols().len());
        HubEndpoint {
            goodbyes,
            hub,
            manager,
            options,
            methods,
            shutdown,
            filters,
            history,
        }
    }

    /// The method a target names; method names are matched ignoring case, as by the reference
    /// server.
    pub(super) fn find(&self, target: &str) -> Option<usize> {
        find(&self.methods, target)
    }
}

/// The method `target` names in `methods` (declared and lowercase names).
#[inline]
fn find(methods: &rustc_hash::FxHashMap<String, usize>, target: &str) -> Option<usize> {
    if let Some(&i) = methods.get(target) {
        return Some(i);
    }
    // Short ASCII names (nearly all) are lowered on the stack.
    let mut lowered = [0u8; 64];
    if target.is_ascii() && target.len() <= lowered.len() {
        let lowered = &mut lowered[..target.len()];
        lowered.copy_from_slice(target.as_bytes());
        lowered.make_ascii_lowercase();
        return std::str::from_utf8(lowered)
            .ok()
            .and_then(|name| methods.get(name))
            .copied();
    }
    methods.get(&target.to_lowercase()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_found_ignoring_case() {
        let methods: rustc_hash::FxHashMap<String, usize> =
            [("SendMessage", 0), ("sendmessage", 0), ("Échelle", 1), ("échelle", 1)]
                .into_iter()
                .map(|(name, i)| (name.to_string(), i))
                .collect();
        assert_eq!(find(&methods, "SendMessage"), Some(0));
        assert_eq!(find(&methods, "SENDMESSAGE"), Some(0));
        assert_eq!(find(&methods, "ÉCHELLE"), Some(1), "non-ASCII names are lowered too");
        assert_eq!(find(&methods, &"x".repeat(100)), None);
        assert_eq!(find(&methods, "Other"), None);
    }
}
