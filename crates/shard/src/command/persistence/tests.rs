use bytes::Bytes;

use crate::test_util::TestServer;

fn args(a: &[&[u8]]) -> Vec<Bytes> {
    a.iter().map(|s| Bytes::copy_from_slice(s)).collect()
}

/// The bulk payload out of a RESP2 DUMP reply.
fn payload(reply: &[u8]) -> Vec<u8> {
    let start = reply.iter().position(|&b| b == b'\n').expect("header") + 1;
    reply[start..reply.len() - 2].to_vec()
}

fn dump(t: &mut TestServer, key: &str) -> Vec<u8> {
    payload(&t.cmd_raw(&args(&[b"DUMP", key.as_bytes()])))
}

#[test]
fn dump_restore_round_trip_and_errors() {
    let mut t = TestServer::new();
    t.cmd("RPUSH l a b 3");
    t.cmd("HSET h f v");
    t.cmd("ZADD z 1.5 m");
    t.cmd("SADD s 1 2");
    t.cmd("SET str hello");
    assert_eq!(t.cmd("DUMP nokey"), "$-1\r\n");
    for key in ["l", "h", "z", "s", "str"] {
        let p = dump(&mut t, key);
        let copy = format!("{key}-copy");
        assert_eq!(t.cmd_args(&args(&[b"RESTORE", copy.as_bytes(), b"0", &p])), "+OK\r\n");
        assert_eq!(dump(&mut t, &copy), dump(&mut t, key));
        assert_eq!(
            t.cmd_args(&args(&[b"RESTORE", copy.as_bytes(), b"0", &p])),
            "-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(t.cmd_args(&args(&[b"RESTORE", copy.as_bytes(), b"5000", &p, b"REPLACE"])), "+OK\r\n");
        let pttl: i64 = t.cmd(&format!("PTTL {copy}")).trim_start_matches(':').trim_end().parse().expect("int");
        assert!((4000..=5000).contains(&pttl), "{pttl}");
    }
    let p = dump(&mut t, "str");
    assert_eq!(t.cmd_args(&args(&[b"RESTORE", b"k", b"-1", &p])), "-ERR Invalid TTL value, must be >= 0\r\n");
    let mut bad = p.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(
        t.cmd_args(&args(&[b"RESTORE", b"k", b"0", &bad])),
        "-ERR DUMP payload version or checksum are wrong\r\n"
    );
    assert_eq!(
        t.cmd_args(&args(&[b"RESTORE", b"k", b"0", &p, b"IDLETIME", b"-1"])),
        "-ERR Invalid IDLETIME value, must be >= 0\r\n"
    );
    assert_eq!(
        t.cmd_args(&args(&[b"RESTORE", b"k", b"0", &p, b"FREQ", b"256"])),
        "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"
    );
    assert_eq!(
        t.cmd_args(&args(&[b"RESTORE", b"k", b"0", &p, b"IDLETIME", b"1", b"FREQ", b"1"])),
        "-ERR syntax error\r\n"
    );
    // A past absolute TTL: OK, and no key.
    assert_eq!(t.cmd_args(&args(&[b"RESTORE", b"k", b"1", &p, b"ABSTTL"])), "+OK\r\n");
    assert_eq!(t.cmd("EXISTS k"), ":0\r\n");
    assert_eq!(t.cmd_args(&args(&[b"RESTORE", b"k", b"0", &p, b"IDLETIME", b"100"])), "+OK\r\n");
    assert_eq!(t.cmd("OBJECT IDLETIME k"), ":100\r\n");
    assert_eq!(t.cmd_args(&args(&[b"RESTORE-ASKING", b"k2", b"0", &p])), "+OK\r\n");
}

#[test]
fn payload_from_redis_restores() {
    // DUMP of `HSET h f v g 1` from redis-server 7.0.15 (listpack).
    let p: &[u8] = &[
        0x10, 0x12, 0x12, 0, 0, 0, 4, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0x81, b'g', 2, 1, 1, 0xff, 0x0a, 0, 0x23, 0xc1,
        0xa5, 0xe3, 0x5d, 0xfa, 0xe8, 0x1c,
    ];
    let mut t = TestServer::new();
    assert_eq!(t.cmd_args(&args(&[b"RESTORE", b"h", b"0", p])), "+OK\r\n");
    assert_eq!(t.cmd("HGETALL h"), "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\n1\r\n");
    assert_eq!(dump(&mut t, "h"), p);
}

#[test]
fn bgsave_and_lastsave_replies() {
    let mut t = TestServer::new();
    assert_eq!(t.cmd("BGSAVE NOW"), "-ERR syntax error\r\n");
    assert!(t.cmd("LASTSAVE").starts_with(':'));
    assert_eq!(t.cmd("MULTI"), "+OK\r\n");
    t.cmd("BGSAVE");
    assert_eq!(t.cmd("EXEC"), "*1\r\n+Background saving scheduled\r\n");
}

#[test]
fn restore_freq_sets_the_lfu_counter_under_an_lfu_policy() {
    let mut t = TestServer::new();
    t.cmd("SET k v");
    let p = dump(&mut t, "k");
    assert_eq!(t.cmd("CONFIG SET maxmemory-policy allkeys-lfu"), "+OK\r\n");
    assert_eq!(t.cmd_args(&args(&[b"RESTORE", b"hot", b"0", &p, b"FREQ", b"100"])), "+OK\r\n");
    assert_eq!(t.cmd("OBJECT FREQ hot"), ":100\r\n");
    // Under an LRU policy FREQ is accepted and has nothing to set.
    assert_eq!(t.cmd("CONFIG SET maxmemory-policy allkeys-lru"), "+OK\r\n");
    assert_eq!(t.cmd_args(&args(&[b"RESTORE", b"lru", b"0", &p, b"FREQ", b"100"])), "+OK\r\n");
}
