//! Memory accounting: what INFO memory reports and what `maxmemory` is
//! checked against.
//!
//! The shard runs on jemalloc (as redis-server does), so "used memory" is
//! jemalloc's own count of bytes handed out, the same figure Redis calls
//! `used_memory`, and `resident` is what the process really holds.
//!
//! jemalloc only publishes fresh totals when its statistics epoch is
//! advanced, which costs several microseconds: too much for every command.
//! So the `maxmemory` check reads [`used_recent`], a reading refreshed at
//! most once per millisecond (a millisecond of writes is a few tens of
//! kilobytes at full speed), and eviction, which must see its own frees at
//! once, measures them with jemalloc's per-thread byte counters
//! ([`ThreadNet`]), which cost nothing to read, then lowers the reading by
//! what it freed ([`note_freed`]).

use std::sync::atomic::{AtomicU64, Ordering};

use tikv_jemalloc_ctl::thread::{allocatedp, deallocatedp, ThreadLocal};
use tikv_jemalloc_ctl::{epoch, stats};

/// The last reading of [`used_bytes`] and the unix millisecond it is for.
static RECENT: AtomicU64 = AtomicU64::new(0);
static RECENT_AT: AtomicU64 = AtomicU64::new(0);

/// Bytes currently allocated by the program, or 0 when the allocator
/// cannot say (a test binary running on the system allocator).
pub fn used_bytes() -> u64 {
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    let _ = epoch::advance();
    let used = stats::allocated::read().map(|n| n as u64).unwrap_or(0);
    RECENT.store(used, Ordering::Relaxed);
    used
}

/// [`used_bytes`] as of `now_ms` (unix milliseconds): a fresh reading the
/// first time a millisecond asks, the cached one after that.
pub fn used_recent(now_ms: u64) -> u64 {
    let at = RECENT_AT.load(Ordering::Relaxed);
    if at != now_ms && RECENT_AT.compare_exchange(at, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        return used_bytes();
    }
    RECENT.load(Ordering::Relaxed)
}

/// Lowers the cached reading by `bytes` just freed, so that the next
/// check within the same millisecond sees them gone.
pub fn note_freed(bytes: u64) {
    let _ = RECENT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(bytes)));
}

/// Bytes of physical memory mapped by the allocator (`used_memory_rss`).
pub fn resident_bytes() -> u64 {
    let _ = epoch::advance();
    stats::resident::read().map(|n| n as u64).unwrap_or(0)
}

/// The bytes the current thread freed, net of what it allocated, since
/// [`ThreadNet::start`]: exact and immediate, unlike the global totals,
/// which lag by whatever sits in the thread's allocation cache. Not `Send`:
/// it reads counters of the thread that created it.
pub struct ThreadNet {
    counters: Option<(ThreadLocal<u64>, ThreadLocal<u64>)>,
    allocated: u64,
    deallocated: u64,
}

impl ThreadNet {
    pub fn start() -> Self {
        let counters = allocatedp::read().ok().zip(deallocatedp::read().ok());
        let (allocated, deallocated) = counters.map_or((0, 0), |(a, d)| (a.get(), d.get()));
        ThreadNet { counters, allocated, deallocated }
    }

    /// Net bytes freed so far (0 when the allocator keeps no counters).
    pub fn freed(&self) -> u64 {
        let Some((a, d)) = self.counters else { return 0 };
        let freed = d.get().wrapping_sub(self.deallocated);
        let allocated = a.get().wrapping_sub(self.allocated);
        freed.saturating_sub(allocated)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_allocations() {
        // Unit tests run on the system allocator: the calls must still work.
        let _ = super::used_bytes();
        let _ = super::resident_bytes();
        let _ = super::used_recent(1);
        super::note_freed(10);
        let net = super::ThreadNet::start();
        drop(vec![0u8; 4096]);
        let _ = net.freed();
    }
}
