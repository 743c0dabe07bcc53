//! A stored key's entry: its value, its expiry and its access record.
//!
//! The access record is what eviction ranks keys by. Under an LRU (or no)
//! policy it is the access clock: when the key was last used. Under an LFU
//! policy the same bits hold Redis's logarithmic access counter and the
//! minute it was last decayed; [`Access`] says which reading applies, and
//! the database passes it to every touch.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

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

/// Under LFU the 22 bits split as Redis's 24 do, with two fewer bits of
/// time: the low 8 hold the counter, the high 14 the minute of the last
/// decay (wrapping every ~11 days, where Redis's wrap after ~45).
const LFU_COUNTER_BITS: u32 = 8;
const LFU_COUNTER_MASK: u64 = (1 << LFU_COUNTER_BITS) - 1;
const LFU_MINUTES_MASK: u64 = LRU_MASK >> LFU_COUNTER_BITS;
/// A new key's counter: high enough that it is not evicted before it had
/// a chance to be read.
pub const LFU_INIT: u64 = 5;

/// The coarse clock (unix seconds), shared so that creating an entry needs
/// no clock read. Refreshed by lookups and the expiry tick.
static CLOCK_SECS: AtomicU64 = AtomicU64::new(0);

fn clock_secs() -> u64 {
    match CLOCK_SECS.load(Ordering::Relaxed) {
        0 => {
            let now = crate::server::unix_ms();
            update_lru_clock(now);
            now / 1000
        }
        c => c,
    }
}

/// The current access clock value.
pub fn lru_clock() -> u64 {
    clock_secs() & LRU_MASK
}

/// The LFU time: minutes, masked to the bits an entry keeps.
fn lfu_minutes() -> u64 {
    (clock_secs() / 60) & LFU_MINUTES_MASK
}

/// Advances the clock to `now_ms`; a store only once a second.
pub fn update_lru_clock(now_ms: u64) {
    let c = now_ms / 1000;
    if CLOCK_SECS.load(Ordering::Relaxed) != c {
        CLOCK_SECS.store(c, Ordering::Relaxed);
    }
}

/// How the access bits of entries are kept: the maxmemory policy's family
/// and, for LFU, its two tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Last access time (LRU policies, and every non-LFU policy).
    #[default]
    Lru,
    /// A logarithmic counter: `log_factor` is `lfu-log-factor`,
    /// `decay_minutes` is `lfu-decay-time` (0: never decays).
    Lfu { log_factor: u32, decay_minutes: u32 },
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

    /// Marks the key as just accessed (LRU reading).
    pub fn touch(&mut self) {
        self.put_access(lru_clock());
    }

    fn access_bits(&self) -> u64 {
        self.meta >> EXPIRE_BITS
    }

    fn put_access(&mut self, bits: u64) {
        self.meta = (self.meta & EXPIRE_MASK) | ((bits & LRU_MASK) << EXPIRE_BITS);
    }

    /// Records an access the way `access` keeps it: a new clock value, or
    /// a decayed and then possibly incremented counter.
    pub fn touch_as(&mut self, access: Access) {
        match access {
            Access::Lru => self.touch(),
            Access::Lfu { log_factor, .. } => {
                let counter = lfu_increment(self.lfu_counter(access), log_factor);
                self.put_access((lfu_minutes() << LFU_COUNTER_BITS) | counter);
            }
        }
    }

    /// Starts the LFU record of a new key: the initial counter, now.
    pub fn init_lfu(&mut self) {
        self.put_access((lfu_minutes() << LFU_COUNTER_BITS) | LFU_INIT);
    }

    /// Copies the access record of `other` (a value overwritten in place
    /// keeps its key's frequency, as in Redis).
    pub fn inherit_access(&mut self, other: &Entry) {
        self.put_access(other.access_bits());
    }

    /// The LFU counter with the decay owed since it was last touched
    /// applied (OBJECT FREQ, and what LFU eviction ranks by). Meaningless
    /// under [`Access::Lru`], where it reads 0.
    pub fn lfu_counter(&self, access: Access) -> u64 {
        let Access::Lfu { decay_minutes, .. } = access else { return 0 };
        let bits = self.access_bits();
        let counter = bits & LFU_COUNTER_MASK;
        let then = bits >> LFU_COUNTER_BITS;
        let now = lfu_minutes();
        // The minute clock wraps; elapsed time is taken modulo its range.
        let elapsed = now.wrapping_sub(then) & LFU_MINUTES_MASK;
        let periods = if decay_minutes == 0 { 0 } else { elapsed / decay_minutes as u64 };
        counter.saturating_sub(periods)
    }
}

