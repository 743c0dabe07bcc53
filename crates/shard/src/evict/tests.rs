//! Unit tests of victim choice: each policy against a store whose access
//! records are set by hand, metered in keys rather than bytes.

use super::*;
use crate::store::Value;

/// Over the limit while the store holds more than `max` keys.
struct Keys {
    max: usize,
}

impl Meter for Keys {
    fn excess(&mut self, store: &Store) -> u64 {
        let n: usize = store.dbs.iter().map(|d| d.len()).sum();
        n.saturating_sub(self.max) as u64
    }
}

fn settings(policy: &str) -> Settings {
    let mut c = Config::default();
    c.apply_str(&format!("maxmemory 1mb\nmaxmemory-policy {policy}\nmaxmemory-eviction-tenacity 100")).unwrap();
    c.eviction
}

/// A store of `n` string keys `k0..`, set up by `f(i, entry)`, with the
/// access mode of `s`.
fn store(s: &Settings, n: usize, mut f: impl FnMut(usize, &mut Entry)) -> Store {
    let mut store = Store::new(2);
    for i in 0..n {
        let mut e = Entry::new(Value::Str(b"v"[..].into()));
        f(i, &mut e);
        store.dbs[0].insert(format!("k{i}").as_bytes(), e);
    }
    // Switched after filling: an insert in LFU mode would reset the counts
    // set up above.
    set_access(&mut store, s.access);
    store
}

fn evicted_numbers(store: &mut Store) -> Vec<usize> {
    let keys = std::mem::take(&mut store.dbs[0].evicted);
    keys.iter().map(|k| std::str::from_utf8(&k[1..]).unwrap().parse().unwrap()).collect()
}

#[test]
fn settings_follow_the_config() {
    let s = settings("allkeys-lfu");
    assert_eq!(s.policy, Policy::AllKeysLfu);
    assert_eq!(s.access, Access::Lfu { log_factor: 10, decay_minutes: 1 });
    assert_eq!((s.maxmemory, s.samples), (1 << 20, 5));
    assert_eq!(settings("volatile-ttl").access, Access::Lru);
    assert_eq!(Settings::default().policy, Policy::NoEviction);
    let t = |n| Settings { tenacity: n, ..Settings::default() }.time_limit();
    assert_eq!(t(10), Duration::from_micros(500));
    assert!(t(20) > t(11) && t(11) > t(10));
    assert_eq!(t(100), Duration::MAX);
}

#[test]
fn noeviction_fails_and_leaves_everything() {
    let s = settings("noeviction");
    let mut st = store(&s, 100, |_, _| {});
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 50 }), Outcome::Fail);
    assert_eq!(st.dbs[0].len(), 100);
    assert!(st.evict.exceeded_since.is_some(), "over the limit since now");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 100 }), Outcome::Ok);
    let (total, current) = st.evict.exceeded_ms();
    assert!(total >= 5 && current == 0, "{total} {current}");
}

#[test]
fn allkeys_lru_evicts_the_idlest() {
    let s = settings("allkeys-lru");
    let mut st = store(&s, 2000, |i, e| e.set_idle_secs((i % 100) as u64 * 10));
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 1800 }), Outcome::Ok);
    let gone = evicted_numbers(&mut st);
    assert_eq!(gone.len(), 200);
    assert_eq!(st.stats.evicted_keys, 200);
    // True LRU would take exactly the idlest tenth (i % 100 >= 90); the
    // sampled approximation must land almost all in the idlest third.
    let good = gone.iter().filter(|i| *i % 100 >= 67).count();
    assert!(good >= 180, "{good} of 200 from the idlest third");
}

#[test]
fn allkeys_lfu_evicts_the_rarest() {
    let s = settings("allkeys-lfu");
    let mut st = store(&s, 2000, |i, e| e.set_lfu(5 + (i % 100) as u64, 0));
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 1800 }), Outcome::Ok);
    let gone = evicted_numbers(&mut st);
    assert_eq!(gone.len(), 200);
    let good = gone.iter().filter(|i| *i % 100 < 33).count();
    assert!(good >= 180, "{good} of 200 from the rarest third");
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire() {
    let s = settings("volatile-ttl");
    let base = 4_000_000_000_000;
    let mut st = store(&s, 2000, |_, _| {});
    for i in 0..2000 {
        if i % 2 == 0 {
            st.dbs[0].set_expire(format!("k{i}").as_bytes(), base + (i as u64 % 200) * 1000);
        }
    }
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 1900 }), Outcome::Ok);
    let gone = evicted_numbers(&mut st);
    assert!(gone.iter().all(|i| i % 2 == 0), "a key without TTL went");
    let good = gone.iter().filter(|i| *i % 200 < 67).count();
    assert!(good >= 90, "{good} of 100 from the soonest third");
}

