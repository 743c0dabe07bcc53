//! The end of a master's life and its handovers: `repl-backlog-ttl`,
//! SHUTDOWN waiting for its replicas, and FAILOVER between slotway-shards
//! and with redis-server both ways. Where Redis 7.0 is installed the same
//! scenarios run against it, so the expectations are its behaviour.

use std::time::{Duration, Instant};

use slotway_testkit::{require_tool, wait_until, RawClient, Server};

use super::{field, replicaof, signal, stat, text, wait_in_sync, SYNC_WAIT};

type Start = fn(&[&str]) -> Server;

/// Whether the real redis-server can be used (a skip outside CI).
fn have_redis() -> bool {
    slotway_testkit::have_tool("redis-server")
}

fn backlog_ttl_scenario(start: Start) {
    let master = start(&["--repl-backlog-ttl", "1"]);
    let replica = start(&["--repl-backlog-ttl", "1"]);
    let parked = start(&[]);
    master.client().cmd(&["SET", "k", "v"]).unwrap();
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    let first_id = field(master.port, "master_replid");
    // The replica leaves (it follows another server): one second later
    // the master, replica-less, frees its backlog and its history.
    replicaof(replica.port, parked.port);
    wait_until!(SYNC_WAIT, field(replica.port, "master_link_status") == "up");
    wait_until!(SYNC_WAIT, field(master.port, "repl_backlog_active") == "0", "the master kept its backlog");
    assert_ne!(field(master.port, "master_replid"), first_id);
    assert_eq!(field(master.port, "master_replid2"), "0000000000000000000000000000000000000000");
    assert_eq!(field(master.port, "repl_backlog_first_byte_offset"), "0");
    // A replica never frees its backlog, whatever its ttl: it may be
    // promoted and be asked to continue.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(field(replica.port, "repl_backlog_active"), "1");
    // Coming back, the replica's history is unknown: a full resync.
    let full = stat(master.port, "sync_full");
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    assert_eq!(stat(master.port, "sync_full"), full + 1);
    assert_eq!(field(master.port, "repl_backlog_active"), "1");
    assert_eq!(text(&mut replica.client(), &["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn backlog_ttl_frees_a_lonely_masters_backlog() {
    backlog_ttl_scenario(Server::shard);
    if have_redis() {
        backlog_ttl_scenario(Server::redis);
    }
}

/// Writes `n` values of `size` bytes in one pipeline; each must succeed.
fn fill(c: &mut RawClient, prefix: &str, n: usize, size: usize) {
    let value = "x".repeat(size);
    let cmds: Vec<Vec<Vec<u8>>> = (0..n)
        .map(|i| vec![b"SET".to_vec(), format!("{prefix}:{i}").into_bytes(), value.clone().into_bytes()])
        .collect();
    for r in c.pipeline(&cmds).unwrap() {
        assert_eq!(r, b"+OK\r\n");
    }
}

fn exited_within(server: &mut Server, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if server.child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A stopped replica cannot acknowledge, so SHUTDOWN waits: writes are
/// held, reads are served, ABORT ends it with Redis's error to the
/// waiting client, and NOW does not wait.
fn shutdown_abort_scenario(start: Start) {
    let mut master = start(&["--shutdown-timeout", "30"]);
    let replica = start(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    signal(replica.pid(), "-STOP");
    let mut m = master.client();
    assert_eq!(text(&mut m, &["SET", "k", "1"]), "+OK\r\n");
    let mut waiting = master.client();
    waiting.send(&["SHUTDOWN"]).unwrap();
    waiting.set_read_timeout(Duration::from_millis(400)).unwrap();
    assert!(waiting.read_reply().is_err(), "SHUTDOWN answered while a replica lags");
    let mut writer = master.client();
    writer.send(&["SET", "k", "2"]).unwrap();
    writer.set_read_timeout(Duration::from_millis(300)).unwrap();
    assert!(writer.read_reply().is_err(), "a write ran during the shutdown's wait");
    assert_eq!(text(&mut m, &["GET", "k"]), "$1\r\n1\r\n");
    // Only one shutdown at a time can be aborted, and only once.
    assert_eq!(text(&mut master.client(), &["SHUTDOWN", "ABORT"]), "+OK\r\n");
    waiting.set_read_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(waiting.read_reply().unwrap(), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    writer.set_read_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(writer.read_reply().unwrap(), b"+OK\r\n", "writes resume after the abort");
    assert_eq!(text(&mut master.client(), &["SHUTDOWN", "ABORT"]), "-ERR No shutdown in progress.\r\n");
    // NOW: no wait for the stopped replica.
    let mut now = master.client();
    now.send(&["SHUTDOWN", "NOW"]).unwrap();
    let stopped_in_time = exited_within(&mut master, Duration::from_secs(3));
    signal(replica.pid(), "-CONT");
    assert!(stopped_in_time, "SHUTDOWN NOW waited");
}

#[test]
fn shutdown_waits_holds_writes_and_aborts_as_redis() {
    shutdown_abort_scenario(Server::shard);
    if have_redis() {
        shutdown_abort_scenario(Server::redis);
    }
}

/// Far more than the socket buffers hold goes out while the replica is
/// stopped; the master's SHUTDOWN must wait until the replica, resumed,
/// has acknowledged all of it, and the replica then has every write.
#[test]
fn shutdown_lets_the_replica_acknowledge_every_write() {
    let mut master = Server::shard(&["--shutdown-timeout", "30"]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    signal(replica.pid(), "-STOP");
    let mut m = master.client();
    fill(&mut m, "big", 200, 64 * 1024);
    fill(&mut m, "small", 5000, 10);
    let offset = field(master.port, "master_repl_offset");
    m.send(&["SHUTDOWN", "NOSAVE"]).unwrap();
    let waited = !exited_within(&mut master, Duration::from_millis(700));
    signal(replica.pid(), "-CONT");
    assert!(waited, "the master exited without waiting for its replica");
    assert!(exited_within(&mut master, Duration::from_secs(20)), "the master never exited");
    assert!(master.child.wait().unwrap().success());
    wait_until!(SYNC_WAIT, field(replica.port, "master_link_status") == "down");
    // The GETACK the master sent is part of what the replica applied.
    let got: i64 = field(replica.port, "master_repl_offset").parse().unwrap();
    assert!(got >= offset.parse::<i64>().unwrap(), "{got} < {offset}");
    let mut r = replica.client();
    assert_eq!(text(&mut r, &["DBSIZE"]), ":5200\r\n");
    assert_eq!(text(&mut r, &["STRLEN", "big:199"]), ":65536\r\n");
    assert_eq!(text(&mut r, &["GET", "small:4999"]), "$10\r\nxxxxxxxxxx\r\n");
}

/// SIGTERM takes the same path: it waits for the lagging replica.
#[test]
fn sigterm_waits_for_replicas_too() {
    let mut master = Server::shard(&["--shutdown-timeout", "30"]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    signal(replica.pid(), "-STOP");
    fill(&mut master.client(), "t", 100, 64 * 1024);
    signal(master.pid(), "-TERM");
    let waited = !exited_within(&mut master, Duration::from_millis(700));
    signal(replica.pid(), "-CONT");
    assert!(waited, "SIGTERM did not wait for the replica");
    assert!(exited_within(&mut master, Duration::from_secs(20)));
    wait_until!(SYNC_WAIT, field(replica.port, "master_link_status") == "down");
    assert_eq!(text(&mut replica.client(), &["DBSIZE"]), ":100\r\n");
}

/// FAILOVER's argument checks and refusals, byte for byte against Redis
/// where it is installed.
fn failover_replies(start: Start) -> Vec<String> {
    let master = start(&[]);
    let replica = start(&[]);
    let rport = replica.port.to_string();
    let mut m = master.client();
    let mut out = Vec::new();
    // The replica's port differs from run to run: not part of the label.
    let mut ask = |c: &mut RawClient, args: &[&str]| {
        let label: Vec<&str> = args.iter().map(|a| if *a == rport { "<replica>" } else { *a }).collect();
        out.push(format!("{label:?} -> {}", text(c, args)))
    };
    for args in [
        &["FAILOVER"][..],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "x"],
        &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "TO", "127.0.0.1", "x"],
        &["FAILOVER", "ABORT", "TIMEOUT", "5"],
        &["FAILOVER", "FORCE", "FORCE"],
    ] {
        ask(&mut m, args);
    }
    replicaof(replica.port, master.port);
    wait_until!(SYNC_WAIT, field(master.port, "slave0").contains("state=online"));
    let rport = replica.port.to_string();
    for args in [
        &["FAILOVER", "FORCE"][..],
        &["FAILOVER", "TO", "127.0.0.1", &rport, "FORCE"],
        &["FAILOVER", "TO", "127.0.0.1", "1"],
        &["FAILOVER", "TO", "127.0.0.1", "99999"],
        &["FAILOVER", "TO", "localhost", &rport],
    ] {
        ask(&mut m, args);
    }
    let mut r = replica.client();
    ask(&mut r, &["FAILOVER"]);
    ask(&mut r, &["PSYNC", "0123456789012345678901234567890123456789", "1", "FAILOVER"]);
    out
}

#[test]
fn failover_refusals_match_redis() {
    let ours = failover_replies(Server::shard);
    assert!(ours.iter().any(|l| l.ends_with("-ERR FAILOVER requires connected replicas.\r\n")), "{ours:#?}");
    assert!(ours.iter().any(|l| l.ends_with("-ERR FAILOVER is not valid when server is a replica.\r\n")));
    assert!(ours.iter().any(|l| l.ends_with("-ERR FAILOVER target HOST and PORT is not a replica.\r\n")));
    if have_redis() {
        assert_eq!(ours, failover_replies(Server::redis));
    }
}

fn role_is(port: u16, role: &str) -> bool {
    field(port, "role") == role
}

/// A coordinated failover from `master` to `replica`: the replica is
/// promoted by the PSYNC FAILOVER, continues without a full resync, and
/// the old master follows it.
fn failover_to(master: &Server, replica: &Server, args: &[&str]) {
    wait_until!(SYNC_WAIT, field(master.port, "slave0").contains("state=online"));
    let mut m = master.client();
    for i in 0..200 {
        assert_eq!(text(&mut m, &["SET", &format!("before:{i}"), "v"]), "+OK\r\n");
    }
    wait_in_sync(master.port, replica.port);
    let full = stat(replica.port, "sync_full");
    assert_eq!(text(&mut m, args), "+OK\r\n");
    wait_until!(SYNC_WAIT, role_is(master.port, "slave") && role_is(replica.port, "master"));
    wait_until!(SYNC_WAIT, field(master.port, "master_link_status") == "up");
    assert_eq!(field(master.port, "master_port"), replica.port.to_string());
    assert_eq!(field(master.port, "master_failover_state"), "no-failover");
    assert_eq!(field(replica.port, "master_failover_state"), "no-failover");
    assert_eq!((stat(replica.port, "sync_full"), stat(replica.port, "sync_partial_ok")), (full, 1));
    // The new master's history continues the old one.
    assert_eq!(field(master.port, "master_replid"), field(replica.port, "master_replid"));
    assert_eq!(text(&mut m, &["SET", "after", "x"]), "-READONLY You can't write against a read only replica.\r\n");
    let mut r = replica.client();
    assert_eq!(text(&mut r, &["SET", "after", "y"]), "+OK\r\n");
    wait_in_sync(replica.port, master.port);
    assert_eq!(text(&mut m, &["GET", "after"]), "$1\r\ny\r\n");
    assert_eq!(text(&mut m, &["DBSIZE"]), ":201\r\n");
}

#[test]
fn failover_between_shards() {
    let master = Server::shard(&[]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    failover_to(&master, &replica, &["FAILOVER"]);
    // And back, naming the target.
    let port = master.port.to_string();
    failover_to(&replica, &master, &["FAILOVER", "TO", "127.0.0.1", &port, "TIMEOUT", "5000"]);
}

#[test]
fn failover_with_redis_both_ways() {
    require_tool!("redis-server");
    // A shard hands over to a redis-server replica...
    let master = Server::shard(&[]);
    let replica = Server::redis(&[]);
    replicaof(replica.port, master.port);
    let port = replica.port.to_string();
    failover_to(&master, &replica, &["FAILOVER", "TO", "127.0.0.1", &port]);
    // ...and a redis-server master to a shard replica.
    let master = Server::redis(&["--repl-diskless-sync-delay", "0"]);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    failover_to(&master, &replica, &["FAILOVER"]);
}

/// A replica that cannot catch up: the failover waits with writes held,
/// times out (or is aborted) and writes resume; with FORCE it switches at
/// the timeout anyway.
fn failover_wait_scenario(start: Start) {
    let master = start(&[]);
    let replica = start(&[]);
    replicaof(replica.port, master.port);
    wait_until!(SYNC_WAIT, field(master.port, "slave0").contains("state=online"));
    signal(replica.pid(), "-STOP");
    let mut m = master.client();
    assert_eq!(text(&mut m, &["SET", "k", "1"]), "+OK\r\n");
    // Long enough that a loaded machine still sees the wait.
    assert_eq!(text(&mut m, &["FAILOVER", "TIMEOUT", "3000"]), "+OK\r\n");
    assert_eq!(field(master.port, "master_failover_state"), "waiting-for-sync");
    let mut writer = master.client();
    writer.send(&["SET", "k", "2"]).unwrap();
    writer.set_read_timeout(Duration::from_millis(300)).unwrap();
    assert!(writer.read_reply().is_err(), "a write ran during the failover's wait");
    writer.set_read_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(writer.read_reply().unwrap(), b"+OK\r\n", "the write runs after the timeout");
    assert_eq!(field(master.port, "master_failover_state"), "no-failover");
    assert_eq!(field(master.port, "role"), "master");

    assert_eq!(text(&mut m, &["FAILOVER"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["FAILOVER"]), "-ERR FAILOVER already in progress.\r\n");
    let rport = replica.port.to_string();
    assert_eq!(text(&mut m, &["REPLICAOF", "127.0.0.1", &rport]), "-ERR REPLICAOF not allowed while failing over.\r\n");
    assert_eq!(text(&mut m, &["FAILOVER", "ABORT"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["FAILOVER", "ABORT"]), "-ERR No failover in progress.\r\n");
    assert_eq!(text(&mut m, &["SET", "k", "3"]), "+OK\r\n");

    // FORCE: at the timeout the master follows the replica anyway.
    assert_eq!(text(&mut m, &["FAILOVER", "TO", "127.0.0.1", &rport, "TIMEOUT", "300", "FORCE"]), "+OK\r\n");
    wait_until!(SYNC_WAIT, field(master.port, "master_failover_state") == "failover-in-progress");
    assert_eq!(field(master.port, "role"), "slave");
    signal(replica.pid(), "-CONT");
    wait_until!(SYNC_WAIT, role_is(replica.port, "master"));
    wait_until!(SYNC_WAIT, field(master.port, "master_failover_state") == "no-failover");
    wait_in_sync(replica.port, master.port);
}

#[test]
fn failover_waits_times_out_aborts_and_forces() {
    failover_wait_scenario(Server::shard);
    if have_redis() {
        failover_wait_scenario(Server::redis);
    }
}

#[test]
fn failover_is_refused_in_cluster_mode() {
    let node = Server::shard(&["--cluster-enabled", "yes"]);
    assert_eq!(text(&mut node.client(), &["FAILOVER"]), "-ERR FAILOVER not allowed in cluster mode.\r\n");
}

/// A replica's side of a full sync on a raw socket: REPLCONF (with or
/// without `capa eof`), PSYNC, then the reply line and the snapshot's
/// framing. Returns (the +FULLRESYNC line, the header line, the RDB).
struct RawSync {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl RawSync {
    fn start(port: u16, capa_eof: bool) -> RawSync {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut s = RawSync { stream, buf: Vec::new() };
        s.send(&["REPLCONF", "listening-port", "1"]);
        assert_eq!(s.line(), "+OK");
        if capa_eof {
            s.send(&["REPLCONF", "capa", "eof", "capa", "psync2"]);
            assert_eq!(s.line(), "+OK");
        }
        s.send(&["PSYNC", "?", "-1"]);
        s
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = Vec::new();
        slotway_testkit::encode_command(&mut out, args);
        std::io::Write::write_all(&mut self.stream, &out).unwrap();
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = std::io::Read::read(&mut self.stream, &mut chunk).expect("read from the master");
        assert!(n > 0, "the master closed the link");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next non-empty line (keepalive newlines skipped).
    fn line(&mut self) -> String {
        loop {
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if !text.is_empty() {
                    return text;
                }
            }
            self.fill();
        }
    }

    /// The snapshot in whichever framing the header announces.
    fn snapshot(&mut self) -> (String, Vec<u8>) {
        let header = self.line();
        if let Some(mark) = header.strip_prefix("$EOF:") {
            assert_eq!(mark.len(), 40, "{header}");
            while !self.buf.ends_with(mark.as_bytes()) {
                self.fill();
            }
            let rdb = self.buf[..self.buf.len() - 40].to_vec();
            self.buf.clear();
            return (header, rdb);
        }
        let len: usize = header.strip_prefix('$').and_then(|l| l.parse().ok()).expect("a $<len> header");
        while self.buf.len() < len {
            self.fill();
        }
        (header, self.buf.drain(..len).collect())
    }
}

fn check_rdb(rdb: &[u8], dir: &std::path::Path) {
    assert!(rdb.starts_with(b"REDIS0010"), "{:?}", &rdb[..rdb.len().min(16)]);
    if slotway_testkit::have_tool("redis-check-rdb") {
        let path = dir.join("received.rdb");
        std::fs::write(&path, rdb).unwrap();
        let check = std::process::Command::new("redis-check-rdb").arg(&path).output().expect("redis-check-rdb");
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    }
}

/// `capa eof` gets the diskless `$EOF:` framing, a replica without it
/// `$<len>`; both carry a whole RDB. Against redis-server too.
fn diskless_framing_scenario(start: Start) {
    let master = start(&["--repl-diskless-sync-delay", "0"]);
    super::write_load(master.port, 2, "dl");
    let mut eof = RawSync::start(master.port, true);
    assert!(eof.line().starts_with("+FULLRESYNC "));
    let (header, rdb) = eof.snapshot();
    assert!(header.starts_with("$EOF:"), "{header}");
    check_rdb(&rdb, &master.dir);
    let mut plain = RawSync::start(master.port, false);
    assert!(plain.line().starts_with("+FULLRESYNC "));
    let (header, rdb) = plain.snapshot();
    assert!(header[1..].parse::<usize>().is_ok(), "{header}");
    check_rdb(&rdb, &master.dir);
}

#[test]
fn diskless_sync_frames_as_redis() {
    diskless_framing_scenario(Server::shard);
    if have_redis() {
        diskless_framing_scenario(Server::redis);
    }
}

/// Replicas that arrive within `repl-diskless-sync-delay` share one
/// snapshot (one offset); `repl-diskless-sync-max-replicas` starts it
/// without waiting out the delay.
#[test]
fn diskless_replicas_share_one_snapshot() {
    let master = Server::shard(&["--repl-diskless-sync-delay", "2"]);
    master.client().cmd(&["SET", "k", "v"]).unwrap();
    let asked = Instant::now();
    let mut a = RawSync::start(master.port, true);
    let mut b = RawSync::start(master.port, true);
    wait_until!(SYNC_WAIT, field(master.port, "connected_slaves") == "2");
    assert!(field(master.port, "slave0").contains("state=wait_bgsave"));
    let (la, lb) = (a.line(), b.line());
    assert!(asked.elapsed() >= Duration::from_millis(1500), "the delay was not waited");
    assert!(la.starts_with("+FULLRESYNC ") && la == lb, "{la} / {lb}");
    check_rdb(&a.snapshot().1, &master.dir);
    check_rdb(&b.snapshot().1, &master.dir);

    let master = Server::shard(&["--repl-diskless-sync-delay", "60", "--repl-diskless-sync-max-replicas", "2"]);
    let asked = Instant::now();
    let mut a = RawSync::start(master.port, true);
    let mut b = RawSync::start(master.port, true);
    let (la, lb) = (a.line(), b.line());
    assert!(asked.elapsed() < Duration::from_secs(10), "max-replicas did not cut the delay short");
    assert_eq!(la, lb);
}

/// A real redis-server replica syncs from us with and without diskless,
/// and stays in sync with the stream after the snapshot.
#[test]
fn redis_replica_syncs_from_us_disk_and_diskless() {
    require_tool!("redis-server");
    for diskless in ["yes", "no"] {
        let master = Server::shard(&["--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "1"]);
        super::write_load(master.port, 3, "rr");
        let replica = Server::redis(&[]);
        replicaof(replica.port, master.port);
        super::write_load(master.port, 3, "live");
        wait_in_sync(master.port, replica.port);
        super::assert_same(master.port, replica.port);
    }
}

/// While a FAILOVER waits, a read of an expired key answers nil but
/// deletes nothing (a DEL would move the offset the replica must reach);
/// once writes resume the key goes.
fn expiry_held_scenario(start: Start) {
    let master = start(&[]);
    let replica = start(&[]);
    replicaof(replica.port, master.port);
    wait_until!(SYNC_WAIT, field(master.port, "slave0").contains("state=online"));
    wait_in_sync(master.port, replica.port);
    signal(replica.pid(), "-STOP");
    let mut m = master.client();
    // Writes the stopped replica cannot acknowledge keep it behind; the
    // key expires a moment after the pause begins.
    assert_eq!(text(&mut m, &["SET", "other", "1"]), "+OK\r\n");
    let set_at = Instant::now();
    assert_eq!(text(&mut m, &["SET", "brief", "v", "PX", "1000"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["FAILOVER", "TIMEOUT", "5000"]), "+OK\r\n");
    assert_eq!(text(&mut m, &["DBSIZE"]), ":2\r\n", "expired before the pause: the machine is too slow");
    let offset = field(master.port, "master_repl_offset");
    std::thread::sleep(Duration::from_millis(1300).saturating_sub(set_at.elapsed()));
    assert_eq!(text(&mut m, &["GET", "brief"]), "$-1\r\n");
    assert_eq!(text(&mut m, &["DBSIZE"]), ":2\r\n", "the expired key was deleted during the pause");
    assert_eq!(field(master.port, "master_repl_offset"), offset);
    assert_eq!(text(&mut m, &["FAILOVER", "ABORT"]), "+OK\r\n");
    signal(replica.pid(), "-CONT");
    assert_eq!(text(&mut m, &["GET", "brief"]), "$-1\r\n");
    wait_until!(SYNC_WAIT, text(&mut m, &["DBSIZE"]) == ":1\r\n");
}

#[test]
fn expired_keys_stay_while_a_failover_waits() {
    expiry_held_scenario(Server::shard);
    if have_redis() {
        expiry_held_scenario(Server::redis);
    }
}

/// A replica that stops reading mid-snapshot paces the shared pipe only
/// until `repl-timeout`: then it is dropped and the other one finishes.
#[test]
fn stalled_diskless_replica_does_not_hold_the_others() {
    let master = Server::shard(&["--repl-diskless-sync-delay", "1", "--repl-timeout", "2"]);
    // Far more than the socket buffers and the queues hold, in values the
    // snapshot's compression cannot shrink.
    let mut c = master.client();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for batch in 0..4 {
        let cmds: Vec<Vec<Vec<u8>>> = (0..100)
            .map(|i| {
                let value: String = (0..64 * 1024)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        char::from(b'a' + (x % 26) as u8)
                    })
                    .collect();
                vec![b"SET".to_vec(), format!("bulk:{}", batch * 100 + i).into_bytes(), value.into_bytes()]
            })
            .collect();
        for r in c.pipeline(&cmds).unwrap() {
            assert_eq!(r, b"+OK\r\n");
        }
    }
    let stalled = RawSync::start(master.port, true);
    let replica = Server::shard(&[]);
    replicaof(replica.port, master.port);
    wait_in_sync(master.port, replica.port);
    assert_eq!(text(&mut replica.client(), &["DBSIZE"]), ":400\r\n");
    assert_eq!(field(master.port, "connected_slaves"), "1");
    drop(stalled);
}

/// A final save that fails keeps the server up after SIGTERM and answers
/// SHUTDOWN with Redis's error; FORCE exits anyway. (The save fails
/// because a directory took the dump file's name after the start.)
fn failed_save_scenario(start: Start) {
    let mut server = start(&["--save", "1 1", "--dbfilename", "dump.rdb"]);
    std::fs::create_dir_all(server.dir.join("dump.rdb").join("sub")).unwrap();
    let mut c = server.client();
    assert_eq!(text(&mut c, &["SET", "k", "v"]), "+OK\r\n");
    signal(server.pid(), "-TERM");
    assert!(!exited_within(&mut server, Duration::from_millis(800)), "exited without its final save");
    assert_eq!(text(&mut server.client(), &["SHUTDOWN"]), "-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(text(&mut c, &["GET", "k"]), "$1\r\nv\r\n");
    server.client().send(&["SHUTDOWN", "FORCE"]).unwrap();
    assert!(exited_within(&mut server, Duration::from_secs(5)), "SHUTDOWN FORCE did not exit");
}

#[test]
fn failed_final_save_keeps_the_server_up_unless_forced() {
    failed_save_scenario(Server::shard);
    if have_redis() {
        failed_save_scenario(Server::redis);
    }
}

/// FAILOVER ABORT after the switch began (the target does not answer):
/// the old master is a master again and takes writes.
fn abort_in_progress_scenario(start: Start) {
    let master = start(&[]);
    let replica = start(&[]);
    replicaof(replica.port, master.port);
    wait_until!(SYNC_WAIT, field(master.port, "slave0").contains("state=online"));
    signal(replica.pid(), "-STOP");
    let mut m = master.client();
    assert_eq!(text(&mut m, &["SET", "k", "1"]), "+OK\r\n");
    let rport = replica.port.to_string();
    assert_eq!(text(&mut m, &["FAILOVER", "TO", "127.0.0.1", &rport, "TIMEOUT", "200", "FORCE"]), "+OK\r\n");
    wait_until!(SYNC_WAIT, field(master.port, "master_failover_state") == "failover-in-progress");
    assert_eq!(text(&mut m, &["FAILOVER", "ABORT"]), "+OK\r\n");
    signal(replica.pid(), "-CONT");
    assert_eq!(field(master.port, "role"), "master");
    assert_eq!(field(master.port, "master_failover_state"), "no-failover");
    assert_eq!(text(&mut m, &["SET", "k", "2"]), "+OK\r\n");
}

#[test]
fn failover_abort_after_the_switch_restores_the_master() {
    abort_in_progress_scenario(Server::shard);
    if have_redis() {
        abort_in_progress_scenario(Server::redis);
    }
}

/// Processes whose command line has `--port <port>`: a server and any
/// child it forked.
fn processes_on_port(port: u16) -> usize {
    let wanted = format!("--port\0{port}\0");
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&wanted))
                })
                .count()
        })
        .unwrap_or(0)
}

/// A master killed (-9) in the middle of a diskless transfer leaves no
/// snapshot child behind blocked on its pipe.
#[test]
fn killed_master_leaves_no_diskless_child() {
    let mut master = Server::shard(&["--repl-diskless-sync-delay", "0"]);
    let mut c = master.client();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for batch in 0..4 {
        let cmds: Vec<Vec<Vec<u8>>> = (0..100)
            .map(|i| {
                let value: String = (0..64 * 1024)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        char::from(b'a' + (x % 26) as u8)
                    })
                    .collect();
                vec![b"SET".to_vec(), format!("k:{}", batch * 100 + i).into_bytes(), value.into_bytes()]
            })
            .collect();
        c.pipeline(&cmds).unwrap();
    }
    // A replica that never reads: the child fills the pipe and waits.
    let mut stalled = RawSync::start(master.port, true);
    assert!(stalled.line().starts_with("+FULLRESYNC"));
    wait_until!(SYNC_WAIT, processes_on_port(master.port) == 2, "no snapshot child");
    master.child.kill().unwrap();
    let _ = master.child.wait();
    wait_until!(SYNC_WAIT, processes_on_port(master.port) == 0, "the snapshot child outlived its master");
}
