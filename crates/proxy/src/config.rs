//! The proxy's configuration: `slotway --config slotway.yaml`, with flags
//! overriding the file. One immutable [`ProxyConfig`] snapshot is in force
//! at a time; a reload builds and validates a new one before swapping it in.
//!
//! [`load`] is the one way a configuration is made, at start-up and on every
//! reload: file (or defaults) → [`Flags`] on top → [`validate`]. Every error
//! names the field and the reason, so `slotway` can print it and exit.
//! `config/slotway.yaml` at the repository root documents every setting.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod reload;
#[cfg(test)]
pub(crate) mod tests;
mod validate;

pub use reload::{LogLevelSetter, ReloadReport, Reloader};
pub use validate::validate;

/// Command-line flags. Each one given overrides the file's setting, at
/// start-up and on every reload (a reload re-reads the file, not the flags).
#[derive(Debug, Clone, Default, PartialEq, clap::Parser)]
#[command(name = "slotway", version, about = "Plain Redis clients on one address in front of a Redis Cluster")]
pub struct Flags {
    /// YAML configuration file; without one, the defaults and these flags.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Client listener, `ip:port`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Cluster nodes to discover the topology from, comma-separated.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`, `/topology`, `/reload`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Threads serving clients (the `workers` setting).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

/// Why a configuration was refused. Its text is what `slotway` prints.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file '{path}': {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// serde_yaml's message names the field path and the line and column.
    #[error("config file '{path}': {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }
}

/// Reads `path` (defaults without one), applies `overrides`, validates.
pub fn load(path: Option<&Path>, overrides: &Flags) -> Result<ProxyConfig, ConfigError> {
    let mut config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
            parse(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?
        }
        None => ProxyConfig::default(),
    };
    overrides.apply(&mut config);
    validate(&config)?;
    Ok(config)
}

/// A YAML document as a configuration. An empty file (or one of comments
/// only) is the defaults, which serde_yaml would otherwise refuse.
pub fn parse(text: &str) -> Result<ProxyConfig, serde_yaml::Error> {
    let blank = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    });
    if blank {
        return Ok(ProxyConfig::default());
    }
    serde_yaml::from_str(text)
}

impl Flags {
    fn apply(&self, config: &mut ProxyConfig) {
        if let Some(listen) = &self.listen {
            config.listen.clone_from(listen);
        }
        if let Some(seeds) = &self.seeds {
            config.seeds = seeds.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(addr) = &self.metrics_listen {
            config.metrics_listen.clone_from(addr);
        }
        if let Some(level) = &self.log_level {
            config.log_level.clone_from(level);
        }
        if let Some(workers) = self.workers {
            config.workers = workers;
        }
    }
}

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
    /// Threads serving clients, each with its own event loop and its own
    /// upstream connections.
    pub workers: usize,
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
            workers: 1,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect_ms: 1000, request_ms: 10000, retry_ms: 3000, shutdown_ms: 5000 }
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
