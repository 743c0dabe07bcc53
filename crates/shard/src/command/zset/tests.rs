//! Unit tests for the sorted-set commands, through the real dispatch path.

use crate::test_util::TestServer;

#[test]
fn zadd_flags_and_errors() {
    let mut t = TestServer::new();
    assert_eq!(t.cmd("ZADD z 1 a 2 b"), ":2\r\n");
    assert_eq!(t.cmd("ZADD z CH 5 a 3 c"), ":2\r\n");
    assert_eq!(t.cmd("ZADD z NX 9 a"), ":0\r\n");
    assert_eq!(t.cmd("ZADD z XX 9 nope"), ":0\r\n");
    assert_eq!(t.cmd("ZADD z GT CH 1 a"), ":0\r\n");
    assert_eq!(t.cmd("ZADD z LT CH 1 a"), ":1\r\n");
    assert_eq!(t.cmd("ZADD z INCR 1.5 a"), "$3\r\n2.5\r\n");
    assert_eq!(t.cmd("ZADD z INCR GT -1 a"), "$-1\r\n");
    assert_eq!(t.cmd("ZADD z XX NX 1 a"), "-ERR XX and NX options at the same time are not compatible\r\n");
    assert_eq!(t.cmd("ZADD z GT NX 1 a"), "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n");
    assert_eq!(t.cmd("ZADD z INCR 1 a 2 b"), "-ERR INCR option supports a single increment-element pair\r\n");
    assert_eq!(t.cmd("ZADD z 1 a 2"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("ZADD z x a"), "-ERR value is not a valid float\r\n");
    assert_eq!(t.cmd("ZADD z inf i"), ":1\r\n");
    assert_eq!(t.cmd("ZINCRBY z -inf i"), "-ERR resulting score is not a number (NaN)\r\n");
    assert_eq!(t.cmd("ZADD nokey XX 1 a"), ":0\r\n");
    assert_eq!(t.cmd("GET nokey"), "$-1\r\n");
    assert_eq!(t.cmd("ZCARD nokey"), ":0\r\n");
    assert_eq!(t.cmd("ZSCORE z i"), "$3\r\ninf\r\n");
    assert_eq!(t.cmd("SET s x"), "+OK\r\n");
    assert_eq!(t.cmd("ZADD s 1 a"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut t = TestServer::new();
    t.cmd("ZADD z 1 a 2 b 3 c 4 d");
    assert_eq!(t.cmd("ZRANGE z 1 2"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("ZRANGE z 0 0 REV WITHSCORES"), "*2\r\n$1\r\nd\r\n$1\r\n4\r\n");
    assert_eq!(t.cmd("ZRANGE z (1 3 BYSCORE LIMIT 1 5"), "*1\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("ZRANGE z 3 (1 BYSCORE REV LIMIT 0 1"), "*1\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("ZREVRANGEBYSCORE z +inf -inf LIMIT 1 2"), "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    assert_eq!(t.cmd("ZCOUNT z (1 +inf"), ":3\r\n");
    assert_eq!(t.cmd("ZRANGE z x 1 BYSCORE"), "-ERR min or max is not a float\r\n");
    assert!(t.cmd("ZRANGE z 0 1 LIMIT 0 1").starts_with("-ERR syntax error, LIMIT"));
    t.cmd("ZADD l 0 a 0 b 0 c 0 d");
    assert_eq!(t.cmd("ZRANGEBYLEX l (a [c"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("ZREVRANGEBYLEX l + (b LIMIT 0 1"), "*1\r\n$1\r\nd\r\n");
    assert_eq!(t.cmd("ZLEXCOUNT l - +"), ":4\r\n");
    assert_eq!(t.cmd("ZRANGEBYLEX l a c"), "-ERR min or max not valid string range item\r\n");
    assert_eq!(t.cmd("ZREMRANGEBYLEX l [b [c"), ":2\r\n");
    assert_eq!(t.cmd("ZREMRANGEBYRANK z 0 -2"), ":3\r\n");
    assert_eq!(t.cmd("ZREMRANGEBYSCORE z -inf +inf"), ":1\r\n");
    assert_eq!(t.cmd("ZCARD z"), ":0\r\n");
    assert_eq!(t.cmd("ZRANGESTORE dst l 0 -1"), ":2\r\n");
    assert_eq!(t.cmd("ZRANGESTORE dst nokey 0 -1"), ":0\r\n");
    assert_eq!(t.cmd("ZCARD dst"), ":0\r\n");
}

#[test]
fn resp3_scores_are_doubles_and_pairs_nest() {
    let mut t = TestServer::new();
    t.client.proto = slotway_resp::Proto::Resp3;
    t.cmd("ZADD z 1.5 a 2 b");
    assert_eq!(t.cmd("ZSCORE z a"), ",1.5\r\n");
    assert_eq!(t.cmd("ZRANGE z 0 -1 WITHSCORES"), "*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,2\r\n");
    assert_eq!(t.cmd("ZPOPMIN z"), "*2\r\n$1\r\na\r\n,1.5\r\n");
    assert_eq!(t.cmd("ZPOPMIN z 1"), "*1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
    assert_eq!(t.cmd("ZMPOP 1 z MIN"), "_\r\n");
    assert_eq!(t.cmd("ZSCORE z a"), "_\r\n");
}

#[test]
fn set_operations() {
    let mut t = TestServer::new();
    t.cmd("ZADD a 1 x 2 y");
    t.cmd("ZADD b 3 y 4 z");
    assert_eq!(
        t.cmd("ZUNION 2 a b WITHSCORES"),
        "*6\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\nz\r\n$1\r\n4\r\n$1\r\ny\r\n$1\r\n5\r\n"
    );
    assert_eq!(t.cmd("ZINTER 2 a b WEIGHTS 2 1 AGGREGATE MIN WITHSCORES"), "*2\r\n$1\r\ny\r\n$1\r\n3\r\n");
    assert_eq!(t.cmd("ZDIFF 2 a b"), "*1\r\n$1\r\nx\r\n");
    assert_eq!(t.cmd("ZINTERCARD 2 a b LIMIT 0"), ":1\r\n");
    assert_eq!(t.cmd("ZUNIONSTORE out 2 a nokey"), ":2\r\n");
    assert_eq!(t.cmd("ZINTERSTORE out 2 a nokey"), ":0\r\n");
    assert_eq!(t.cmd("ZCARD out"), ":0\r\n");
    assert_eq!(t.cmd("ZUNION 0 a"), "-ERR at least 1 input key is needed for 'zunion' command\r\n");
    assert_eq!(t.cmd("ZUNION 3 a b"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("ZUNION 1 a WEIGHTS x"), "-ERR weight value is not a float\r\n");
    assert_eq!(t.cmd("ZINTERCARD 1 a LIMIT -1"), "-ERR LIMIT can't be negative\r\n");
}

#[test]
fn pops_and_blocking_in_exec_mode() {
    let mut t = TestServer::new();
    t.cmd("ZADD z 1 a 2 b 3 c");
    assert_eq!(t.cmd("ZPOPMAX z 2"), "*4\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_eq!(t.cmd("ZPOPMIN z -1"), "-ERR value is out of range, must be positive\r\n");
    assert_eq!(t.cmd("BZPOPMIN nokey z 0"), "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(t.cmd("GET z"), "$-1\r\n");
    t.cmd("ZADD z 1 a 2 b");
    assert_eq!(
        t.cmd("ZMPOP 2 nokey z MAX COUNT 5"),
        "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(t.cmd("ZMPOP 0 z MIN"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(t.cmd("ZMPOP 1 z MIN COUNT 0"), "-ERR count should be greater than 0\r\n");
    assert_eq!(t.cmd("BZMPOP -1 1 z MIN"), "-ERR timeout is negative\r\n");
    assert_eq!(t.cmd("BZPOPMIN z x"), "-ERR timeout is not a float or out of range\r\n");
}

#[test]
fn scan_randmember_rank() {
    let mut t = TestServer::new();
    t.cmd("ZADD z 1 a 2 b 3 c");
    assert_eq!(t.cmd("ZRANK z c"), ":2\r\n");
    assert_eq!(t.cmd("ZREVRANK z c"), ":0\r\n");
    assert_eq!(t.cmd("ZMSCORE z a nope"), "*2\r\n$1\r\n1\r\n$-1\r\n");
    assert_eq!(t.cmd("ZSCAN z 0 MATCH [ab]"), "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_eq!(t.cmd("ZSCAN z x"), "-ERR invalid cursor\r\n");
    assert_eq!(t.cmd("ZRANDMEMBER z 5"), "*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n");
    assert!(t.cmd("ZRANDMEMBER z -5").starts_with("*5\r\n"));
    assert!(t.cmd("ZRANDMEMBER z 2 WITHSCORES").starts_with("*4\r\n"));
    assert_eq!(t.cmd("ZRANDMEMBER z 0"), "*0\r\n");
    assert_eq!(t.cmd("ZRANDMEMBER nokey"), "$-1\r\n");
}

#[test]
fn big_set_scan_walks_everything() {
    let mut t = TestServer::new();
    for i in 0..300 {
        t.cmd(&format!("ZADD z {i} m{i}"));
    }
    let mut cursor = "0".to_string();
    let mut seen = 0;
    loop {
        let r = t.cmd(&format!("ZSCAN z {cursor} COUNT 50"));
        let lines: Vec<&str> = r.split("\r\n").collect();
        cursor = lines[2].to_string();
        seen += lines[3].trim_start_matches('*').parse::<usize>().unwrap() / 2;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, 300);
    assert_eq!(t.cmd("ZRANK z m299"), ":299\r\n");
}

#[test]
fn plain_sets_are_inputs_with_score_one() {
    use crate::store::{Entry, Value};
    let mut t = TestServer::new();
    {
        let mut store = t.shared.store.lock();
        let mut set = crate::store::value::IndexSet::default();
        set.insert(b"b"[..].into());
        set.insert(b"z"[..].into());
        store.dbs[0].insert(b"plain", Entry::new(Value::Set(Box::new(set))));
    }
    t.cmd("ZADD u 1 a 2 b");
    assert_eq!(
        t.cmd("ZUNION 2 u plain WITHSCORES"),
        "*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nz\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n3\r\n"
    );
    assert_eq!(t.cmd("ZINTER 2 plain u WEIGHTS 10 1 WITHSCORES"), "*2\r\n$1\r\nb\r\n$2\r\n12\r\n");
    assert_eq!(t.cmd("ZDIFF 2 plain u"), "*1\r\n$1\r\nz\r\n");
    assert_eq!(t.cmd("ZINTERCARD 2 plain u"), ":1\r\n");
    assert_eq!(t.cmd("ZDIFFSTORE out 1 plain"), ":2\r\n");
    assert_eq!(t.cmd("ZRANGE out 0 -1 WITHSCORES"), "*4\r\n$1\r\nb\r\n$1\r\n1\r\n$1\r\nz\r\n$1\r\n1\r\n");
}

#[test]
fn blocking_pops_block_when_empty_and_pop_when_not() {
    let mut t = TestServer::new();
    // Nothing to pop: the command parks the client and writes no reply.
    assert_eq!(t.cmd("BZPOPMIN nokey 0"), "");
    assert_eq!(t.cmd("BZMPOP 0 1 nokey MIN"), "");
    t.cmd("SET str x");
    assert_eq!(t.cmd("BZPOPMAX str 0"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    t.cmd("ZADD z 1 a 2 b 3 c");
    assert_eq!(t.cmd("BZPOPMAX nokey z 0"), "*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_eq!(
        t.cmd("BZMPOP 0 2 nokey z MIN COUNT 5"),
        "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(t.cmd("ZCARD z"), ":0\r\n");
}

#[test]
fn lex_and_zero_edge_cases() {
    let mut t = TestServer::new();
    t.cmd("ZADD mix 1 d 2 b 3 e 4 a 5 c");
    // Members out of order: Redis's scan of a small set starts at the first
    // member >= min and stops at the first one past max.
    assert_eq!(t.cmd("ZRANGEBYLEX mix [b [d"), "*2\r\n$1\r\nd\r\n$1\r\nb\r\n");
    assert_eq!(t.cmd("ZRANGEBYLEX mix [c [e"), "*5\r\n$1\r\nd\r\n$1\r\nb\r\n$1\r\ne\r\n$1\r\na\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("ZADD nz -0.0 a"), ":1\r\n");
    assert_eq!(t.cmd("ZSCORE nz a"), "$1\r\n0\r\n");
    assert_eq!(t.cmd("ZINCRBY nz -0.0 b"), "$2\r\n-0\r\n");
    assert_eq!(t.cmd("ZCOUNT nz ( +inf"), ":0\r\n");
    assert_eq!(t.cmd("ZCOUNT nz ( ("), ":0\r\n");
    assert_eq!(t.cmd("ZCOUNT nz -inf ("), ":0\r\n");
    assert_eq!(t.cmd("ZCOUNT nz -inf 0"), ":2\r\n");
    assert_eq!(t.cmd("ZADD nz 0x10 hex"), ":1\r\n");
    assert_eq!(t.cmd("ZSCORE nz hex"), "$2\r\n16\r\n");
    assert_eq!(t.cmd("ZADD nz 1e400 big"), "-ERR value is not a valid float\r\n");
}

/// ZSCAN over a big set: every member present for the whole scan comes
/// back even when members before the cursor are removed mid-scan, and runs
/// of equal scores are never split.
#[test]
fn big_set_scan_survives_removals() {
    let mut t = TestServer::new();
    for i in 0..400 {
        t.cmd(&format!("ZADD z {} m{i:03}", i / 3));
    }
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    let mut removed = 0;
    loop {
        let r = t.cmd(&format!("ZSCAN z {cursor} COUNT 7"));
        let lines: Vec<&str> = r.split("\r\n").collect();
        cursor = lines[2].to_string();
        for pair in lines[4..].chunks(4) {
            if let [_, m, _, _] = pair {
                seen.insert(m.to_string());
            }
        }
        // Remove an already returned low-ranked member each round.
        t.cmd(&format!("ZREM z m{removed:03}"));
        removed += 1;
        if cursor == "0" {
            break;
        }
    }
    for i in removed..400 {
        assert!(seen.contains(&format!("m{i:03}")), "m{i:03} missed");
    }
}
