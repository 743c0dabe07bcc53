//! Stopping the server as Redis 7.0 does, for SHUTDOWN and for SIGTERM /
//! SIGINT alike.
//!
//! A master whose replicas have not all acknowledged its offset does not
//! stop at once (unless NOW, or `shutdown-timeout 0`): it holds writes, asks
//! the replicas for an ACK (`REPLCONF GETACK *`) and waits until every one
//! has acknowledged the offset or `shutdown-timeout` seconds pass, so no
//! acknowledged-by-nobody write is lost with it. Then it saves (by SAVE /
//! NOSAVE or the save rules) and exits; a failed save keeps it running
//! unless FORCE, and SHUTDOWN ABORT cancels a wait in progress. The
//! SHUTDOWN clients of a shutdown that did not happen get Redis's error.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::command::client::BY_SHUTDOWN;
use crate::config::Config;
use crate::server::Shared;
use crate::store::Store;

/// SHUTDOWN's options (or a signal's, from `shutdown-on-sigterm` /
/// `shutdown-on-sigint`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// SAVE (`Some(true)`), NOSAVE (`Some(false)`) or the save rules.
    pub save: Option<bool>,
    pub now: bool,
    pub force: bool,
}

impl Flags {
    /// `shutdown-on-sigterm` / `shutdown-on-sigint`: `default` or any of
    /// `save`, `nosave`, `now`, `force`.
    pub fn from_config(value: &str) -> Flags {
        let mut f = Flags::default();
        for word in value.split_whitespace() {
            match word {
                "save" => f.save = Some(true),
                "nosave" => f.save = Some(false),
                "now" => f.now = true,
                "force" => f.force = true,
                _ => {}
            }
        }
        f
    }
}

/// A shutdown waiting for replicas.
struct Waiting {
    flags: Flags,
    deadline: tokio::time::Instant,
}

/// What [`request`] did.
#[derive(Debug)]
pub enum Outcome {
    /// Saved as asked; the server is stopping.
    Done,
    /// Waiting for replicas; the receiver changes if the shutdown fails
    /// or is aborted (the server stopping means it happened).
    Waiting(watch::Receiver<u64>),
    /// The save failed and FORCE was not given: the server stays up.
    Failed,
}

pub struct Shutdown {
    waiting: Mutex<Option<Waiting>>,
    /// Bumped when a shutdown in progress fails or is aborted.
    cancelled: watch::Sender<u64>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { waiting: Mutex::new(None), cancelled: watch::channel(0).0 }
    }
}

impl Shutdown {
    pub fn in_progress(&self) -> bool {
        self.waiting.lock().is_some()
    }
}

/// SHUTDOWN (or a signal) under the keyspace lock. A shutdown already in
/// progress is joined, whatever the flags, as in Redis.
pub fn request(shared: &Arc<Shared>, store: &mut Store, cfg: &Config, flags: Flags) -> Outcome {
    let sd = &shared.shutdown_state;
    let mut waiting = sd.waiting.lock();
    if waiting.is_some() {
        return Outcome::Waiting(sd.cancelled.subscribe());
    }
    tracing::warn!("User requested shutdown...");
    let timeout = cfg.int("shutdown-timeout").max(0) as u64;
    if !flags.now && timeout > 0 && !replicas_caught_up(shared) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        *waiting = Some(Waiting { flags, deadline });
        drop(waiting);
        // As Redis: no GETACK when clients are already paused, since it
        // would move the offset the replicas are measured against, nor
        // from a replica, whose stream is its master's bytes.
        if !shared.pause.writes_held() && !shared.repl.is_replica() {
            crate::replication::master::request_acks_locked(shared);
        }
        shared.pause.hold_writes(BY_SHUTDOWN);
        shared.repl.hold_expiry(true);
        tracing::info!("Waiting for replicas before shutting down.");
        tokio::spawn(wait_for_replicas(shared.clone()));
        return Outcome::Waiting(sd.cancelled.subscribe());
    }
    drop(waiting);
    if finish(shared, store, cfg, flags) {
        Outcome::Done
    } else {
        Outcome::Failed
    }
}

