//! Replication, as Redis 7.0 does it on the wire: a master streams every
//! write to its replicas; a replica applies that stream and can itself be
//! the master of others.
//!
//! Flow on a master: the first replica's PSYNC creates the [`Backlog`] and
//! subscribes a [`Feed`] to the propagation stream (`crate::propagate`).
//! From then on every write's deterministic effect is encoded as RESP
//! (with a SELECT when the database changes), appended to the backlog
//! (`master_repl_offset` counts each byte) and to each replica's bounded
//! pending output, and the replica's task ([`master::serve`]) writes it
//! out. PSYNC continues from the backlog when it can, else the master
//! forks a snapshot and records the offset it stands for.
//!
//! Flow on a replica: the link task ([`replica`]) handshakes, receives the
//! snapshot or a `+CONTINUE`, then applies the master's stream through
//! `dispatch` as the master client. The exact bytes received go into our
//! own backlog and to our own replicas (chained replication), so after a
//! promotion (`REPLICAOF NO ONE`, which keeps the old id as `replid2`)
//! the other replicas can continue with us. Our own propagated rewrite is
//! not fed to the backlog while we are a replica.
//!
//! Locks: the keyspace lock is taken before [`Replication::state`], never
//! after; feeding runs under both.

pub mod backlog;
pub mod diskless;
pub mod failover;
pub mod master;
pub mod rdbaux;
pub mod replica;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

pub use backlog::Backlog;

use crate::propagate::{Consumer, Selector};
use crate::server::Shared;

/// Replication state shared by the sessions, the replica tasks, the link
/// and the cron.
pub struct Replication {
    pub state: Mutex<State>,
    /// `master_repl_offset`, readable without the lock (a client's last
    /// write offset, WAIT).
    pub offset: AtomicI64,
    /// We replicate a master: no writes from normal clients, no expiry.
    replica: AtomicBool,
    /// Woken on every REPLCONF ACK (WAIT, replica-ack-writes).
    pub acked: Notify,
    /// The [`Feed`] is subscribed to the propagation stream.
    subscribed: AtomicBool,
    /// A SHUTDOWN or FAILOVER holds writes: as Redis during a write
    /// pause, expired keys read as missing but are not deleted (a DEL
    /// would move the offset the replicas must reach).
    expiry_held: AtomicBool,
    /// INFO stats: `sync_full`, `sync_partial_ok`, `sync_partial_err`.
    pub stats: SyncStats,
}

#[derive(Default)]
pub struct SyncStats {
    pub full: AtomicU64,
    pub partial_ok: AtomicU64,
    pub partial_err: AtomicU64,
}

pub struct State {
    pub replid: String,
    pub replid2: String,
    /// The first offset `replid` is no longer valid for with `replid2`.
    pub second_offset: i64,
    /// `master_repl_offset`.
    pub offset: i64,
    pub backlog: Option<Backlog>,
    /// SELECT state of the stream we generate.
    pub selector: Selector,
    /// The database the stream has selected at `offset` (ours as a
    /// master, our master's as a replica): a snapshot carries it, and a
    /// resumed link starts there.
    pub stream_db: usize,
    /// Replicas connected to us.
    pub replicas: Vec<Arc<master::ReplicaConn>>,
    /// The master we replicate, if any.
    pub master: Option<replica::MasterLink>,
    /// `client-output-buffer-limit replica`, refreshed by the cron.
    pub obuf_limit: (usize, usize, u64),
    /// Unix ms since when no replica has been connected (start, the last
    /// replica leaving, a promotion): `repl-backlog-ttl` counts from it.
    pub no_replicas_since: u64,
    /// FAILOVER's progress.
    pub failover: failover::Failover,
    /// Replicas waiting for the next diskless snapshot.
    pub diskless: Option<diskless::Waiting>,
}

impl State {
    /// PSYNC's decision: the stream from `offset` on when `id` is our
    /// history (or the previous one, up to where it stopped being ours)
    /// and the backlog still holds that offset; `None` means a full
    /// resync.
    pub fn continue_from(&self, id: &[u8], offset: i64) -> Option<Vec<u8>> {
        let ours = id == self.replid.as_bytes();
        let previous = id == self.replid2.as_bytes() && offset <= self.second_offset;
        if !ours && !previous {
            return None;
        }
        self.backlog.as_ref()?.copy_from(offset)
    }
}

