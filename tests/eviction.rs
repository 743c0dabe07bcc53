//! `maxmemory` and eviction: slotway-shard started with a memory limit and
//! each policy, written well past the limit, and compared with redis-server
//! where the comparison means something (the OOM refusal byte for byte,
//! and whether a hot set survives under the same load).

use std::time::Duration;

use slotway_testkit::{require_tool, wait_until, RawClient, Server};

/// The limit every test runs under: small enough to pass quickly, large
/// enough that the fixed overheads are a small share.
const MAX: u64 = 8 << 20;
const MAX_ARG: &str = "8mb";
/// The refusal redis-server 7.0.15 sends.
const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
/// Pipelined writes per round trip.
const CHUNK: usize = 1000;

fn value(i: usize) -> Vec<u8> {
    format!("{i:0>100}").into_bytes()
}

/// Runs `SET prefix{i} value [EX ttl(i)]` for every `i` in `range`, in
/// pipelined chunks; returns the replies that were not `+OK`, with `i`.
fn write(
    c: &mut RawClient,
    prefix: &str,
    range: std::ops::Range<usize>,
    ttl: impl Fn(usize) -> Option<u64>,
) -> Vec<(usize, Vec<u8>)> {
    let mut refused = Vec::new();
    let idx: Vec<usize> = range.collect();
    for part in idx.chunks(CHUNK) {
        let cmds: Vec<Vec<Vec<u8>>> = part
            .iter()
            .map(|&i| {
                let mut cmd = vec![b"SET".to_vec(), format!("{prefix}{i}").into_bytes(), value(i)];
                if let Some(t) = ttl(i) {
                    cmd.extend([b"EX".to_vec(), t.to_string().into_bytes()]);
                }
                cmd
            })
            .collect();
        for (i, r) in part.iter().zip(c.pipeline(&cmds).expect("pipeline")) {
            if r != b"+OK\r\n" {
                refused.push((*i, r));
            }
        }
    }
    refused
}

/// How many of `keys` exist.
fn existing(c: &mut RawClient, keys: &[String]) -> usize {
    let cmds: Vec<Vec<Vec<u8>>> = keys.iter().map(|k| vec![b"EXISTS".to_vec(), k.clone().into_bytes()]).collect();
    c.pipeline(&cmds).expect("pipeline").iter().filter(|r| r.as_slice() == b":1\r\n").count()
}

/// Reads every key of `keys` once (GET, pipelined).
fn read_all(c: &mut RawClient, keys: &[String]) {
    for part in keys.chunks(CHUNK) {
        let cmds: Vec<Vec<Vec<u8>>> = part.iter().map(|k| vec![b"GET".to_vec(), k.clone().into_bytes()]).collect();
        c.pipeline(&cmds).expect("pipeline");
    }
}

/// A numeric field of INFO text: `name:N` in any section, or `name=N` in
/// db0's keyspace line (0 when there is no db0).
fn field(text: &str, name: &str) -> u64 {
    if let Some(line) = text.lines().find(|l| l.starts_with(&format!("{name}:"))) {
        return line[name.len() + 1..].trim().parse().unwrap_or_else(|_| panic!("{line}"));
    }
    let Some(db0) = text.lines().find(|l| l.starts_with("db0:")) else { return 0 };
    db0.split([':', ','])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}

/// A numeric field of INFO (any section).
fn info(c: &mut RawClient, name: &str) -> u64 {
    field(&c.cmd_str(&["INFO", "everything"]), name)
}

/// db0's `keys=` and `expires=` from one INFO keyspace.
fn keyspace(c: &mut RawClient) -> (u64, u64) {
    let text = c.cmd_str(&["INFO", "keyspace"]);
    (field(&text, "keys"), field(&text, "expires"))
}

/// Used memory is back within 5% of the limit (every command, INFO
/// included, evicts first, so this settles at once).
fn assert_holds_limit(c: &mut RawClient, what: &str) {
    wait_until!(
        Duration::from_secs(5),
        info(c, "used_memory") <= MAX + MAX / 20,
        "{what}: used_memory {} over {MAX}",
        info(c, "used_memory")
    );
}

fn shard(policy: &str) -> Server {
    Server::shard(&["--maxmemory", MAX_ARG, "--maxmemory-policy", policy])
}

fn redis(policy: &str) -> Server {
    Server::redis(&["--maxmemory", MAX_ARG, "--maxmemory-policy", policy])
}