#[test]
fn volatile_policies_only_take_keys_with_a_ttl() {
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        let s = settings(policy);
        let mut st = store(&s, 500, |i, e| e.set_idle_secs(i as u64));
        for i in (0..500).step_by(5) {
            st.dbs[0].set_expire(format!("k{i}").as_bytes(), 4_000_000_000_000 + i as u64);
        }
        // Asking for more than the volatile keys can give: all 100 go, then
        // it fails; every key without a TTL survives.
        assert_eq!(perform(&mut st, &s, &mut Keys { max: 300 }), Outcome::Fail, "{policy}");
        let gone = evicted_numbers(&mut st);
        assert_eq!(gone.len(), 100, "{policy}");
        assert!(gone.iter().all(|i| i % 5 == 0), "{policy}");
        assert_eq!(st.dbs[0].len(), 400, "{policy}");
        assert_eq!(st.dbs[0].volatile_len(), 0, "{policy}");
    }
}

#[test]
fn random_policies_go_round_the_databases() {
    let s = settings("allkeys-random");
    let mut st = store(&s, 300, |_, _| {});
    for i in 0..300 {
        st.dbs[1].insert(format!("d{i}").as_bytes(), Entry::new(Value::Str(b"v"[..].into())));
    }
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 400 }), Outcome::Ok);
    let (a, b) = (st.dbs[0].len(), st.dbs[1].len());
    assert_eq!(a + b, 400);
    assert!(a.abs_diff(b) <= 2, "{a} vs {b}");
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 0 }), Outcome::Ok);
    assert_eq!(st.stats.evicted_keys, 600);
}

#[test]
fn sampling_spans_databases_and_the_pool() {
    let s = settings("allkeys-lru");
    let mut st = store(&s, 300, |_, e| e.set_idle_secs(1));
    // The idlest keys live in database 1.
    for i in 0..300 {
        let mut e = Entry::new(Value::Str(b"v"[..].into()));
        e.set_idle_secs(1000);
        st.dbs[1].insert(format!("d{i}").as_bytes(), e);
    }
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 500 }), Outcome::Ok);
    // A hundred go, nearly all from the idle database.
    assert!(st.dbs[0].len() >= 295, "db 0 lost {}", 300 - st.dbs[0].len());
}

#[test]
fn eviction_is_a_change_for_watchers() {
    let s = settings("allkeys-random");
    let mut st = store(&s, 10, |_, _| {});
    for i in 0..10 {
        st.watch(7, 0, format!("k{i}").as_bytes(), 0);
    }
    assert_eq!(perform(&mut st, &s, &mut Keys { max: 9 }), Outcome::Ok);
    let watched: Vec<(usize, Blob)> = (0..10).map(|i| (0, format!("k{i}").into_bytes().into())).collect();
    assert!(st.is_dirty_cas(7, &watched, 0));
    assert_eq!(st.dbs[0].evicted.len(), 1);
}

#[test]
fn lfu_mode_starts_keys_at_the_initial_count_and_keeps_it_on_overwrite() {
    let s = settings("allkeys-lfu");
    let mut st = store(&s, 0, |_, _| {});
    let db = &mut st.dbs[0];
    db.insert(b"a", Entry::new(Value::Str(b"1"[..].into())));
    assert_eq!(db.peek(b"a").unwrap().lfu_counter(s.access), crate::store::db::LFU_INIT);
    for _ in 0..50 {
        db.get_read(b"a", 0);
    }
    let before = db.peek(b"a").unwrap().lfu_counter(s.access);
    assert!(before > crate::store::db::LFU_INIT);
    db.insert(b"a", Entry::new(Value::Str(b"2"[..].into())));
    let after = db.peek(b"a").unwrap().lfu_counter(s.access);
    assert!(after == before || after == before + 1, "{before} -> {after}");
    db.clear();
    assert_eq!(db.access, s.access, "FLUSHDB keeps the access mode");
}
