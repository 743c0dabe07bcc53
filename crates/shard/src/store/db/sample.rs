//! Random sampling of a database's keys, for eviction.
//!
//! Redis's eviction looks at a handful of keys taken from random places in
//! the keyspace (`maxmemory-samples`) rather than keeping keys ordered by
//! access. Here a sample starts at a random hash slot and takes one random
//! key from each non-empty slot it walks, so that consecutive picks come
//! from unrelated keys (neighbouring slots share nothing) and a sample
//! costs a few slot visits, however large the database.

use rand::Rng;
use slotway_slots::SLOTS;

use super::{Bucket, Db, Entry};

impl Db {
    /// Calls `f` on up to `count` distinct keys picked at random, at most
    /// one per slot; with `volatile_only`, only keys that have an expiry.
    /// Returns how many keys it passed. Logically expired keys that were
    /// not reclaimed yet can be among them, as in Redis.
    pub fn sample(
        &self,
        count: usize,
        volatile_only: bool,
        rng: &mut impl Rng,
        mut f: impl FnMut(&[u8], &Entry),
    ) -> usize {
        let available = if volatile_only { self.volatile_len } else { self.len };
        let want = count.min(available);
        if want == 0 || self.slots.is_empty() {
            return 0;
        }
        let slots = SLOTS as usize;
        let start = rng.gen_range(0..slots);
        let mut seen = 0;
        // One full turn at most: every key is reachable, so a non-empty
        // database always yields at least one.
        for step in 0..slots {
            let slot = (start + step) % slots;
            let table = &self.slots[slot];
            let here = if volatile_only { self.volatile[slot] as usize } else { table.len() };
            if here == 0 {
                continue;
            }
            let nth = rng.gen_range(0..here);
            let pick = if volatile_only {
                table.iter().filter(|Bucket(_, e)| e.expire() != 0).nth(nth)
            } else {
                table.iter().nth(nth)
            };
            if let Some(Bucket(k, e)) = pick {
                f(k, e);
                seen += 1;
                if seen == want {
                    break;
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;
    use crate::store::Value;

    fn s() -> Entry {
        Entry::new(Value::Str(b"v"[..].into()))
    }

    #[test]
    fn samples_distinct_keys_and_respects_volatile() {
        let mut db = Db::default();
        let mut rng = SmallRng::seed_from_u64(7);
        assert_eq!(db.sample(5, false, &mut rng, |_, _| {}), 0);
        for i in 0..1000 {
            let e = if i % 10 == 0 { s().with_expire(u64::MAX >> 30) } else { s() };
            db.insert(format!("k{i}").as_bytes(), e);
        }
        let mut got = Vec::new();
        assert_eq!(db.sample(5, false, &mut rng, |k, _| got.push(k.to_vec())), 5);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 5);
        for _ in 0..50 {
            db.sample(5, true, &mut rng, |_, e| assert_ne!(e.expire(), 0));
        }
    }

    #[test]
    fn small_database_gives_what_it_has() {
        let mut db = Db::default();
        let mut rng = SmallRng::seed_from_u64(1);
        db.insert(b"only", s());
        db.insert(b"ttl", s().with_expire(u64::MAX >> 30));
        assert_eq!(db.sample(5, false, &mut rng, |_, _| {}), 2);
        let mut got = Vec::new();
        assert_eq!(db.sample(5, true, &mut rng, |k, _| got.push(k.to_vec())), 1);
        assert_eq!(&got[0][..], b"ttl");
    }

    #[test]
    fn every_key_gets_picked_eventually() {
        let mut db = Db::default();
        let mut rng = SmallRng::seed_from_u64(3);
        for i in 0..50 {
            db.insert(format!("k{i}").as_bytes(), s());
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            db.sample(1, false, &mut rng, |k, _| {
                seen.insert(k.to_vec());
            });
        }
        assert_eq!(seen.len(), 50);
    }
}