/// Fills a noeviction server until writes are refused; returns the
/// replies to a fixed script run afterwards.
fn noeviction_script(server: &Server) -> Vec<Vec<u8>> {
    let mut c = server.client();
    let mut refused = Vec::new();
    for round in 0..200 {
        refused = write(&mut c, "k", round * CHUNK..(round + 1) * CHUNK, |_| None);
        if !refused.is_empty() {
            break;
        }
    }
    assert!(!refused.is_empty(), "never refused");
    assert!(refused.iter().all(|(_, r)| r == OOM), "{:?}", String::from_utf8_lossy(&refused[0].1));
    assert_holds_limit(&mut c, "noeviction");
    let mut out = Vec::new();
    for cmd in [
        &["SET", "new", "v"][..],
        &["GET", "k1"],
        &["DEL", "k2"],
        &["SET", "k1", "v"],
        &["MULTI"],
        &["GET", "k1"],
        &["SET", "x", "y"],
        &["EXEC"],
        &["MULTI"],
        &["DISCARD"],
        &["LPUSH", "l", "a"],
        &["INCR", "k3"],
        &["EXPIRE", "k1", "100"],
    ] {
        out.push(c.cmd(cmd).expect("reply"));
    }
    assert_eq!(info(&mut c, "evicted_keys"), 0);
    // The time over the limit is shown (how much depends on whether freed
    // client buffers brought memory back under; the unit tests count it).
    let text = c.cmd_str(&["INFO", "stats"]);
    assert!(field(&text, "total_eviction_exceeded_time") >= field(&text, "current_eviction_exceeded_time"));
    out
}

#[test]
fn noeviction_refuses_writes_like_redis() {
    require_tool!("redis-server");
    let ours = noeviction_script(&shard("noeviction"));
    let theirs = noeviction_script(&redis("noeviction"));
    let show = |v: &[Vec<u8>]| v.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>();
    assert_eq!(show(&ours), show(&theirs));
    assert_eq!(ours[0], OOM);
}

#[test]
fn exec_is_refused_when_its_commands_may_grow_memory() {
    require_tool!("redis-server");
    let run = |server: &Server| {
        let (mut a, mut b) = (server.client(), server.client());
        let mut out = Vec::new();
        for (c, cmd) in [
            (0, &["SET", "w", "1"][..]),
            (0, &["MULTI"]),
            (0, &["SET", "x", "y"]),
            (0, &["GET", "w"]),
            (1, &["CONFIG", "SET", "maxmemory", "1"]),
            (0, &["EXEC"]),
            (0, &["EXEC"]),
            (0, &["MULTI"]),
            (1, &["CONFIG", "SET", "maxmemory", "0"]),
            (0, &["GET", "w"]),
            (1, &["CONFIG", "SET", "maxmemory", "1"]),
            (0, &["EXEC"]),
            (1, &["CONFIG", "SET", "maxmemory", "0"]),
        ] {
            let c = if c == 0 { &mut a } else { &mut b };
            out.push(String::from_utf8_lossy(&c.cmd(cmd).expect("reply")).into_owned());
        }
        out
    };
    let ours = run(&Server::shard(&[]));
    assert_eq!(ours, run(&Server::redis(&[])));
    assert!(ours[5].starts_with("-EXECABORT Transaction discarded because of: OOM"), "{}", ours[5]);
    // A transaction of reads runs even when out of memory.
    assert_eq!(ours[11], "*1\r\n$1\r\n1\r\n");
}

#[test]
fn allkeys_policies_hold_the_limit() {
    for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let server = shard(policy);
        let mut c = server.client();
        // About three times the limit.
        let refused = write(&mut c, "k", 0..100_000, |_| None);
        assert!(refused.is_empty(), "{policy}: {:?}", refused.first());
        assert_holds_limit(&mut c, policy);
        // One INFO for both: every command, INFO too, may evict first.
        let text = c.cmd_str(&["INFO", "everything"]);
        let (keys, evicted) = (field(&text, "keys"), field(&text, "evicted_keys"));
        assert!(keys > 10_000 && keys < 100_000, "{policy}: {keys} keys");
        assert_eq!(evicted + keys, 100_000, "{policy}: evicted_keys counts every eviction");
        assert_eq!(info(&mut c, "maxmemory"), MAX);
        assert!(c.cmd_str(&["INFO", "memory"]).contains(&format!("maxmemory_policy:{policy}\r\n")));
    }
}

