//! FAILOVER, Redis 7.0's coordinated switch of a master with one of its
//! replicas.
//!
//! The master holds writes (so its offset stops moving) and waits until a
//! replica (the one named by TO, or any) has acknowledged its whole
//! stream: `waiting-for-sync`. It then becomes a replica of that one
//! (`failover-in-progress`) and, in the handshake, asks it
//! `PSYNC <our replid> <our offset + 1> FAILOVER`. The target, seeing its
//! own history id, turns itself into a master (keeping that id as its
//! `replid2`) and answers `+CONTINUE <new id>`, so nothing is copied. The
//! failover ends there and writes resume (as a replica, they are now
//! refused). A TIMEOUT ends the wait: with FORCE the switch happens
//! anyway, without it the failover is aborted; FAILOVER ABORT, or the
//! target refusing the PSYNC, aborts too, and an old master that had
//! already switched becomes a master again.

use std::sync::Arc;

use crate::command::client::BY_FAILOVER;
use crate::server::{unix_ms, Shared};

/// INFO's `master_failover_state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    None,
    WaitForSync,
    InProgress,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::None => "no-failover",
            Phase::WaitForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

/// A failover's state, kept in [`super::State`].
#[derive(Debug, Default)]
pub struct Failover {
    pub phase: Phase,
    /// The replica we fail over to: TO's, or the first that caught up.
    pub target: Option<(String, u16)>,
    /// TIMEOUT's end, unix ms.
    pub end_ms: Option<u64>,
    pub force: bool,
}

/// FAILOVER's arguments, already checked.
#[derive(Debug)]
pub struct Request {
    /// Any integer, as Redis reads it: a port no replica listens on
    /// matches none.
    pub target: Option<(String, i64)>,
    pub timeout_ms: Option<u64>,
    pub force: bool,
}

/// Starts a failover, under the keyspace lock; the error is Redis's text.
pub fn start(shared: &Shared, req: Request) -> Result<(), &'static str> {
    let repl = &shared.repl;
    let mut st = repl.state.lock();
    if st.failover.phase != Phase::None {
        return Err("ERR FAILOVER already in progress.");
    }
    if st.master.is_some() {
        return Err("ERR FAILOVER is not valid when server is a replica.");
    }
    if st.replicas.is_empty() {
        return Err("ERR FAILOVER requires connected replicas.");
    }
    if req.force && (req.timeout_ms.is_none() || req.target.is_none()) {
        return Err("ERR FAILOVER with force option requires both a timeout and target HOST and IP.");
    }
    if let Some((host, port)) = &req.target {
        let Some(r) = st.replicas.iter().find(|r| r.ip.eq_ignore_ascii_case(host) && i64::from(r.port) == *port) else {
            return Err("ERR FAILOVER target HOST and PORT is not a replica.");
        };
        if !r.is_online() {
            return Err("ERR FAILOVER target replica is not online.");
        }
        tracing::info!("FAILOVER requested to {host}:{port}.");
    } else {
        tracing::info!("FAILOVER requested to any replica.");
    }
    let target = req.target.and_then(|(h, p)| u16::try_from(p).ok().map(|p| (h, p)));
    st.failover = Failover {
        phase: Phase::WaitForSync,
        target,
        end_ms: req.timeout_ms.map(|t| unix_ms().saturating_add(t)),
        force: req.force,
    };
    drop(st);
    shared.pause.hold_writes(BY_FAILOVER);
    shared.repl.hold_expiry(true);
    Ok(())
}

/// Ten times a second while waiting for sync: the timeout, and the switch
/// once the target (or any replica) has acknowledged our offset.
pub fn update(shared: &Arc<Shared>) {
    if shared.repl.state.lock().failover.phase != Phase::WaitForSync {
        return;
    }
    // Under the keyspace lock, so FAILOVER ABORT (a command) cannot
    // interleave with the switch.
    let _store = shared.store.lock();
    let repl = &shared.repl;
    let offset = repl.master_offset();
    let mut st = repl.state.lock();
    if st.failover.phase != Phase::WaitForSync {
        return;
    }
    if st.failover.end_ms.is_some_and(|end| end <= unix_ms()) {
        if st.failover.force {
            if let Some((host, port)) = st.failover.target.clone() {
                tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                st.failover.phase = Phase::InProgress;
                drop(st);
                super::replica::set_master(shared, host, port);
                return;
            }
        }
        drop(st);
        abort(shared, "Replica never caught up before timeout");
        return;
    }
    let caught_up = match &st.failover.target {
        Some((host, port)) => {
            st.replicas.iter().any(|r| r.ip.eq_ignore_ascii_case(host) && r.port == *port && r.ack_offset() == offset)
        }
        None => {
            let first = st.replicas.iter().find(|r| r.ack_offset() == offset).map(|r| (r.ip.clone(), r.port));
            if first.is_some() {
                st.failover.target = first;
            }
            st.failover.target.is_some()
        }
    };
    if !caught_up {
        return;
    }
    let Some((host, port)) = st.failover.target.clone() else { return };
    st.failover.phase = Phase::InProgress;
    drop(st);
    tracing::info!("Failover target {host}:{port} is synced, failing over.");
    super::replica::set_master(shared, host, port);
}

/// Whether our handshake's PSYNC must carry FAILOVER.
pub fn in_progress(shared: &Shared) -> bool {
    shared.repl.state.lock().failover.phase == Phase::InProgress
}

/// The target accepted our PSYNC (either way): the failover is done.
pub fn completed(shared: &Shared) {
    let was = std::mem::take(&mut shared.repl.state.lock().failover);
    if was.phase != Phase::None {
        shared.pause.release_writes(BY_FAILOVER);
        shared.repl.hold_expiry(shared.pause.held_by_server());
    }
}

/// Ends a failover that did not happen: an old master that had already
/// turned into a replica becomes a master again. False when none was in
/// progress.
pub fn abort(shared: &Shared, why: &str) -> bool {
    let was = std::mem::take(&mut shared.repl.state.lock().failover);
    if was.phase == Phase::None {
        return false;
    }
    match &was.target {
        Some((host, port)) => tracing::info!("FAILOVER to {host}:{port} aborted: {why}"),
        None => tracing::info!("FAILOVER to any replica aborted: {why}"),
    }
    shared.pause.release_writes(BY_FAILOVER);
    shared.repl.hold_expiry(shared.pause.held_by_server());
    if was.phase == Phase::InProgress {
        super::replica::unset_master(shared, "failover aborted");
    }
    true
}
