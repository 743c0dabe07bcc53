//! Memory accounting: what INFO memory reports and what `maxmemory` is
//! checked against.
//!
//! The shard runs on jemalloc (as redis-server does), so "used memory" is
//! jemalloc's own count of bytes handed out, the same figure Redis calls
//! `used_memory`, and `resident` is what the process really holds.
//!
//! jemalloc only publishes fresh totals when its statistics epoch is
//! advanced, which costs several microseconds: too much for every command.
//! So the `maxmemory` check reads [`used_recent`]: a global reading
//! refreshed at most once per millisecond (less often while far below the
//! limit), plus what the calling thread has
//! allocated and freed since (jemalloc's per-thread byte counters, which
//! cost a load each). A batch of pipelined writes, or an eviction run,
//! therefore sees its own effect at once, whatever its size; what other
//! threads did meanwhile shows at the next refresh.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use tikv_jemalloc_ctl::thread::{allocatedp, deallocatedp, ThreadLocal};
use tikv_jemalloc_ctl::{epoch, stats};

/// The last global reading, the unix millisecond it was taken for, and a
/// number that changes with every reading.
static RECENT: AtomicU64 = AtomicU64::new(0);
static RECENT_AT: AtomicU64 = AtomicU64::new(0);
static READING: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's jemalloc byte counters (allocated, deallocated).
    static COUNTERS: Option<(ThreadLocal<u64>, ThreadLocal<u64>)> =
        allocatedp::read().ok().zip(deallocatedp::read().ok());
    /// The reading this thread last saw and its net bytes at that moment.
    static SEEN: Cell<(u64, u64)> = const { Cell::new((u64::MAX, 0)) };
}

/// Bytes currently allocated by the program, or 0 when the allocator
/// cannot say (a test binary running on the system allocator).
pub fn used_bytes() -> u64 {
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    let _ = epoch::advance();
    let used = stats::allocated::read().map(|n| n as u64).unwrap_or(0);
    RECENT.store(used, Ordering::Relaxed);
    READING.fetch_add(1, Ordering::Relaxed);
    used
}

/// What this thread allocated less what it freed, wrapping (only
/// differences mean anything).
fn thread_net() -> u64 {
    COUNTERS.with(|c| c.map_or(0, |(a, d)| a.get().wrapping_sub(d.get())))
}

/// Used memory as of `now_ms` (unix milliseconds), for comparing with
/// `limit`: a fresh global reading when the last one is old enough, else
/// the last reading plus this thread's net allocations since it first
/// looked at it. Old enough is a millisecond near the limit, and 8 ms while
/// more than an eighth below it, where another thread's writes of that
/// long cannot matter yet.
pub fn used_recent(now_ms: u64, limit: u64) -> u64 {
    let at = RECENT_AT.load(Ordering::Relaxed);
    let far = RECENT.load(Ordering::Relaxed) < limit - limit / 8;
    let period = if far { 8 } else { 1 };
    if now_ms >= at.saturating_add(period)
        && RECENT_AT.compare_exchange(at, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let used = used_bytes();
        SEEN.with(|s| s.set((READING.load(Ordering::Relaxed), thread_net())));
        return used;
    }
    let reading = READING.load(Ordering::Relaxed);
    let recent = RECENT.load(Ordering::Relaxed);
    let net = thread_net();
    SEEN.with(|s| {
        let (seen, base) = s.get();
        if seen != reading {
            s.set((reading, net));
            recent
        } else {
            recent.saturating_add_signed(net.wrapping_sub(base) as i64)
        }
    })
}

/// Bytes of physical memory mapped by the allocator (`used_memory_rss`).
pub fn resident_bytes() -> u64 {
    let _ = epoch::advance();
    stats::resident::read().map(|n| n as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_allocations() {
        // Unit tests run on the system allocator: the calls must still work.
        let _ = super::used_bytes();
        let _ = super::resident_bytes();
        let _ = super::used_recent(1, 1 << 30);
        let _ = super::used_recent(1, 1 << 30);
    }
}
