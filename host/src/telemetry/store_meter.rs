//! A store's connection metrics. A store is shared by every handle built on it, so these carry
//! the store's description (its deployment and addresses, never credentials) instead of a
//! handle's name. Connections, failures, redirects and failovers are rare, so each record
//! registers as it goes.

use std::sync::Arc;

use ::metrics::{Label, SharedString};

/// The connection metrics of one store.
#[derive(Debug, Clone)]
pub(crate) struct StoreMeter {
    store: SharedString,
}

impl StoreMeter {
    /// The metrics of the store described as `store` (see [`crate::Store::describe`]).
    pub(crate) fn new(store: &str) -> Self {
        Self {
            store: SharedString::from(Arc::<str>::from(store)),
        }
    }

    fn labels(&self, extra: Option<(&'static str, String)>) -> Vec<Label> {
        let mut labels = vec![Label::new("store", self.store.clone())];
        labels.extend(extra.map(|(key, value)| Label::new(key, value)));
        labels
    }

    /// A connection to `server` was made.
    pub(crate) fn connected(&self, server: String) {
        ::metrics::counter!(super::STORE_CONNECTS, self.labels(Some(("server", server))))
            .increment(1);
    }

    /// A connect attempt to `server` failed.
    pub(crate) fn connect_failed(&self, server: String) {
        ::metrics::counter!(
            super::STORE_CONNECT_FAILURES,
            self.labels(Some(("server", server)))
        )
        .increment(1);
    }

    /// A cluster redirect (`moved` or `ask`) was followed.
    pub(crate) fn redirected(&self, kind: &'static str) {
        ::metrics::counter!(
            super::STORE_REDIRECTS,
            self.labels(Some(("kind", kind.to_string())))
        )
        .increment(1);
    }

    /// The sentinels named a new master.
    pub(crate) fn failed_over(&self) {
        ::metrics::counter!(super::STORE_FAILOVERS, self.labels(None)).increment(1);
    }
}
