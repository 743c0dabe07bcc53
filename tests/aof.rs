//! The append-only file against the real thing: `redis-check-aof` accepts
//! what we write, redis-server 7.0 loads our appendonlydir and we load
//! its (same data, same TTLs), acknowledged writes survive `kill -9`, and
//! truncated or corrupt files are handled as Redis handles them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotway_testkit::{free_port, require_tool, scratch_dir, wait_until, workspace_bin, RawClient, Reply};

/// A server process on a directory the test owns (it outlives the
/// process, for restarts); killed with SIGKILL when dropped.
struct Proc {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Proc {
    /// Starts `bin` on `dir`; `Err(log)` if it exits instead of serving.
    fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Result<Proc, (String, Option<i32>)> {
        let port = free_port();
        let log = dir.with_extension(format!("{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let port_s = port.to_string();
        let dir_s = dir.to_string_lossy().into_owned();
        let mut args = vec!["--port", &port_s, "--bind", "127.0.0.1", "--save", "", "--dir", &dir_s];
        args.extend_from_slice(extra);
        let child = Command::new(bin)
            .args(&args)
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn server");
        let mut p = Proc { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err((p.log_text(), status.code()));
            }
            // PONG, not -LOADING: redis-server answers while it loads.
            if RawClient::connect(port).and_then(|mut c| c.cmd(&["PING"])).is_ok_and(|r| r == b"+PONG\r\n") {
                return Ok(p);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server on {port} neither served nor exited:\n{}", p.log_text());
    }

    fn shard(dir: &Path, extra: &[&str]) -> Proc {
        Self::start(&workspace_bin("slotway-shard"), dir, extra).unwrap_or_else(|(log, _)| panic!("{log}"))
    }

    fn client(&self) -> RawClient {
        RawClient::connect(self.port).expect("connect")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(scratch_dir(tag))
    }
}

impl std::ops::Deref for Dir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn info_field(c: &mut RawClient, name: &str) -> String {
    let info = c.cmd_str(&["INFO", "persistence"]);
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default().trim().to_string()
}

fn wait_rewrite_done(c: &mut RawClient, rewrites: &str) {
    wait_until!(
        Duration::from_secs(20),
        info_field(c, "aof_rewrite_in_progress") == "0" && info_field(c, "aof_rewrites") == rewrites,
        "rewrite #{rewrites} did not finish"
    );
}

fn ok(c: &mut RawClient, line: &str) {
    let args: Vec<&str> = line.split(' ').collect();
    let r = c.call(&args).expect("reply");
    assert!(!r.is_error(), "{line}: {r:?}");
}

/// Writes of every type, in two databases, with TTLs, transactions and
/// the commands whose propagation is rewritten.
fn fill(c: &mut RawClient, tag: &str) {
    for i in 0..50 {
        ok(c, &format!("SET {tag}s{i} v{i}"));
        ok(c, &format!("RPUSH {tag}l{} e{i}", i % 5));
        ok(c, &format!("SADD {tag}set{} m{i}", i % 3));
        ok(c, &format!("HSET {tag}h{} f{i} {i}", i % 4));
        ok(c, &format!("ZADD {tag}z{} {}.25 m{i}", i % 2, i));
    }
    for line in [
        "SET {t}ex v EX 1000",
        "SETEX {t}setex 1000 v",
        "EXPIRE {t}s1 2000",
        "PEXPIRE {t}s2 3000000",
        "EXPIREAT {t}s3 4102444800",
        "INCRBYFLOAT {t}f 1.5",
        "INCRBYFLOAT {t}f 0.25",
        "HINCRBYFLOAT {t}h0 fl 2.5",
        "SPOP {t}set0",
        "SPOP {t}set1 3",
        "LPOP {t}l0",
        "BLPOP {t}l1 1",
        "LMPOP 1 {t}l2 RIGHT COUNT 2",
        "ZPOPMIN {t}z0",
        "BZPOPMAX {t}z1 1",
        "GETEX {t}s4 EX 500",
        "GETDEL {t}s5",
        "PERSIST {t}s1",
        "DEL {t}s6 {t}s7",
        "RENAME {t}s8 {t}renamed",
        "SET {t}gone v PX 1",
        "SELECT 3",
        "SET {t}db3 x",
        "LPUSH {t}db3l a b c",
        "SELECT 0",
    ] {
        ok(c, &line.replace("{t}", tag));
    }
    for line in ["MULTI", "SET {t}m1 1", "INCR {t}m2", "SADD {t}m3 a", "EXEC"] {
        ok(c, &line.replace("{t}", tag));
    }
}

/// Every key of every database with its type, value and absolute expiry,
/// as text two servers' copies can be compared by.
fn dump(c: &mut RawClient) -> String {
    let mut out = String::new();
    for db in 0..16 {
        ok(c, &format!("SELECT {db}"));
        let Reply::Array(Some(keys)) = c.call(&["KEYS", "*"]).expect("keys") else { panic!("KEYS") };
        let mut keys: Vec<Vec<u8>> = keys.iter().filter_map(|k| k.bulk().map(<[u8]>::to_vec)).collect();
        keys.sort();
        for k in keys {
            let ty = c.cmd_str(&[b"TYPE".as_slice(), &k]);
            let mut value = match ty.trim() {
                // Expired between KEYS and TYPE (the PX 1 key).
                "+none" => continue,
                "+string" => vec![c.cmd_str(&[b"GET".as_slice(), &k])],
                "+list" => vec![c.cmd_str(&[b"LRANGE".as_slice(), &k, b"0", b"-1"])],
                "+zset" => vec![c.cmd_str(&[b"ZRANGE".as_slice(), &k, b"0", b"-1", b"WITHSCORES"])],
                "+set" => sorted_items(c.call(&[b"SMEMBERS".as_slice(), &k]).expect("smembers")),
                "+hash" => sorted_items(c.call(&[b"HGETALL".as_slice(), &k]).expect("hgetall")),
                other => panic!("unexpected type {other}"),
            };
            value.sort();
            let at = c.cmd_str(&[b"PEXPIRETIME".as_slice(), &k]);
            out.push_str(&format!("{db} {} {} {:?} {}\n", String::from_utf8_lossy(&k), ty.trim(), value, at.trim()));
        }
    }
    ok(c, "SELECT 0");
    out
}

fn sorted_items(r: Reply) -> Vec<String> {
    let mut v: Vec<String> = r
        .array()
        .unwrap_or_default()
        .iter()
        .map(|x| String::from_utf8_lossy(x.bulk().unwrap_or_default()).into())
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

fn check_aof(dir: &Path) -> String {
    let out = Command::new("redis-check-aof")
        .arg(dir.join("appendonlydir/appendonly.aof.manifest"))
        .output()
        .expect("redis-check-aof");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-check-aof failed:\n{text}");
    assert!(text.contains("All AOF files and manifest are valid"), "{text}");
    text
}

/// `aof-use-rdb-preamble` values and the base file suffix each makes.
const PREAMBLES: [(&str, &str); 2] = [("yes", "rdb"), ("no", "aof")];

#[test]
fn redis_check_aof_accepts_our_files() {
    require_tool!("redis-check-aof");
    for (preamble, suffix) in PREAMBLES {
        let dir = Dir::new(&format!("aof-check-{preamble}"));
        let s = Proc::shard(&dir, &["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        let mut c = s.client();
        fill(&mut c, "a");
        check_aof(&dir);
        ok(&mut c, "BGREWRITEAOF");
        wait_rewrite_done(&mut c, "1");
        check_aof(&dir);
        fill(&mut c, "b");
        let text = check_aof(&dir);
        assert!(text.contains(&format!("appendonly.aof.2.base.{suffix}")), "{text}");
        let base = std::fs::read(dir.join(format!("appendonlydir/appendonly.aof.2.base.{suffix}"))).unwrap();
        assert_eq!(base.starts_with(b"REDIS"), preamble == "yes", "base format with preamble {preamble}");
        let names: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".1.")), "old files were not deleted: {names:?}");
        assert!(!names.iter().any(|n| n.starts_with("temp-")), "temp files left: {names:?}");
        assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
        assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    }
}

#[test]
fn aof_use_rdb_preamble_is_a_live_directive() {
    let dir = Dir::new("aof-preamble-set");
    let s = Proc::shard(&dir, &["--appendonly", "yes"]);
    let mut c = s.client();
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "aof-use-rdb-preamble"]),
        "*2\r\n$20\r\naof-use-rdb-preamble\r\n$3\r\nyes\r\n"
    );
    ok(&mut c, "SET k v");
    ok(&mut c, "CONFIG SET aof-use-rdb-preamble no");
    ok(&mut c, "BGREWRITEAOF");
    wait_rewrite_done(&mut c, "1");
    assert!(dir.join("appendonlydir/appendonly.aof.2.base.aof").is_file());
    ok(&mut c, "CONFIG SET aof-use-rdb-preamble yes");
    ok(&mut c, "BGREWRITEAOF");
    wait_rewrite_done(&mut c, "2");
    assert!(dir.join("appendonlydir/appendonly.aof.3.base.rdb").is_file());
    assert!(!dir.join("appendonlydir/appendonly.aof.2.base.aof").exists());
}

#[test]
fn redis_server_loads_our_aof_with_the_same_data() {
    require_tool!("redis-server");
    for (preamble, _) in PREAMBLES {
        let dir = Dir::new(&format!("aof-ours-{preamble}"));
        let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", preamble];
        let s = Proc::shard(&dir, &args);
        let mut c = s.client();
        fill(&mut c, "a");
        ok(&mut c, "BGREWRITEAOF");
        wait_rewrite_done(&mut c, "1");
        fill(&mut c, "b");
        let ours = dump(&mut c);
        let theirs_dir = Dir::new(&format!("aof-ours-copy-{preamble}"));
        copy_dir(&dir.join("appendonlydir"), &theirs_dir.join("appendonlydir"));
        let r = Proc::start(Path::new("redis-server"), &theirs_dir, &args)
            .unwrap_or_else(|(log, _)| panic!("redis-server refused our AOF (preamble {preamble}):\n{log}"));
        assert_eq!(dump(&mut r.client()), ours, "preamble {preamble}");
        // And we load our own files back the same.
        drop(s);
        let again = Proc::shard(&dir, &args);
        assert_eq!(dump(&mut again.client()), ours, "preamble {preamble}");
    }
}

/// A redis-server appendonlydir: `fill` a, BGREWRITEAOF, `fill` b; with
/// the dump of its data.
fn redis_made_aof(tag: &str, preamble: &str) -> (Dir, String) {
    let dir = Dir::new(tag);
    let r = Proc::start(Path::new("redis-server"), &dir, &["--appendonly", "yes", "--aof-use-rdb-preamble", preamble])
        .unwrap_or_else(|(log, _)| panic!("{log}"));
    let mut c = r.client();
    fill(&mut c, "a");
    ok(&mut c, "BGREWRITEAOF");
    wait_rewrite_done(&mut c, "1");
    fill(&mut c, "b");
    let theirs = dump(&mut c);
    // Redis writes the AOF before it replies: the files are complete.
    r.kill9();
    (dir, theirs)
}

#[test]
fn we_load_a_redis_made_aof_with_the_same_data() {
    require_tool!("redis-server");
    for (preamble, suffix) in PREAMBLES {
        let (dir, theirs) = redis_made_aof(&format!("aof-theirs-{preamble}"), preamble);
        let base = dir.join(format!("appendonlydir/appendonly.aof.2.base.{suffix}"));
        assert!(base.is_file(), "redis-server wrote no {}", base.display());
        let ours_dir = Dir::new(&format!("aof-theirs-copy-{preamble}"));
        copy_dir(&dir.join("appendonlydir"), &ours_dir.join("appendonlydir"));
        let s = Proc::shard(&ours_dir, &["--appendonly", "yes"]);
        assert_eq!(dump(&mut s.client()), theirs, "preamble {preamble}");
    }
}

/// A pre-7.0 AOF: one `appendonly.aof` in `dir`, an RDB image followed by
/// commands (made here from redis-server's base and incremental files).
#[test]
fn we_load_an_old_single_file_aof_with_an_rdb_preamble() {
    require_tool!("redis-server");
    require_tool!("redis-check-aof");
    let (dir, theirs) = redis_made_aof("aof-single-src", "yes");
    let mut single = std::fs::read(dir.join("appendonlydir/appendonly.aof.2.base.rdb")).unwrap();
    assert!(single.starts_with(b"REDIS"));
    let incr = std::fs::read(dir.join("appendonlydir/appendonly.aof.2.incr.aof")).unwrap();
    assert!(!incr.is_empty());
    single.extend_from_slice(&incr);
    let ours = Dir::new("aof-single-ours");
    std::fs::write(ours.join("appendonly.aof"), &single).unwrap();
    let redis = Dir::new("aof-single-redis");
    std::fs::write(redis.join("appendonly.aof"), &single).unwrap();
    let s = Proc::shard(&ours, &["--appendonly", "yes"]);
    let mut c = s.client();
    assert_eq!(dump(&mut c), theirs);
    // Upgraded as Redis 7.0 does: moved into the directory as the base.
    assert!(!ours.join("appendonly.aof").exists());
    let manifest = std::fs::read_to_string(ours.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert!(manifest.starts_with("file appendonly.aof seq 1 type b\n"), "{manifest}");
    ok(&mut c, "SET after upgrade");
    check_aof(&ours);
    // redis-server reads the same file the same way.
    let r = Proc::start(Path::new("redis-server"), &redis, &["--appendonly", "yes"])
        .unwrap_or_else(|(log, _)| panic!("{log}"));
    assert_eq!(dump(&mut r.client()), theirs);
    // And our upgraded directory loads again, with the later write.
    drop(c);
    s.kill9();
    let again = Proc::shard(&ours, &["--appendonly", "yes"]);
    assert_eq!(again.client().cmd_str(&["GET", "after"]), "$7\r\nupgrade\r\n");
}

/// The pids of `pid`'s children (all threads'), from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

/// 50 MB in 50,000 keys: enough that a child is still writing when the
/// test looks for it or asks for another.
fn big(c: &mut RawClient) {
    let value = "v".repeat(1000);
    for chunk in 0..50 {
        let cmds: Vec<Vec<Vec<u8>>> = (0..1000)
            .map(|i| vec![b"SET".to_vec(), format!("big:{chunk}:{i}").into_bytes(), value.clone().into_bytes()])
            .collect();
        c.pipeline(&cmds).expect("writes");
    }
}

fn wait_no_child(c: &mut RawClient) {
    wait_until!(
        Duration::from_secs(30),
        info_field(c, "aof_rewrite_in_progress") == "0"
            && info_field(c, "rdb_bgsave_in_progress") == "0"
            && info_field(c, "aof_rewrite_scheduled") == "0"
    );
}

/// As Redis: one child at a time. BGREWRITEAOF during a BGSAVE is
/// scheduled and runs after it; BGSAVE during a rewrite is refused, and
/// BGSAVE SCHEDULE waits for the rewrite.
#[test]
fn one_child_at_a_time() {
    let dir = Dir::new("aof-one-child");
    let s = Proc::shard(&dir, &["--appendonly", "yes"]);
    let mut c = s.client();
    big(&mut c);
    let mut seen = false;
    for attempt in 0..10 {
        ok(&mut c, "BGSAVE");
        let rewrites: u64 = info_field(&mut c, "aof_rewrites").parse().unwrap();
        let r = c.cmd_str(&["BGREWRITEAOF"]);
        if r == "+Background append only file rewriting scheduled\r\n" {
            seen = true;
            wait_no_child(&mut c);
            assert_eq!(info_field(&mut c, "aof_rewrites"), (rewrites + 1).to_string(), "the scheduled rewrite ran");
            break;
        }
        // The save was over already: try again.
        assert_eq!(r, "+Background append only file rewriting started\r\n", "attempt {attempt}");
        wait_no_child(&mut c);
    }
    assert!(seen, "BGREWRITEAOF never met a running BGSAVE");
    let mut seen = false;
    for _ in 0..10 {
        ok(&mut c, "BGREWRITEAOF");
        let r = c.cmd_str(&["BGSAVE"]);
        if r.starts_with('-') {
            assert_eq!(
                r,
                "-ERR Another child process is active (AOF?): can't BGSAVE right now. \
                 Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.\r\n"
            );
            let _ = std::fs::remove_file(dir.join("dump.rdb"));
            let r = c.cmd_str(&["BGSAVE", "SCHEDULE"]);
            if r == "+Background saving scheduled\r\n" {
                seen = true;
                wait_until!(Duration::from_secs(30), dir.join("dump.rdb").is_file(), "the scheduled save never ran");
                wait_no_child(&mut c);
                break;
            }
        }
        // The rewrite was over already: try again.
        wait_no_child(&mut c);
    }
    assert!(seen, "BGSAVE never met a running rewrite");
}

#[test]
fn a_failed_rewrite_child_leaves_the_old_files_in_force() {
    let dir = Dir::new("aof-child-fail");
    let s = Proc::shard(&dir, &["--appendonly", "yes"]);
    let mut c = s.client();
    fill(&mut c, "a");
    big(&mut c);
    let manifest_path = dir.join("appendonlydir/appendonly.aof.manifest");
    let mut killed = false;
    for attempt in 1..=10 {
        ok(&mut c, "BGREWRITEAOF");
        if let Some(&child) = children_of(s.child.id()).first() {
            // The parent serves while the child writes.
            ok(&mut c, &format!("SET during{attempt} x"));
            let _ = Command::new("kill").args(["-9", &child.to_string()]).status();
            killed = true;
            wait_until!(Duration::from_secs(20), info_field(&mut c, "aof_rewrite_in_progress") == "0");
            break;
        }
        // The child was done already: let it finish and try again.
        wait_rewrite_done(&mut c, &attempt.to_string());
    }
    assert!(killed, "never caught the rewrite child running");
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "err");
    assert_eq!(info_field(&mut c, "aof_rewrites_consecutive_failures"), "1");
    // The manifest still names a complete set of files: the old base, the
    // incremental files, and the new one the writes went on in.
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    for line in manifest.lines() {
        let name = line.split(' ').nth(1).unwrap();
        assert!(dir.join("appendonlydir").join(name).is_file(), "{name} missing:\n{manifest}");
    }
    let names: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("temp-")), "temp file left: {names:?}");
    fill(&mut c, "b");
    // Deleted (through the log too) so that the dumps stay small.
    for chunk in 0..50 {
        let dels: Vec<Vec<Vec<u8>>> =
            (0..1000).map(|i| vec![b"DEL".to_vec(), format!("big:{chunk}:{i}").into_bytes()]).collect();
        c.pipeline(&dels).expect("dels");
    }
    let before = dump(&mut c);
    assert!(before.contains("during"), "{before}");
    drop(c);
    s.kill9();
    let again = Proc::shard(&dir, &["--appendonly", "yes"]);
    assert_eq!(dump(&mut again.client()), before);
}

