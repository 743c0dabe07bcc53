//! Unit tests for the list family and the blocked-client machinery it
//! drives (parking, serving in order, re-blocking, timeouts parsing).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use slotway_resp::{Proto, ReplyBuf};
use tokio::sync::oneshot;

use crate::client::Client;
use crate::command::{parse_timeout, Action, Ctx, Mode};
use crate::error::CmdError;
use crate::server::unix_ms;
use crate::store::Waiter;
use crate::test_util::TestServer;

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

/// Runs `line` for a second client in `mode`; a command that blocks is
/// parked the way a session parks it. Returns the immediate reply and, if
/// it blocked, where the later reply arrives.
fn run_as(t: &TestServer, mode: Mode, line: &str) -> (String, Option<oneshot::Receiver<BytesMut>>) {
    let shared = t.shared.clone();
    let addr = "127.0.0.1:2".parse().expect("addr");
    let mut client = Client::new(shared.new_client(addr, addr), true);
    let config = shared.config.load_full();
    let mut store = shared.store.lock();
    let mut out = ReplyBuf::new(Proto::Resp2);
    let args = args(line);
    let mut ctx = Ctx::new(&mut store, &shared, &config, &mut client, &mut out, unix_ms(), mode);
    crate::dispatch::execute(&mut ctx, &args);
    let action = ctx.action.take();
    let rx = match action {
        Some(Action::Block { keys, .. }) => {
            let (tx, rx) = oneshot::channel();
            store.block(Waiter {
                client: client.id(),
                db: client.db,
                keys,
                args,
                proto: client.proto,
                handle: client.handle.clone(),
                tx,
            });
            Some(rx)
        }
        _ => None,
    };
    (String::from_utf8_lossy(&out.buf).into_owned(), rx)
}

fn block(t: &TestServer, line: &str) -> oneshot::Receiver<BytesMut> {
    let (reply, rx) = run_as(t, Mode::Normal, line);
    assert_eq!(reply, "", "{line} should block");
    rx.expect("blocked")
}

