//! The replica's side: REPLICAOF's state change and the link task that
//! follows a master.
//!
//! The link: connect, `PING`, `AUTH` (masterauth/masteruser), `REPLCONF
//! listening-port`, `REPLCONF capa eof capa psync2`, then `PSYNC <replid>
//! <offset+1>` (or `? -1` with no history). `+FULLRESYNC` brings a
//! snapshot (`$<len>` or the diskless `$EOF:<mark>` form, bounded), which
//! replaces the keyspace under the lock; `+CONTINUE` keeps data and
//! offset. Then [`stream::apply`] runs the stream. When the link drops it
//! is tried again, with PSYNC from where we are, after a short backoff.

mod handshake;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::server::{unix_ms, Shared};

/// ROLE's names for where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    Sync,
    Connected,
}

impl LinkState {
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The master we follow, as INFO and ROLE show it.
#[derive(Debug)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Stops the link task (REPLICAOF to another master or NO ONE).
    pub cancel: CancellationToken,
    /// Unix ms of the last byte from the master; 0 before any.
    pub last_io_ms: u64,
    /// Unix ms the link went down; 0 if it was never up.
    pub down_since_ms: u64,
    /// Stream bytes read (`slave_read_repl_offset`).
    pub read_offset: i64,
    /// Snapshot transfer progress (`master_sync_*`).
    pub sync_total: i64,
    pub sync_read: i64,
    /// Kills the master client (CLIENT KILL TYPE master).
    pub client_kill: Option<CancellationToken>,
}

impl MasterLink {
    pub fn is_up(&self) -> bool {
        self.state == LinkState::Connected
    }
}

/// REPLICAOF host port: follow a master, dropping any link we had. As
/// Redis 7.0 does, our own history is kept as what we ask to continue
/// from, so a demoted master can continue with its promoted replica, and
/// our replicas are disconnected so they resync with the new history.
pub fn set_master(shared: &Arc<Shared>, host: String, port: u16) {
    let repl = &shared.repl;
    let cancel = CancellationToken::new();
    {
        let mut st = repl.state.lock();
        if let Some(old) = st.master.take() {
            old.cancel.cancel();
            if let Some(k) = old.client_kill {
                k.cancel();
            }
        }
        for r in &st.replicas {
            r.handle.kill.cancel();
        }
        st.master = Some(MasterLink {
            host: host.clone(),
            port,
            state: LinkState::Connect,
            cancel: cancel.clone(),
            last_io_ms: 0,
            down_since_ms: 0,
            read_offset: st.offset,
            sync_total: -1,
            sync_read: 0,
            client_kill: None,
        });
    }
    repl.set_replica(true);
    tracing::info!("Connecting to MASTER {host}:{port}");
    tokio::spawn(run(shared.clone(), cancel));
}

/// REPLICAOF NO ONE, a PSYNC FAILOVER, an aborted failover: stop
/// following and become a master with a new history, keeping the old one
/// as `replid2` so others can continue. `why` goes to the log.
pub fn unset_master(shared: &Shared, why: &str) {
    let repl = &shared.repl;
    let mut st = repl.state.lock();
    let Some(old) = st.master.take() else { return };
    old.cancel.cancel();
    if let Some(k) = old.client_kill {
        k.cancel();
    }
    repl.shift_replid(&mut st);
    // The next command we generate starts with a SELECT.
    st.selector.reset();
    // The backlog's time to live starts now, not when we last had
    // replicas, or a promotion could free it before they reconnect.
    st.no_replicas_since = unix_ms();
    drop(st);
    repl.set_replica(false);
    tracing::info!("MASTER MODE enabled ({why})");
}

fn set_state(shared: &Shared, cancel: &CancellationToken, f: impl FnOnce(&mut MasterLink)) {
    let mut st = shared.repl.state.lock();
    if let Some(m) = st.master.as_mut() {
        // A link that was replaced must not touch its successor's state.
        if !cancel.is_cancelled() {
            f(m);
        }
    }
}

/// The link task: one connection after another until cancelled.
async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if cancel.is_cancelled() || shared.shutdown.is_cancelled() {
            return;
        }
        let Some((host, port)) = shared.repl.state.lock().master.as_ref().map(|m| (m.host.clone(), m.port)) else {
            return;
        };
        set_state(&shared, &cancel, |m| m.state = LinkState::Connecting);
        let outcome = tokio::select! {
            r = handshake::follow(&shared, &cancel, &host, port) => r,
            _ = cancel.cancelled() => return,
            _ = shared.shutdown.cancelled() => return,
        };
        let was_up = matches!(outcome, Ok(true));
        match outcome {
            Ok(_) => tracing::info!("Connection with master lost."),
            Err(e) => tracing::warn!("Error condition on socket for SYNC with {host}:{port}: {e}"),
        }
        set_state(&shared, &cancel, |m| {
            if m.state == LinkState::Connected {
                m.down_since_ms = unix_ms();
            }
            m.state = LinkState::Connect;
            m.client_kill = None;
        });
        if was_up {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return,
            _ = shared.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
