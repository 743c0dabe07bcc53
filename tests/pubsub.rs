//! Pub/sub, transactions across connections and the client limits
//! (`maxclients`, `timeout`, output and query buffer limits), with several
//! real connections; where Redis's bytes are deterministic they are
//! compared with a real `redis-server` doing the same thing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use slotway_testkit::{require_tool, run_redis_py, RawClient, Server};

/// Reads `n` replies and returns their bytes, concatenated.
fn read_n(c: &mut RawClient, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.extend(c.read_reply().expect("reply"));
    }
    out
}

/// One pub/sub conversation between three clients; returns what each of
/// them received, so two servers can be compared.
fn pubsub_transcript(server: &Server) -> Vec<String> {
    let mut sub = server.client();
    let mut psub = server.client();
    let mut publisher = server.client();
    let mut t = Vec::new();
    sub.send(&["SUBSCRIBE", "news", "sport"]).unwrap();
    t.push(read_n(&mut sub, 2));
    psub.send(&["PSUBSCRIBE", "new?", "sp[o]rt", "x\\*"]).unwrap();
    t.push(read_n(&mut psub, 3));
    psub.send(&["SSUBSCRIBE", "news"]).unwrap();
    t.push(read_n(&mut psub, 1));
    for (ch, msg) in [("news", "one"), ("sport", "two"), ("x*", "three"), ("xy", "no"), ("news", "")] {
        t.push(publisher.cmd(&["PUBLISH", ch, msg]).unwrap());
    }
    t.push(publisher.cmd(&["SPUBLISH", "news", "shard"]).unwrap());
    t.push(publisher.cmd(&["PUBSUB", "NUMSUB", "news", "sport", "nope"]).unwrap());
    t.push(publisher.cmd(&["PUBSUB", "NUMPAT"]).unwrap());
    t.push(publisher.cmd(&["PUBSUB", "CHANNELS", "n*"]).unwrap());
    t.push(publisher.cmd(&["PUBSUB", "SHARDCHANNELS"]).unwrap());
    t.push(publisher.cmd(&["PUBSUB", "SHARDNUMSUB", "news"]).unwrap());
    // Messages come in publish order, before the replies to later commands.
    t.push(read_n(&mut sub, 3));
    t.push(sub.cmd(&["PING"]).unwrap());
    t.push(sub.cmd(&["GET", "x"]).unwrap());
    sub.send(&["UNSUBSCRIBE", "news", "nope"]).unwrap();
    t.push(read_n(&mut sub, 2));
    t.push(read_n(&mut psub, 5));
    t.push(publisher.cmd(&["PUBLISH", "news", "after"]).unwrap());
    t.push(read_n(&mut psub, 1));
    psub.send(&["PUNSUBSCRIBE"]).unwrap();
    t.push(read_n(&mut psub, 3));
    t.push(psub.cmd(&["PING", "still"]).unwrap());
    t.push(psub.cmd(&["SUNSUBSCRIBE"]).unwrap());
    t.push(psub.cmd(&["PING", "free"]).unwrap());
    t.push(sub.cmd(&["UNSUBSCRIBE"]).unwrap());
    t.push(sub.cmd(&["UNSUBSCRIBE"]).unwrap());
    t.push(sub.cmd(&["GET", "x"]).unwrap());
    t.into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect()
}

#[test]
fn messages_are_byte_identical_to_redis() {
    require_tool!("redis-server");
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    let want = pubsub_transcript(&redis);
    let got = pubsub_transcript(&shard);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, g, "step {i}");
    }
    assert_eq!(want.len(), got.len());
}

/// RESP3 subscribers get `>` push frames and may run any command; a
/// client's own subscription sees its PUBLISH before the PUBLISH reply.
fn resp3_transcript(server: &Server) -> Option<Vec<String>> {
    let mut c = server.client();
    let hello = c.cmd(&["HELLO", "3"]).unwrap();
    if hello.first() != Some(&b'%') {
        return None;
    }
    let mut other = server.client();
    let mut t = Vec::new();
    t.push(c.cmd(&["UNSUBSCRIBE"]).unwrap());
    t.push(c.cmd(&["SUBSCRIBE", "a"]).unwrap());
    t.push(c.cmd(&["GET", "a"]).unwrap());
    c.send(&["PUBLISH", "a", "self"]).unwrap();
    t.push(read_n(&mut c, 2));
    t.push(other.cmd(&["PUBLISH", "a", "other"]).unwrap());
    t.push(read_n(&mut c, 1));
    t.push(c.cmd(&["PING"]).unwrap());
    c.send(&["MULTI"]).unwrap();
    c.send(&["PUBLISH", "a", "in-exec"]).unwrap();
    c.send(&["EXEC"]).unwrap();
    t.push(read_n(&mut c, 3));
    Some(t.into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect())
}

