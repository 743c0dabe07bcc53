//! One database: keys split by hash slot, with expiry.
//!
//! Keys live in 16384 small maps, one per hash slot, for three reasons:
//! cluster mode asks "how many keys / which keys in slot N" and must answer
//! without a scan; SCAN can return whole slots and so keeps Redis's promise
//! that a key present for the whole iteration is returned; and the active
//! expiry cycle can walk slot by slot, skipping slots with no volatile key.
//!
//! Expiry is lazy (every lookup checks it) plus an active cycle
//! ([`Db::expire_cycle`]). Lazily expired keys are queued in
//! [`Db::expired`] so the caller can count them and tell WATCHers.
//!
//! Each [`Entry`] also carries a coarse access record for OBJECT IDLETIME
//! / FREQ and eviction, packed into the expiry's word so that it costs no
//! memory per key; [`Db::access`] says whether it is an LRU clock or an LFU
//! counter. Eviction samples keys through [`Db::sample`] (in `sample.rs`)
//! and queues what it deleted in [`Db::evicted`].
//! Lookups come in Redis's flavours: reads ([`Db::get_read`], the typed
//! getters) count hits and mark the key accessed, [`Db::get_notouch`]
//! counts but does not mark, [`Db::get_write`] marks but does not count.

use std::cell::Cell;
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};
use rand::Rng;
use slotway_slots::{key_slot, SLOTS};

use std::collections::VecDeque;

use super::value::{IndexMap, IndexSet};
use super::zset::ZSet;
use super::{Blob, Str, Value};
use crate::error::CmdError;

mod entry;
mod sample;

pub use entry::{lru_clock, update_lru_clock, Access, Entry, FAR_EXPIRE, LFU_INIT};

/// One slot's keys. A `HashTable` rather than a `HashMap` so that a lookup
/// can inspect an entry and then either hand it out or delete it (lazy
/// expiry) with a single probe.
type SlotTable = HashTable<Bucket>;

/// A key and its entry.
struct Bucket(Blob, Entry);

/// What a lookup does with a key whose time has passed. One value per
/// process: a server is a master or a replica as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExpiryMode {
    /// Delete it and answer as missing.
    Normal = 0,
    /// A replica's clients: answer as missing but keep it; the master's DEL
    /// arrives through the stream.
    Replica = 1,
    /// A replica applying its master's stream: the key is still there for
    /// the master's commands.
    MasterStream = 2,
}

static EXPIRY_MODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

pub fn set_expiry_mode(mode: ExpiryMode) {
    EXPIRY_MODE.store(mode as u8, std::sync::atomic::Ordering::Relaxed);
}

fn expiry_mode() -> u8 {
    EXPIRY_MODE.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Default)]
pub struct Db {
    hasher: DefaultHashBuilder,
    /// Empty until the first key arrives, so 16 idle databases cost nothing.
    slots: Vec<SlotTable>,
    /// Keys with an expiry, per slot.
    volatile: Vec<u32>,
    len: usize,
    volatile_len: usize,
    /// Where the active expiry cycle resumes.
    expire_cursor: usize,
    /// Keys removed by lazy expiry since the caller last drained this.
    pub expired: Vec<Blob>,
    /// Keys removed by eviction, queued like `expired` so that the
    /// dispatcher can hand them on (WATCH and the counters were already
    /// told when they went).
    pub evicted: Vec<Blob>,
    /// How lookups record an access: set from the maxmemory policy by
    /// [`crate::evict`], kept across FLUSHDB.
    pub access: Access,
    /// Reads that found / did not find their key (INFO keyspace_hits).
    /// Cells so a read that hands out a borrowed value can still count.
    pub hits: Cell<u64>,
    pub misses: Cell<u64>,
    /// Exact expiries of keys whose expiry is too late to pack (after
    /// 2109, see [`FAR_EXPIRE`]); nearly always empty.
    far: hashbrown::HashMap<Blob, u64>,
}

/// The most keys [`Db::prefetch`] takes at once.
pub const PREFETCH_MAX: usize = 16;
/// The longest key [`Db::prefetch`] bothers with.
const PREFETCH_KEY_MAX: usize = 256;

/// Asks the CPU to start loading the cache line holding `t`, without
/// waiting for it.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch_line<T: ?Sized>(t: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and reads nothing the
    // program sees; SSE is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((t as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = t;
}

