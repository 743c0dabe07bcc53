//! The proxy's configuration: `slotway --config slotway.yaml`, with flags
//! overriding the file. One immutable [`ProxyConfig`] snapshot is in force
//! at a time; a reload builds and validates a new one before swapping it in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where clients connect (`127.0.0.1:6380`).
    pub listen: String,
    /// Cluster nodes to discover the topology from (`host:port`).
    pub seeds: Vec<String>,
    /// Where `/metrics`, `/healthz`, `/readyz`, `/topology` are served.
    pub metrics_listen: String,
    /// Password (and optional user) the proxy sends to the cluster nodes.
    pub upstream_auth: Option<Auth>,
    /// Password clients must AUTH with before anything else; none when unset.
    pub client_password: Option<String>,
    pub timeouts: Timeouts,
    pub pool: Pool,
    pub limits: Limits,
    pub topology: TopologyRefresh,
    /// `error`, `warn`, `info`, `debug`, `trace`.
    pub log_level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub user: Option<String>,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Connecting to a node.
    pub connect_ms: u64,
    /// A request's whole life, retries included: past it the client gets an
    /// error reply and its later replies flow on.
    pub request_ms: u64,
    /// How long TRYAGAIN / CLUSTERDOWN are retried (with backoff).
    pub retry_ms: u64,
    /// SIGTERM: how long in-flight requests may finish.
    pub shutdown_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pool {
    /// Pipelined connections per node that client requests share.
    pub connections_per_node: usize,
    /// Requests queued toward one upstream connection before senders wait.
    pub queue_depth: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_clients: usize,
    /// Requests of one client in flight; past it the proxy stops reading
    /// from that client until replies have been written.
    pub max_pipeline: usize,
    /// Largest request argument, as `proto-max-bulk-len`.
    pub max_bulk_len: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopologyRefresh {
    /// Periodic CLUSTER SLOTS refresh.
    pub interval_ms: u64,
    /// At most one triggered refresh (MOVED, connection failure) this often.
    pub min_interval_ms: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:6380".into(),
            seeds: Vec::new(),
            metrics_listen: "127.0.0.1:9180".into(),
            upstream_auth: None,
            client_password: None,
            timeouts: Timeouts::default(),
            pool: Pool::default(),
            limits: Limits::default(),
            topology: TopologyRefresh::default(),
            log_level: "info".into(),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect_ms: 1000, request_ms: 5000, retry_ms: 3000, shutdown_ms: 5000 }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool { connections_per_node: 2, queue_depth: 4096 }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_clients: 10000, max_pipeline: 1024, max_bulk_len: 512 * 1024 * 1024 }
    }
}

impl Default for TopologyRefresh {
    fn default() -> Self {
        TopologyRefresh { interval_ms: 10_000, min_interval_ms: 100 }
    }
}
