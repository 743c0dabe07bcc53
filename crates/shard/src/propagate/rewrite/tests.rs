//! Each rewrite rule, through the real dispatch path: commands run on a
//! test server whose propagation stream is recorded.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::propagate::Consumer;
use crate::test_util::TestServer;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Consumer for Recorder {
    fn feed(&self, db: usize, argv: &[Bytes]) {
        let words: Vec<String> = argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        self.0.lock().push(format!("{db}:{}", words.join(" ")));
    }
}

fn server() -> (TestServer, Arc<Recorder>) {
    let t = TestServer::new();
    let r = Arc::new(Recorder::default());
    t.shared.propagator.subscribe(r.clone());
    (t, r)
}

/// What was propagated since the last call, with absolute times (13+
/// digit numbers) checked against `PEXPIRETIME` and shown as `{T}`.
fn take(t: &mut TestServer, r: &Recorder) -> Vec<String> {
    let got = std::mem::take(&mut *r.0.lock());
    got.into_iter()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let shown: Vec<String> =
                words
                    .iter()
                    .map(|w| {
                        if w.len() >= 13 && w.bytes().all(|b| b.is_ascii_digit()) {
                            "{T}".into()
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
            if let Some(i) = words.iter().position(|w| *w == "PXAT") {
                let key = words[1];
                let want = t.cmd(&format!("PEXPIRETIME {key}"));
                assert!(want.contains(words[i + 1]) || want == ":-2\r\n", "{line} vs {want}");
            }
            shown.join(" ")
        })
        .collect()
}

#[test]
fn relative_expiries_become_absolute() {
    let (mut t, r) = server();
    t.cmd("SET a 1 EX 100");
    t.cmd("SETEX b 100 v");
    t.cmd("PSETEX c 100000 v");
    t.cmd("SET d 1 PX 5000 NX GET");
    t.cmd("SET e 1 KEEPTTL");
    t.cmd("SET f 1 PXAT 99999999999000");
    assert_eq!(
        take(&mut t, &r),
        [
            "0:SET a 1 PXAT {T}",
            "0:SET b v PXAT {T}",
            "0:SET c v PXAT {T}",
            "0:SET d 1 PXAT {T}",
            "0:SET e 1 KEEPTTL",
            "0:SET f 1 PXAT {T}"
        ]
    );
    t.cmd("EXPIRE a 100");
    t.cmd("PEXPIRE a 100000 XX");
    t.cmd("EXPIREAT a 99999999999");
    t.cmd("EXPIRE a 100 NX");
    t.cmd("EXPIRE nokey 100");
    t.cmd("EXPIRE b -1");
    t.cmd("PEXPIREAT c 1");
    assert_eq!(
        take(&mut t, &r),
        ["0:PEXPIREAT a {T}", "0:PEXPIREAT a {T} XX", "0:PEXPIREAT a {T}", "0:DEL b", "0:DEL c"]
    );
    t.cmd("SET g v");
    t.cmd("GETEX g EX 50");
    t.cmd("GETEX g PERSIST");
    t.cmd("GETEX g");
    t.cmd("GETEX g EXAT 1");
    t.cmd("SET g v");
    t.cmd("GETDEL g");
    assert_eq!(take(&mut t, &r), ["0:SET g v", "0:PEXPIREAT g {T}", "0:PERSIST g", "0:DEL g", "0:SET g v", "0:DEL g"]);
}

#[test]
fn float_increments_become_sets() {
    let (mut t, r) = server();
    t.cmd("INCRBYFLOAT f 1.5");
    t.cmd("INCRBYFLOAT f 1e3");
    t.cmd("HINCRBYFLOAT h x 2.5");
    t.cmd("HINCRBYFLOAT h x 0.5");
    assert_eq!(take(&mut t, &r), ["0:SET f 1.5 KEEPTTL", "0:SET f 1001.5 KEEPTTL", "0:HSET h x 2.5", "0:HSET h x 3"]);
}

#[test]
fn spop_becomes_srem() {
    let (mut t, r) = server();
    t.cmd("SADD s a b c d e");
    take(&mut t, &r);
    let one = t.cmd("SPOP s");
    let m = one.lines().nth(1).unwrap().to_string();
    assert_eq!(take(&mut t, &r), [format!("0:SREM s {m}")]);
    t.cmd("SPOP s 2");
    let got = take(&mut t, &r);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!((got[0].as_str(), got[3].as_str()), ("0:MULTI", "0:EXEC"));
    assert!(got[1].starts_with("0:SREM s ") && got[2].starts_with("0:SREM s "));
    t.cmd("SPOP s 10");
    assert_eq!(take(&mut t, &r), ["0:DEL s"]);
    t.cmd("SPOP s");
    t.cmd("SRANDMEMBER s 3");
    assert!(take(&mut t, &r).is_empty());
}

#[test]
fn blocking_pops_become_plain_pops() {
    let (mut t, r) = server();
    t.cmd("RPUSH l a b c d e");
    t.cmd("BLPOP l 0");
    t.cmd("BRPOP nokey l 0");
    t.cmd("LMPOP 1 l LEFT COUNT 2");
    t.cmd("BLMPOP 0 2 nokey l RIGHT COUNT 5");
    t.cmd("RPUSH l2 a b");
    t.cmd("BLMOVE l2 l3 LEFT RIGHT 0");
    t.cmd("BRPOPLPUSH l2 l3 0");
    t.cmd("ZADD z 1 a 2 b 3 c 4 d");
    t.cmd("BZPOPMIN z 0");
    t.cmd("BZPOPMAX z 0");
    t.cmd("ZMPOP 1 z MIN");
    t.cmd("BZMPOP 0 1 z MAX COUNT 3");
    assert_eq!(
        take(&mut t, &r),
        [
            "0:RPUSH l a b c d e",
            "0:LPOP l",
            "0:RPOP l",
            "0:LPOP l 2",
            "0:RPOP l 1",
            "0:RPUSH l2 a b",
            "0:LMOVE l2 l3 LEFT RIGHT",
            "0:RPOPLPUSH l2 l3",
            "0:ZADD z 1 a 2 b 3 c 4 d",
            "0:ZPOPMIN z",
            "0:ZPOPMAX z",
            "0:ZPOPMIN z 1",
            "0:ZPOPMAX z 1"
        ]
    );
}

#[test]
fn served_blocked_pop_propagates_after_the_push() {
    let (mut t, r) = server();
    let addr: std::net::SocketAddr = "127.0.0.1:2".parse().unwrap();
    let handle = t.shared.new_client(addr, addr);
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let args: Vec<Bytes> = ["BLPOP", "q", "0"].iter().map(|a| Bytes::from_static(a.as_bytes())).collect();
    t.shared.store.lock().block(crate::store::Waiter {
        client: handle.id,
        db: 0,
        keys: vec![b"q".as_slice().into()],
        args,
        proto: slotway_resp::Proto::Resp2,
        handle,
        tx,
    });
    t.cmd("RPUSH q x");
    assert_eq!(take(&mut t, &r), ["0:RPUSH q x", "0:LPOP q"]);
}

#[test]
fn transactions_wrap_more_than_one_write() {
    let (mut t, r) = server();
    for c in ["MULTI", "SET a 1", "EXEC", "MULTI", "SET b 1", "INCR c", "GET a", "EXEC", "MULTI", "GET a", "EXEC"] {
        t.cmd(c);
    }
    assert_eq!(take(&mut t, &r), ["0:SET a 1", "0:MULTI", "0:SET b 1", "0:INCR c", "0:EXEC"]);
}

#[test]
fn expired_keys_become_dels() {
    let (mut t, r) = server();
    t.cmd("SET x 1 PX 1");
    t.cmd("SET y 1 PX 1");
    t.cmd("SET z 1 PX 1");
    r.0.lock().clear();
    std::thread::sleep(std::time::Duration::from_millis(5));
    // A read that finds an expired key: the DEL goes on its own; inside a
    // transaction, the DEL belongs to it. (A SET over an expired key
    // replaces it without a lookup, so unlike Redis no DEL precedes it;
    // the result on the other side is the same.)
    t.cmd("GET x");
    t.cmd("SET y 2");
    for c in ["MULTI", "GET z", "SET w 1", "EXEC"] {
        t.cmd(c);
    }
    assert_eq!(take(&mut t, &r), ["0:DEL x", "0:SET y 2", "0:MULTI", "0:DEL z", "0:SET w 1", "0:EXEC"]);
}

#[test]
fn nothing_changed_nothing_propagated_and_select_follows_db() {
    let (mut t, r) = server();
    t.cmd("DEL nokey");
    t.cmd("GET nokey");
    t.cmd("SADD s a");
    t.cmd("SADD s a");
    t.cmd("SELECT 3");
    t.cmd("SET k v");
    t.cmd("FLUSHDB");
    t.cmd("FLUSHALL");
    assert_eq!(take(&mut t, &r), ["0:SADD s a", "3:SET k v", "3:FLUSHDB", "3:FLUSHALL"]);
}

#[test]
fn restore_with_a_relative_ttl_goes_out_absolute() {
    let (mut t, r) = server();
    t.cmd("SET src v");
    let dump = t.cmd_raw(&[Bytes::from_static(b"DUMP"), Bytes::from_static(b"src")]);
    // `$<len>\r\n<payload>\r\n`
    let start = dump.iter().position(|&b| b == b'\n').expect("header") + 1;
    let payload = Bytes::copy_from_slice(&dump[start..dump.len() - 2]);
    take(&mut t, &r);
    let restore = |key: &'static str, ttl: &'static str, extra: &[&'static str]| {
        let mut args = vec![Bytes::from_static(b"RESTORE"), Bytes::from_static(key.as_bytes())];
        args.push(Bytes::from_static(ttl.as_bytes()));
        args.push(payload.clone());
        args.extend(extra.iter().map(|a| Bytes::from_static(a.as_bytes())));
        args
    };
    assert_eq!(t.cmd_raw(&restore("dst", "100000", &[])), b"+OK\r\n");
    let got = take(&mut t, &r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("0:RESTORE dst {T} ") && got[0].ends_with(" ABSTTL"), "{got:?}");
    // Already absolute, or no TTL: as sent.
    assert_eq!(t.cmd_raw(&restore("d2", "0", &[])), b"+OK\r\n");
    let got = take(&mut t, &r);
    assert!(got[0].starts_with("0:RESTORE d2 0 ") && !got[0].ends_with("ABSTTL"), "{got:?}");
}