macro_rules! typed_access {
    ($get:ident, $get_mut:ident, $or_new:ident, $variant:ident, $ty:ty, $new:expr) => {
        /// The value at `key` if it has this type; WRONGTYPE otherwise.
        /// Counts a keyspace hit or miss, as reads do.
        pub fn $get(&mut self, key: &[u8], now: u64) -> Result<Option<&$ty>, CmdError> {
            let found = self.lookup_flags(key, now, true, true);
            match found {
                None => Ok(None),
                Some(Entry { value: Value::$variant(v), .. }) => Ok(Some(v)),
                Some(_) => Err(CmdError::WrongType),
            }
        }

        pub fn $get_mut(&mut self, key: &[u8], now: u64) -> Result<Option<&mut $ty>, CmdError> {
            match self.get_mut(key, now) {
                None => Ok(None),
                Some(Entry { value: Value::$variant(v), .. }) => Ok(Some(v)),
                Some(_) => Err(CmdError::WrongType),
            }
        }

        /// The value at `key`, created empty when missing. A caller that
        /// ends up adding nothing must call [`Db::drop_if_empty`].
        pub fn $or_new(&mut self, key: &[u8], now: u64) -> Result<&mut $ty, CmdError> {
            if !self.contains(key, now) {
                self.insert(key, Entry::new($new));
            }
            match self.get_mut(key, now) {
                Some(Entry { value: Value::$variant(v), .. }) => Ok(v),
                _ => Err(CmdError::WrongType),
            }
        }
    };
}

impl Db {
    typed_access!(get_str, get_str_mut, str_or_new, Str, Str, Value::Str(Str::default()));
    typed_access!(get_list, get_list_mut, list_or_new, List, VecDeque<Blob>, Value::List(VecDeque::new()));
    typed_access!(get_hash, get_hash_mut, hash_or_new, Hash, IndexMap<Blob, Blob>, Value::new_hash());
    typed_access!(get_set, get_set_mut, set_or_new, Set, IndexSet<Blob>, Value::new_set());
    typed_access!(get_zset, get_zset_mut, zset_or_new, ZSet, ZSet, Value::new_zset());

    /// Deletes `key` if it holds an empty collection: Redis never keeps one.
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        if self.peek(key).is_some_and(|e| e.value.is_empty_collection()) {
            self.remove(key);
        }
    }
}

