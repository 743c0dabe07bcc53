//! Unit tests for the set commands.

use slotway_resp::Proto;

use crate::command::hash::tests::bulks;
use crate::test_util::TestServer;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn membership_and_cardinality() {
    let mut t = TestServer::new();
    assert_eq!(t.cmd("SADD s a b c a"), ":3\r\n");
    assert_eq!(t.cmd("SADD s a d"), ":1\r\n");
    assert_eq!(t.cmd("SCARD s"), ":4\r\n");
    assert_eq!(t.cmd("SISMEMBER s d"), ":1\r\n");
    assert_eq!(t.cmd("SMISMEMBER s a z"), "*2\r\n:1\r\n:0\r\n");
    assert_eq!(t.cmd("SREM s a z"), ":1\r\n");
    assert_eq!(sorted(bulks(&t.cmd("SMEMBERS s"))), ["b", "c", "d"]);
    assert_eq!(t.cmd("SREM s b c d"), ":3\r\n");
    assert_eq!(t.shared.store.lock().dbs[0].len(), 0, "an emptied set is deleted");
    assert_eq!(t.shared.store.lock().dirty, 8);
}

#[test]
fn intsets_reply_sorted() {
    let mut t = TestServer::new();
    t.cmd("SADD i 10 -3 2 9223372036854775807 0");
    assert_eq!(bulks(&t.cmd("SMEMBERS i")), ["-3", "0", "2", "10", "9223372036854775807"]);
    t.cmd("SADD j 2 10 11");
    assert_eq!(bulks(&t.cmd("SINTER j i")), ["2", "10"]);
    assert_eq!(bulks(&t.cmd("SUNION j i")), ["-3", "0", "2", "10", "11", "9223372036854775807"]);
    assert_eq!(bulks(&t.cmd("SDIFF i j")), ["-3", "0", "9223372036854775807"]);
    assert_eq!(bulks(&t.cmd("SSCAN i 0 COUNT 1")), ["0", "-3", "0", "2", "10", "9223372036854775807"]);
}