/// What a load client saw acknowledged, for the crash tests.
#[derive(Default)]
struct Acked {
    /// Keys whose SET was acknowledged, with when.
    sets: Vec<(u64, Instant)>,
    incrs_acked: u64,
    incrs_sent: u64,
}

/// Pipelined `SET k:i i` + `INCR ctr` pairs until the connection dies,
/// bounded by count and time.
fn load(port: u16, stop: &AtomicBool) -> Acked {
    let mut acked = Acked::default();
    let Ok(mut c) = RawClient::connect(port) else { return acked };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0u64;
    while i < 200_000 && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let batch: Vec<Vec<Vec<u8>>> = (i..i + 8)
            .flat_map(|n| {
                [
                    vec![b"SET".to_vec(), format!("k:{n}").into_bytes(), n.to_string().into_bytes()],
                    vec![b"INCR".to_vec(), b"ctr".to_vec()],
                ]
            })
            .collect();
        acked.incrs_sent += 8;
        let Ok(replies) = c.pipeline(&batch) else { break };
        let now = Instant::now();
        for (j, r) in replies.chunks(2).enumerate() {
            if r[0] == b"+OK\r\n" {
                acked.sets.push((i + j as u64, now));
            }
            if r[1].starts_with(b":") {
                acked.incrs_acked += 1;
            }
        }
        i += 8;
    }
    acked
}

