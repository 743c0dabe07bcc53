//! Unit tests for the hash commands.

use slotway_resp::Proto;

use crate::test_util::TestServer;

/// The bulk strings of a raw reply, in order (nested aggregates flattened).
pub(crate) fn bulks(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = reply.split("\r\n");
    while let Some(l) = lines.next() {
        if l.starts_with('$') && l != "$-1" {
            out.push(lines.next().unwrap_or_default().to_string());
        }
    }
    out
}

#[test]
fn set_get_and_counts() {
    let mut t = TestServer::new();
    assert_eq!(t.cmd("HSET h a 1 b 2"), ":2\r\n");
    assert_eq!(t.cmd("HSET h a 10 c 3"), ":1\r\n");
    assert_eq!(t.cmd("HMSET h d 4"), "+OK\r\n");
    assert_eq!(t.cmd("HGET h a"), "$2\r\n10\r\n");
    assert_eq!(t.cmd("HGET h zz"), "$-1\r\n");
    assert_eq!(t.cmd("HMGET h a zz"), "*2\r\n$2\r\n10\r\n$-1\r\n");
    assert_eq!(t.cmd("HLEN h"), ":4\r\n");
    assert_eq!(t.cmd("HSTRLEN h a"), ":2\r\n");
    assert_eq!(t.cmd("HEXISTS h d"), ":1\r\n");
    assert_eq!(t.cmd("HSETNX h d x"), ":0\r\n");
    assert_eq!(t.cmd("HSETNX h e x"), ":1\r\n");
    assert_eq!(t.cmd("HSET h a"), "-ERR wrong number of arguments for 'hset' command\r\n");
    assert_eq!(t.cmd("HMSET h a 1 b"), "-ERR wrong number of arguments for 'hmset' command\r\n");
    assert_eq!(t.cmd("HDEL h a b c d e nope"), ":5\r\n");
    assert_eq!(t.cmd("HLEN h"), ":0\r\n");
    assert_eq!(t.shared.store.lock().dbs[0].len(), 0, "an emptied hash is deleted");
}

#[test]
fn small_hash_keeps_insertion_order_across_deletes() {
    let mut t = TestServer::new();
    t.cmd("HSET h z 1 y 2 x 3 w 4");
    t.cmd("HDEL h y");
    t.cmd("HSET h y 5 z 6");
    assert_eq!(bulks(&t.cmd("HKEYS h")), ["z", "x", "w", "y"]);
    assert_eq!(bulks(&t.cmd("HVALS h")), ["6", "3", "4", "5"]);
    assert_eq!(bulks(&t.cmd("HSCAN h 0 COUNT 1")), ["0", "z", "6", "x", "3", "w", "4", "y", "5"]);
}

#[test]
fn wrong_type_everywhere() {
    let mut t = TestServer::new();
    t.cmd("SET s v");
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for c in [
        "HSET s f v",
        "HGET s f",
        "HMGET s f",
        "HDEL s f",
        "HLEN s",
        "HGETALL s",
        "HINCRBY s f 1",
        "HINCRBYFLOAT s f 1",
        "HRANDFIELD s",
        "HSCAN s 0",
    ] {
        assert_eq!(t.cmd(c), wrong, "{c}");
    }
    // Argument errors come before the type check.
    assert_eq!(t.cmd("HINCRBY s f x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(t.cmd("HRANDFIELD s 1 foo"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("HSCAN s x"), "-ERR invalid cursor\r\n");
}

#[test]
fn incr_errors_and_overflow() {
    let mut t = TestServer::new();
    assert_eq!(t.cmd("HINCRBY h n 9223372036854775807"), ":9223372036854775807\r\n");
    assert_eq!(t.cmd("HINCRBY h n 1"), "-ERR increment or decrement would overflow\r\n");
    t.cmd("HSET h s 007");
    assert_eq!(t.cmd("HINCRBY h s 1"), "-ERR hash value is not an integer\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT h s 1"), "$1\r\n8\r\n");
    t.cmd("HSET h w word");
    assert_eq!(t.cmd("HINCRBYFLOAT h w 1"), "-ERR hash value is not a float\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT h w inf"), "-ERR value is NaN or Infinity\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT h w nan"), "-ERR value is not a valid float\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT h f 1.5"), "$3\r\n1.5\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT h f 0.1"), "$3\r\n1.6\r\n");
    assert_eq!(t.cmd("HGET h f"), "$3\r\n1.6\r\n");
    t.cmd("HSET h big 1e4932");
    assert_eq!(t.cmd("HINCRBYFLOAT h big 1e4932"), "-ERR increment would produce NaN or Infinity\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT none f 1e5000"), "-ERR value is not a valid float\r\n");
    assert_eq!(t.shared.store.lock().dbs[0].len(), 1, "a failed increment creates nothing");
}