/// Forty random hex characters.
pub fn new_replid() -> String {
    (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect()
}

pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

impl Default for Replication {
    fn default() -> Self {
        Replication {
            state: Mutex::new(State {
                replid: new_replid(),
                replid2: NO_REPLID.into(),
                second_offset: -1,
                offset: 0,
                backlog: None,
                selector: Selector::default(),
                stream_db: 0,
                replicas: Vec::new(),
                master: None,
                obuf_limit: (256 << 20, 64 << 20, 60),
                no_replicas_since: crate::server::unix_ms(),
                failover: Default::default(),
                diskless: None,
            }),
            offset: AtomicI64::new(0),
            replica: AtomicBool::new(false),
            acked: Notify::new(),
            subscribed: AtomicBool::new(false),
            expiry_held: AtomicBool::new(false),
            stats: SyncStats::default(),
        }
    }
}

impl Replication {
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    pub(crate) fn set_replica(&self, on: bool) {
        self.replica.store(on, Ordering::Relaxed);
        self.apply_expiry_mode();
    }

    /// Keeps (`true`) or resumes deleting expired keys on lookups and in
    /// the active cycle, while a SHUTDOWN or FAILOVER holds writes.
    pub(crate) fn hold_expiry(&self, on: bool) {
        self.expiry_held.store(on, Ordering::Relaxed);
        // A replica's mode is its link's to switch (see `replica::stream`).
        if !self.is_replica() {
            self.apply_expiry_mode();
        }
    }

    pub(crate) fn apply_expiry_mode(&self) {
        let keep = self.is_replica() || self.expiry_held.load(Ordering::Relaxed);
        crate::store::db::set_expiry_mode(if keep {
            crate::store::db::ExpiryMode::Replica
        } else {
            crate::store::db::ExpiryMode::Normal
        });
    }

    pub fn master_offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Appends stream bytes to the backlog and to every replica.
    pub(crate) fn push(&self, st: &mut State, data: &[u8]) {
        let Some(backlog) = st.backlog.as_mut() else { return };
        backlog.append(data);
        st.offset += data.len() as i64;
        self.offset.store(st.offset, Ordering::Relaxed);
        let now = crate::server::unix_ms();
        for r in &st.replicas {
            r.push(data, st.obuf_limit, now);
        }
    }

    /// Encodes a command of ours into the stream (PING, GETACK).
    pub(crate) fn push_command(&self, st: &mut State, argv: &[&[u8]]) {
        let mut buf = Vec::with_capacity(64);
        crate::propagate::encode_command(argv, &mut buf);
        self.push(st, &buf);
    }

    /// Makes sure a backlog exists (the first replica, or a finished
    /// sync on a replica) and that the stream feeds it. Call under the
    /// keyspace lock and without [`Replication::state`] held.
    pub(crate) fn ensure_backlog(self: &Arc<Self>, shared: &Shared, size: usize, new_history: bool) {
        {
            let mut st = self.state.lock();
            if st.backlog.is_none() {
                if new_history {
                    // As Redis: a master that had no backlog cannot have
                    // been followed; it starts a fresh history.
                    st.replid = new_replid();
                    st.replid2 = NO_REPLID.into();
                    st.second_offset = -1;
                }
                st.backlog = Some(Backlog::new(size, st.offset));
            }
        }
        if !self.subscribed.swap(true, Ordering::Relaxed) {
            shared.propagator.subscribe(Arc::new(Feed(self.clone())));
        }
    }

    /// REPLICAOF NO ONE and failovers: the old history stays valid under
    /// `replid2` up to the current offset, and a new one begins.
    pub(crate) fn shift_replid(&self, st: &mut State) {
        st.replid2 = std::mem::replace(&mut st.replid, new_replid());
        st.second_offset = st.offset + 1;
    }

    /// Unregisters a replica; the last one to go starts the backlog's
    /// time to live.
    pub(crate) fn remove_replica(&self, conn: &Arc<master::ReplicaConn>) {
        let mut st = self.state.lock();
        let before = st.replicas.len();
        st.replicas.retain(|r| !Arc::ptr_eq(r, conn));
        if before > 0 && st.replicas.is_empty() {
            st.no_replicas_since = crate::server::unix_ms();
        }
    }

    /// Stream bytes queued for replicas and not yet written (their output
    /// buffers), which eviction does not count.
    pub fn pending_output_bytes(&self) -> u64 {
        self.state.lock().replicas.iter().map(|r| r.pending_bytes() as u64).sum()
    }

    /// How many online replicas have acknowledged `offset`.
    pub fn acked_count(&self, offset: i64) -> usize {
        self.state.lock().replicas.iter().filter(|r| r.is_online() && r.ack_offset() >= offset).count()
    }

    /// Replicas online whose last ACK is at most `max_lag` seconds old
    /// (min-replicas-to-write).
    pub fn good_replicas(&self, max_lag: u64, now_ms: u64) -> usize {
        self.state.lock().replicas.iter().filter(|r| r.is_online() && r.lag_secs(now_ms) <= max_lag).count()
    }
}

/// The propagation consumer that feeds the backlog and the replicas.
pub struct Feed(Arc<Replication>);

impl Consumer for Feed {
    fn feed(&self, db: usize, argv: &[Bytes]) {
        // A replica's stream is its master's bytes, not our rewrite of them.
        if self.0.is_replica() {
            return;
        }
        let mut st = self.0.state.lock();
        if st.backlog.is_none() {
            return;
        }
        let mut buf = Vec::with_capacity(64);
        st.selector.encode(db, argv, &mut buf);
        st.stream_db = db;
        self.0.push(&mut st, &buf);
    }
}

/// A replica with `replica-ignore-maxmemory yes` (the default) neither
/// evicts nor refuses writes for memory: its master decides what goes.
pub fn ignores_maxmemory(shared: &Shared, cfg: &crate::config::Config) -> bool {
    shared.repl.is_replica() && cfg.flag("replica-ignore-maxmemory")
}

/// `replica-serve-stale-data no` on a replica whose link is down: only
/// commands flagged `stale` run.
pub fn refuses_stale(shared: &Shared, cfg: &crate::config::Config) -> bool {
    shared.repl.is_replica()
        && !cfg.flag("replica-serve-stale-data")
        && !shared.repl.state.lock().master.as_ref().is_some_and(|m| m.is_up())
}

/// At start: `replicaof` from the configuration.
pub fn start(shared: &Arc<Shared>) {
    let cfg = shared.config.load();
    if let Some(crate::config::Val::List(l)) = cfg.get("replicaof") {
        if let [host, port] = &l[..] {
            if let Ok(port) = port.parse::<u16>() {
                replica::set_master(shared, host.clone(), port);
            }
        }
    }
}

/// Once a second: PINGs to replicas, ACK timeouts, limits from the
/// configuration; ten times a second the cheap parts.
pub async fn cron(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loops: u64 = 0;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        loops += 1;
        master::cron(&shared, loops);
        failover::update(&shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(replid: &str, replid2: &str, second: i64, stream: &[u8], size: usize) -> State {
        let r = Replication::default();
        let mut st = r.state.into_inner();
        st.replid = replid.into();
        st.replid2 = replid2.into();
        st.second_offset = second;
        let mut b = Backlog::new(size, 0);
        b.append(stream);
        st.offset = stream.len() as i64;
        st.backlog = Some(b);
        st
    }

    #[test]
    fn continue_needs_a_known_id_and_a_covered_offset() {
        let a = "a".repeat(40);
        let st = state_with(&a, NO_REPLID, -1, b"0123456789", 64);
        assert_eq!(st.continue_from(a.as_bytes(), 1).unwrap(), b"0123456789");
        assert_eq!(st.continue_from(a.as_bytes(), 11).unwrap(), b"");
        assert!(st.continue_from(a.as_bytes(), 12).is_none(), "ahead of us");
        assert!(st.continue_from(b"?", -1).is_none());
        assert!(st.continue_from("b".repeat(40).as_bytes(), 5).is_none(), "another history");
    }

    #[test]
    fn previous_id_is_valid_up_to_the_switch() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        // Promoted at offset 6: the old id covers offsets up to 7.
        let st = state_with(&b, &a, 7, b"0123456789", 64);
        assert_eq!(st.continue_from(a.as_bytes(), 7).unwrap(), b"6789");
        assert!(st.continue_from(a.as_bytes(), 8).is_none(), "past the switch under the old id");
        assert_eq!(st.continue_from(b.as_bytes(), 8).unwrap(), b"789");
    }

    #[test]
    fn overwritten_history_means_a_full_resync() {
        let a = "a".repeat(40);
        let st = state_with(&a, NO_REPLID, -1, b"0123456789", 4);
        assert!(st.continue_from(a.as_bytes(), 6).is_none());
        assert_eq!(st.continue_from(a.as_bytes(), 7).unwrap(), b"6789");
    }
}
