//! Reloading the configuration while the proxy runs (SIGHUP, `POST /reload`).
//!
//! The file is read again and the start-up flags laid over it, exactly as at
//! start-up; only a configuration that validates is handed to
//! [`Proxy::apply_config`], so a broken file never replaces a working one.
//! The listeners and the worker threads are set up once: a changed
//! `listen`, `metrics_listen` or `workers` is reported as needing a restart
//! and the running value is kept.

use std::sync::Arc;

use parking_lot::Mutex;

use super::{load, ConfigError, Flags};
use crate::state::Proxy;

/// Sets the process's log level (`main` wires this to the tracing reload
/// layer; tests record the calls).
pub type LogLevelSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub struct Reloader {
    /// The start-up flags; `--config` names the file to re-read.
    flags: Flags,
    proxy: Arc<Proxy>,
    set_log_level: LogLevelSetter,
    /// Two reloads at once (SIGHUP racing `/reload`) would compare against
    /// the same old snapshot and could apply out of order.
    one_at_a_time: Mutex<()>,
}

/// What a successful reload did.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadReport {
    /// Whether anything that can change at runtime changed.
    pub changed: bool,
    /// One line per setting left as it was because it needs a restart.
    pub needs_restart: Vec<String>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.changed { "configuration reloaded" } else { "configuration reloaded, nothing changed" })?;
        for line in &self.needs_restart {
            write!(f, "\n{line}")?;
        }
        Ok(())
    }
}

impl Reloader {
    pub fn new(flags: Flags, proxy: Arc<Proxy>, set_log_level: LogLevelSetter) -> Reloader {
        Reloader { flags, proxy, set_log_level, one_at_a_time: Mutex::new(()) }
    }

    /// Re-reads, validates and applies. On error the running configuration
    /// stays and the error says why. The file is small and read at human
    /// pace, so reading it on the calling task is fine.
    pub fn reload(&self) -> Result<ReloadReport, ConfigError> {
        let _guard = self.one_at_a_time.lock();
        let reloads = &self.proxy.metrics.config_reloads;
        let mut new = match load(self.flags.config.as_deref(), &self.flags) {
            Ok(new) => new,
            Err(e) => {
                reloads.with_label_values(&["refused"]).inc();
                tracing::warn!("reload refused, the running configuration stays: {e}");
                return Err(e);
            }
        };
        let old = self.proxy.config.load_full();
        let mut report = ReloadReport::default();
        for (field, old_value, new_value) in
            [("listen", &old.listen, &mut new.listen), ("metrics_listen", &old.metrics_listen, &mut new.metrics_listen)]
        {
            if old_value != new_value {
                report
                    .needs_restart
                    .push(format!("{field}: '{new_value}' needs a restart to take effect; still '{old_value}'"));
                new_value.clone_from(old_value);
            }
        }
        if old.workers != new.workers {
            report
                .needs_restart
                .push(format!("workers: {} needs a restart to take effect; still {}", new.workers, old.workers));
            new.workers = old.workers;
        }
        report.changed = new != *old;
        if new.log_level != old.log_level {
            if let Err(e) = (self.set_log_level)(&new.log_level) {
                tracing::warn!("reload: log level not changed: {e}");
            }
        }
        for line in &report.needs_restart {
            tracing::warn!("reload: {line}");
        }
        if report.changed {
            self.proxy.apply_config(new);
        }
        reloads.with_label_values(&["applied"]).inc();
        tracing::info!("{}", report.to_string().lines().next().unwrap_or_default());
        Ok(report)
    }
}