/// Loads, `kill -9`s the server mid-load, restarts it on the same files;
/// returns what was acknowledged, the kill time and the restarted server.
fn crash_and_restart(dir: &Path, fsync: &str) -> (Acked, Instant, Proc) {
    let args = ["--appendonly", "yes", "--appendfsync", fsync];
    let s = Proc::shard(dir, &args);
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let stop = stop.clone();
        std::thread::spawn(move || load(port, &stop))
    };
    // Let a few thousand writes through, then kill while the load goes on.
    let mut probe = s.client();
    wait_until!(Duration::from_secs(20), {
        let r = probe.cmd_str(&["GET", "ctr"]);
        r.lines().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) >= 3000
    });
    let killed_at = Instant::now();
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked = loader.join().expect("load thread");
    let again = Proc::shard(dir, &args);
    (acked, killed_at, again)
}

fn missing_sets(c: &mut RawClient, acked: &Acked) -> Vec<(u64, Instant)> {
    let mut missing = Vec::new();
    for chunk in acked.sets.chunks(500) {
        let cmds: Vec<Vec<Vec<u8>>> =
            chunk.iter().map(|(n, _)| vec![b"GET".to_vec(), format!("k:{n}").into_bytes()]).collect();
        let replies = c.pipeline(&cmds).expect("gets");
        for ((n, at), r) in chunk.iter().zip(replies) {
            if r != format!("${}\r\n{n}\r\n", n.to_string().len()).into_bytes() {
                missing.push((*n, *at));
            }
        }
    }
    missing
}

