//! Replication between real processes: slotway-shard replicas of
//! slotway-shard and of redis-server, a redis-server replica of
//! slotway-shard, partial and full resyncs, promotion, the read-only rule,
//! WAIT, INFO replication against a real Redis pair, SYNC for
//! `redis-cli --rdb`, and `replica-ack-writes` surviving a `kill -9`.

use std::collections::BTreeMap;
use std::time::Duration;

use slotway_testkit::{require_tool, wait_until, RawClient, Reply, Server};

#[path = "replication/handover.rs"]
mod handover;

const SYNC_WAIT: Duration = Duration::from_secs(20);

fn text(c: &mut RawClient, args: &[&str]) -> String {
    c.cmd_str(args)
}

/// `INFO <section>` as (field, value) pairs in order.
fn info(port: u16, section: &str) -> Vec<(String, String)> {
    let mut c = RawClient::connect(port).expect("connect");
    let reply = c.call(&["INFO", section]).expect("INFO");
    let body = String::from_utf8_lossy(reply.bulk().expect("INFO is a bulk string")).into_owned();
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_string(), v.trim().to_string())))
        .collect()
}

fn field(port: u16, name: &str) -> String {
    info(port, "replication").into_iter().find(|(k, _)| k == name).map(|(_, v)| v).unwrap_or_default()
}

fn stat(port: u16, name: &str) -> i64 {
    info(port, "stats").into_iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).unwrap_or(-1)
}

fn replicaof(port: u16, master: u16) {
    let mut c = RawClient::connect(port).expect("connect");
    let r = text(&mut c, &["REPLICAOF", "127.0.0.1", &master.to_string()]);
    assert!(r.starts_with("+OK"), "{r}");
}

/// The replica's link is up and it has applied everything the master has.
fn in_sync(master: u16, replica: u16) -> bool {
    field(replica, "master_link_status") == "up" && {
        let m = field(master, "master_repl_offset");
        !m.is_empty() && m == field(replica, "master_repl_offset")
    }
}

fn wait_in_sync(master: u16, replica: u16) {
    wait_until!(SYNC_WAIT, in_sync(master, replica), "replica {replica} never caught up with {master}");
}

/// Every key of databases 0 and 1, read by type into comparable text.
fn contents(port: u16) -> BTreeMap<String, String> {
    let mut c = RawClient::connect(port).expect("connect");
    let mut all = BTreeMap::new();
    for db in ["0", "1"] {
        assert!(c.cmd_str(&["SELECT", db]).starts_with("+OK"));
        let Ok(Reply::Array(Some(keys))) = c.call(&["KEYS", "*"]) else { panic!("KEYS") };
        for k in keys {
            let key = String::from_utf8_lossy(k.bulk().expect("key")).into_owned();
            let ty = c.call(&["TYPE", &key]).expect("TYPE");
            let ty = match ty {
                Reply::Simple(t) => t,
                other => panic!("TYPE {key}: {other:?}"),
            };
            let mut v = match ty.as_str() {
                "string" => vec![c.cmd_str(&["GET", &key])],
                "list" => vec![c.cmd_str(&["LRANGE", &key, "0", "-1"])],
                "zset" => vec![c.cmd_str(&["ZRANGE", &key, "0", "-1", "WITHSCORES"])],
                "set" => sorted_elements(c.call(&["SMEMBERS", &key]).expect("SMEMBERS")),
                "hash" => sorted_elements(c.call(&["HGETALL", &key]).expect("HGETALL")),
                other => vec![other.to_string()],
            };
            let ttl = c.call(&["TTL", &key]).expect("TTL");
            v.push(if ttl == Reply::Int(-1) { "persistent".into() } else { "volatile".into() });
            all.insert(format!("{db}/{ty}/{key}"), v.join("|"));
        }
    }
    all
}

/// Sets and hashes come back in any order; pairs of a hash stay pairs.
fn sorted_elements(r: Reply) -> Vec<String> {
    let Reply::Array(Some(items)) = r else { panic!("not an array: {r:?}") };
    let mut v: Vec<String> = items.iter().map(|i| String::from_utf8_lossy(i.bulk().unwrap_or(b"")).into()).collect();
    v.sort();
    v
}

