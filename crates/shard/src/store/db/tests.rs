//! Unit tests of the database: expiry, packing, scanning, random keys.

use super::*;

fn s(v: &str) -> Entry {
    Entry::new(Value::Str(v.as_bytes().into()))
}

#[test]
fn lazy_expiry_queues_key() {
    let mut db = Db::default();
    db.insert(b"a", s("1").with_expire(100));
    assert_eq!(db.volatile_len(), 1);
    assert!(db.get(b"a", 99).is_some());
    assert!(db.get(b"a", 100).is_none());
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.expired, vec![Blob::from(&b"a"[..])]);
}

#[test]
fn scan_visits_every_key_once() {
    let mut db = Db::default();
    for i in 0..1000 {
        db.insert(format!("k{i}").as_bytes(), s("v"));
    }
    let (mut cursor, mut seen) = (0, Vec::new());
    loop {
        let (next, keys) = db.scan(cursor, 10, 0, |_, _| true);
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 1000);
}

#[test]
fn active_cycle_reclaims() {
    let mut db = Db::default();
    for i in 0..100 {
        db.insert(format!("k{i}").as_bytes(), s("v").with_expire(5));
    }
    db.insert(b"keep", s("v"));
    let mut gone = 0;
    for _ in 0..10 {
        gone += db.expire_cycle(10, 1000).len();
    }
    assert_eq!(gone, 100);
    assert_eq!(db.len(), 1);
    assert!(db.random_key(10).is_some());
}

#[test]
fn entry_does_not_grow() {
    // Value plus one word: expiry and access clock share the word.
    assert_eq!(std::mem::size_of::<Entry>(), std::mem::size_of::<Value>() + 8);
    assert!(std::mem::size_of::<Entry>() <= 40, "{}", std::mem::size_of::<Entry>());
}

#[test]
fn packed_expiry_and_clock() {
    let e = s("v").with_expire(4_102_444_800_000);
    assert_eq!(e.expire(), 4_102_444_800_000);
    assert_eq!(e.idle_secs(), 0);
    let mut e = e.with_expire(0);
    assert_eq!(e.expire(), 0);
    e.touch();
    assert_eq!(e.expire(), 0);
    // Beyond the representable range the expiry saturates, never wraps.
    assert_eq!(s("v").with_expire(u64::MAX).expire(), (1 << 42) - 1);
    let mut db = Db::default();
    db.insert(b"k", s("v"));
    assert!(db.set_expire(b"k", 5000));
    assert_eq!(db.volatile_len(), 1);
    assert_eq!(db.peek(b"k").map(|e| e.expire()), Some(5000));
    assert!(db.set_expire(b"k", 0));
    assert_eq!(db.volatile_len(), 0);
}

#[test]
fn delete_reclaims_expired_as_absent() {
    let mut db = Db::default();
    db.insert(b"a", s("1").with_expire(100));
    assert!(db.delete(b"a", 200).is_none());
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.expired.len(), 1);
}

#[test]
fn random_key_finds_the_one_live_key_among_expired_ones() {
    let mut db = Db::default();
    for i in 0..5000 {
        db.insert(format!("k{i}").as_bytes(), s("v").with_expire(5));
    }
    db.insert(b"live", s("v"));
    assert_eq!(db.random_key(10).as_deref(), Some(&b"live"[..]));
    db.remove(b"live");
    assert_eq!(db.random_key(10), None);
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);
}

#[test]
fn slot_tables_give_room_back_when_emptied() {
    let mut db = Db::default();
    // One hash tag: every key in the same slot.
    for i in 0..100 {
        db.insert(format!("{{t}}{i}").as_bytes(), s("v"));
    }
    let slot = key_slot(b"{t}") as usize;
    assert!(db.slots[slot].capacity() >= 100);
    for i in 0..99 {
        assert!(db.remove(format!("{{t}}{i}").as_bytes()).is_some());
    }
    assert!(db.slots[slot].capacity() <= 7, "kept room for {}", db.slots[slot].capacity());
    assert!(db.delete(b"{t}99", 0).is_some());
    assert_eq!(db.slots[slot].capacity(), 0);
    db.insert(b"{t}x", s("v"));
    assert_eq!(db.get(b"{t}x", 0).map(|e| e.value.encoding()), Some("embstr"));
}

#[test]
fn keys_of_any_length_are_found_and_expired_alike() {
    let mut db = Db::default();
    let long = "k".repeat(300);
    for key in ["a", "exactly-twenty-two-byt", "twenty-three-bytes-long", long.as_str()] {
        db.insert(key.as_bytes(), s("v").with_expire(100));
        assert!(db.get(key.as_bytes(), 0).is_some(), "{key}");
        assert!(db.get(key.as_bytes(), 100).is_none(), "{key}");
    }
    let expired: Vec<Blob> = db.expired.drain(..).collect();
    assert_eq!(expired.len(), 4);
    assert_eq!(&*expired[3], long.as_bytes());
}

#[test]
fn prefetch_changes_nothing() {
    let mut db = Db::default();
    db.prefetch([&b"nothing yet"[..]].into_iter());
    for i in 0..100 {
        db.insert(format!("k{i}").as_bytes(), s("v").with_expire(50));
    }
    let long = vec![b'x'; 10_000];
    let names: Vec<Vec<u8>> = (0..40).map(|i| format!("k{i}").into_bytes()).chain([long, b"absent".to_vec()]).collect();
    db.prefetch(names.iter().map(|n| &n[..]));
    assert_eq!((db.len(), db.volatile_len()), (100, 100));
    assert!(db.expired.is_empty());
    assert!(db.get(b"k7", 0).is_some());
}