/// Setting an access record from outside: RESTORE's IDLETIME and FREQ
/// options, and tests.
impl Entry {
    /// The LRU record of a key last accessed `idle_secs` ago.
    pub fn set_idle_secs(&mut self, idle_secs: u64) {
        self.put_access(lru_clock().wrapping_sub(idle_secs));
    }

    /// The LFU record of a key with `counter` (at most 255), last decayed
    /// `minutes_ago`.
    pub fn set_lfu(&mut self, counter: u64, minutes_ago: u64) {
        let then = lfu_minutes().wrapping_sub(minutes_ago) & LFU_MINUTES_MASK;
        self.put_access((then << LFU_COUNTER_BITS) | counter.min(LFU_COUNTER_MASK));
    }
}

/// Redis's logarithmic increment: the higher the counter already is, the
/// less likely one more access moves it, so 255 takes about a million
/// accesses at the default log factor of 10.
fn lfu_increment(counter: u64, log_factor: u32) -> u64 {
    if counter >= LFU_COUNTER_MASK {
        return LFU_COUNTER_MASK;
    }
    let base = counter.saturating_sub(LFU_INIT) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if rand::thread_rng().gen::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

impl Entry {
    pub fn is_expired(&self, now: u64) -> bool {
        let at = self.expire();
        at != 0 && at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e() -> Entry {
        Entry::new(Value::Str(b"v"[..].into()))
    }

    const LFU: Access = Access::Lfu { log_factor: 10, decay_minutes: 1 };

    #[test]
    fn lfu_counter_grows_logarithmically_and_saturates() {
        let mut x = e();
        x.init_lfu();
        assert_eq!(x.lfu_counter(LFU), LFU_INIT);
        // From the initial value the first access always counts.
        x.touch_as(LFU);
        assert_eq!(x.lfu_counter(LFU), LFU_INIT + 1);
        for _ in 0..1000 {
            x.touch_as(LFU);
        }
        let c = x.lfu_counter(LFU);
        // ~1000 hits at factor 10 land in the low tens, far from 255.
        assert!((8..40).contains(&c), "{c}");
        x.set_lfu(255, 0);
        x.touch_as(LFU);
        assert_eq!(x.lfu_counter(LFU), 255);
        // Expiry bits are untouched by access records.
        let mut y = e().with_expire(12345);
        y.touch_as(LFU);
        y.set_lfu(255, 0);
        assert_eq!(y.expire(), 12345);
    }

    #[test]
    fn lfu_counter_decays_per_period() {
        let mut x = e();
        x.set_lfu(10, 3);
        assert_eq!(x.lfu_counter(LFU), 7);
        assert_eq!(x.lfu_counter(Access::Lfu { log_factor: 10, decay_minutes: 2 }), 9);
        assert_eq!(x.lfu_counter(Access::Lfu { log_factor: 10, decay_minutes: 0 }), 10);
        x.set_lfu(2, 30);
        assert_eq!(x.lfu_counter(LFU), 0);
        assert_eq!(x.lfu_counter(Access::Lru), 0);
    }

    #[test]
    fn idle_reads_back() {
        let mut x = e();
        x.set_idle_secs(42);
        // The shared clock may tick in between.
        assert!((42..=43).contains(&x.idle_secs()));
        x.touch_as(Access::Lru);
        assert_eq!(x.idle_secs(), 0);
    }
}