/// A bounded mixed write load: strings, counters, lists, sets, hashes,
/// sorted sets, deletes, expiries, another database, transactions.
fn write_load(port: u16, rounds: usize, tag: &str) {
    let mut c = RawClient::connect(port).expect("connect");
    for round in 0..rounds {
        let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut push = |args: &[&str]| cmds.push(args.iter().map(|a| a.as_bytes().to_vec()).collect());
        for i in 0..20 {
            let n = (round * 20 + i).to_string();
            let k = format!("{tag}:{}", (round * 7 + i) % 50);
            push(&["SET", &format!("{k}:s"), &n]);
            push(&["INCRBY", &format!("{tag}:ctr"), &n]);
            push(&["RPUSH", &format!("{k}:l"), &n]);
            push(&["SADD", &format!("{k}:set"), &n]);
            push(&["HSET", &format!("{k}:h"), &format!("f{}", i % 5), &n]);
            push(&["ZADD", &format!("{k}:z"), &n, &format!("m{}", i % 9)]);
            push(&["INCRBYFLOAT", &format!("{tag}:f"), "0.5"]);
            if i % 4 == 0 {
                push(&["LPOP", &format!("{k}:l")]);
                push(&["SPOP", &format!("{k}:set")]);
                push(&["EXPIRE", &format!("{k}:s"), "10000"]);
            }
            if i % 6 == 0 {
                push(&["DEL", &format!("{k}:h")]);
            }
        }
        push(&["SELECT", "1"]);
        push(&["SET", &format!("{tag}:db1:{round}"), "x"]);
        push(&["MULTI"]);
        push(&["INCR", &format!("{tag}:tx")]);
        push(&["LPUSH", &format!("{tag}:txl"), "y"]);
        push(&["EXEC"]);
        push(&["SELECT", "0"]);
        for r in c.pipeline(&cmds).expect("pipeline") {
            assert!(!r.starts_with(b"-"), "write failed: {}", String::from_utf8_lossy(&r));
        }
    }
}

fn assert_same(master: u16, replica: u16) {
    let (m, r) = (contents(master), contents(replica));
    assert!(!m.is_empty());
    let missing: Vec<_> = m.keys().filter(|k| r.get(*k) != m.get(*k)).take(5).collect();
    assert!(missing.is_empty() && m.len() == r.len(), "{} vs {} keys; differ: {missing:?}", m.len(), r.len());
}

#[test]
fn shard_replica_of_shard_converges_under_load() {
    let master = Server::shard(&[]);
    let replica = Server::shard(&[]);
    write_load(master.port, 5, "pre");
    let port = master.port;
    let load = std::thread::spawn(move || write_load(port, 40, "live"));
    // Attach while the load runs: the snapshot and the buffered stream
    // must meet exactly.
    replicaof(replica.port, master.port);
    load.join().expect("load");
    wait_in_sync(master.port, replica.port);
    assert_same(master.port, replica.port);
    let mut r = replica.client();
    assert_eq!(r.call(&["ROLE"]).unwrap().array().map(|a| a.len()), Some(5));
    let mut m = master.client();
    let Reply::Array(Some(role)) = m.call(&["ROLE"]).unwrap() else { panic!("ROLE") };
    assert_eq!(role[0], Reply::Bulk(Some(b"master".to_vec())));
    assert_eq!(role[2].array().map(|a| a.len()), Some(1));
}

#[test]
fn shard_replica_of_redis_converges() {
    require_tool!("redis-server");
    let master = Server::redis(&[]);
    let replica = Server::shard(&[]);
    write_load(master.port, 5, "pre");
    // Real Redis 7.0 sends the diskless `$EOF:` form to a replica that
    // says `capa eof`, as we do.
    replicaof(replica.port, master.port);
    write_load(master.port, 10, "live");
    wait_in_sync(master.port, replica.port);
    assert_same(master.port, replica.port);
}

#[test]
fn redis_replica_of_shard_converges() {
    require_tool!("redis-server");
    let master = Server::shard(&[]);
    let replica = Server::redis(&[]);
    write_load(master.port, 5, "pre");
    replicaof(replica.port, master.port);
    write_load(master.port, 10, "live");
    wait_in_sync(master.port, replica.port);
    assert_same(master.port, replica.port);
    // It reports its offset, so the master sees it online and acked.
    wait_until!(SYNC_WAIT, field(master.port, "slave0").contains("state=online"));
    // WAIT asks it with REPLCONF GETACK rather than waiting for its
    // once-a-second ACK.
    let mut m = master.client();
    m.cmd(&["SET", "waited", "1"]).unwrap();
    assert_eq!(text(&mut m, &["WAIT", "1", "5000"]), ":1\r\n");
}

