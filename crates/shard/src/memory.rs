//! Memory accounting: what INFO memory reports and what `maxmemory` is
//! checked against.
//!
//! The shard runs on jemalloc (as redis-server does), so "used memory" is
//! jemalloc's own count of bytes handed out, the same figure Redis calls
//! `used_memory`, and `resident` is what the process really holds.

use tikv_jemalloc_ctl::{epoch, stats};

/// Bytes currently allocated by the program, or 0 when the allocator
/// cannot say (a test binary running on the system allocator).
pub fn used_bytes() -> u64 {
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    let _ = epoch::advance();
    stats::allocated::read().map(|n| n as u64).unwrap_or(0)
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
        // Unit tests run on the system allocator: the call must still work.
        let _ = super::used_bytes();
        let _ = super::resident_bytes();
    }
}