#[test]
fn resp3_push_messages() {
    require_tool!("redis-server");
    let shard = Server::shard(&[]);
    let Some(got) = resp3_transcript(&shard) else {
        eprintln!("skipping: HELLO 3 is not served by this build");
        return;
    };
    let redis = Server::redis(&[]);
    assert_eq!(resp3_transcript(&redis).expect("redis speaks RESP3"), got);
}

#[test]
fn message_order_is_kept_under_load() {
    let shard = Server::shard(&[]);
    let mut sub = shard.client();
    sub.send(&["SUBSCRIBE", "q"]).unwrap();
    read_n(&mut sub, 1);
    let mut publisher = shard.client();
    for i in 0..5000 {
        publisher.send(&["PUBLISH", "q", &i.to_string()]).unwrap();
    }
    for _ in 0..5000 {
        assert_eq!(publisher.read_reply().unwrap(), b":1\r\n");
    }
    for i in 0..5000 {
        let want = format!("*3\r\n$7\r\nmessage\r\n$1\r\nq\r\n${}\r\n{}\r\n", i.to_string().len(), i);
        assert_eq!(String::from_utf8_lossy(&sub.read_reply().unwrap()), want);
    }
}

/// WATCH from one connection, writes from another; returns the EXEC replies.
fn watch_transcript(server: &Server) -> Vec<String> {
    let mut a = server.client();
    let mut b = server.client();
    let mut t = Vec::new();
    let exec = exec_ping;
    a.cmd(&["WATCH", "k"]).unwrap();
    b.cmd(&["SET", "k", "v"]).unwrap();
    t.push(exec(&mut a));
    a.cmd(&["WATCH", "k"]).unwrap();
    b.cmd(&["GET", "k"]).unwrap();
    t.push(exec(&mut a));
    a.cmd(&["WATCH", "k"]).unwrap();
    b.cmd(&["DEL", "k"]).unwrap();
    t.push(exec(&mut a));
    // Another database's key of the same name is another key.
    a.cmd(&["WATCH", "k"]).unwrap();
    b.cmd(&["SELECT", "1"]).unwrap();
    b.cmd(&["SET", "k", "v"]).unwrap();
    t.push(exec(&mut a));
    t
}

fn exec_ping(a: &mut RawClient) -> String {
    a.cmd(&["MULTI"]).unwrap();
    a.cmd(&["PING"]).unwrap();
    String::from_utf8_lossy(&a.cmd(&["EXEC"]).unwrap()).into_owned()
}