#[test]
fn short_disconnect_continues_long_one_resyncs() {
    let master = Server::shard(&["--repl-backlog-size", "16kb"]);
    let replica = Server::shard(&[]);
    let parked = Server::shard(&[]);
    write_load(master.port, 2, "a");
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    assert_eq!((stat(master.port, "sync_full"), stat(master.port, "sync_partial_ok")), (1, 0));

    // Short: the link is killed, a few writes happen, the replica
    // reconnects and continues from the backlog.
    let mut r = replica.client();
    assert_eq!(text(&mut r, &["CLIENT", "KILL", "TYPE", "master"]), ":1\r\n");
    master.client().cmd(&["SET", "while-away", "1"]).unwrap();
    wait_in_sync(master.port, replica.port);
    assert_eq!((stat(master.port, "sync_full"), stat(master.port, "sync_partial_ok")), (1, 1));
    assert_eq!(text(&mut r, &["GET", "while-away"]), "$1\r\n1\r\n");

    // Long: the replica follows a quiet server for a while, the master
    // writes far more than its backlog holds, and the way back needs a
    // full resync.
    replicaof(replica.port, parked.port);
    wait_until!(SYNC_WAIT, field(replica.port, "master_link_status") == "up");
    write_load(master.port, 10, "b");
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    assert_eq!(stat(master.port, "sync_full"), 2);
    assert_same(master.port, replica.port);
}

