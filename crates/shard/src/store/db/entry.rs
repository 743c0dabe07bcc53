//! A stored key's entry: its value, its expiry and its access clock.

use std::sync::atomic::{AtomicU64, Ordering};

use super::super::Value;

/// Bits of [`Entry`]'s packed word that hold the expiry (unix ms): enough
/// for dates until 2109. A later expiry is packed as the limit
/// ([`FAR_EXPIRE`]); [`super::Db`] keeps its exact value on the side.
const EXPIRE_BITS: u32 = 42;
const EXPIRE_MASK: u64 = (1 << EXPIRE_BITS) - 1;
/// The packed expiry of keys that expire after 2109.
pub const FAR_EXPIRE: u64 = EXPIRE_MASK;
/// The access clock takes the remaining 22 bits: seconds, wrapping every
/// ~48 days, as Redis's 24-bit LRU clock wraps.
const LRU_MASK: u64 = (1 << (64 - EXPIRE_BITS)) - 1;

/// The coarse access clock (unix seconds, masked), shared so that creating
/// an entry needs no clock read. Refreshed by lookups and the expiry tick.
static LRU_CLOCK: AtomicU64 = AtomicU64::new(0);

/// The current access clock value.
pub fn lru_clock() -> u64 {
    match LRU_CLOCK.load(Ordering::Relaxed) {
        0 => {
            let now = crate::server::unix_ms();
            update_lru_clock(now);
            (now / 1000) & LRU_MASK
        }
        c => c,
    }
}

/// Advances the access clock to `now_ms`; a store only once a second.
pub fn update_lru_clock(now_ms: u64) {
    let c = (now_ms / 1000) & LRU_MASK;
    if LRU_CLOCK.load(Ordering::Relaxed) != c {
        LRU_CLOCK.store(c, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Expiry (low bits, unix ms, 0 = none) and last access (high bits),
    /// packed so that tracking idle time costs no memory per key.
    meta: u64,
}

impl Entry {
    pub fn new(value: Value) -> Self {
        Entry { value, meta: lru_clock() << EXPIRE_BITS }
    }

    /// The entry with an absolute expiry in unix ms (0: none). Takes the
    /// entry by value: a stored key's expiry changes through
    /// [`super::Db::set_expire`], which keeps the volatile counts right and
    /// an expiry after 2109 exact (here it saturates at [`FAR_EXPIRE`]).
    pub fn with_expire(mut self, at: u64) -> Self {
        self.put_expire(at);
        self
    }

    /// Absolute expiry in unix milliseconds; 0 means none.
    pub fn expire(&self) -> u64 {
        self.meta & EXPIRE_MASK
    }

    pub(super) fn put_expire(&mut self, at: u64) {
        self.meta = (self.meta & !EXPIRE_MASK) | at.min(EXPIRE_MASK);
    }

    /// Seconds since the key was last read or written (OBJECT IDLETIME).
    pub fn idle_secs(&self) -> u64 {
        let last = self.meta >> EXPIRE_BITS;
        lru_clock().wrapping_sub(last) & LRU_MASK
    }

    /// Sets the access clock as if the key was last used `secs` ago
    /// (RESTORE ... IDLETIME).
    pub fn set_idle_secs(&mut self, secs: u64) {
        let at = lru_clock().wrapping_sub(secs) & LRU_MASK;
        self.meta = (self.meta & EXPIRE_MASK) | (at << EXPIRE_BITS);
    }

    /// Marks the key as just accessed.
    pub fn touch(&mut self) {
        self.meta = (self.meta & EXPIRE_MASK) | (lru_clock() << EXPIRE_BITS);
    }

    pub(super) fn is_expired(&self, now: u64) -> bool {
        let at = self.expire();
        at != 0 && at <= now
    }
}