fn served(rx: &mut oneshot::Receiver<BytesMut>) -> Option<String> {
    rx.try_recv().ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn push_and_read() {
    let mut t = TestServer::new();
    assert_eq!(t.cmd("RPUSH l a b c"), ":3\r\n");
    assert_eq!(t.cmd("LPUSH l z"), ":4\r\n");
    assert_eq!(t.cmd("LRANGE l 0 -1"), "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("LRANGE l -2 99"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("LRANGE l 3 2"), "*0\r\n");
    assert_eq!(t.cmd("LINDEX l -1"), "$1\r\nc\r\n");
    assert_eq!(t.cmd("LINDEX l -9223372036854775808"), "$-1\r\n");
    assert_eq!(t.cmd("LPUSHX none a"), ":0\r\n");
    assert_eq!(t.cmd("LLEN none"), ":0\r\n");
    assert_eq!(t.cmd("RPUSHX l d"), ":5\r\n");
    t.cmd("SET s x");
    assert_eq!(t.cmd("LPUSH s a"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

#[test]
fn edits() {
    let mut t = TestServer::new();
    t.cmd("RPUSH l a b a c a");
    assert_eq!(t.cmd("LSET none 0 x"), "-ERR no such key\r\n");
    assert_eq!(t.cmd("LSET l 5 x"), "-ERR index out of range\r\n");
    assert_eq!(t.cmd("LSET l -5 A"), "+OK\r\n");
    assert_eq!(t.cmd("LINSERT l BEFORE b X"), ":6\r\n");
    assert_eq!(t.cmd("LINSERT l AFTER nope Y"), ":-1\r\n");
    assert_eq!(t.cmd("LINSERT none AFTER a Y"), ":0\r\n");
    assert_eq!(t.cmd("LINSERT l MIDDLE a Y"), "-ERR syntax error\r\n");
    // A X b a c a
    assert_eq!(t.cmd("LREM l -1 a"), ":1\r\n");
    assert_eq!(t.cmd("LREM l 0 a"), ":1\r\n");
    assert_eq!(t.cmd("LRANGE l 0 -1"), "*4\r\n$1\r\nA\r\n$1\r\nX\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(t.cmd("LTRIM l 1 -2"), "+OK\r\n");
    assert_eq!(t.cmd("LRANGE l 0 -1"), "*2\r\n$1\r\nX\r\n$1\r\nb\r\n");
    assert_eq!(t.cmd("LTRIM l 5 1"), "+OK\r\n");
    assert_eq!(t.cmd("LLEN l"), ":0\r\n");
    assert_eq!(t.cmd("LSET l 0 x"), "-ERR no such key\r\n", "an emptied list is deleted");
}

#[test]
fn lpos_options() {
    let mut t = TestServer::new();
    t.cmd("RPUSH p a b a c a");
    assert_eq!(t.cmd("LPOS p a RANK 2"), ":2\r\n");
    assert_eq!(t.cmd("LPOS p a RANK -1 COUNT 2"), "*2\r\n:4\r\n:2\r\n");
    assert_eq!(t.cmd("LPOS p a COUNT 0 MAXLEN 3"), "*2\r\n:0\r\n:2\r\n");
    assert_eq!(t.cmd("LPOS p a RANK -9223372036854775808 COUNT 2"), "*3\r\n:4\r\n:2\r\n:0\r\n");
    assert!(t.cmd("LPOS p a RANK 0").starts_with("-ERR RANK can't be zero: use 1 to start"));
    assert_eq!(t.cmd("LPOS p a COUNT -1"), "-ERR COUNT can't be negative\r\n");
    assert_eq!(t.cmd("LPOS p a MAXLEN x"), "-ERR MAXLEN can't be negative\r\n");
    assert_eq!(t.cmd("LPOS p a COUNT"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("LPOS none a"), "$-1\r\n");
    assert_eq!(t.cmd("LPOS none a COUNT 1"), "*0\r\n");
}

#[test]
fn pops_and_nulls_in_both_protocols() {
    let mut t = TestServer::new();
    t.cmd("RPUSH l a b c");
    assert_eq!(t.cmd("LPOP l -1"), "-ERR value is out of range, must be positive\r\n");
    assert_eq!(t.cmd("LPOP l 0"), "*0\r\n");
    assert_eq!(t.cmd("RPOP l 2"), "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    assert_eq!(t.cmd("LPOP l"), "$1\r\na\r\n");
    assert_eq!(t.cmd("LPOP l"), "$-1\r\n");
    assert_eq!(t.cmd("LPOP l 0"), "*-1\r\n");
    assert_eq!(t.cmd("LMPOP 1 l LEFT"), "*-1\r\n");
    assert_eq!(t.cmd("LMOVE l x LEFT LEFT"), "$-1\r\n");
    t.client.proto = Proto::Resp3;
    assert_eq!(t.cmd("LPOP l"), "_\r\n");
    assert_eq!(t.cmd("LPOP l 2"), "_\r\n");
    assert_eq!(t.cmd("LMPOP 1 l LEFT"), "_\r\n");
    assert_eq!(t.cmd("LPOS l a"), "_\r\n");
}

#[test]
fn moves_and_mpop() {
    let mut t = TestServer::new();
    t.cmd("RPUSH src 1 2 3");
    assert_eq!(t.cmd("LMOVE src dst LEFT RIGHT"), "$1\r\n1\r\n");
    assert_eq!(t.cmd("RPOPLPUSH src dst"), "$1\r\n3\r\n");
    assert_eq!(t.cmd("LMOVE src src LEFT RIGHT"), "$1\r\n2\r\n", "a one-element rotation keeps the key");
    assert_eq!(t.cmd("LLEN src"), ":1\r\n");
    t.cmd("SET s x");
    assert_eq!(
        t.cmd("LMOVE src s LEFT LEFT"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(t.cmd("LLEN src"), ":1\r\n", "nothing moves when the destination is wrong");
    assert_eq!(t.cmd("LMPOP 2 none dst RIGHT COUNT 9"), "*2\r\n$3\r\ndst\r\n*2\r\n$1\r\n1\r\n$1\r\n3\r\n");
    assert_eq!(t.cmd("LMPOP 0 dst LEFT"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(t.cmd("LMPOP 2 dst LEFT"), "-ERR syntax error\r\n");
    assert_eq!(t.cmd("LMPOP 1 dst LEFT COUNT 0"), "-ERR count should be greater than 0\r\n");
    assert_eq!(t.cmd("LMPOP 1 dst LEFT COUNT 1 COUNT 1"), "-ERR syntax error\r\n");
}

#[test]
fn timeouts_parse_like_redis() {
    let ms = |s: &str| parse_timeout(s.as_bytes());
    assert_eq!(ms("0"), Ok(None));
    assert_eq!(ms("-0.0001"), Ok(None), "rounds up to -0: forever");
    assert_eq!(ms("-0.001"), Ok(None), "a long double rounds it up to -0 too");
    assert_eq!(ms("1e-5"), Ok(Some(Duration::from_millis(1))));
    assert_eq!(ms("1e-400"), Ok(Some(Duration::from_millis(1))));
    assert_eq!(ms("0x10"), Ok(Some(Duration::from_secs(16))));
    assert_eq!(ms("1.5"), Ok(Some(Duration::from_millis(1500))));
    for neg in ["-1", "-0.002", "inf", "-inf", "infinity", "1e400", "9223372036854775807"] {
        assert_eq!(ms(neg), Err(CmdError::TimeoutNegative), "{neg}");
    }
    for bad in ["abc", "nan", " 1", "1 ", "1e5000", "0x", ".", "1e", ""] {
        assert_eq!(ms(bad), Err(CmdError::TimeoutNotFloat), "{bad}");
    }
}

#[test]
fn blocking_commands_answer_at_once_when_they_can() {
    let mut t = TestServer::new();
    t.cmd("RPUSH b x y z");
    assert_eq!(t.cmd("BLPOP none b 0"), "*2\r\n$1\r\nb\r\n$1\r\nx\r\n");
    assert_eq!(t.cmd("BRPOP b 0"), "*2\r\n$1\r\nb\r\n$1\r\nz\r\n");
    assert_eq!(t.cmd("BLMOVE b d LEFT LEFT 0"), "$1\r\ny\r\n");
    assert_eq!(t.cmd("BLMPOP 0 1 d LEFT COUNT 3"), "*2\r\n$1\r\nd\r\n*1\r\n$1\r\ny\r\n");
    t.cmd("SET s x");
    assert_eq!(t.cmd("BLPOP none s 0"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(t.cmd("BLPOP none -1"), "-ERR timeout is negative\r\n");
    assert_eq!(t.cmd("BLMPOP x 0 l LEFT"), "-ERR numkeys should be greater than 0\r\n");
}

#[test]
fn inside_exec_they_never_block() {
    let t = TestServer::new();
    assert_eq!(run_as(&t, Mode::Exec, "BLPOP none 0").0, "*-1\r\n");
    assert_eq!(run_as(&t, Mode::Exec, "BRPOP none 0").0, "*-1\r\n");
    assert_eq!(run_as(&t, Mode::Exec, "BLMPOP 0 1 none LEFT").0, "*-1\r\n");
    assert_eq!(run_as(&t, Mode::Exec, "BLMOVE none d LEFT LEFT 0").0, "$-1\r\n");
    assert_eq!(run_as(&t, Mode::Exec, "BRPOPLPUSH none d 0").0, "$-1\r\n");
    assert_eq!(t.shared.store.lock().blocked_clients(), 0);
}

#[test]
fn waiters_are_served_in_order_and_each_element_once() {
    let mut t = TestServer::new();
    let mut a = block(&t, "BLPOP k 0");
    let mut b = block(&t, "BRPOP other k 0");
    let mut c = block(&t, "BLPOP k 0");
    assert_eq!(t.cmd("RPUSH k 1 2"), ":2\r\n");
    assert_eq!(served(&mut a).as_deref(), Some("*2\r\n$1\r\nk\r\n$1\r\n1\r\n"));
    assert_eq!(served(&mut b).as_deref(), Some("*2\r\n$1\r\nk\r\n$1\r\n2\r\n"));
    assert_eq!(served(&mut c), None, "nothing left for the third");
    assert_eq!(t.cmd("LLEN k"), ":0\r\n", "served elements are gone");
    assert_eq!(t.shared.store.lock().blocked_clients(), 1);
    t.cmd("LPUSH k 3");
    assert_eq!(served(&mut c).as_deref(), Some("*2\r\n$1\r\nk\r\n$1\r\n3\r\n"));
    assert_eq!(t.shared.store.lock().blocked_clients(), 0);
}

#[test]
fn blmove_chains_wake_the_next_waiter() {
    let mut t = TestServer::new();
    let mut a = block(&t, "BLMOVE a b LEFT RIGHT 0");
    let mut b = block(&t, "BRPOPLPUSH b c 0");
    let mut c = block(&t, "BLMPOP 0 1 c LEFT COUNT 5");
    assert_eq!(t.cmd("RPUSH a x"), ":1\r\n");
    assert_eq!(served(&mut a).as_deref(), Some("$1\r\nx\r\n"));
    assert_eq!(served(&mut b).as_deref(), Some("$1\r\nx\r\n"));
    assert_eq!(served(&mut c).as_deref(), Some("*2\r\n$1\r\nc\r\n*1\r\n$1\r\nx\r\n"));
    assert_eq!(t.cmd("LLEN a"), ":0\r\n");
    assert_eq!(t.cmd("LLEN b"), ":0\r\n");
    assert_eq!(t.cmd("LLEN c"), ":0\r\n");
}

#[test]
fn waiters_stay_blocked_on_other_types_and_gone_clients_take_nothing() {
    let mut t = TestServer::new();
    let mut a = block(&t, "BLPOP k k2 0");
    t.cmd("SET k str");
    assert_eq!(served(&mut a), None, "a string is not served");
    t.cmd("RPUSH k2 v");
    assert_eq!(served(&mut a).as_deref(), Some("*2\r\n$2\r\nk2\r\n$1\r\nv\r\n"), "served from the ready key");
    drop(block(&t, "BLPOP q 0"));
    let mut live = block(&t, "BLPOP q 0");
    t.cmd("RPUSH q v");
    assert_eq!(served(&mut live).as_deref(), Some("*2\r\n$1\r\nq\r\n$1\r\nv\r\n"));
}

#[test]
fn blmove_into_a_wrong_type_wakes_with_an_error() {
    let mut t = TestServer::new();
    t.cmd("SET s x");
    let mut a = block(&t, "BLMOVE src s LEFT LEFT 0");
    t.cmd("RPUSH src v");
    assert_eq!(
        served(&mut a).as_deref(),
        Some("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
    );
    assert_eq!(t.cmd("LLEN src"), ":1\r\n");
}

#[test]
fn lmove_into_a_waited_key_wakes_its_waiter() {
    let mut t = TestServer::new();
    t.cmd("RPUSH src v");
    let mut a = block(&t, "BLPOP dst 0");
    assert_eq!(t.cmd("LMOVE src dst LEFT LEFT"), "$1\r\nv\r\n");
    assert_eq!(served(&mut a).as_deref(), Some("*2\r\n$3\r\ndst\r\n$1\r\nv\r\n"));
    assert_eq!(t.cmd("LLEN dst"), ":0\r\n");
    assert_eq!(t.cmd("LLEN src"), ":0\r\n");
}

#[test]
fn lrem_from_the_tail_removes_the_last_matches() {
    let mut t = TestServer::new();
    t.cmd("RPUSH r a x a y a z a");
    assert_eq!(t.cmd("LREM r -3 a"), ":3\r\n");
    assert_eq!(t.cmd("LRANGE r 0 -1"), "*4\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n");
    assert_eq!(t.cmd("LREM r -9 a"), ":1\r\n");
    assert_eq!(t.cmd("LREM r -9 nope"), ":0\r\n");
}