#[test]
fn promoted_replica_lets_the_others_continue() {
    let master = Server::shard(&[]);
    let a = Server::shard(&[]);
    let b = Server::shard(&[]);
    write_load(master.port, 3, "x");
    replicaof(a.port, master.port);
    replicaof(b.port, master.port);
    wait_in_sync(master.port, a.port);
    wait_in_sync(master.port, b.port);
    let old_id = field(a.port, "master_replid");
    drop(master);

    let mut ca = a.client();
    assert_eq!(text(&mut ca, &["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    assert_eq!(field(a.port, "role"), "master");
    assert_eq!(field(a.port, "master_replid2"), old_id);
    let offset: i64 = field(a.port, "master_repl_offset").parse().unwrap();
    assert_eq!(field(a.port, "second_repl_offset"), (offset + 1).to_string());

    replicaof(b.port, a.port);
    wait_in_sync(a.port, b.port);
    assert_eq!((stat(a.port, "sync_full"), stat(a.port, "sync_partial_ok")), (0, 1));
    assert_eq!(field(b.port, "master_replid"), field(a.port, "master_replid"));
    ca.cmd(&["SET", "after-promotion", "yes"]).unwrap();
    wait_in_sync(a.port, b.port);
    assert_same(a.port, b.port);
}

#[test]
fn replica_is_read_only_and_expires_nothing_itself() {
    let master = Server::shard(&[]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    let mut m = master.client();
    m.cmd(&["SET", "k", "v"]).unwrap();
    m.cmd(&["SET", "brief", "v", "PX", "300"]).unwrap();
    wait_in_sync(master.port, replica.port);
    let mut r = replica.client();
    const READONLY: &str = "-READONLY You can't write against a read only replica.\r\n";
    assert_eq!(text(&mut r, &["SET", "k", "other"]), READONLY);
    assert_eq!(text(&mut r, &["FLUSHALL"]), READONLY);
    assert_eq!(text(&mut r, &["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(text(&mut r, &["MULTI"]), "+OK\r\n");
    assert_eq!(text(&mut r, &["DEL", "k"]), READONLY);
    assert!(text(&mut r, &["EXEC"]).starts_with("-EXECABORT"));
    // Replies as Redis's: REPLICAOF to the same master, a bad port.
    let again = text(&mut r, &["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    assert_eq!(again, "+OK Already connected to specified master\r\n");
    assert_eq!(text(&mut r, &["REPLICAOF", "127.0.0.1", "x"]), "-ERR Invalid master port\r\n");
    // A logically expired key reads as missing; it goes away on the
    // replica only when the master's DEL arrives.
    wait_until!(Duration::from_secs(5), text(&mut r, &["GET", "brief"]) == "$-1\r\n");
    wait_until!(SYNC_WAIT, text(&mut r, &["DBSIZE"]) == ":1\r\n");
}

#[test]
fn wait_counts_replicas_that_acknowledged() {
    let master = Server::shard(&[]);
    let a = Server::shard(&[]);
    let b = Server::shard(&[]);
    let mut m = master.client();
    assert_eq!(text(&mut m, &["WAIT", "0", "0"]), ":0\r\n");
    replicaof(a.port, master.port);
    replicaof(b.port, master.port);
    wait_in_sync(master.port, a.port);
    wait_in_sync(master.port, b.port);
    m.cmd(&["SET", "w", "1"]).unwrap();
    assert_eq!(text(&mut m, &["WAIT", "2", "5000"]), ":2\r\n");
    // More than exist: answers at the timeout with the ones that acked.
    assert_eq!(text(&mut m, &["WAIT", "3", "300"]), ":2\r\n");
    let mut r = a.client();
    assert!(text(&mut r, &["WAIT", "1", "0"]).starts_with("-ERR WAIT cannot be used with replica instances."));
    // min-replicas-to-write counts good replicas.
    assert_eq!(text(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "3"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["SET", "w", "2"]), "-NOREPLICAS Not enough good replicas to write.\r\n");
    assert_eq!(text(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "2"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["SET", "w", "2"]), "+OK\r\n");
}

/// The field names of INFO replication on a master with one replica and
/// on that replica, from a real Redis pair, must be ours too, in order.
#[test]
fn info_replication_fields_match_redis() {
    require_tool!("redis-server");
    let names = |port: u16| -> Vec<String> { info(port, "replication").into_iter().map(|(k, _)| k).collect() };
    let (rm, rr) = (Server::redis(&[]), Server::redis(&[]));
    replicaof(rr.port, rm.port);
    wait_in_sync(rm.port, rr.port);
    let (sm, sr) = (Server::shard(&[]), Server::shard(&[]));
    replicaof(sr.port, sm.port);
    wait_in_sync(sm.port, sr.port);
    assert_eq!(names(sm.port), names(rm.port));
    assert_eq!(names(sr.port), names(rr.port));
    let slave0 = field(sm.port, "slave0");
    assert!(slave0.starts_with("ip=127.0.0.1,port=") && slave0.contains(",state=online,offset="), "{slave0}");
    assert_eq!(field(sm.port, "connected_slaves"), "1");
    assert_eq!(field(sm.port, "repl_backlog_active"), "1");
    assert_eq!(field(sr.port, "master_port"), sm.port.to_string());
}

#[test]
fn sync_serves_redis_cli_rdb() {
    require_tool!("redis-cli");
    let master = Server::shard(&[]);
    write_load(master.port, 2, "r");
    let path = master.dir.join("backup.rdb");
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &master.port.to_string(), "--rdb"])
        .arg(&path)
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `redis-cli --cluster backup` sends an inline SYNC on a plain
    // connection and reads `$<len>` and the snapshot.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", master.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut c, b"SYNC\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        std::io::Read::read_exact(&mut c, &mut byte).expect("snapshot header");
        head.push(byte[0]);
        assert!(head.len() < 64, "no snapshot header: {head:?}");
    }
    let head = String::from_utf8_lossy(&head).trim_start_matches('\n').to_string();
    assert!(head.starts_with('$') && head.trim_end()[1..].parse::<usize>().is_ok(), "{head:?}");
    let rdb = std::fs::read(&path).expect("the rdb file");
    assert!(rdb.starts_with(b"REDIS0010"));
    if slotway_testkit::have_tool("redis-check-rdb") {
        let check = std::process::Command::new("redis-check-rdb").arg(&path).output().expect("redis-check-rdb");
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    }
}

#[test]
fn acknowledged_writes_survive_a_killed_master() {
    let mut master = Server::shard(&["--replica-ack-writes", "yes"]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    let mut m = master.client();
    let mut acked = 0;
    for i in 0..500 {
        let r = text(&mut m, &["SET", &format!("acked:{i}"), &i.to_string()]);
        assert_eq!(r, "+OK\r\n");
        acked += 1;
    }
    // kill -9 right after the last acknowledged write.
    master.child.kill().unwrap();
    let _ = master.child.wait();
    wait_until!(SYNC_WAIT, field(replica.port, "master_link_status") == "down");
    let mut r = replica.client();
    assert_eq!(text(&mut r, &["DBSIZE"]), format!(":{acked}\r\n"));
    assert_eq!(text(&mut r, &["GET", "acked:499"]), "$3\r\n499\r\n");
}

#[test]
fn ack_writes_without_replica_fail_after_the_timeout() {
    let master = Server::shard(&["--replica-ack-writes", "yes", "--replica-ack-timeout", "200"]);
    let mut m = master.client();
    let r = text(&mut m, &["SET", "lonely", "1"]);
    assert!(r.starts_with("-NOTREPLICATED"), "{r}");
    // Reads are not held.
    assert_eq!(text(&mut m, &["GET", "lonely"]), "$1\r\n1\r\n");
}

#[test]
fn chained_replica_and_replicaof_directive() {
    let master = Server::shard(&[]);
    let middle = Server::shard(&[]);
    write_load(master.port, 3, "c");
    replicaof(middle.port, master.port);
    wait_in_sync(master.port, middle.port);
    // The stream is left in database 1 when the last replica loads the
    // middle's snapshot: it must learn that from the snapshot
    // (`repl-stream-db`), as the bytes that follow carry no SELECT.
    let mut m = master.client();
    assert_eq!(text(&mut m, &["SELECT", "1"]), "+OK\r\n");
    m.cmd(&["SET", "chain:1", "a"]).unwrap();
    wait_in_sync(master.port, middle.port);
    // Started with `replicaof` on the command line, following a replica.
    let port = middle.port.to_string();
    let last = Server::shard(&["--replicaof", "127.0.0.1", &port]);
    wait_in_sync(middle.port, last.port);
    m.cmd(&["SET", "chain:2", "b"]).unwrap();
    write_load(master.port, 3, "d");
    wait_in_sync(master.port, middle.port);
    wait_in_sync(middle.port, last.port);
    // The middle forwards its master's bytes: one history, one offset.
    assert_eq!(field(last.port, "master_replid"), field(master.port, "master_replid"));
    assert_eq!(field(last.port, "master_repl_offset"), field(master.port, "master_repl_offset"));
    assert_same(master.port, last.port);
}

#[test]
fn replica_authenticates_with_masterauth() {
    let master = Server::shard(&["--requirepass", "s3cret"]);
    let replica = Server::shard(&["--masterauth", "s3cret"]);
    let mut m = master.client();
    assert_eq!(text(&mut m, &["AUTH", "s3cret"]), "+OK\r\n");
    m.cmd(&["SET", "guarded", "1"]).unwrap();
    replicaof(replica.port, master.port);
    wait_until!(SYNC_WAIT, field(replica.port, "master_link_status") == "up");
    let mut r = replica.client();
    wait_until!(SYNC_WAIT, text(&mut r, &["GET", "guarded"]) == "$1\r\n1\r\n");
}

/// `kill <sig> <pid>`; after `-STOP`, waits until every thread of the
/// process is stopped (a thread running on another core can still act on
/// what arrived, say ACK a write, after kill(2) returned).
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    assert!(ok.success());
    if sig == "-STOP" {
        let stopped = || {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect::<Vec<_>>());
            tasks.is_ok_and(|t| {
                t.iter().all(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    // The state follows the parenthesised command name.
                    stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
                })
            })
        };
        wait_until!(Duration::from_secs(5), stopped(), "process {pid} stopped");
    }
}

/// A replica that stops reading is dropped at its output limit, and comes
/// back through a full resync once the backlog no longer covers it.
#[test]
fn stalled_replica_is_dropped_at_its_output_limit() {
    let master = Server::shard(&["--client-output-buffer-limit", "replica 2mb 0 0", "--repl-backlog-size", "64kb"]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    signal(replica.pid(), "-STOP");
    let value = "v".repeat(10_000);
    let mut m = master.client();
    let mut dropped = false;
    // Far more than the socket buffers and the limit can hold.
    for i in 0..3000 {
        assert_eq!(text(&mut m, &["SET", &format!("big:{}", i % 500), &value]), "+OK\r\n");
        if i % 100 == 99 && field(master.port, "connected_slaves") == "0" {
            dropped = true;
            break;
        }
    }
    signal(replica.pid(), "-CONT");
    assert!(dropped, "the stalled replica was never dropped");
    wait_in_sync(master.port, replica.port);
    assert_eq!(stat(master.port, "sync_full"), 2);
    assert_same(master.port, replica.port);
}

/// A replica's AOF is rewritten from the synced keyspace, so a restart
/// from it has the master's data.
#[test]
fn replica_aof_holds_the_synced_data() {
    let master = Server::shard(&[]);
    write_load(master.port, 2, "aof");
    let dir = slotway_testkit::scratch_dir(&format!("repl-aof-{}", master.port));
    let dir_s = dir.to_string_lossy().into_owned();
    let replica = Server::shard(&["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir_s]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    master.client().cmd(&["SET", "after-sync", "1"]).unwrap();
    wait_in_sync(master.port, replica.port);
    let expected = contents(master.port);
    wait_until!(
        SYNC_WAIT,
        field(replica.port, "master_link_status") == "up" && {
            info(replica.port, "persistence").iter().any(|(k, v)| k == "aof_rewrite_in_progress" && v == "0")
        }
    );
    drop(replica);
    let restarted = Server::shard(&["--appendonly", "yes", "--dir", &dir_s]);
    assert_eq!(contents(restarted.port), expected);
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys the master evicts reach its replica as DELs; the replica itself
/// ignores maxmemory (`replica-ignore-maxmemory yes`).
#[test]
fn evictions_on_the_master_reach_the_replica() {
    let master = Server::shard(&[]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    let used: u64 = info(master.port, "memory")
        .into_iter()
        .find(|(k, _)| k == "used_memory")
        .and_then(|(_, v)| v.parse().ok())
        .expect("used_memory");
    let mut m = master.client();
    let limit = (used + (4 << 20)).to_string();
    assert_eq!(text(&mut m, &["CONFIG", "SET", "maxmemory", &limit]), "+OK\r\n");
    assert_eq!(text(&mut m, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "+OK\r\n");
    let value = "e".repeat(2000);
    let cmds: Vec<Vec<Vec<u8>>> =
        (0..8000).map(|i| vec![b"SET".to_vec(), format!("ev:{i}").into_bytes(), value.clone().into_bytes()]).collect();
    for r in m.pipeline(&cmds).unwrap() {
        assert_eq!(r, b"+OK\r\n");
    }
    assert!(stat(master.port, "evicted_keys") > 0, "nothing was evicted");
    // Eviction may still be running in the background (its time limit per
    // command); stop it, and let one more write hand on the last victims,
    // so both sides are compared at rest.
    assert_eq!(text(&mut m, &["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["SET", "ev:last", "x"]), "+OK\r\n");
    wait_in_sync(master.port, replica.port);
    assert_same(master.port, replica.port);
}

#[test]
fn stale_replica_refuses_reads_when_told_to() {
    let dead = slotway_testkit::free_port().to_string();
    let replica = Server::shard(&["--replicaof", "127.0.0.1", &dead, "--replica-serve-stale-data", "no"]);
    let mut r = replica.client();
    const DOWN: &str = "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n";
    assert_eq!(text(&mut r, &["GET", "x"]), DOWN);
    assert_eq!(text(&mut r, &["PING"]), DOWN);
    // The read-only rule comes first, as in Redis; INFO is always served.
    assert_eq!(text(&mut r, &["SET", "a", "b"]), "-READONLY You can't write against a read only replica.\r\n");
    assert_eq!(field(replica.port, "master_link_status"), "down");
    assert_eq!(text(&mut r, &["CONFIG", "SET", "replica-serve-stale-data", "yes"]), "+OK\r\n");
    assert_eq!(text(&mut r, &["GET", "x"]), "$-1\r\n");
}

#[test]
fn migrated_keys_leave_the_replica_too() {
    let master = Server::shard(&[]);
    let replica = Server::shard(&[]);
    let target = Server::shard(&[]);
    replicaof(replica.port, master.port);
    let mut m = master.client();
    for k in ["mv:1", "mv:2", "stay"] {
        assert_eq!(text(&mut m, &["SET", k, "v"]), "+OK\r\n");
    }
    // One key on its own, two with KEYS: each taken key goes out as a DEL.
    let port = target.port.to_string();
    assert_eq!(text(&mut m, &["MIGRATE", "127.0.0.1", &port, "mv:1", "0", "5000"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", "mv:2", "nokey"]), "+OK\r\n");
    wait_in_sync(master.port, replica.port);
    assert_same(master.port, replica.port);
    let mut r = replica.client();
    assert_eq!(text(&mut r, &["EXISTS", "mv:1", "mv:2", "stay"]), ":1\r\n");
    assert_eq!(text(&mut target.client(), &["EXISTS", "mv:1", "mv:2"]), ":2\r\n");
}
