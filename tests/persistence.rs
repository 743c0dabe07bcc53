//! RDB persistence against the real thing: our dumps pass redis-check-rdb
//! and load in redis-server, redis-server's dumps (small and large
//! encodings of every type) load in ours, DUMP payloads cross both ways,
//! data survives SAVE/SHUTDOWN and restarts, BGSAVE is a point-in-time
//! view while clients write, and MIGRATE moves keys to redis-server and to
//! another slotway-shard.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use slotway_testkit::{require_tool, scratch_dir, wait_until, workspace_bin, RawClient, Reply, Server};

fn b(s: impl AsRef<[u8]>) -> Vec<u8> {
    s.as_ref().to_vec()
}

/// Commands that build every type in its small and large encodings, with
/// relative and absolute expiries.
fn dataset() -> Vec<Vec<Vec<u8>>> {
    let mut cmds: Vec<Vec<Vec<u8>>> = vec![
        vec![b("SET"), b("s:short"), b("hello")],
        vec![b("SET"), b("s:int"), b("12345")],
        vec![b("SET"), b("s:int64"), b("-99999999999")],
        vec![b("SET"), b("s:lzf"), b("ab".repeat(200))],
        vec![b("SET"), b("s:noise"), (0..2000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect()],
        vec![b("RPUSH"), b("l:small"), b("a"), b("b"), b("1"), b("-2")],
        vec![b("RPUSH"), b("l:bigitem"), b("x".repeat(10_000)), b("y")],
        vec![b("HSET"), b("h:small"), b("f"), b("v"), b("n"), b("1")],
        vec![b("HSET"), b("h:longvalue"), b("f"), b("v".repeat(100))],
        vec![b("SADD"), b("st:intset"), b("1"), b("2"), b("3"), b("-7")],
        vec![b("SADD"), b("st:str"), b("a"), b("b"), b("c")],
        vec![b("ZADD"), b("z:small"), b("1"), b("a"), b("2.5"), b("b"), b("-inf"), b("c"), b("0.1"), b("d")],
    ];
    let mut big_list = vec![b("RPUSH"), b("l:big")];
    big_list.extend((0..2000).map(|i| b(format!("item-{i}"))));
    let mut big_hash = vec![b("HSET"), b("h:big")];
    big_hash.extend((0..600).flat_map(|i| [b(format!("field{i}")), b(format!("value{i}"))]));
    let mut big_intset = vec![b("SADD"), b("st:bigint")];
    big_intset.extend((0..600).map(|i| b(i.to_string())));
    let mut big_zset = vec![b("ZADD"), b("z:big")];
    big_zset.extend((0..300).flat_map(|i| [b(format!("{}", i as f64 / 7.0)), b(format!("m{i}"))]));
    cmds.extend([big_list, big_hash, big_intset, big_zset]);
    // Absolute expiries, so that two servers loaded apart agree exactly.
    for (i, k) in ["s:short", "l:big", "h:small", "z:big", "st:intset"].iter().enumerate() {
        cmds.push(vec![b("PEXPIREAT"), b(k), b(format!("{}", 4_000_000_000_000u64 + i as u64))]);
    }
    cmds.push(vec![b("PEXPIREAT"), b("st:str"), b("4102444800123")]);
    cmds
}

const KEYS: &[&str] = &[
    "s:short",
    "s:int",
    "s:int64",
    "s:lzf",
    "s:noise",
    "l:small",
    "l:bigitem",
    "l:big",
    "h:small",
    "h:longvalue",
    "h:big",
    "st:intset",
    "st:str",
    "st:bigint",
    "z:small",
    "z:big",
];

fn load_dataset(c: &mut RawClient) {
    for reply in c.pipeline(&dataset()).expect("pipeline") {
        assert!(!reply.starts_with(b"-"), "{}", String::from_utf8_lossy(&reply));
    }
}

fn call(c: &mut RawClient, args: &[&[u8]]) -> Reply {
    c.call(args).expect("call")
}

/// A key's type, contents (order-free where the type is), and expiry.
fn describe(c: &mut RawClient, key: &str) -> (Reply, Vec<Vec<u8>>, Reply) {
    let k = key.as_bytes();
    let t = call(c, &[b"TYPE", k]);
    let items = |r: Reply| -> Vec<Vec<u8>> {
        r.array().unwrap_or_default().iter().map(|x| x.bulk().unwrap_or_default().to_vec()).collect()
    };
    let contents = match &t {
        Reply::Simple(s) if s == "string" => vec![call(c, &[b"GET", k]).bulk().unwrap_or_default().to_vec()],
        Reply::Simple(s) if s == "list" => items(call(c, &[b"LRANGE", k, b"0", b"-1"])),
        Reply::Simple(s) if s == "hash" => {
            let flat = items(call(c, &[b"HGETALL", k]));
            let mut pairs: Vec<Vec<u8>> = flat.chunks(2).map(|p| [&p[0][..], b"=", &p[1][..]].concat()).collect();
            pairs.sort();
            pairs
        }
        Reply::Simple(s) if s == "set" => {
            let mut m = items(call(c, &[b"SMEMBERS", k]));
            m.sort();
            m
        }
        Reply::Simple(s) if s == "zset" => items(call(c, &[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"])),
        _ => Vec::new(),
    };
    (t, contents, call(c, &[b"PEXPIRETIME", k]))
}

fn assert_same_data(a: &mut RawClient, b: &mut RawClient, keys: &[&str]) {
    assert_eq!(call(a, &[b"DBSIZE"]), call(b, &[b"DBSIZE"]));
    for k in keys {
        let (x, y) = (describe(a, k), describe(b, k));
        assert_eq!(x.0, y.0, "type of {k}");
        assert!(x.1 == y.1, "contents of {k} differ");
        assert_eq!(x.2, y.2, "expiry of {k}");
        assert!(!x.1.is_empty(), "{k} missing");
    }
}

fn save(c: &mut RawClient) {
    assert_eq!(c.cmd(&["SAVE"]).expect("save"), b"+OK\r\n");
}

fn dir_arg(d: &Path) -> String {
    d.to_string_lossy().into_owned()
}

fn check_rdb(path: &Path) {
    let out = Command::new("redis-check-rdb").arg(path).output().expect("redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb:\n{text}");
}

#[test]
fn our_dump_passes_check_and_loads_in_redis() {
    require_tool!("redis-server");
    require_tool!("redis-check-rdb");
    let dir = scratch_dir("ours-to-redis");
    let ours = Server::shard(&["--dir", &dir_arg(&dir)]);
    let mut c = ours.client();
    load_dataset(&mut c);
    save(&mut c);
    check_rdb(&dir.join("dump.rdb"));
    let redis = Server::redis(&["--dir", &dir_arg(&dir)]);
    assert_same_data(&mut c, &mut redis.client(), KEYS);
    // The compact encodings come back as Redis would have chosen them.
    let mut r = redis.client();
    for (k, enc) in [
        ("h:small", "listpack"),
        ("h:big", "hashtable"),
        ("st:intset", "intset"),
        ("z:small", "listpack"),
        ("z:big", "skiplist"),
    ] {
        assert_eq!(call(&mut r, &[b"OBJECT", b"ENCODING", k.as_bytes()]).bulk(), Some(enc.as_bytes()), "{k}");
    }
}

#[test]
fn redis_dump_loads_in_ours() {
    require_tool!("redis-server");
    let dir = scratch_dir("redis-to-ours");
    let redis = Server::redis(&["--dir", &dir_arg(&dir)]);
    let mut r = redis.client();
    load_dataset(&mut r);
    save(&mut r);
    let ours = Server::shard(&["--dir", &dir_arg(&dir)]);
    assert_same_data(&mut r, &mut ours.client(), KEYS);
}

#[test]
fn dump_payloads_cross_both_ways() {
    require_tool!("redis-server");
    let redis = Server::redis(&[]);
    let ours = Server::shard(&[]);
    let (mut r, mut o) = (redis.client(), ours.client());
    load_dataset(&mut r);
    for (from, to) in [(&mut r, &mut o)] {
        for k in KEYS {
            let p = call(from, &[b"DUMP", k.as_bytes()]).bulk().expect("payload").to_vec();
            assert_eq!(to.cmd(&[b"RESTORE", k.as_bytes(), b"0", &p[..]]).expect("restore"), b"+OK\r\n", "{k}");
        }
    }
    // Expiries do not travel in a payload; drop them for the comparison.
    for k in KEYS {
        call(&mut r, &[b"PERSIST", k.as_bytes()]);
    }
    assert_same_data(&mut r, &mut o, KEYS);
    // And back: ours to a fresh redis-server.
    let redis2 = Server::redis(&[]);
    let mut r2 = redis2.client();
    for k in KEYS {
        let p = call(&mut o, &[b"DUMP", k.as_bytes()]).bulk().expect("payload").to_vec();
        assert_eq!(r2.cmd(&[b"RESTORE", k.as_bytes(), b"0", &p[..]]).expect("restore"), b"+OK\r\n", "{k}");
    }
    assert_same_data(&mut o, &mut r2, KEYS);
}

/// Starts slotway-shard in `dir` (kept across restarts).
fn shard_in(dir: &Path, extra: &[&str]) -> Server {
    let d = dir_arg(dir);
    let mut args = vec!["--dir", &d];
    args.extend_from_slice(extra);
    Server::shard(&args)
}

fn wait_exit(server: &mut Server) {
    wait_until!(Duration::from_secs(10), server.child.try_wait().ok().flatten().is_some());
}

#[test]
fn save_and_shutdown_keep_data_across_restarts() {
    let dir = scratch_dir("restart");
    let dump = dir.join("dump.rdb");
    let reference = Server::shard(&[]);
    let mut refc = reference.client();
    load_dataset(&mut refc);
    {
        // SAVE, then a hard kill: the saved data comes back.
        let s = shard_in(&dir, &[]);
        load_dataset(&mut s.client());
        save(&mut s.client());
    }
    let mut s = shard_in(&dir, &[]);
    assert_same_data(&mut refc, &mut s.client(), KEYS);
    assert!(call(&mut s.client(), &[b"INFO", b"persistence"])
        .bulk()
        .is_some_and(|i| { String::from_utf8_lossy(i).contains("rdb_last_load_keys_loaded:16") }));
    // SHUTDOWN NOSAVE with save rules: nothing written.
    let mut c = s.client();
    call(&mut c, &[b"CONFIG", b"SET", b"save", b"3600 1"]);
    call(&mut c, &[b"SET", b"after", b"1"]);
    let _ = c.cmd(&["SHUTDOWN", "NOSAVE"]);
    wait_exit(&mut s);
    let mut s = shard_in(&dir, &[]);
    assert_eq!(call(&mut s.client(), &[b"EXISTS", b"after"]), Reply::Int(0));
    // Plain SHUTDOWN with save rules: saved.
    let mut s2 = {
        let mut c = s.client();
        call(&mut c, &[b"CONFIG", b"SET", b"save", b"3600 1"]);
        call(&mut c, &[b"SET", b"after", b"2"]);
        let _ = c.cmd(&["SHUTDOWN"]);
        wait_exit(&mut s);
        shard_in(&dir, &[])
    };
    assert_eq!(call(&mut s2.client(), &[b"GET", b"after"]).bulk(), Some(&b"2"[..]));
    // SHUTDOWN SAVE without rules: saved too.
    let mut c = s2.client();
    call(&mut c, &[b"SET", b"after", b"3"]);
    let _ = c.cmd(&["SHUTDOWN", "SAVE"]);
    wait_exit(&mut s2);
    let s3 = shard_in(&dir, &[]);
    assert_eq!(call(&mut s3.client(), &[b"GET", b"after"]).bulk(), Some(&b"3"[..]));
    assert!(dump.exists());
    // No temp file is ever left behind.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("temp-")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A ziplist as Redis 6 wrote them, with integer entries where Redis
/// would have used them.
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut tail = 10;
    for item in items {
        let start = body.len();
        tail = 10 + start;
        if prev < 254 {
            body.push(prev as u8);
        } else {
            body.push(0xfe);
            body.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        let int = std::str::from_utf8(item)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|v| v.to_string().as_bytes() == *item);
        match int {
            Some(v @ 0..=12) => body.push(0xf1 + v as u8),
            Some(v) if i8::try_from(v).is_ok() => body.extend_from_slice(&[0xfe, v as i8 as u8]),
            Some(v) if i16::try_from(v).is_ok() => {
                body.push(0xc0);
                body.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) if i32::try_from(v).is_ok() => {
                body.push(0xd0);
                body.extend_from_slice(&(v as i32).to_le_bytes());
            }
            Some(v) => {
                body.push(0xe0);
                body.extend_from_slice(&v.to_le_bytes());
            }
            None if item.len() < 64 => body.push(item.len() as u8),
            None if item.len() < 16384 => body.extend_from_slice(&[0x40 | (item.len() >> 8) as u8, item.len() as u8]),
            None => {
                body.push(0x80);
                body.extend_from_slice(&(item.len() as u32).to_be_bytes());
            }
        }
        if int.is_none() {
            body.extend_from_slice(item);
        }
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xff);
    zl
}

fn rdb_str(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 64 {
        out.push(s.len() as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// An RDB version 9 file (Redis 6) in the encodings Redis 7 no longer
/// writes: ziplist hashes, sorted sets and quicklist nodes, a plain
/// ziplist list, text-double sorted sets, seconds expiries. Checksum 0.
fn redis6_file() -> Vec<u8> {
    let long = vec![b'L'; 300];
    let mut f = b"REDIS0009".to_vec();
    f.extend_from_slice(&[0xfe, 0]);
    let put = |f: &mut Vec<u8>, ty: u8, key: &[u8], body: &dyn Fn(&mut Vec<u8>)| {
        f.push(ty);
        rdb_str(f, key);
        body(f);
    };
    put(&mut f, 13, b"zip:hash", &|f| rdb_str(f, &ziplist(&[b"f", b"v", b"n", b"-300", b"big", b"70000"])));
    put(&mut f, 12, b"zip:zset", &|f| rdb_str(f, &ziplist(&[b"c", b"-3", b"a", b"1", b"b", b"2.5"])));
    put(&mut f, 10, b"zip:list", &|f| rdb_str(f, &ziplist(&[b"x", b"5", b"-1000000", b"9000000000", &long])));
    put(&mut f, 14, b"quick:list", &|f| {
        f.push(2);
        rdb_str(f, &ziplist(&[b"a", b"b", b"12"]));
        rdb_str(f, &ziplist(&[&long, b"z"]));
    });
    put(&mut f, 3, b"old:zset", &|f| {
        f.push(3);
        let members: [(&[u8], Option<&[u8]>); 3] = [(b"p", Some(b"1.5")), (b"q", Some(b"-2")), (b"r", None)];
        for (m, score) in members {
            rdb_str(f, m);
            match score {
                Some(text) => {
                    f.push(text.len() as u8);
                    f.extend_from_slice(text);
                }
                None => f.push(254), // +inf
            }
        }
    });
    // Expiry in seconds (old files), far in the future.
    f.push(0xfd);
    f.extend_from_slice(&2_000_000_000i32.to_le_bytes());
    put(&mut f, 0, b"old:expiring", &|f| rdb_str(f, b"v"));
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    f
}

#[test]
fn redis6_encodings_load_as_redis_7_loads_them() {
    require_tool!("redis-server");
    let keys = ["zip:hash", "zip:zset", "zip:list", "quick:list", "old:zset", "old:expiring"];
    let dir = scratch_dir("redis6");
    std::fs::write(dir.join("dump.rdb"), redis6_file()).expect("write");
    let redis = Server::redis(&["--dir", &dir_arg(&dir)]);
    let ours = shard_in(&dir, &[]);
    let mut r = redis.client();
    let loaded = call(&mut r, &[b"KEYS", b"*"]);
    assert_eq!(call(&mut r, &[b"DBSIZE"]), Reply::Int(keys.len() as i64), "redis-server loaded only {loaded:?}");
    assert_same_data(&mut r, &mut ours.client(), &keys);
}

#[test]
fn sigterm_saves_when_rules_exist() {
    let dir = scratch_dir("sigterm");
    let mut s = shard_in(&dir, &["--save", "3600 1"]);
    call(&mut s.client(), &[b"SET", b"k", b"v"]);
    let status = Command::new("kill").args(["-TERM", &s.pid().to_string()]).status().expect("kill");
    assert!(status.success());
    wait_exit(&mut s);
    let s = shard_in(&dir, &[]);
    assert_eq!(call(&mut s.client(), &[b"GET", b"k"]).bulk(), Some(&b"v"[..]));
}

#[test]
fn corrupt_dump_refuses_to_start() {
    let dir = scratch_dir("corrupt");
    {
        let s = shard_in(&dir, &[]);
        let mut c = s.client();
        load_dataset(&mut c);
        save(&mut c);
    }
    let path = dir.join("dump.rdb");
    let mut bytes = std::fs::read(&path).expect("dump");
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&path, &bytes).expect("write");
    let out = Command::new(workspace_bin("slotway-shard"))
        .args(["--port", &slotway_testkit::free_port().to_string(), "--dir", &dir_arg(&dir)])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("Fatal error loading the DB"), "{log}");
}

#[test]
fn failed_bgsave_refuses_writes_with_misconf() {
    let dir = scratch_dir("misconf");
    let gone = dir.join("gone");
    std::fs::create_dir_all(&gone).expect("mkdir");
    let s = shard_in(&dir, &["--save", "3600 1", "--enable-protected-configs", "yes"]);
    let mut c = s.client();
    assert_eq!(
        call(&mut c, &[b"CONFIG", b"SET", b"dir", gone.to_string_lossy().as_bytes()]),
        Reply::Simple("OK".into())
    );
    std::fs::remove_dir_all(&gone).expect("rmdir");
    call(&mut c, &[b"SET", b"k", b"v"]);
    assert_eq!(call(&mut c, &[b"BGSAVE"]), Reply::Simple("Background saving started".into()));
    wait_until!(Duration::from_secs(20), info_field(&mut c, "rdb_last_bgsave_status") == "err");
    let refused = call(&mut c, &[b"SET", b"k", b"v2"]);
    assert!(refused.error().is_some_and(|e| e.starts_with("MISCONF ")), "{refused:?}");
    assert!(call(&mut c, &[b"PING"]).is_error());
    assert_eq!(call(&mut c, &[b"GET", b"k"]).bulk(), Some(&b"v"[..]));
    // Without save rules writes go through again.
    call(&mut c, &[b"CONFIG", b"SET", b"save", b""]);
    assert_eq!(call(&mut c, &[b"SET", b"k", b"v3"]), Reply::Simple("OK".into()));
    // FLUSHALL with save rules saves the empty dataset at once.
    call(&mut c, &[b"CONFIG", b"SET", b"dir", dir.to_string_lossy().as_bytes()]);
    call(&mut c, &[b"CONFIG", b"SET", b"save", b"3600 1"]);
    // A good SAVE clears the error, as in Redis.
    save(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    std::fs::remove_file(dir.join("dump.rdb")).expect("rm dump");
    assert_eq!(call(&mut c, &[b"FLUSHALL"]), Reply::Simple("OK".into()));
    assert!(dir.join("dump.rdb").exists());
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "1");
}

fn info_field(c: &mut RawClient, field: &str) -> String {
    let info = call(c, &[b"INFO", b"persistence"]);
    let text = String::from_utf8_lossy(info.bulk().unwrap_or_default()).into_owned();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string)).unwrap_or_default()
}

#[test]
fn bgsave_is_a_point_in_time_view_while_clients_write() {
    let dir = scratch_dir("bgsave");
    let s = shard_in(&dir, &[]);
    let mut c = s.client();
    // Enough data that the child takes a moment.
    let value = "v".repeat(200);
    for chunk in 0..20 {
        let mut cmd = vec![b("MSET")];
        for i in 0..5000 {
            cmd.push(b(format!("bulk:{chunk}:{i}")));
            cmd.push(b(&value));
        }
        c.pipeline(&[cmd]).expect("mset");
    }
    call(&mut c, &[b"SET", b"before", b"1"]);
    // Writers keep pairs equal with atomic MSETs while the save runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let stop = stop.clone();
            let port = s.port;
            std::thread::spawn(move || {
                let mut c = RawClient::connect(port).expect("connect");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 2_000_000 {
                    let v = n.to_string();
                    let j = (n % 50).to_string();
                    c.cmd(&["MSET", &format!("x:{w}:{j}"), &v, &format!("y:{w}:{j}"), &v]).expect("mset");
                    n += 1;
                }
                n
            })
        })
        .collect();
    wait_until!(Duration::from_secs(10), call(&mut c, &[b"EXISTS", b"x:1:49"]) == Reply::Int(1));
    let lastsave = call(&mut c, &[b"LASTSAVE"]);
    // LASTSAVE counts seconds: start the save in a later second than the
    // last one, so that its change shows however fast the save is.
    let Reply::Int(last) = lastsave else { panic!("LASTSAVE: {lastsave:?}") };
    wait_until!(
        Duration::from_secs(3),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 > last
    );
    assert_eq!(call(&mut c, &[b"BGSAVE"]), Reply::Simple("Background saving started".into()));
    call(&mut c, &[b"SET", b"after", b"1"]);
    // Clients are served while the child works: GETs answer.
    for _ in 0..100 {
        assert_eq!(call(&mut c, &[b"GET", b"before"]).bulk(), Some(&b"1"[..]));
    }
    wait_until!(Duration::from_secs(60), info_field(&mut c, "rdb_bgsave_in_progress") == "0");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        assert!(w.join().expect("writer") > 0);
    }
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_ne!(call(&mut c, &[b"LASTSAVE"]), lastsave);
    // Load the snapshot into a second server and check it.
    let copy = scratch_dir("bgsave-copy");
    std::fs::copy(dir.join("dump.rdb"), copy.join("dump.rdb")).expect("copy dump");
    let t = shard_in(&copy, &[]);
    let mut tc = t.client();
    assert_eq!(call(&mut tc, &[b"EXISTS", b"before"]), Reply::Int(1));
    assert_eq!(call(&mut tc, &[b"EXISTS", b"after"]), Reply::Int(0), "written after BGSAVE replied");
    assert_eq!(call(&mut tc, &[b"EXISTS", b"bulk:19:4999"]), Reply::Int(1));
    for w in 0..2 {
        for j in 0..50 {
            let x = call(&mut tc, &[b"GET", format!("x:{w}:{j}").as_bytes()]);
            let y = call(&mut tc, &[b"GET", format!("y:{w}:{j}").as_bytes()]);
            assert_eq!(x, y, "pair {w}:{j} torn in the snapshot");
        }
    }
    // A second BGSAVE while one runs errors as Redis does.
    assert_eq!(call(&mut c, &[b"BGSAVE"]), Reply::Simple("Background saving started".into()));
    let again = call(&mut c, &[b"BGSAVE"]);
    assert!(
        again == Reply::Error("ERR Background save already in progress".into())
            || again == Reply::Simple("Background saving started".into()),
        "{again:?}"
    );
    wait_until!(Duration::from_secs(60), info_field(&mut c, "rdb_bgsave_in_progress") == "0");
}

