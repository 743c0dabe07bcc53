//! Blocking list commands across real connections: a waiter served by
//! another client's push, timeouts, first-come-first-served wake-ups,
//! BLMOVE chains, and a waiter that hangs up. Every scenario runs against
//! slotway-shard and, when it is installed, against redis-server, and the
//! replies must be the same bytes.
//!
//! Every wait is bounded: replies are read with the client's 10 s read
//! timeout, and "the server has parked N clients" is polled with a
//! deadline (through INFO where the server has it, otherwise a pause).

use std::time::{Duration, Instant};

use slotway_testkit::{have_tool, RawClient, Server};

type Replies = Vec<String>;

fn text(reply: Vec<u8>) -> String {
    String::from_utf8_lossy(&reply).into_owned()
}

fn read(c: &mut RawClient) -> String {
    text(c.read_reply().expect("reply within the read timeout"))
}

/// Waits until the server reports `n` blocked clients (INFO clients), or,
/// on a server whose INFO does not say, gives it a moment to park them.
fn settle(probe: &mut RawClient, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = format!("blocked_clients:{n}\r\n");
    loop {
        let info = probe.cmd_str(&["INFO", "clients"]);
        if !info.starts_with('$') || !info.contains("blocked_clients:") {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        if info.contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never reached {n} blocked clients:\n{info}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `scenario` against the shard and (if installed) redis-server and
/// checks both gave the same replies; returns the shard's.
fn both(scenario: fn(u16) -> Replies) -> Replies {
    let shard = Server::shard(&[]);
    let ours = scenario(shard.port);
    if have_tool("redis-server") {
        let redis = Server::redis(&[]);
        let theirs = scenario(redis.port);
        assert_eq!(ours, theirs, "slotway-shard and redis-server differ");
    } else {
        eprintln!("redis-server not installed: checking slotway-shard alone");
    }
    ours
}

fn served_by_push(port: u16) -> Replies {
    let mut waiter = RawClient::connect(port).expect("connect");
    let mut pusher = RawClient::connect(port).expect("connect");
    waiter.send(&["BLPOP", "none", "k", "0"]).expect("send");
    settle(&mut pusher, 1);
    // Sent while blocked: must run after the blocked command, not instead.
    waiter.send(&["PING"]).expect("send");
    let mut r = vec![pusher.cmd_str(&["RPUSH", "k", "a", "b"])];
    r.push(read(&mut waiter));
    r.push(read(&mut waiter));
    r.push(pusher.cmd_str(&["LRANGE", "k", "0", "-1"]));
    r
}

#[test]
fn blocked_client_is_served_by_another_clients_push() {
    let r = both(served_by_push);
    assert_eq!(r, [":2\r\n", "*2\r\n$1\r\nk\r\n$1\r\na\r\n", "+PONG\r\n", "*1\r\n$1\r\nb\r\n"]);
}

fn timeouts(port: u16) -> Replies {
    let mut c = RawClient::connect(port).expect("connect");
    let mut r = Vec::new();
    for cmd in [
        &["BLPOP", "none", "0.2"][..],
        &["BRPOP", "a", "b", "0.05"],
        &["BLMOVE", "none", "dst", "LEFT", "RIGHT", "0.05"],
        &["BRPOPLPUSH", "none", "dst", "0.05"],
        &["BLMPOP", "0.05", "2", "a", "b", "LEFT", "COUNT", "2"],
    ] {
        let started = Instant::now();
        r.push(c.cmd_str(cmd));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(40), "{cmd:?} answered after {waited:?}");
        assert!(waited < Duration::from_secs(5), "{cmd:?} answered after {waited:?}");
    }
    r.push(c.cmd_str(&["LLEN", "dst"]));
    r
}

#[test]
fn timeout_replies_null_array() {
    let r = both(timeouts);
    assert!(r[..5].iter().all(|x| x == "*-1\r\n"), "{r:?}");
}

fn fifo(port: u16) -> Replies {
    let mut pusher = RawClient::connect(port).expect("connect");
    let mut waiters: Vec<RawClient> = (0..3).map(|_| RawClient::connect(port).expect("connect")).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        // Each one blocks on `k` among different other keys, so only the
        // order of arrival decides who is served first.
        let other = format!("other{i}");
        let cmd: [&str; 4] = if i == 1 { ["BRPOP", "k", &other, "0"] } else { ["BLPOP", &other, "k", "0"] };
        w.send(&cmd).expect("send");
        settle(&mut pusher, i + 1);
    }
    let mut r = vec![pusher.cmd_str(&["RPUSH", "k", "1"])];
    r.push(read(&mut waiters[0]));
    r.push(pusher.cmd_str(&["RPUSH", "k", "2", "3"]));
    r.push(read(&mut waiters[1]));
    r.push(read(&mut waiters[2]));
    r.push(pusher.cmd_str(&["LLEN", "k"]));
    r
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let r = both(fifo);
    assert_eq!(
        r,
        [
            ":1\r\n",
            "*2\r\n$1\r\nk\r\n$1\r\n1\r\n",
            ":2\r\n",
            // The second waiter is a BRPOP: it takes from the tail.
            "*2\r\n$1\r\nk\r\n$1\r\n3\r\n",
            "*2\r\n$1\r\nk\r\n$1\r\n2\r\n",
            ":0\r\n",
        ]
    );
}

fn chain(port: u16) -> Replies {
    let mut pusher = RawClient::connect(port).expect("connect");
    let mut a = RawClient::connect(port).expect("connect");
    let mut b = RawClient::connect(port).expect("connect");
    let mut c = RawClient::connect(port).expect("connect");
    a.send(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"]).expect("send");
    settle(&mut pusher, 1);
    b.send(&["BRPOPLPUSH", "b", "c", "0"]).expect("send");
    settle(&mut pusher, 2);
    c.send(&["BLMPOP", "0", "1", "c", "RIGHT", "COUNT", "3"]).expect("send");
    settle(&mut pusher, 3);
    let mut r = vec![pusher.cmd_str(&["RPUSH", "a", "x", "y"])];
    r.push(read(&mut a));
    r.push(read(&mut b));
    r.push(read(&mut c));
    for key in ["a", "b", "c"] {
        r.push(pusher.cmd_str(&["LRANGE", key, "0", "-1"]));
    }
    r
}

#[test]
fn blmove_chains_wake_clients_blocked_on_the_destination() {
    let r = both(chain);
    assert_eq!(
        r,
        [
            ":2\r\n",
            "$1\r\nx\r\n",
            "$1\r\nx\r\n",
            "*2\r\n$1\r\nc\r\n*1\r\n$1\r\nx\r\n",
            "*1\r\n$1\r\ny\r\n",
            "*0\r\n",
            "*0\r\n",
        ]
    );
}

fn hang_up(port: u16) -> Replies {
    let mut pusher = RawClient::connect(port).expect("connect");
    let mut gone = RawClient::connect(port).expect("connect");
    gone.send(&["BLPOP", "k", "0"]).expect("send");
    settle(&mut pusher, 1);
    drop(gone);
    settle(&mut pusher, 0);
    let mut live = RawClient::connect(port).expect("connect");
    live.send(&["BRPOP", "k", "0"]).expect("send");
    settle(&mut pusher, 1);
    let mut r = vec![pusher.cmd_str(&["RPUSH", "k", "only"])];
    r.push(read(&mut live));
    r.push(pusher.cmd_str(&["LLEN", "k"]));
    r
}

#[test]
fn a_waiter_that_hangs_up_takes_nothing() {
    let r = both(hang_up);
    assert_eq!(r, [":1\r\n", "*2\r\n$1\r\nk\r\n$4\r\nonly\r\n", ":0\r\n"]);
}

fn pushes_seen_only_by_their_waiter(port: u16) -> Replies {
    let mut pusher = RawClient::connect(port).expect("connect");
    let mut waiter = RawClient::connect(port).expect("connect");
    waiter.send(&["BLPOP", "k", "0"]).expect("send");
    settle(&mut pusher, 1);
    // Pipelined: the LLEN right behind the push must not see the element
    // the waiter is owed.
    pusher.send(&["LPUSH", "k", "v"]).expect("send");
    pusher.send(&["LLEN", "k"]).expect("send");
    let mut r = vec![read(&mut pusher), read(&mut pusher)];
    r.push(read(&mut waiter));
    r
}

#[test]
fn an_element_served_to_a_waiter_is_not_seen_by_others() {
    let r = both(pushes_seen_only_by_their_waiter);
    assert_eq!(r, [":1\r\n", ":0\r\n", "*2\r\n$1\r\nk\r\n$1\r\nv\r\n"]);
}

fn served_from_the_key_that_got_data(port: u16) -> Replies {
    let mut other = RawClient::connect(port).expect("connect");
    let mut a = RawClient::connect(port).expect("connect");
    let mut b = RawClient::connect(port).expect("connect");
    a.send(&["BLPOP", "w1", "w2", "0"]).expect("send");
    settle(&mut other, 1);
    // Another type on a waited-for key wakes nobody, and does not make the
    // waiter fail when a later key gets data.
    let mut r = vec![other.cmd_str(&["SET", "w1", "x"])];
    r.push(other.cmd_str(&["RPUSH", "w2", "v"]));
    r.push(read(&mut a));
    // BLMOVE does not look at its destination until it is woken; then a
    // destination of another type is its error, and nothing moves.
    b.send(&["BLMOVE", "src", "w1", "LEFT", "LEFT", "0"]).expect("send");
    settle(&mut other, 1);
    r.push(other.cmd_str(&["RPUSH", "src", "e"]));
    r.push(read(&mut b));
    r.push(other.cmd_str(&["LRANGE", "src", "0", "-1"]));
    r
}

#[test]
fn waiters_are_served_from_the_key_that_got_data() {
    let r = both(served_from_the_key_that_got_data);
    assert_eq!(
        r,
        [
            "+OK\r\n",
            ":1\r\n",
            "*2\r\n$2\r\nw2\r\n$1\r\nv\r\n",
            ":1\r\n",
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            "*1\r\n$1\r\ne\r\n",
        ]
    );
}

fn tiny_negative_timeouts_wait_forever(port: u16) -> Replies {
    let mut pusher = RawClient::connect(port).expect("connect");
    let mut r = Vec::new();
    for t in ["-0.0005", "-0.001"] {
        let mut waiter = RawClient::connect(port).expect("connect");
        waiter.send(&["BLPOP", "k", t]).expect("send");
        settle(&mut pusher, 1);
        // Still blocked well after any real timeout would have passed.
        std::thread::sleep(Duration::from_millis(50));
        r.push(pusher.cmd_str(&["RPUSH", "k", t]));
        r.push(read(&mut waiter));
    }
    r
}

#[test]
fn timeouts_that_round_to_zero_wait_forever() {
    let r = both(tiny_negative_timeouts_wait_forever);
    assert_eq!(r[1], "*2\r\n$1\r\nk\r\n$7\r\n-0.0005\r\n");
    assert_eq!(r[3], "*2\r\n$1\r\nk\r\n$6\r\n-0.001\r\n");
}