#[test]
fn algebra_and_store() {
    let mut t = TestServer::new();
    t.cmd("SADD a x y z");
    t.cmd("SADD b y z w");
    assert_eq!(sorted(bulks(&t.cmd("SINTER a b"))), ["y", "z"]);
    assert_eq!(t.cmd("SINTER a none"), "*0\r\n");
    assert_eq!(t.cmd("SINTERCARD 2 a b"), ":2\r\n");
    assert_eq!(t.cmd("SINTERCARD 2 a b LIMIT 1"), ":1\r\n");
    assert_eq!(t.cmd("SINTERCARD 0 a"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(t.cmd("SINTERCARD 3 a b"), "-ERR Number of keys can't be greater than number of args\r\n");
    assert_eq!(t.cmd("SINTERCARD 1 a LIMIT -1"), "-ERR LIMIT can't be negative\r\n");
    assert_eq!(t.cmd("SINTERCARD 1 a LIMIT"), "-ERR syntax error\r\n");
    t.cmd("SET dst str");
    assert_eq!(t.cmd("SUNIONSTORE dst a b"), ":4\r\n");
    assert_eq!(sorted(bulks(&t.cmd("SMEMBERS dst"))), ["w", "x", "y", "z"]);
    t.cmd("SET dst str");
    assert_eq!(t.cmd("SINTERSTORE dst a none"), ":0\r\n");
    assert_eq!(t.cmd("SCARD dst"), ":0\r\n");
    assert_eq!(t.cmd("SDIFFSTORE dst a b"), ":1\r\n");
    assert_eq!(t.cmd("SMEMBERS dst"), "*1\r\n$1\r\nx\r\n");
    assert_eq!(t.cmd("SDIFFSTORE dst a a"), ":0\r\n");
    assert!(t.shared.store.lock().dbs[0].get(b"dst", 0).is_none());
    // The destination may be a source.
    assert_eq!(t.cmd("SINTERSTORE a a b"), ":2\r\n");
    assert_eq!(sorted(bulks(&t.cmd("SMEMBERS a"))), ["y", "z"]);
    t.cmd("SET str v");
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for c in ["SINTER none str", "SUNION a str", "SDIFF none str", "SINTERSTORE d none str", "SINTERCARD 2 none str"] {
        assert_eq!(t.cmd(c), wrong, "{c}");
    }
}

#[test]
fn smove_rules() {
    let mut t = TestServer::new();
    t.cmd("SADD a 1 2");
    t.cmd("SET str v");
    assert_eq!(t.cmd("SMOVE none str 1"), ":0\r\n");
    assert!(t.cmd("SMOVE a str 1").starts_with("-WRONGTYPE"));
    assert_eq!(t.cmd("SMOVE a a 1"), ":1\r\n");
    assert_eq!(t.cmd("SMOVE a a 9"), ":0\r\n");
    assert_eq!(t.cmd("SMOVE a b 9"), ":0\r\n");
    assert_eq!(t.cmd("SCARD b"), ":0\r\n");
    assert_eq!(t.cmd("SMOVE a b 1"), ":1\r\n");
    assert_eq!(t.cmd("SMOVE a b 2"), ":1\r\n");
    assert_eq!(t.cmd("SCARD a"), ":0\r\n");
    assert_eq!(bulks(&t.cmd("SMEMBERS b")), ["1", "2"]);
}

#[test]
fn spop_and_srandmember() {
    let mut t = TestServer::new();
    let members: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    t.cmd(&format!("SADD s {}", members.join(" ")));
    let popped = bulks(&t.cmd("SPOP s 30"));
    assert_eq!(popped.len(), 30);
    let mut distinct = popped.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 30);
    assert_eq!(t.cmd("SCARD s"), ":70\r\n");
    for m in &popped {
        assert_eq!(t.cmd(&format!("SISMEMBER s {m}")), ":0\r\n");
    }
    let one = bulks(&t.cmd("SPOP s"));
    assert_eq!(one.len(), 1);
    assert_eq!(t.cmd("SCARD s"), ":69\r\n");
    let mut picks = bulks(&t.cmd("SRANDMEMBER s 20"));
    picks.sort();
    picks.dedup();
    assert_eq!(picks.len(), 20);
    assert_eq!(bulks(&t.cmd("SRANDMEMBER s -200")).len(), 200);
    assert_eq!(bulks(&t.cmd("SRANDMEMBER s 1000")).len(), 69);
    assert_eq!(t.cmd("SPOP s 1000").matches('$').count(), 69);
    assert_eq!(t.cmd("SCARD s"), ":0\r\n");
    t.cmd("SADD one x");
    assert_eq!(t.cmd("SRANDMEMBER one -3"), "*3\r\n$1\r\nx\r\n$1\r\nx\r\n$1\r\nx\r\n");
    assert_eq!(t.cmd("SPOP one -1"), "-ERR value is out of range, must be positive\r\n");
    assert_eq!(t.cmd("SPOP one 1 2"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("SPOP one"), "$1\r\nx\r\n");
    assert_eq!(t.cmd("SPOP one"), "$-1\r\n");
}

#[test]
fn sscan_visits_every_member_despite_deletes() {
    let mut t = TestServer::new();
    let members: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
    t.cmd(&format!("SADD s {}", members.join(" ")));
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = bulks(&t.cmd(&format!("SSCAN s {cursor} COUNT 9")));
        let (next, items) = reply.split_first().expect("cursor");
        assert!(items.len() <= 9);
        for m in items {
            seen.insert(m.clone());
            t.cmd(&format!("SREM s {m}"));
        }
        if next == "0" {
            break;
        }
        cursor = next.clone();
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(t.cmd("SCARD s"), ":0\r\n");
}

#[test]
fn resp3_replies() {
    let mut t = TestServer::new();
    t.client.proto = Proto::Resp3;
    t.cmd("SADD i 3 1 2");
    assert_eq!(t.cmd("SMEMBERS i"), "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(t.cmd("SMEMBERS none"), "~0\r\n");
    assert_eq!(t.cmd("SISMEMBER i 1"), ":1\r\n");
    assert_eq!(t.cmd("SMISMEMBER i 1 9"), "*2\r\n:1\r\n:0\r\n");
    assert_eq!(t.cmd("SINTER i i"), "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(t.cmd("SUNION i none"), "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(t.cmd("SDIFF none i"), "~0\r\n");
    assert_eq!(t.cmd("SRANDMEMBER i 10"), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(t.cmd("SRANDMEMBER none 3"), "*0\r\n");
    assert_eq!(t.cmd("SRANDMEMBER none"), "_\r\n");
    assert!(t.cmd("SRANDMEMBER i 2").starts_with("*2\r\n"));
    assert!(t.cmd("SPOP i 2").starts_with("~2\r\n"));
    assert_eq!(t.cmd("SPOP i 0"), "~0\r\n");
    assert_eq!(t.cmd("SPOP none 2"), "~0\r\n");
    assert_eq!(t.cmd("SPOP none"), "_\r\n");
    assert_eq!(t.cmd("SSCAN none 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
}