#[test]
fn save_rules_trigger_bgsave() {
    let dir = scratch_dir("rules");
    let s = shard_in(&dir, &["--save", "1 3"]);
    let mut c = s.client();
    for i in 0..5 {
        call(&mut c, &[b"SET", format!("k{i}").as_bytes(), b"v"]);
    }
    wait_until!(Duration::from_secs(20), info_field(&mut c, "rdb_changes_since_last_save") == "0");
    assert!(dir.join("dump.rdb").exists());
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
}

#[test]
fn migrate_to_redis_and_to_ours() {
    require_tool!("redis-server");
    let src = Server::shard(&[]);
    let redis_src = Server::redis(&[]);
    let targets = [Server::redis(&[]), Server::shard(&[])];
    for target in &targets {
        let port = target.port.to_string();
        let mut c = src.client();
        let mut t = target.client();
        load_dataset(&mut c);
        // One key, to db 0.
        assert_eq!(
            call(&mut c, &[b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"s:short", b"0", b"5000"]),
            Reply::Simple("OK".into())
        );
        assert_eq!(call(&mut c, &[b"EXISTS", b"s:short"]), Reply::Int(0));
        assert_eq!(call(&mut t, &[b"GET", b"s:short"]).bulk(), Some(&b"hello"[..]));
        // MIGRATE sends the TTL relative, as Redis does: the target's
        // absolute expiry is the same give or take the transfer time.
        let at = call(&mut t, &[b"PEXPIRETIME", b"s:short"]).int().expect("expiry");
        assert!((4_000_000_000_000..4_000_000_060_000).contains(&at), "{at}");
        // Many keys with KEYS, COPY keeps the source.
        let mut args: Vec<&[u8]> =
            vec![b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"", b"0", b"5000", b"COPY", b"KEYS"];
        let rest: Vec<&str> = KEYS.iter().copied().filter(|k| *k != "s:short").collect();
        args.extend(rest.iter().map(|k| k.as_bytes()));
        assert_eq!(call(&mut c, &args), Reply::Simple("OK".into()));
        for k in &rest {
            let (a, b) = (describe(&mut c, k), describe(&mut t, k));
            assert_eq!((a.0, a.1), (b.0, b.1), "{k}");
        }
        // Again without REPLACE: the target refuses, the source keeps.
        let busy = call(&mut c, &[b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"s:int", b"0", b"5000"]);
        assert_eq!(
            busy,
            Reply::Error("ERR Target instance replied with error: BUSYKEY Target key name already exists.".into())
        );
        assert_eq!(call(&mut c, &[b"EXISTS", b"s:int"]), Reply::Int(1));
        call(&mut c, &[b"SET", b"s:int", b"777"]);
        let ok = call(&mut c, &[b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"s:int", b"0", b"5000", b"REPLACE"]);
        assert_eq!(ok, Reply::Simple("OK".into()));
        assert_eq!(call(&mut t, &[b"GET", b"s:int"]).bulk(), Some(&b"777"[..]));
        // To another database.
        call(&mut c, &[b"SET", b"other", b"db3"]);
        call(&mut c, &[b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"other", b"3", b"5000"]);
        call(&mut t, &[b"SELECT", b"3"]);
        assert_eq!(call(&mut t, &[b"GET", b"other"]).bulk(), Some(&b"db3"[..]));
        call(&mut c, &[b"FLUSHALL"]);
        call(&mut t, &[b"FLUSHALL"]);
    }
    // Replies match redis-server's for missing keys and a dead target.
    let dead = slotway_testkit::free_port().to_string();
    for args in [
        vec![b("MIGRATE"), b("127.0.0.1"), b(&dead), b("nokey"), b("0"), b("100")],
        vec![b("MIGRATE"), b("127.0.0.1"), b(&dead), b("k"), b("0"), b("100"), b("KEYS"), b("k")],
        vec![b("MIGRATE"), b("127.0.0.1"), b(&dead), b(""), b("0"), b("100"), b("AUTH")],
    ] {
        let mut ours = src.client();
        let mut theirs = redis_src.client();
        assert_eq!(ours.cmd(&args).expect("ours"), theirs.cmd(&args).expect("theirs"));
    }
}