/// WATCH and key expiry; returns the EXEC replies.
fn watch_expiry_transcript(server: &Server) -> Vec<String> {
    let mut a = server.client();
    let mut b = server.client();
    let mut t = Vec::new();
    // The key expires while watched: the active expiry deleting it aborts.
    b.cmd(&["SET", "e", "v", "PX", "100"]).unwrap();
    a.cmd(&["WATCH", "e"]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    t.push(exec_ping(&mut a));
    // Already expired when WATCHed: its deletion is no change.
    b.cmd(&["SET", "e", "v", "PX", "1"]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    a.cmd(&["WATCH", "e"]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    t.push(exec_ping(&mut a));
    t
}

#[test]
fn watch_is_aborted_by_expiry() {
    require_tool!("redis-server");
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    let want = watch_expiry_transcript(&redis);
    assert_eq!(want, ["*-1\r\n", "*1\r\n+PONG\r\n"]);
    assert_eq!(watch_expiry_transcript(&shard), want);
}

#[test]
fn watch_is_aborted_by_other_connections() {
    require_tool!("redis-server");
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    let want = watch_transcript(&redis);
    assert_eq!(want, ["*-1\r\n", "*1\r\n+PONG\r\n", "*-1\r\n", "*1\r\n+PONG\r\n"]);
    assert_eq!(watch_transcript(&shard), want);
}

#[test]
fn subscriber_that_never_reads_is_disconnected() {
    let shard = Server::shard(&["--client-output-buffer-limit", "pubsub 1mb 512kb 1"]);
    let mut sub = RawClient::connect(shard.port).unwrap();
    sub.send(&["SUBSCRIBE", "firehose"]).unwrap();
    // Never read again.
    let mut publisher = shard.client();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(publisher.cmd_str(&["PUBLISH", "firehose", "x"]), ":1\r\n");
    let payload = vec![b'p'; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut published = 0usize;
    loop {
        let r = publisher.cmd(&[&b"PUBLISH"[..], b"firehose", &payload]).expect("publisher keeps working");
        if r == b":0\r\n" {
            break;
        }
        assert_eq!(r, b":1\r\n");
        published += payload.len();
        assert!(Instant::now() < deadline, "subscriber still connected after {published} bytes");
    }
    // Kernel socket buffers take some; the server itself held at most the
    // limit for it.
    assert!(published < 64 << 20, "{published} bytes went out before the disconnect");
    assert_eq!(publisher.cmd_str(&["PUBSUB", "NUMSUB", "firehose"]), "*2\r\n$8\r\nfirehose\r\n:0\r\n");
    assert_eq!(publisher.cmd_str(&["PING"]), "+PONG\r\n");
}

#[test]
fn soft_limit_disconnects_after_its_seconds() {
    let shard = Server::shard(&["--client-output-buffer-limit", "pubsub", "0", "256kb", "1"]);
    let mut sub = RawClient::connect(shard.port).unwrap();
    sub.send(&["SUBSCRIBE", "c"]).unwrap();
    let mut publisher = shard.client();
    std::thread::sleep(Duration::from_millis(100));
    let payload = vec![b'p'; 64 * 1024];
    let started = Instant::now();
    loop {
        let r = publisher.cmd(&[&b"PUBLISH"[..], b"c", &payload]).unwrap();
        if r == b":0\r\n" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never disconnected");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.elapsed() > Duration::from_secs(1), "disconnected before the soft limit's seconds");
}

/// Connects `n + 1` clients to a server with `maxclients n`; returns what
/// the last one received.
fn maxclients_refusal(server: &Server, n: usize) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(200));
    let mut held: Vec<RawClient> = (0..n).map(|_| server.client()).collect();
    for c in &mut held {
        assert_eq!(c.cmd_str(&["PING"]), "+PONG\r\n");
    }
    let mut extra = server.client();
    let got = extra.read_to_close();
    drop(held);
    got
}

#[test]
fn maxclients_refuses_extra_connections() {
    require_tool!("redis-server");
    let redis = Server::redis(&["--maxclients", "3"]);
    let shard = Server::shard(&["--maxclients", "3"]);
    let want = maxclients_refusal(&redis, 3);
    assert_eq!(String::from_utf8_lossy(&want), "-ERR max number of clients reached\r\n");
    assert_eq!(String::from_utf8_lossy(&maxclients_refusal(&shard, 3)), String::from_utf8_lossy(&want));
    // A freed place can be taken again.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(shard.client().cmd_str(&["PING"]), "+PONG\r\n");
}

#[test]
fn idle_clients_time_out_but_subscribers_do_not() {
    let shard = Server::shard(&["--timeout", "1"]);
    let mut idle = shard.client();
    let mut sub = shard.client();
    sub.send(&["SUBSCRIBE", "c"]).unwrap();
    read_n(&mut sub, 1);
    let started = Instant::now();
    assert_eq!(idle.read_to_close(), b"");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
    std::thread::sleep(Duration::from_millis(1000));
    let mut publisher = shard.client();
    assert_eq!(publisher.cmd_str(&["PUBLISH", "c", "m"]), ":1\r\n");
    assert_eq!(sub.read_reply().unwrap(), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n");
}

/// Sends an endless bulk; returns whether the server hung up and what it
/// sent before that.
fn endless_bulk(port: u16) -> (bool, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"*2\r\n$3\r\nSET\r\n$400000000\r\n").unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = false;
    // 8 MB against a 1 MB limit.
    for _ in 0..128 {
        if s.write_all(&chunk).is_err() {
            closed = true;
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => closed = true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed = true,
        Err(_) => {}
    }
    (closed, got)
}

#[test]
fn query_buffer_limit_closes_endless_bulk() {
    require_tool!("redis-server");
    let redis = Server::redis(&["--client-query-buffer-limit", "1mb"]);
    let shard = Server::shard(&["--client-query-buffer-limit", "1mb"]);
    let want = endless_bulk(redis.port);
    assert!(want.0, "redis-server kept the connection");
    assert_eq!(endless_bulk(shard.port), want);
    assert_eq!(shard.client().cmd_str(&["PING"]), "+PONG\r\n");
}

#[test]
fn redis_py_pubsub_and_transactions() {
    require_tool!("python3");
    let shard = Server::shard(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/pubsub_client.py");
    run_redis_py(&[script], shard.port, "redis-py script");
}
