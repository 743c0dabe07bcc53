//! Round trips of every type and encoding, and corrupt input that must be
//! refused without a panic.

use std::collections::VecDeque;

use super::decode::Reader;
use super::*;
use crate::store::value::{IndexMap, IndexSet};
use crate::store::zset::ZSet;
use crate::store::{Blob, Entry, Store, Value};

fn blob(s: impl AsRef<[u8]>) -> Blob {
    Blob::from(s.as_ref())
}

/// One value of every type in each encoding we write (and more).
fn samples() -> Vec<(&'static str, Value)> {
    let list_small: VecDeque<Blob> = ["a", "1", "-7", "hello world"].iter().map(blob).collect();
    let list_big: VecDeque<Blob> = (0..5000).map(|i| blob(format!("element-{i}"))).collect();
    let mut list_huge_items = VecDeque::new();
    list_huge_items.push_back(Blob::from(vec![b'q'; 20_000]));
    list_huge_items.push_back(blob("x"));
    let mut hash_small = IndexMap::default();
    hash_small.insert(blob("f"), blob("v"));
    hash_small.insert(blob("n"), blob("42"));
    let mut hash_big = IndexMap::default();
    for i in 0..300 {
        hash_big.insert(blob(format!("field{i}")), blob(format!("value{i}")));
    }
    let mut hash_long_value = IndexMap::default();
    hash_long_value.insert(blob("f"), Blob::from(vec![b'v'; 100]));
    let mut set_int: IndexSet<Blob> = IndexSet::default();
    for v in ["3", "-1", "100000", "9223372036854775807"] {
        set_int.insert(blob(v));
    }
    let mut set_str: IndexSet<Blob> = IndexSet::default();
    for v in ["a", "b", "007", "c"] {
        set_str.insert(blob(v));
    }
    let mut set_big_int: IndexSet<Blob> = IndexSet::default();
    for i in 0..1000 {
        set_big_int.insert(blob(i.to_string()));
    }
    let mut z_small = ZSet::default();
    for (m, s) in [("a", 1.0), ("b", 2.5), ("c", f64::NEG_INFINITY), ("d", f64::INFINITY), ("e", -0.1), ("f", 1e300)] {
        z_small.insert(m.as_bytes(), s);
    }
    let mut z_big = ZSet::default();
    for i in 0..500 {
        z_big.insert(format!("m{i}").as_bytes(), i as f64 / 3.0);
    }
    vec![
        ("empty string", Value::Str(b"".as_slice().into())),
        ("short string", Value::Str(b"hello".as_slice().into())),
        ("int8", Value::Str(b"-12".as_slice().into())),
        ("int16", Value::Str(b"30000".as_slice().into())),
        ("int32", Value::Str(b"-2000000000".as_slice().into())),
        ("int64 as text", Value::Str(b"9000000000000".as_slice().into())),
        ("leading zero", Value::Str(b"0123".as_slice().into())),
        ("lzf string", Value::Str(vec![b'a'; 1000].into())),
        ("incompressible", Value::Str((0..=255u8).collect::<Vec<_>>().into())),
        ("list small", Value::List(list_small)),
        ("list big", Value::List(list_big)),
        ("list huge items", Value::List(list_huge_items)),
        ("hash listpack", Value::Hash(Box::new(hash_small))),
        ("hash big", Value::Hash(Box::new(hash_big))),
        ("hash long value", Value::Hash(Box::new(hash_long_value))),
        ("intset", Value::Set(Box::new(set_int))),
        ("set", Value::Set(Box::new(set_str))),
        ("big int set", Value::Set(Box::new(set_big_int))),
        ("zset listpack", Value::ZSet(Box::new(z_small))),
        ("zset skiplist", Value::ZSet(Box::new(z_big))),
    ]
}

/// Values compare through their canonical payload.
fn same(a: &Value, b: &Value) -> bool {
    dump_payload(a) == dump_payload(b) && a.encoding() == b.encoding()
}