impl Db {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys with an expiry set (INFO's `expires=`).
    pub fn volatile_len(&self) -> usize {
        self.volatile_len
    }

    fn ensure(&mut self) {
        if self.slots.is_empty() {
            self.slots = (0..SLOTS).map(|_| HashTable::new()).collect();
            self.volatile = vec![0; SLOTS as usize];
        }
    }

    fn hash(hasher: &DefaultHashBuilder, key: &[u8]) -> u64 {
        hasher.hash_one(key)
    }

    /// The one probe behind every read: finds `key`, and deletes it instead
    /// when it has expired. An associated function over the fields so that
    /// callers can keep borrowing the counters.
    #[allow(clippy::too_many_arguments)]
    fn lookup<'a>(
        hasher: &DefaultHashBuilder,
        slots: &'a mut [SlotTable],
        len: &mut usize,
        volatile: &mut [u32],
        volatile_len: &mut usize,
        expired: &mut Vec<Blob>,
        key: &[u8],
        now: u64,
        touch: Option<Access>,
    ) -> Option<&'a mut Entry> {
        update_lru_clock(now);
        let slot = key_slot(key) as usize;
        let table = slots.get_mut(slot)?;
        match table.find_entry(Self::hash(hasher, key), |Bucket(k, _)| **k == *key) {
            Err(_) => None,
            Ok(occupied) if occupied.get().1.is_expired(now) && expiry_mode() != ExpiryMode::MasterStream as u8 => {
                if expiry_mode() == ExpiryMode::Replica as u8 {
                    return None;
                }
                let (Bucket(k, _), _) = occupied.remove();
                *len -= 1;
                volatile[slot] -= 1;
                *volatile_len -= 1;
                expired.push(k);
                None
            }
            Ok(occupied) => {
                let e = &mut occupied.into_mut().1;
                if let Some(access) = touch {
                    e.touch_as(access);
                }
                Some(e)
            }
        }
    }

    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_mut(key, now).map(|e| &*e)
    }

    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        Self::lookup(
            &self.hasher,
            &mut self.slots,
            &mut self.len,
            &mut self.volatile,
            &mut self.volatile_len,
            &mut self.expired,
            key,
            now,
            Some(self.access),
        )
    }

    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// Looks at a key without expiring it (for SCAN filters, persistence).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        let table = self.slots.get(key_slot(key) as usize)?;
        table.find(Self::hash(&self.hasher, key), |Bucket(k, _)| **k == *key).map(|Bucket(_, e)| e)
    }

    /// Starts loading the memory that lookups of `keys` will touch, so
    /// that a pipelined batch does not pay its cache misses one after
    /// another: each lookup otherwise stalls on the slot's table header,
    /// then its control bytes, then the bucket, then the key's bytes, all
    /// dependent loads. Here every header is prefetched at once, then each
    /// table's probe finds its candidate bucket (reading the control
    /// bytes, now overlapping between keys) and prefetches it, then the
    /// key bytes behind each bucket. Nothing is changed; a name that is
    /// no key costs a wasted probe.
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        if self.slots.is_empty() {
            return;
        }
        // The second pass carries no hashing, so that many of its probes
        // fit in the CPU's window at once.
        let mut probes = [(0usize, 0u64); PREFETCH_MAX];
        let mut n = 0;
        // A long name is hashed twice for a gain that does not grow with
        // it (an argument rather than a key, often: a script, a message).
        for (probe, key) in probes.iter_mut().zip(keys.filter(|k| k.len() <= PREFETCH_KEY_MAX)) {
            let slot = key_slot(key) as usize;
            if let Some(table) = self.slots.get(slot) {
                prefetch_line(table);
            }
            *probe = (slot, Self::hash(&self.hasher, key));
            n += 1;
        }
        let mut found: [Option<&Bucket>; PREFETCH_MAX] = [None; PREFETCH_MAX];
        for (&(slot, hash), found) in probes.iter().take(n).zip(&mut found) {
            *found = self.slots.get(slot).and_then(|t| t.iter_hash(hash).next());
            if let Some(bucket) = found {
                prefetch_line(*bucket);
            }
        }
        // By now the first buckets have arrived: their keys' bytes next.
        for Bucket(key, _) in found.iter().take(n).flatten() {
            prefetch_line(&**key);
        }
    }

    /// Stores `entry` under `key`, replacing any old value and its expiry.
    pub fn insert(&mut self, key: &[u8], mut entry: Entry) -> Option<Entry> {
        self.ensure();
        let lfu = matches!(self.access, Access::Lfu { .. });
        let slot = key_slot(key) as usize;
        let volatile = entry.expire() != 0;
        let hash = Self::hash(&self.hasher, key);
        let hasher = &self.hasher;
        let old = match self.slots[slot].entry(hash, |Bucket(k, _)| **k == *key, |Bucket(k, _)| Self::hash(hasher, k)) {
            Slot::Occupied(mut o) => {
                if lfu {
                    // An overwritten key keeps its frequency, and the write
                    // counts as an access (Redis's lookupKeyWrite).
                    entry.inherit_access(&o.get().1);
                    entry.touch_as(self.access);
                }
                Some(std::mem::replace(&mut o.get_mut().1, entry))
            }
            Slot::Vacant(v) => {
                if lfu {
                    entry.init_lfu();
                }
                v.insert(Bucket(key.into(), entry));
                self.len += 1;
                None
            }
        };
        let was_volatile = old.as_ref().is_some_and(|e| e.expire() != 0);
        self.adjust_volatile(slot, was_volatile, volatile);
        self.forget_far(key);
        old
    }

    /// Gives back most of a slot table's room once it is three quarters
    /// empty, and all of it once empty. A slot's table grows to the most keys the slot ever held at
    /// once; under churn (deletes, eviction) that peak is several times the
    /// average, and 16384 tables kept at their peaks would cost more than
    /// the keys. The quarter threshold keeps a table near the boundary from
    /// resizing back and forth.
    fn shrink(table: &mut SlotTable, hasher: &DefaultHashBuilder) {
        let (len, cap) = (table.len(), table.capacity());
        // An empty table frees its allocation: 16384 of them at the
        // smallest size would still hold 4 MB.
        if (len == 0 && cap > 0) || (cap >= 7 && len * 4 <= cap) {
            table.shrink_to(len * 2, |Bucket(k, _)| Self::hash(hasher, k));
        }
    }

    /// Drops the side record of a far expiry. The expiry paths never need
    /// to: a key expiring after 2109 has not expired yet.
    fn forget_far(&mut self, key: &[u8]) {
        if !self.far.is_empty() {
            self.far.remove(key);
        }
    }

    /// The exact expiry of `key` given its packed one, `packed`: different
    /// only for expiries after 2109.
    pub fn exact_expire(&self, key: &[u8], packed: u64) -> u64 {
        if packed == FAR_EXPIRE {
            self.far.get(key).copied().unwrap_or(packed)
        } else {
            packed
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = key_slot(key) as usize;
        let hash = Self::hash(&self.hasher, key);
        let occupied = self.slots.get_mut(slot)?.find_entry(hash, |Bucket(k, _)| **k == *key).ok()?;
        let (Bucket(_, e), table) = occupied.remove();
        Self::shrink(table.into_table(), &self.hasher);
        self.len -= 1;
        self.adjust_volatile(slot, e.expire() != 0, false);
        self.forget_far(key);
        Some(e)
    }

    /// Sets or clears (`at == 0`) the expiry of an existing key.
    pub fn set_expire(&mut self, key: &[u8], at: u64) -> bool {
        let slot = key_slot(key) as usize;
        let hash = Self::hash(&self.hasher, key);
        let Some(Bucket(_, e)) = self.slots.get_mut(slot).and_then(|t| t.find_mut(hash, |Bucket(k, _)| **k == *key))
        else {
            return false;
        };
        let was = e.expire() != 0;
        e.put_expire(at);
        self.adjust_volatile(slot, was, at != 0);
        if at >= FAR_EXPIRE {
            self.far.insert(key.into(), at);
        } else {
            self.forget_far(key);
        }
        true
    }

    fn adjust_volatile(&mut self, slot: usize, was: bool, now: bool) {
        match (was, now) {
            (false, true) => {
                self.volatile[slot] += 1;
                self.volatile_len += 1;
            }
            (true, false) => {
                self.volatile[slot] -= 1;
                self.volatile_len -= 1;
            }
            _ => {}
        }
    }

    /// Removes every key; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        let (hits, misses) = (self.hits.get(), self.misses.get());
        *self = Db { hits: Cell::new(hits), misses: Cell::new(misses), access: self.access, ..Db::default() };
        n
    }

    pub fn count_in_slot(&self, slot: u16) -> usize {
        self.slots.get(slot as usize).map_or(0, |m| m.len())
    }

    pub fn keys_in_slot(&self, slot: u16, max: usize) -> Vec<Blob> {
        self.slots.get(slot as usize).map_or(Vec::new(), |t| t.iter().take(max).map(|Bucket(k, _)| k.clone()).collect())
    }

    /// Every live key and its entry, in slot order.
    pub fn iter(&self, now: u64) -> impl Iterator<Item = (&[u8], &Entry)> + '_ {
        self.slots
            .iter()
            .flat_map(|t| t.iter())
            .filter(move |Bucket(_, e)| !e.is_expired(now))
            .map(|Bucket(k, e)| (&**k, e))
    }

    /// One SCAN step: whole slots from `cursor` (a slot number) until at
    /// least `count` keys were visited. Returns the next cursor (0 when done)
    /// and the live keys that pass `keep`.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now: u64,
        mut keep: impl FnMut(&[u8], &Entry) -> bool,
    ) -> (u64, Vec<Blob>) {
        let mut out = Vec::new();
        if self.slots.is_empty() {
            return (0, out);
        }
        let mut slot = cursor as usize;
        let mut visited = 0;
        while slot < SLOTS as usize && visited < count.max(1) {
            for Bucket(k, e) in self.slots[slot].iter() {
                visited += 1;
                if !e.is_expired(now) && keep(k, e) {
                    out.push(k.clone());
                }
            }
            slot += 1;
        }
        (if slot >= SLOTS as usize { 0 } else { slot as u64 }, out)
    }

    /// A random live key, or `None` when the database is empty.
    pub fn random_key(&mut self, now: u64) -> Option<Blob> {
        let mut rng = rand::thread_rng();
        // A pick that has expired clears its whole slot of expired keys, so
        // every miss makes progress; after a few misses, fall back to the
        // first live key rather than spin: Redis only answers null when no
        // live key is left, and so do we.
        for _ in 0..100 {
            if self.len == 0 {
                return None;
            }
            let mut nth = rng.gen_range(0..self.len);
            let slot = self.slots.iter().position(|m| {
                if nth < m.len() {
                    true
                } else {
                    nth -= m.len();
                    false
                }
            })?;
            let Bucket(key, entry) = self.slots[slot].iter().nth(nth)?;
            if !entry.is_expired(now) {
                return Some(key.clone());
            }
            self.purge_slot(slot, now);
        }
        // Costs what Redis's loop would: every expired key goes.
        for slot in 0..self.slots.len() {
            if self.volatile[slot] != 0 {
                self.purge_slot(slot, now);
            }
        }
        self.iter(now).next().map(|(k, _)| Blob::from(k))
    }

    /// Removes the expired keys of one slot, queueing them as lazy expiry
    /// does.
    fn purge_slot(&mut self, slot: usize, now: u64) {
        if expiry_mode() != ExpiryMode::Normal as u8 {
            return;
        }
        let Some(map) = self.slots.get_mut(slot) else { return };
        let gone = Self::drain_expired(map, now, &mut self.expired);
        self.count_expired(slot, gone);
    }

    /// Moves the expired entries of one slot's table into `out`; returns
    /// how many.
    fn drain_expired(map: &mut SlotTable, now: u64, out: &mut Vec<Blob>) -> usize {
        let before = map.len();
        map.retain(|Bucket(k, e)| {
            if e.is_expired(now) {
                out.push(std::mem::take(k));
                false
            } else {
                true
            }
        });
        before - map.len()
    }

    fn count_expired(&mut self, slot: usize, gone: usize) {
        self.len -= gone;
        self.volatile[slot] -= gone as u32;
        self.volatile_len -= gone;
    }

    /// Active expiry: walks slots holding volatile keys from where the last
    /// call stopped, deleting expired keys, until `budget` entries were
    /// examined. Returns the keys it deleted.
    pub fn expire_cycle(&mut self, now: u64, budget: usize) -> Vec<Blob> {
        self.expire_step(now, budget).0
    }
}

