//! Eviction: keeping the dataset under `maxmemory` as Redis 7.0 does.
//!
//! Before each command, [`admit`] compares used memory with `maxmemory`.
//! When over, it deletes keys chosen by `maxmemory-policy` until under
//! (bounded in time by `maxmemory-eviction-tenacity`; the expiry tick
//! carries on where a command stopped, see [`cycle`]). If nothing can be
//! evicted (`noeviction`, or no key with a TTL under a `volatile-*`
//! policy), commands that may grow memory (`denyoom`), and anything a
//! client tries to queue in MULTI, are refused with the OOM error.
//!
//! Choosing a victim is Redis's approximation: look at `maxmemory-samples`
//! random keys per database ([`crate::store::Db::sample`]), rank them (idle
//! time, inverse access frequency, or nearness of expiry), keep the best
//! sixteen in a [`Pool`] that survives between rounds, and evict the best
//! candidate that still exists. Random policies pick one random key, going
//! round the databases.
//!
//! An evicted key is reported as Redis reports it: `evicted_keys` counts
//! it, WATCHers of it lose their transaction at once, and it is queued in
//! [`crate::store::Db::evicted`] for the dispatcher to hand on.

mod pool;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use rand::Rng;
use slotway_slots::commands::{flags, CommandSpec};

use crate::command::{Ctx, Lookup};
use crate::config::Config;
use crate::memory;
use crate::server::Shared;
use crate::store::db::Access;
use crate::store::{Blob, Entry, Store};

pub use pool::Pool;

/// The refusal Redis sends when it cannot make room.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    VolatileLru,
    AllKeysLfu,
    VolatileLfu,
    AllKeysRandom,
    VolatileRandom,
    VolatileTtl,
}

/// What a policy ranks candidates by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rank {
    Idle,
    Rarity,
    Ttl,
    Random,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "volatile-lru" => Policy::VolatileLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "volatile-lfu" => Policy::VolatileLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    /// Only keys with an expiry are candidates.
    fn volatile_only(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    fn rank(self) -> Rank {
        match self {
            Policy::AllKeysLru | Policy::VolatileLru | Policy::NoEviction => Rank::Idle,
            Policy::AllKeysLfu | Policy::VolatileLfu => Rank::Rarity,
            Policy::VolatileTtl => Rank::Ttl,
            Policy::AllKeysRandom | Policy::VolatileRandom => Rank::Random,
        }
    }
}

/// The eviction directives, read once per configuration snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// Bytes; 0 means no limit.
    pub maxmemory: u64,
    pub policy: Policy,
    /// Keys sampled per database per round (`maxmemory-samples`).
    pub samples: usize,
    /// `maxmemory-eviction-tenacity` (0..=100).
    pub tenacity: u32,
    /// How entries record accesses under this policy.
    pub access: Access,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        let policy = Policy::parse(c.maxmemory_policy);
        let int = |name: &str| c.int(name).clamp(0, u32::MAX as i128) as u32;
        let access = match policy.rank() {
            Rank::Rarity => Access::Lfu { log_factor: int("lfu-log-factor"), decay_minutes: int("lfu-decay-time") },
            _ => Access::Lru,
        };
        Settings {
            maxmemory: c.maxmemory,
            policy,
            samples: (c.maxmemory_samples as usize).max(1),
            tenacity: int("maxmemory-eviction-tenacity"),
            access,
        }
    }

    /// How long one call may spend evicting: Redis's curve, 50 µs per step
    /// of tenacity up to 10, then 15% more per step, unlimited at 100.
    fn time_limit(&self) -> Duration {
        match self.tenacity {
            t @ 0..=10 => Duration::from_micros(50 * t as u64),
            t @ 11..=99 => Duration::from_secs_f64(500e-6 * 1.15f64.powi(t as i32 - 10)),
            _ => Duration::MAX,
        }
    }
}

/// Eviction state that lives in the [`Store`]: the candidate pool, the
/// next database for the random policies, and the access mode the
/// databases were last set to.
#[derive(Default)]
pub struct State {
    pool: Pool,
    next_db: usize,
    access: Access,
    /// The policy the pool's scores were computed under.
    policy: Policy,
    /// Since when used memory has been over the limit (as eviction last
    /// found it), and the time spent over it before: INFO's
    /// `*_eviction_exceeded_time`.
    exceeded_since: Option<Instant>,
    exceeded_before: Duration,
}