#[test]
fn volatile_policies_spare_keys_without_ttl() {
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        let server = shard(policy);
        let mut c = server.client();
        assert!(write(&mut c, "p", 0..10_000, |_| None).is_empty());
        let refused = write(&mut c, "t", 0..60_000, |i| Some(3600 + i as u64));
        assert!(refused.is_empty(), "{policy}: {:?}", refused.first());
        assert_holds_limit(&mut c, policy);
        let (keys, expires) = keyspace(&mut c);
        assert_eq!(keys - expires, 10_000, "{policy}: a key without TTL was evicted");
        assert!(info(&mut c, "evicted_keys") > 0, "{policy}");
        // Once no key with a TTL is left, writes are refused as under
        // noeviction.
        let mut refused = Vec::new();
        for round in 10..200 {
            refused = write(&mut c, "p", round * CHUNK..(round + 1) * CHUNK, |_| None);
            if !refused.is_empty() {
                break;
            }
        }
        assert!(!refused.is_empty() && refused.iter().all(|(_, r)| r == OOM), "{policy}: {:?}", refused.first());
        assert_eq!(keyspace(&mut c).1, 0, "{policy}: refused while keys with a TTL were left");
        assert_eq!(
            c.cmd(&["GET", "p1"]).unwrap(),
            format!("$100\r\n{}\r\n", String::from_utf8_lossy(&value(1))).into_bytes()
        );
    }
}

/// Writes keys whose TTLs are a shuffle of `n` distinct values; returns
/// the share of survivors that are among the latest-expiring ones (true
/// TTL order would keep exactly those).
fn ttl_order_kept(server: &Server) -> f64 {
    let n = 60_000;
    let rank = |i: usize| (i * 7919) % n;
    let mut c = server.client();
    assert!(write(&mut c, "t", 0..n, |i| Some(10_000 + rank(i) as u64)).is_empty());
    let keys = c.call(&["KEYS", "t*"]).expect("keys");
    let slotway_testkit::Reply::Array(Some(keys)) = keys else { panic!("KEYS") };
    let survivors = keys.len();
    assert!(survivors > 0 && survivors < n);
    let bar = n - survivors - survivors / 4;
    let good = keys
        .iter()
        .filter(|k| match k {
            slotway_testkit::Reply::Bulk(Some(k)) => {
                let i: usize = String::from_utf8_lossy(&k[1..]).parse().unwrap();
                rank(i) >= bar
            }
            _ => false,
        })
        .count();
    good as f64 / survivors as f64
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire() {
    require_tool!("redis-server");
    let ours = ttl_order_kept(&shard("volatile-ttl"));
    let theirs = ttl_order_kept(&redis("volatile-ttl"));
    eprintln!("volatile-ttl: latest-expiring share of survivors: slotway {ours:.3}, redis {theirs:.3}");
    assert!(ours >= 0.8, "slotway kept {ours:.3}");
    assert!(theirs >= 0.8, "the bar is unfair: redis kept {theirs:.3}");
}

/// A hot set of 1000 keys read between rounds of cold writes that total
/// over twice the limit; returns the share of the hot set that survived.
/// `pause` spreads the rounds so that the limit holds a few seconds of
/// writes, which LRU needs: its clock counts seconds, in Redis as here, so
/// a hot key is only told from a cold one once the cold one is a second
/// or two old.
fn hot_set_kept(server: &Server, pause: Duration) -> f64 {
    let mut c = server.client();
    let hot: Vec<String> = (0..1000).map(|i| format!("hot{i}")).collect();
    assert!(write(&mut c, "hot", 0..1000, |_| None).is_empty());
    read_all(&mut c, &hot);
    for round in 0..50 {
        assert!(write(&mut c, "cold", round * 800..(round + 1) * 800, |_| None).is_empty());
        read_all(&mut c, &hot);
        std::thread::sleep(pause);
    }
    assert_holds_limit(&mut c, "hot set");
    existing(&mut c, &hot) as f64 / hot.len() as f64
}

#[test]
fn allkeys_lru_keeps_a_recently_read_hot_set() {
    require_tool!("redis-server");
    let pause = Duration::from_millis(100);
    let ours = hot_set_kept(&shard("allkeys-lru"), pause);
    let theirs = hot_set_kept(&redis("allkeys-lru"), pause);
    eprintln!("allkeys-lru: hot set kept: slotway {ours:.3}, redis {theirs:.3}");
    assert!(ours >= 0.9, "slotway kept {ours:.3}");
    assert!(theirs >= 0.9, "the bar is unfair: redis kept {theirs:.3}");
}

#[test]
fn allkeys_lfu_keeps_a_frequently_read_hot_set() {
    require_tool!("redis-server");
    let ours = hot_set_kept(&shard("allkeys-lfu"), Duration::ZERO);
    let theirs = hot_set_kept(&redis("allkeys-lfu"), Duration::ZERO);
    eprintln!("allkeys-lfu: hot set kept: slotway {ours:.3}, redis {theirs:.3}");
    assert!(ours >= 0.9, "slotway kept {ours:.3}");
    assert!(theirs >= 0.9, "the bar is unfair: redis kept {theirs:.3}");
}

#[test]
fn config_set_takes_effect_at_once() {
    let server = Server::shard(&[]);
    let mut c = server.client();
    assert!(write(&mut c, "k", 0..40_000, |_| None).is_empty());
    assert!(info(&mut c, "used_memory") > MAX, "the fill did not pass the limit");
    assert_eq!(c.cmd_str(&["CONFIG", "SET", "maxmemory", MAX_ARG]), "+OK\r\n");
    // noeviction by default: the next write is refused, reads still run.
    assert_eq!(c.cmd(&["SET", "x", "1"]).unwrap(), OOM);
    assert_eq!(c.cmd_str(&["GET", "x"]), "$-1\r\n");
    assert_eq!(c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]), "+OK\r\n");
    assert_eq!(c.cmd_str(&["SET", "x", "1"]), "+OK\r\n");
    assert_holds_limit(&mut c, "after CONFIG SET");
    assert!(info(&mut c, "evicted_keys") > 0);
    let text = c.cmd_str(&["INFO", "memory"]);
    assert!(
        text.contains("maxmemory:8388608\r\nmaxmemory_human:8.00M\r\nmaxmemory_policy:allkeys-random\r\n"),
        "{text}"
    );
    // Lifting the limit stops eviction.
    assert_eq!(c.cmd_str(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    let before = info(&mut c, "evicted_keys");
    assert!(write(&mut c, "more", 0..20_000, |_| None).is_empty());
    assert_eq!(info(&mut c, "evicted_keys"), before);
}

#[test]
fn eviction_aborts_watchers_and_object_freq_follows_lfu() {
    let server = shard("allkeys-random");
    let (mut a, mut b) = (server.client(), server.client());
    assert!(write(&mut b, "k", 0..1000, |_| None).is_empty());
    assert_eq!(a.cmd_str(&["WATCH", "k1"]), "+OK\r\n");
    // A limit nothing fits under: every key goes, then writes are refused.
    assert_eq!(b.cmd_str(&["CONFIG", "SET", "maxmemory", "1"]), "+OK\r\n");
    // Each command evicts for a bounded time before it runs.
    wait_until!(Duration::from_secs(5), b.cmd_str(&["DBSIZE"]) == ":0\r\n");
    assert_eq!(b.cmd(&["SET", "z", "1"]).unwrap(), OOM);
    assert_eq!(info(&mut b, "evicted_keys"), 1000);
    assert_eq!(b.cmd_str(&["CONFIG", "SET", "maxmemory", "0"]), "+OK\r\n");
    assert_eq!(a.cmd_str(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd_str(&["SET", "k1", "2"]), "+QUEUED\r\n");
    assert_eq!(a.cmd_str(&["EXEC"]), "*-1\r\n");
    // LFU: a new key starts at 5 and its first read always counts.
    assert_eq!(b.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]), "+OK\r\n");
    assert_eq!(b.cmd_str(&["SET", "f", "some text"]), "+OK\r\n");
    assert_eq!(b.cmd_str(&["OBJECT", "FREQ", "f"]), ":5\r\n");
    b.cmd_str(&["GET", "f"]);
    assert_eq!(b.cmd_str(&["OBJECT", "FREQ", "f"]), ":6\r\n");
    assert!(b.cmd_str(&["OBJECT", "IDLETIME", "f"]).starts_with("-ERR An LFU maxmemory policy is selected"));
}

