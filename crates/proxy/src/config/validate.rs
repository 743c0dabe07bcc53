//! What a configuration must satisfy before it is put in force. Checks run
//! in field order and stop at the first failure, so the message names one
//! field and one reason (`timeouts.request_ms: must be between 1 and 600000`).

use std::net::SocketAddr;

use super::{ConfigError, ProxyConfig};

/// Longest timeout accepted: ten minutes. Longer ones are almost always a
/// unit mistake (seconds written as milliseconds times a thousand).
const MAX_MS: u64 = 600_000;

pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

pub fn validate(c: &ProxyConfig) -> Result<(), ConfigError> {
    let listen = socket_addr("listen", &c.listen)?;
    if c.seeds.is_empty() {
        return Err(ConfigError::invalid("seeds", "at least one seed is required"));
    }
    for (i, seed) in c.seeds.iter().enumerate() {
        host_port(seed).map_err(|why| ConfigError::invalid(format!("seeds[{i}]"), format!("'{seed}' {why}")))?;
    }
    let metrics = socket_addr("metrics_listen", &c.metrics_listen)?;
    if metrics == listen && listen.port() != 0 {
        return Err(ConfigError::invalid("metrics_listen", format!("must differ from listen ({listen})")));
    }
    if let Some(auth) = &c.upstream_auth {
        if auth.password.is_empty() {
            return Err(ConfigError::invalid("upstream_auth.password", "must not be empty"));
        }
        if auth.user.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::invalid("upstream_auth.user", "must not be empty (leave it out for `default`)"));
        }
    }
    if c.client_password.as_deref().is_some_and(str::is_empty) {
        return Err(ConfigError::invalid("client_password", "must not be empty (leave it out for no AUTH)"));
    }

    let t = &c.timeouts;
    range("timeouts.connect_ms", t.connect_ms, 1, MAX_MS)?;
    range("timeouts.request_ms", t.request_ms, 1, MAX_MS)?;
    range("timeouts.retry_ms", t.retry_ms, 0, MAX_MS)?;
    range("timeouts.shutdown_ms", t.shutdown_ms, 0, MAX_MS)?;

    range("pool.connections_per_node", c.pool.connections_per_node as u64, 1, 64)?;
    range("pool.queue_depth", c.pool.queue_depth as u64, 1, 1 << 20)?;

    range("limits.max_clients", c.limits.max_clients as u64, 1, 1 << 20)?;
    range("limits.max_pipeline", c.limits.max_pipeline as u64, 1, 1 << 20)?;
    // As Redis's proto-max-bulk-len: at least 1 MiB.
    if c.limits.max_bulk_len < 1 << 20 {
        return Err(ConfigError::invalid("limits.max_bulk_len", "must be at least 1048576 (1 MiB)"));
    }

    range("topology.interval_ms", c.topology.interval_ms, 100, 3_600_000)?;
    if c.topology.min_interval_ms > c.topology.interval_ms {
        return Err(ConfigError::invalid("topology.min_interval_ms", "must not exceed topology.interval_ms"));
    }

    range("workers", c.workers as u64, 1, 256)?;

    if !LOG_LEVELS.contains(&c.log_level.as_str()) {
        return Err(ConfigError::invalid(
            "log_level",
            format!("'{}' is not one of {}", c.log_level, LOG_LEVELS.join(", ")),
        ));
    }
    Ok(())
}

fn socket_addr(field: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::invalid(field, format!("invalid socket address '{value}'")))
}

fn range(field: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, format!("must be between {min} and {max}")))
    }
}

/// A seed is `host:port` (a name is resolved when discovery connects);
/// `[v6]:port` works too.
fn host_port(seed: &str) -> Result<(), &'static str> {
    if seed.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = seed.rsplit_once(':').ok_or("is not host:port")?;
    if host.is_empty() || host.contains(':') || host.contains(char::is_whitespace) {
        return Err("is not host:port");
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err("has no valid port (1-65535)"),
    }
}