impl State {
    /// (total, current) time over the limit, in milliseconds.
    pub fn exceeded_ms(&self) -> (u64, u64) {
        let current = self.exceeded_since.map_or(Duration::ZERO, |t| t.elapsed());
        ((self.exceeded_before + current).as_millis() as u64, current.as_millis() as u64)
    }

    /// Opens or closes the over-the-limit interval, as Redis counts it:
    /// open while eviction fails or runs out of time, closed once under.
    fn note(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => {
                if let Some(since) = self.exceeded_since.take() {
                    self.exceeded_before += since.elapsed();
                }
            }
            Outcome::Running | Outcome::Fail => {
                self.exceeded_since.get_or_insert_with(Instant::now);
            }
        }
    }
}

/// How an eviction attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or no limit).
    Ok,
    /// Still over, with time up; the next command or tick goes on.
    Running,
    /// Still over and nothing left to evict.
    Fail,
}

/// Says how far over the limit the store is, as evictions proceed.
pub trait Meter {
    /// Bytes (or units) still to free; 0 once under the limit.
    fn excess(&mut self, store: &Store) -> u64;
}

/// The real meter: [`memory::used_recent`], which follows this thread's
/// frees as they happen.
struct Jemalloc {
    now_ms: u64,
    max: u64,
    /// Memory that evicting keys cannot free and that does not count
    /// (see [`not_counted`]), read once per eviction round.
    not_counted: u64,
}

impl Meter for Jemalloc {
    fn excess(&mut self, _store: &Store) -> u64 {
        memory::used_recent(self.now_ms, self.max).saturating_sub(self.not_counted).saturating_sub(self.max)
    }
}

/// As Redis's `freeMemoryGetNotCountedMemory`: what replicas' pending
/// output holds beyond the backlog is not counted against `maxmemory`, or
/// a replica catching up would make the master evict (or refuse writes)
/// for memory no eviction can give back. Only read when over the limit.
fn not_counted(shared: &crate::server::Shared) -> u64 {
    shared.repl.pending_output_bytes()
}

/// The dispatcher's check before running a command: keeps the access mode
/// in step with the policy, evicts when over `maxmemory`, and says whether
/// the command may run (false: refuse it with [`OOM_ERROR`]).
pub fn admit(ctx: &mut Ctx<'_>, spec: &CommandSpec) -> bool {
    let settings = &ctx.config.eviction;
    if ctx.store.evict.access != settings.access {
        set_access(ctx.store, settings.access);
    }
    if ctx.store.evict.policy != settings.policy {
        // Scores of another policy mean nothing under this one.
        ctx.store.evict.policy = settings.policy;
        ctx.store.evict.pool = Pool::default();
    }
    if settings.maxmemory == 0 {
        return true;
    }
    let used = memory::used_recent(ctx.now, settings.maxmemory);
    let not_counted = if used > settings.maxmemory { not_counted(ctx.shared) } else { 0 };
    if used.saturating_sub(not_counted) <= settings.maxmemory {
        if ctx.store.evict.exceeded_since.is_some() {
            ctx.store.evict.note(Outcome::Ok);
        }
        return true;
    }
    let mut meter = Jemalloc { now_ms: ctx.now, max: settings.maxmemory, not_counted };
    if perform(ctx.store, settings, &mut meter) != Outcome::Fail {
        return true;
    }
    // Queueing in MULTI could grow without bound, so only the commands that
    // end or leave a transaction get through; EXEC only if nothing it
    // would run may grow memory.
    let queueing = ctx.client.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "quit" | "reset");
    let grows = spec.has(flags::DENYOOM) || (spec.name == "exec" && queued_may_grow(ctx));
    !(queueing || grows)
}

fn queued_may_grow(ctx: &Ctx<'_>) -> bool {
    let Some(queue) = ctx.client.multi.as_ref() else { return false };
    queue.iter().any(|args| match ctx.shared.commands.find(args) {
        Lookup::Found(reg) | Lookup::MissingSubcommand(reg) => reg.spec.has(flags::DENYOOM),
        _ => false,
    })
}

/// Switches how every database records accesses (the policy changed
/// between the LRU and LFU families). Existing keys keep their bits and
/// read oddly until touched again, as in Redis.
pub fn set_access(store: &mut Store, access: Access) {
    store.evict.access = access;
    for db in &mut store.dbs {
        db.access = access;
    }
}