#[test]
fn policy_replies_match_redis() {
    require_tool!("redis-server");
    let script: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        &["SET", "f", "hello"],
        &["OBJECT", "FREQ", "f"],
        &["GET", "f"],
        &["OBJECT", "FREQ", "f"],
        &["OBJECT", "IDLETIME", "f"],
        &["OBJECT", "FREQ", "nokey"],
        // (OBJECT FREQ now would be 6 or, one time in eleven, 7.)
        &["SET", "f", "other"],
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"],
        &["OBJECT", "FREQ", "f"],
        &["SET", "t", "v", "EX", "100"],
        &["CONFIG", "SET", "maxmemory", "1"],
        &["SET", "x", "y"],
        &["DBSIZE"],
        &["GET", "f"],
        &["GET", "t"],
        &["DEL", "f"],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"],
        &["SET", "x", "y"],
        &["DBSIZE"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["SET", "x", "y"],
    ];
    let run = |server: &Server| {
        let mut c = server.client();
        script.iter().map(|cmd| String::from_utf8_lossy(&c.cmd(cmd).expect("reply")).into_owned()).collect::<Vec<_>>()
    };
    let ours = run(&Server::shard(&[]));
    assert_eq!(ours, run(&Server::redis(&[])));
    assert_eq!(ours[2], ":5\r\n");
}
