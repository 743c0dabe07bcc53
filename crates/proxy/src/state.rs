//! What every task of the proxy shares: the configuration and slot table
//! snapshots, the metrics, and the shutdown signal.
//!
//! Shutdown protocol: cancelling [`Proxy::shutdown`] stops the accept loop
//! and every session's reads; sessions finish the requests they have in
//! flight (bounded by `timeouts.shutdown_ms` in `main`), then close.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::topology::Topology;

pub struct Proxy {
    /// The configuration in force; a reload swaps in a validated new one.
    pub config: ArcSwap<ProxyConfig>,
    /// The slot table in force; the refresh task swaps in new ones.
    pub topology: ArcSwap<Topology>,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Arc<Proxy> {
        Arc::new(Proxy {
            config: ArcSwap::from_pointee(config),
            topology: ArcSwap::from_pointee(Topology::empty()),
            metrics: Metrics::new(),
            shutdown: CancellationToken::new(),
        })
    }
}