/// SHUTDOWN ABORT: false when no shutdown is in progress.
pub fn abort(shared: &Shared) -> bool {
    if shared.shutdown_state.waiting.lock().take().is_none() {
        return false;
    }
    tracing::info!("Shutdown manually aborted.");
    cancelled(shared);
    true
}

/// The shutdown did not happen: writes resume and its SHUTDOWN clients get
/// their error.
fn cancelled(shared: &Shared) {
    shared.pause.release_writes(BY_SHUTDOWN);
    shared.repl.hold_expiry(shared.pause.held_by_server());
    shared.shutdown_state.cancelled.send_modify(|n| *n += 1);
}

/// Every replica (in any state) has acknowledged our offset.
fn replicas_caught_up(shared: &Shared) -> bool {
    let offset = shared.repl.master_offset();
    shared.repl.state.lock().replicas.iter().all(|r| r.ack_offset() == offset)
}

/// Until every replica acknowledged or the deadline, then the rest of the
/// shutdown. Ends early when the shutdown is aborted.
async fn wait_for_replicas(shared: Arc<Shared>) {
    loop {
        let acked = shared.repl.acked.notified();
        tokio::pin!(acked);
        acked.as_mut().enable();
        let Some(deadline) = shared.shutdown_state.waiting.lock().as_ref().map(|w| w.deadline) else { return };
        if replicas_caught_up(&shared) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            _ = &mut acked => {}
            // Replicas leaving, and a deadline moved by nothing else.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
    let cfg = shared.config.load();
    let mut store = shared.store.lock();
    // Aborted between the check and the lock: nothing to do.
    let Some(w) = shared.shutdown_state.waiting.lock().take() else { return };
    if !finish(&shared, &mut store, &cfg, w.flags) {
        cancelled(&shared);
    }
}

/// The end of a shutdown, under the keyspace lock: lagging replicas
/// logged, the final save, then the server stops. False (and a log line)
/// when the save failed without FORCE.
fn finish(shared: &Shared, store: &mut Store, cfg: &Config, flags: Flags) -> bool {
    log_lagging_replicas(shared);
    if crate::persist::snapshot::final_save(shared, store, cfg, flags.save).is_err() {
        if !flags.force {
            tracing::warn!("Error trying to save the DB, can't exit.");
            tracing::warn!("Errors trying to shut down the server. Check the logs for more information.");
            return false;
        }
        tracing::warn!("Error trying to save the DB. Exit anyway.");
        crate::persist::snapshot::skip_final_save(shared);
    }
    shared.shutdown.cancel();
    true
}

fn log_lagging_replicas(shared: &Shared) {
    let offset = shared.repl.master_offset();
    let st = shared.repl.state.lock();
    if st.replicas.is_empty() {
        return;
    }
    let now = crate::server::unix_ms();
    let mut lagging = 0;
    for r in &st.replicas {
        if r.ack_offset() != offset {
            lagging += 1;
            let lag = if r.is_online() { r.lag_secs(now) } else { 0 };
            tracing::warn!(
                "Lagging replica {}:{} reported offset {} behind master, lag={lag}, state={}.",
                r.ip,
                r.port,
                offset - r.ack_offset(),
                r.state_name()
            );
        }
    }
    tracing::info!("{} of {} replicas are in sync when shutting down.", st.replicas.len() - lagging, st.replicas.len());
}

/// SIGTERM / SIGINT: the same path as SHUTDOWN with the flags from
/// `shutdown-on-sigterm` / `shutdown-on-sigint`; a failed save keeps the
/// server running, as in Redis.
pub fn on_signal(shared: &Arc<Shared>, sigint: bool) {
    let cfg = shared.config.load();
    let flags = Flags::from_config(&cfg.string(if sigint { "shutdown-on-sigint" } else { "shutdown-on-sigterm" }));
    let mut store = shared.store.lock();
    let _ = request(shared, &mut store, &cfg, flags);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_flags_from_the_configuration() {
        assert_eq!(Flags::from_config("default"), Flags::default());
        assert_eq!(Flags::from_config("nosave now"), Flags { save: Some(false), now: true, force: false });
        assert_eq!(Flags::from_config("save force"), Flags { save: Some(true), now: false, force: true });
    }
}
