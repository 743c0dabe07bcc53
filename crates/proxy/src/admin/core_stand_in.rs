//! TEMPORARY stand-ins for the three `Proxy` methods the data path
//! (branch `proxy-core`, `state.rs`) is writing: `run`, `ready` and
//! `apply_config`. They let the operations side build and be tested before
//! that lands. Delete this file (and its `mod` line in `admin.rs`) when
//! merging `proxy-core`; the compiler reports the duplicate methods.

use std::sync::Arc;

use crate::config::ProxyConfig;
use crate::state::Proxy;

impl Proxy {
    /// Stand-in: accepts and closes client connections until shutdown.
    pub async fn run(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                accepted = listener.accept() => drop(accepted),
            }
        }
    }

    /// Stand-in: ready once every slot has a node.
    pub fn ready(&self) -> bool {
        self.topology.load().all_slots_assigned()
    }

    /// Stand-in: swaps the snapshot in.
    pub fn apply_config(&self, new: ProxyConfig) {
        self.config.store(Arc::new(new));
    }
}