/// Evicts keys until `meter` reads zero, time runs out, or no candidate is
/// left.
pub fn perform(store: &mut Store, settings: &Settings, meter: &mut impl Meter) -> Outcome {
    let outcome = evict_until_under(store, settings, meter);
    store.evict.note(outcome);
    outcome
}

fn evict_until_under(store: &mut Store, settings: &Settings, meter: &mut impl Meter) -> Outcome {
    if meter.excess(store) == 0 {
        return Outcome::Ok;
    }
    if settings.policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    let started = Instant::now();
    let limit = settings.time_limit();
    let mut rng = rand::thread_rng();
    let mut evicted = 0u64;
    while meter.excess(store) > 0 {
        let Some((db, key)) = pick(store, settings, &mut rng) else { return Outcome::Fail };
        evict(store, db, key);
        evicted += 1;
        // Reading the clock costs; Redis also looks every 16 keys.
        if evicted.is_multiple_of(16) && started.elapsed() > limit {
            return if meter.excess(store) == 0 { Outcome::Ok } else { Outcome::Running };
        }
    }
    Outcome::Ok
}

/// Deletes one victim and reports it.
fn evict(store: &mut Store, db: usize, key: Blob) {
    let Some(entry) = store.dbs[db].remove(&key) else { return };
    // Freed here, on this thread, where the meter sees it at once.
    drop(entry);
    store.stats.evicted_keys += 1;
    store.touch(db, &key);
    store.dbs[db].evicted.push(key);
}

/// The next key to evict under `settings.policy`, if any is left.
fn pick(store: &mut Store, settings: &Settings, rng: &mut impl Rng) -> Option<(usize, Blob)> {
    let volatile = settings.policy.volatile_only();
    let rank = settings.policy.rank();
    if rank == Rank::Random {
        let n = store.dbs.len();
        for _ in 0..n {
            store.evict.next_db = (store.evict.next_db + 1) % n;
            let db = store.evict.next_db;
            let mut got = None;
            store.dbs[db].sample(1, volatile, rng, |k, _| got = Some(Blob::from(k)));
            if let Some(key) = got {
                return Some((db, key));
            }
        }
        return None;
    }
    loop {
        let mut total = 0;
        let (dbs, pool) = (&store.dbs, &mut store.evict.pool);
        for (i, db) in dbs.iter().enumerate() {
            let access = db.access;
            total += db.sample(settings.samples, volatile, rng, |k, e| {
                pool.offer(score(rank, access, db.exact_expire(k, e.expire()), e), i, k);
            });
        }
        if total == 0 {
            return None;
        }
        // Candidates may have gone since they were pooled (deleted, or
        // their TTL removed under a volatile policy).
        while let Some((db, key)) = pool.take_best() {
            if dbs[db].peek(&key).is_some_and(|e| !volatile || e.expire() != 0) {
                return Some((db, key));
            }
        }
    }
}

/// Higher is evicted first.
fn score(rank: Rank, access: Access, expire: u64, e: &Entry) -> u64 {
    match rank {
        Rank::Idle => e.idle_secs(),
        Rank::Rarity => 255 - e.lfu_counter(access).min(255),
        Rank::Ttl => u64::MAX - expire,
        Rank::Random => 0,
    }
}

/// The background half of eviction, run from the expiry tick: when a
/// command's eviction stopped on its time limit, carry on, one bounded
/// attempt per lock hold, until under the limit or `budget` is spent.
pub async fn cycle(shared: &Shared, budget: Duration) {
    let started = Instant::now();
    loop {
        let config = shared.config.load_full();
        if crate::replication::ignores_maxmemory(shared, &config) {
            return;
        }
        // As Redis: while writes are paused the dataset stays as it is.
        if shared.pause.writes_held() {
            return;
        }
        let settings = config.eviction;
        if settings.maxmemory == 0 || settings.policy == Policy::NoEviction {
            return;
        }
        let outcome = {
            let mut store = shared.store.lock();
            // The keys it evicts stay queued in `Db::evicted` until the
            // next command's bookkeeping hands them on.
            let mut meter = Jemalloc {
                now_ms: crate::server::unix_ms(),
                max: settings.maxmemory,
                not_counted: not_counted(shared),
            };
            let outcome = perform(&mut store, &settings, &mut meter);
            if !store.ready.is_empty() {
                crate::dispatch::serve_blocked(&mut store, shared);
            }
            outcome
        };
        if outcome != Outcome::Running || started.elapsed() > budget {
            return;
        }
        tokio::task::yield_now().await;
    }
}