/// Lookups with Redis's flavours, for the generic key commands.
impl Db {
    /// A read that counts a hit or miss and marks the key accessed
    /// (`lookupKeyRead`).
    pub fn get_read(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup_flags(key, now, true, true)
    }

    /// A lookup before a write: marks the key accessed but is no keyspace
    /// hit or miss (`lookupKeyWrite`).
    pub fn get_write(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup_flags(key, now, true, false)
    }

    /// A read that counts a hit or miss but leaves the access clock alone
    /// (`LOOKUP_NOTOUCH`: TYPE, EXISTS, TTL, OBJECT).
    pub fn get_notouch(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup_flags(key, now, false, true)
    }

    fn lookup_flags(&mut self, key: &[u8], now: u64, touch: bool, count: bool) -> Option<&mut Entry> {
        let found = Self::lookup(
            &self.hasher,
            &mut self.slots,
            &mut self.len,
            &mut self.volatile,
            &mut self.volatile_len,
            &mut self.expired,
            key,
            now,
            touch.then_some(self.access),
        );
        if count {
            let counter = if found.is_some() { &self.hits } else { &self.misses };
            counter.set(counter.get() + 1);
        }
        found
    }

    /// Deletes a live key with one probe; an expired one is reclaimed as
    /// lazy expiry would and reported as absent.
    pub fn delete(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        let slot = key_slot(key) as usize;
        let hash = Self::hash(&self.hasher, key);
        let occupied = self.slots.get_mut(slot)?.find_entry(hash, |Bucket(k, _)| **k == *key).ok()?;
        let (Bucket(k, e), table) = occupied.remove();
        Self::shrink(table.into_table(), &self.hasher);
        self.len -= 1;
        self.adjust_volatile(slot, e.expire() != 0, false);
        self.forget_far(key);
        if e.is_expired(now) {
            self.expired.push(k);
            return None;
        }
        Some(e)
    }