fn counter(c: &mut RawClient) -> u64 {
    c.cmd_str(&["GET", "ctr"]).lines().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[test]
fn crash_with_fsync_always_keeps_every_acknowledged_write() {
    let dir = Dir::new("aof-crash-always");
    let (acked, _, s) = crash_and_restart(&dir, "always");
    let mut c = s.client();
    assert!(acked.sets.len() >= 3000, "too little load: {}", acked.sets.len());
    let missing = missing_sets(&mut c, &acked);
    assert!(missing.is_empty(), "{} acknowledged SETs lost, first {:?}", missing.len(), missing[0].0);
    let ctr = counter(&mut c);
    assert!(ctr >= acked.incrs_acked && ctr <= acked.incrs_sent, "ctr {ctr} vs {} acked", acked.incrs_acked);
}

#[test]
fn crash_with_fsync_everysec_loses_at_most_about_a_second() {
    let dir = Dir::new("aof-crash-everysec");
    let (acked, killed_at, s) = crash_and_restart(&dir, "everysec");
    let mut c = s.client();
    let missing = missing_sets(&mut c, &acked);
    // Only writes acknowledged shortly before the kill may be gone (with
    // a process crash the kernel still has them, so none should be).
    let old = missing.iter().filter(|(_, at)| killed_at.duration_since(*at) > Duration::from_secs(2)).count();
    assert_eq!(old, 0, "{} of {} lost writes were older than 2 s", old, missing.len());
    assert!(counter(&mut c) <= acked.incrs_sent);
}

/// A shard's appendonlydir with a few keys, server stopped.
fn small_aof(tag: &str) -> Dir {
    let dir = Dir::new(tag);
    let s = Proc::shard(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.client();
    for i in 0..10 {
        ok(&mut c, &format!("SET k{i} v{i}"));
    }
    s.kill9();
    dir
}

fn incr_file(dir: &Path) -> PathBuf {
    dir.join("appendonlydir/appendonly.aof.1.incr.aof")
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).expect("open").write_all(bytes).expect("append");
}

#[test]
fn truncated_tail_is_dropped_with_a_warning_when_allowed() {
    let dir = small_aof("aof-trunc-yes");
    let whole = std::fs::metadata(incr_file(&dir)).unwrap().len();
    append(&incr_file(&dir), b"*3\r\n$3\r\nSET\r\n$2\r\nzz\r\n$1\r");
    // `always`, so the write below is on disk before the kill.
    let s = Proc::shard(&dir, &["--appendonly", "yes", "--aof-load-truncated", "yes", "--appendfsync", "always"]);
    let mut c = s.client();
    assert_eq!(c.cmd_str(&["DBSIZE"]), ":10\r\n");
    assert_eq!(c.cmd_str(&["GET", "k9"]), "$2\r\nv9\r\n");
    assert!(s.log_text().contains("!!! Warning: short read while loading the AOF file"), "{}", s.log_text());
    assert_eq!(std::fs::metadata(incr_file(&dir)).unwrap().len(), whole, "the tail was not cut off");
    // Writes go on after the cut, and load again.
    ok(&mut c, "SET after 1");
    drop(c);
    s.kill9();
    let again = Proc::shard(&dir, &["--appendonly", "yes", "--aof-load-truncated", "no"]);
    assert_eq!(again.client().cmd_str(&["GET", "after"]), "$1\r\n1\r\n");
}

#[test]
fn truncated_tail_refuses_to_start_when_not_allowed() {
    let dir = small_aof("aof-trunc-no");
    append(&incr_file(&dir), b"*2\r\n$3\r\nDEL\r\n$2\r\nk");
    let (log, code) =
        Proc::start(&workspace_bin("slotway-shard"), &dir, &["--appendonly", "yes", "--aof-load-truncated", "no"])
            .err()
            .expect("must not start");
    assert_ne!(code, Some(0));
    assert!(log.contains("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"), "{log}");
}

#[test]
fn corrupt_middle_refuses_to_start() {
    let dir = small_aof("aof-corrupt");
    let path = incr_file(&dir);
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    let at = mid + data[mid..].windows(3).position(|w| w == b"\r\n*").expect("a command boundary") + 2;
    data.splice(at..at, b"garbage\r\n".iter().copied());
    std::fs::write(&path, data).unwrap();
    for truncated_ok in ["yes", "no"] {
        let (log, code) = Proc::start(
            &workspace_bin("slotway-shard"),
            &dir,
            &["--appendonly", "yes", "--aof-load-truncated", truncated_ok],
        )
        .err()
        .expect("must not start");
        assert_ne!(code, Some(0));
        assert!(log.contains("Bad file format reading the append only file appendonly.aof.1.incr.aof"), "{log}");
    }
}

#[test]
fn config_set_appendonly_yes_writes_a_base_and_keeps_writing() {
    require_tool!("redis-check-aof");
    let dir = Dir::new("aof-runtime");
    let s = Proc::shard(&dir, &["--appendonly", "no"]);
    let mut c = s.client();
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    fill(&mut c, "a");
    ok(&mut c, "CONFIG SET appendonly yes");
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    wait_rewrite_done(&mut c, "1");
    fill(&mut c, "b");
    let before = dump(&mut c);
    check_aof(&dir);
    s.kill9();
    let again = Proc::shard(&dir, &["--appendonly", "yes"]);
    assert_eq!(dump(&mut again.client()), before);
}

#[test]
fn growth_past_the_limits_starts_a_rewrite() {
    let dir = Dir::new("aof-auto");
    let s = Proc::shard(
        &dir,
        &["--appendonly", "yes", "--auto-aof-rewrite-min-size", "65536", "--auto-aof-rewrite-percentage", "100"],
    );
    let mut c = s.client();
    let value = "x".repeat(100);
    let cmds: Vec<Vec<Vec<u8>>> = (0..2000)
        .map(|i| vec![b"SET".to_vec(), format!("k{}", i % 100).into_bytes(), value.clone().into_bytes()])
        .collect();
    c.pipeline(&cmds).expect("writes");
    wait_until!(Duration::from_secs(20), info_field(&mut c, "aof_rewrites") == "1");
    wait_until!(Duration::from_secs(20), info_field(&mut c, "aof_rewrite_in_progress") == "0");
    // The rewrite kept 100 keys in a base far smaller than the log was.
    let size: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
    assert!(size < 65536, "aof_current_size {size} after the rewrite");
    drop(c);
    s.kill9();
    let again = Proc::shard(&dir, &["--appendonly", "yes"]);
    assert_eq!(again.client().cmd_str(&["DBSIZE"]), ":100\r\n");
}