#[test]
fn writes_count_as_dirty() {
    let mut t = TestServer::new();
    t.cmd("HSET h a 1 b 2");
    assert_eq!(t.shared.store.lock().dirty, 2);
    t.cmd("HDEL h nope");
    t.cmd("HSETNX h a x");
    t.cmd("HGETALL h");
    assert_eq!(t.shared.store.lock().dirty, 2);
    t.cmd("HINCRBY h c 1");
    assert_eq!(t.shared.store.lock().dirty, 3);
}

#[test]
fn resp3_replies() {
    let mut t = TestServer::new();
    t.client.proto = Proto::Resp3;
    t.cmd("HSET h a 1 b 2");
    assert_eq!(t.cmd("HGETALL h"), "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_eq!(t.cmd("HGETALL none"), "%0\r\n");
    assert_eq!(t.cmd("HKEYS h"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(t.cmd("HKEYS none"), "*0\r\n");
    assert_eq!(t.cmd("HGET h zz"), "_\r\n");
    assert_eq!(t.cmd("HMGET h zz a"), "*2\r\n_\r\n$1\r\n1\r\n");
    assert_eq!(t.cmd("HRANDFIELD none"), "_\r\n");
    assert_eq!(t.cmd("HRANDFIELD none 2 WITHVALUES"), "*0\r\n");
    assert_eq!(t.cmd("HRANDFIELD h 5 WITHVALUES"), "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    let r = t.cmd("HRANDFIELD h -3 WITHVALUES");
    assert!(r.starts_with("*3\r\n*2\r\n"), "{r}");
    assert_eq!(r.matches("*2\r\n").count(), 3);
    assert_eq!(t.cmd("HSCAN h 0"), "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_eq!(t.cmd("HINCRBYFLOAT h f 2.5"), "$3\r\n2.5\r\n");
}

#[test]
fn hrandfield_shapes() {
    let mut t = TestServer::new();
    t.cmd("HSET h a 1 b 2 c 3 d 4 e 5");
    for _ in 0..20 {
        let picked = bulks(&t.cmd("HRANDFIELD h 3"));
        assert_eq!(picked.len(), 3);
        // A listpack hash gives distinct fields in hash order.
        let mut sorted = picked.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, picked);
        let pairs = bulks(&t.cmd("HRANDFIELD h 2 WITHVALUES"));
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[0].as_bytes()[0] - b'a' + b'1', pairs[1].as_bytes()[0]);
    }
    t.cmd("HSET one f v");
    assert_eq!(t.cmd("HRANDFIELD one -3"), "*3\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n");
    assert_eq!(t.cmd("HRANDFIELD one -2 WITHVALUES"), "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(t.cmd("HRANDFIELD h 4611686018427387904 WITHVALUES"), "-ERR value is out of range\r\n");
    assert_eq!(
        t.cmd("HRANDFIELD h -9223372036854775808"),
        "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
    );
    // A hashtable-sized hash: distinct picks too.
    let args: Vec<String> = (0..600).map(|i| format!("f{i} v{i}")).collect();
    t.cmd(&format!("HSET big {}", args.join(" ")));
    let mut picked = bulks(&t.cmd("HRANDFIELD big 50"));
    picked.sort();
    picked.dedup();
    assert_eq!(picked.len(), 50);
    assert_eq!(bulks(&t.cmd("HRANDFIELD big -500")).len(), 500);
}

#[test]
fn hscan_visits_every_field_despite_deletes() {
    let mut t = TestServer::new();
    let args: Vec<String> = (0..600).map(|i| format!("f{i} v{i}")).collect();
    t.cmd(&format!("HSET big {}", args.join(" ")));
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut rounds = 0;
    loop {
        let reply = bulks(&t.cmd(&format!("HSCAN big {cursor} COUNT 7")));
        let (next, items) = reply.split_first().expect("cursor");
        let fields: Vec<&String> = items.iter().step_by(2).collect();
        assert!(fields.len() <= 7);
        for f in &fields {
            seen.insert(f.to_string());
        }
        // The classic scan-and-delete loop must not skip anything.
        if let Some(f) = fields.first() {
            t.cmd(&format!("HDEL big {f}"));
        }
        rounds += 1;
        assert!(rounds < 1000);
        if next == "0" {
            break;
        }
        cursor = next.clone();
    }
    assert_eq!(seen.len(), 600);
    let matched = bulks(&t.cmd("HSCAN big 0 MATCH f29? COUNT 1000"));
    assert!(matched.len() > 1 && matched.iter().skip(1).step_by(2).all(|f| f.starts_with("f29")), "{matched:?}");
}

#[test]
fn hscan_arguments() {
    let mut t = TestServer::new();
    t.cmd("HSET h a 1");
    assert_eq!(t.cmd("HSCAN h 0 COUNT 0"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("HSCAN h 0 COUNT x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(t.cmd("HSCAN h 0 MATCH"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("HSCAN h 18446744073709551616"), "-ERR invalid cursor\r\n");
    assert_eq!(t.cmd("HSCAN h -1"), "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(t.cmd("HSCAN none 0 FOO bar"), "*2\r\n$1\r\n0\r\n*0\r\n");
}