    /// Empties the database and hands back its old contents, so that a
    /// caller can free them elsewhere (FLUSHDB ASYNC). Counters stay.
    pub fn take(&mut self) -> Db {
        let (hits, misses) = (self.hits.get(), self.misses.get());
        let fresh = Db { hits: Cell::new(hits), misses: Cell::new(misses), access: self.access, ..Db::default() };
        std::mem::replace(self, fresh)
    }

    /// One active-expiry step like [`Db::expire_cycle`], also returning how
    /// many entries it examined, so the caller can tell whether expired keys
    /// are still dense and another step is worth it.
    pub fn expire_step(&mut self, now: u64, budget: usize) -> (Vec<Blob>, usize) {
        let mut removed = Vec::new();
        let mut examined = 0;
        if self.volatile_len == 0 {
            return (removed, 0);
        }
        let mut steps = 0;
        while examined < budget && steps < SLOTS as usize {
            let slot = self.expire_cursor;
            self.expire_cursor = (self.expire_cursor + 1) % SLOTS as usize;
            steps += 1;
            if self.volatile[slot] == 0 {
                continue;
            }
            let map = &mut self.slots[slot];
            examined += map.len();
            let gone = Self::drain_expired(map, now, &mut removed);
            self.count_expired(slot, gone);
        }
        (removed, examined)
    }
}

#[cfg(test)]
mod tests;