#[test]
fn every_value_round_trips_as_payload() {
    for (name, v) in samples() {
        let p = dump_payload(&v);
        let back = read_payload(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(same(&v, &back), "{name}");
    }
}

#[test]
fn zset_scores_exact() {
    let mut z = ZSet::default();
    for (i, s) in [0.1, 1.0 / 3.0, -2.5e-300, 123456789.125, 4503599627370497.0].into_iter().enumerate() {
        z.insert(format!("m{i}").as_bytes(), s);
    }
    let back = read_payload(&dump_payload(&Value::ZSet(Box::new(z.clone())))).expect("payload");
    let Value::ZSet(b) = back else { panic!("type") };
    for (m, s) in z.iter() {
        assert_eq!(b.score(m).map(f64::to_bits), Some(s.to_bits()));
    }
}

#[test]
fn whole_store_round_trips() {
    let mut store = Store::new(16);
    let far = 5_000_000_000_000u64; // year 2128: kept exact beside the packed word
    for (i, (name, v)) in samples().into_iter().enumerate() {
        let db = &mut store.dbs[i % 3];
        db.insert(name.as_bytes(), Entry::new(v));
        if i % 2 == 0 {
            db.set_expire(name.as_bytes(), if i == 4 { far } else { 4_000_000_000_000 + i as u64 });
        }
    }
    store.dbs[15].insert(b"last", Entry::new(Value::Str(b"db15".as_slice().into())));
    // Already expired: left out.
    store.dbs[0].insert(b"gone", Entry::new(Value::Str(b"x".as_slice().into())).with_expire(1));
    for compress in [true, false] {
        let mut buf = Vec::new();
        let opts = Options { compress, ..Options::default() };
        write_rdb_with(&store, &mut buf, &opts).expect("write");
        let mut back = Store::new(16);
        let loaded = crate::persist::snapshot::load_into(&mut back, &buf, 1000).expect("load");
        assert_eq!(loaded.keys, samples().len() as u64 + 1);
        for (d, (a, b)) in store.dbs.iter().zip(&back.dbs).enumerate() {
            for (k, e) in a.iter(1000) {
                let got = b.peek(k).unwrap_or_else(|| panic!("db {d} key {:?}", String::from_utf8_lossy(k)));
                assert!(same(&e.value, &got.value), "{:?}", String::from_utf8_lossy(k));
                assert_eq!(a.exact_expire(k, e.expire()), b.exact_expire(k, got.expire()));
            }
        }
        assert!(back.dbs[0].peek(b"gone").is_none());
    }
}

#[test]
fn checksum_is_checked() {
    let mut store = Store::new(1);
    store.dbs[0].insert(b"k", Entry::new(Value::Str(b"v".as_slice().into())));
    let mut buf = Vec::new();
    write_rdb(&store, &mut buf).expect("write");
    let n = buf.len();
    buf[n - 12] ^= 1;
    assert!(matches!(load(&buf, 1, 0, |_, _, _, _| {}), Err(RdbError::Checksum { .. }) | Err(RdbError::Corrupt(_))));
    // A zero checksum means "not computed" (rdbchecksum no).
    let mut plain = Vec::new();
    write_rdb_with(&store, &mut plain, &Options { checksum: false, ..Options::default() }).expect("write");
    assert!(load(&plain, 1, 0, |_, _, _, _| {}).is_ok());
}

#[test]
fn unsupported_types_are_refused_clearly() {
    for (t, what) in [(ty::STREAM_LISTPACKS_2, "stream"), (ty::MODULE_2, "module"), (ty::HASH_ZIPMAP, "zipmap")] {
        let mut buf = b"REDIS0010".to_vec();
        buf.extend_from_slice(&[op::SELECTDB, 0, t, 1, b'k', 0, 0, 0]);
        let err = load(&buf, 1, 0, |_, _, _, _| {}).expect_err("refused");
        assert!(matches!(err, RdbError::Unsupported(_)) && err.to_string().contains(what), "{err}");
    }
    let mut buf = b"REDIS0010".to_vec();
    buf.extend_from_slice(&[op::FUNCTION2, 1, b'x']);
    assert!(load(&buf, 1, 0, |_, _, _, _| {}).expect_err("refused").to_string().contains("function"));
    assert!(read_payload(&[ty::MODULE_2, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
}

/// A tiny deterministic generator: no dependency, same cases every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn corrupt_input_never_panics() {
    let mut store = Store::new(4);
    for (name, v) in samples() {
        store.dbs[1].insert(name.as_bytes(), Entry::new(v));
    }
    let mut file = Vec::new();
    write_rdb_with(&store, &mut file, &Options { checksum: false, ..Options::default() }).expect("write");
    // Every truncation of a whole file.
    for cut in (0..file.len()).step_by(7) {
        let _ = load(&file[..cut], 4, 0, |_, _, _, _| {});
    }
    let mut rng = Rng(0x2545F4914F6CDD1D);
    // Random bit flips and byte overwrites (checksum off, so the parser
    // itself meets the damage).
    for _ in 0..3000 {
        let mut f = file.clone();
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() as usize) % f.len();
            f[i] = rng.next() as u8;
        }
        let _ = load(&f, 4, 0, |_, _, _, _| {});
    }
    // Every payload, truncated and damaged, through RESTORE's reader and
    // through the value reader directly (no checksum in the way).
    for (_, v) in samples() {
        let p = dump_payload(&v);
        for cut in 0..p.len().min(200) {
            let _ = read_payload(&p[..cut]);
            let body = &p[..cut];
            if let Some((&t, rest)) = body.split_first() {
                let _ = Reader::new(rest).value(t);
            }
        }
        for _ in 0..200 {
            let mut q = p[..p.len() - 10].to_vec();
            let i = (rng.next() as usize) % q.len();
            q[i] = rng.next() as u8;
            let _ = Reader::new(&q[1..]).value(q[0]);
        }
    }
    // Pure noise, including every type byte up front.
    for _ in 0..5000 {
        let n = (rng.next() % 64) as usize;
        let noise: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let t = (rng.next() % 24) as u8;
        let _ = Reader::new(&noise).value(t);
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&noise);
        let _ = load(&f, 16, 0, |_, _, _, _| {});
    }
}

#[test]
fn huge_lengths_do_not_allocate() {
    // A list claiming 2^32-1 elements, a string claiming 4 GiB, an LZF
    // string claiming 4 GiB uncompressed: refused at once.
    for body in [
        vec![ty::LIST, 0x80, 0xff, 0xff, 0xff, 0xff],
        vec![ty::STRING, 0x80, 0xff, 0xff, 0xff, 0xff, b'a'],
        vec![ty::STRING, 0xc3, 0x01, 0x80, 0xff, 0xff, 0xff, 0xff, 0x00],
        vec![ty::HASH, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert!(Reader::new(&body[1..]).value(body[0]).is_err());
    }
}
