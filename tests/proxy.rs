//! slotway in front of a real Redis Cluster (redis-server 7.0 processes made
//! into a cluster by `redis-cli --cluster create`), driven the way users
//! drive it: the real `redis-cli` without `-c`, redis-py (plain and
//! cluster-mode), raw pipelined sockets checked against a model, while the
//! cluster reshards and while a master dies.
//!
//! Clusters are expensive on 2 cores, so checks that leave the cluster as
//! they found it share one (`stable_cluster`, each check after a FLUSHALL,
//! every check run and reported even when an earlier one fails); the
//! reshard and failover tests get clusters of their own. Every loop is
//! bounded in count and in time. `SLOTWAY_PROXY_CHECK=<name>` runs only
//! the shared checks whose name contains it; `SLOTWAY_TEST_PATIENCE_MS`
//! stretches every wait.

mod proxy_chaos;

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::time::{Duration, Instant};

use slotway_slots::key_slot;
use slotway_testkit::cluster::run_bounded;
use slotway_testkit::{require_tool, run_redis_py, wait_until, Proxy, RawClient, RedisCluster, Reply};

/// A cluster and a proxy in front of it, seeded with one master.
pub struct Fixture {
    pub cluster: RedisCluster,
    pub proxy: Proxy,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.proxy.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of the slotway log ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Fixture {
    pub fn start(masters: usize, replicas: usize, cluster_extra: &[&str]) -> Fixture {
        Fixture::with_proxy_args(masters, replicas, cluster_extra, &[])
    }

    pub fn with_proxy_args(masters: usize, replicas: usize, cluster_extra: &[&str], proxy_extra: &[&str]) -> Fixture {
        let cluster = RedisCluster::start(masters, replicas, cluster_extra);
        let seed = cluster.masters()[0];
        let proxy = Proxy::start(&[seed], proxy_extra);
        // PING may be answered before the slot table is loaded; a keyed
        // command proves routing works.
        let mut c = proxy.client();
        let ready = slotway_testkit::wait::wait_for(Duration::from_secs(20), || {
            c.cmd(&["SET", "slotway:probe", "1"]).is_ok_and(|r| r == b"+OK\r\n")
        });
        assert!(ready.is_ok(), "slotway never accepted a SET:\n{}", proxy.log());
        Fixture { cluster, proxy }
    }
}

pub fn redis_cli(port: u16, args: &[&str]) -> String {
    redis_cli_stdin(port, args, None)
}

pub fn redis_cli_stdin(port: u16, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("-p").arg(port.to_string()).args(args);
    let out = run_bounded(cmd, stdin.map(str::as_bytes), Duration::from_secs(30));
    assert!(!out.timed_out, "redis-cli {args:?} did not finish");
    out.stdout
}

/// Splits a batch of commands given as text (`SET a b`) into arguments.
pub fn cmds(lines: &[String]) -> Vec<Vec<Vec<u8>>> {
    lines.iter().map(|l| l.split(' ').map(|a| a.as_bytes().to_vec()).collect()).collect()
}

/// xorshift64*: deterministic, so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn bulk(v: &str) -> Vec<u8> {
    Reply::Bulk(Some(v.as_bytes().to_vec())).encode()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// === the shared, stable cluster ===

type Check = (&'static str, fn(&Fixture));

const STABLE_CHECKS: &[Check] = &[
    ("redis_cli_commands", redis_cli_commands),
    ("redis_cli_errors", redis_cli_errors),
    ("redis_py_plain", redis_py_plain),
    ("redis_py_cluster_client", redis_py_cluster_client),
    ("pipeline_keeps_per_key_order", pipeline_keeps_per_key_order),
    ("raw_pipeline_against_model", raw_pipeline_against_model),
    ("scan_visits_every_key_once", scan_visits_every_key_once),
    ("metrics_and_readyz", metrics_and_readyz),
];

#[test]
fn stable_cluster() {
    require_tool!("redis-server");
    require_tool!("redis-cli");
    let only = std::env::var("SLOTWAY_PROXY_CHECK").ok();
    // Two workers, so every check also crosses the worker model: clients
    // spread over two event loops, each with its own upstream links.
    let fx = Fixture::with_proxy_args(3, 1, &[], &["--workers", "2"]);
    let mut failed = Vec::new();
    for (name, check) in STABLE_CHECKS {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        fx.cluster.flushall();
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| check(&fx))) {
            Ok(()) => eprintln!("check {name}: ok ({:?})", started.elapsed()),
            Err(_) => {
                eprintln!("check {name}: FAILED ({:?})", started.elapsed());
                failed.push(*name);
            }
        }
    }
    assert!(failed.is_empty(), "failed checks: {failed:?} (messages above)");
}

fn redis_cli_commands(fx: &Fixture) {
    let p = fx.proxy.port;
    // The key from the README: a cluster node would answer MOVED to a
    // client without -c; the proxy must not.
    assert_eq!(redis_cli(p, &["set", "name", "lqz"]), "OK\n");
    assert_eq!(redis_cli(p, &["get", "name"]), "lqz\n");

    let keys: Vec<String> = (0..1000).map(|i| format!("k:{i}")).collect();
    let map = fx.cluster.slot_map(fx.cluster.masters()[0]);
    let owners: HashSet<Option<u16>> = keys.iter().map(|k| map[usize::from(key_slot(k.as_bytes()))]).collect();
    assert!(owners.len() >= 3, "the keys should span every master: {owners:?}");
    let slots: HashSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
    assert!(slots.len() > 900, "1000 keys in {} slots", slots.len());
    let sets: String = keys.iter().enumerate().map(|(i, k)| format!("set {k} v{i}\n")).collect();
    assert_eq!(redis_cli_stdin(p, &[], Some(&sets)), "OK\n".repeat(keys.len()));
    let gets: String = keys.iter().map(|k| format!("get {k}\n")).collect();
    let want: String = (0..keys.len()).map(|i| format!("v{i}\n")).collect();
    assert_eq!(redis_cli_stdin(p, &[], Some(&gets)), want);

    let m: Vec<String> = (0..10).map(|i| format!("m:{i}")).collect();
    let mut mset = vec!["mset".to_owned()];
    for (i, k) in m.iter().enumerate() {
        mset.extend([k.clone(), format!("mv{i}")]);
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(redis_cli(p, &mset), "OK\n");
    let mget = ["mget", "m:9", "m:0", "nosuch:key", "m:5", "m:3"];
    assert_eq!(redis_cli(p, &mget), "mv9\nmv0\n\nmv5\nmv3\n", "MGET keeps argument order, nil in place");
    assert_eq!(fx.proxy.client().call(&mget).unwrap().array().map(<[Reply]>::len), Some(5));

    assert_eq!(fx.cluster.dbsize(), 1 + 1000 + 10, "name, k:* and m:*");
    assert_eq!(redis_cli(p, &["dbsize"]), format!("{}\n", fx.cluster.dbsize()), "DBSIZE sums every master");

    let mut del = vec!["del", "nosuch:a"];
    del.extend(m.iter().map(String::as_str));
    del.push("nosuch:b");
    assert_eq!(redis_cli(p, &del), "10\n", "DEL across slots counts every deleted key");
    assert_eq!(redis_cli(p, &["exists", "m:0", "m:9", "k:1", "k:2"]), "2\n");
    assert_eq!(redis_cli(p, &["dbsize"]), "1001\n");
}

fn redis_cli_errors(fx: &Fixture) {
    let p = fx.proxy.port;
    let direct = fx.cluster.masters()[0];
    assert_eq!(redis_cli(p, &["set", "k:1", "x"]), "OK\n");
    assert_ne!(key_slot(b"k:1"), key_slot(b"k:2"));
    // redis-cli prints an error and then an empty line; a node says the same.
    assert_eq!(redis_cli(p, &["rename", "k:1", "k:2"]), redis_cli(direct, &["rename", "k:1", "k:2"]));
    let raw = fx.proxy.client().cmd(&["RENAME", "k:1", "k:2"]).unwrap();
    assert_eq!(text(&raw), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    // Same slot through a hash tag is fine.
    assert_eq!(redis_cli(p, &["set", "{t}a", "1"]), "OK\n");
    assert_eq!(redis_cli(p, &["rename", "{t}a", "{t}b"]), "OK\n");
    assert_eq!(redis_cli(p, &["get", "{t}b"]), "1\n");

    // Unknown commands: byte for byte what a cluster node says.
    let unknown = ["nosuchcmd", "a", "b"];
    let theirs = fx.cluster.client(direct).cmd(&unknown).unwrap();
    let ours = fx.proxy.client().cmd(&unknown).unwrap();
    assert_eq!(text(&ours), text(&theirs));
    assert!(redis_cli(p, &unknown).starts_with("ERR unknown command 'nosuchcmd', with args beginning with: 'a' 'b'"));

    // MULTI cannot span nodes: a clear error, and the connection lives on.
    let mut c = fx.proxy.client();
    let r = c.call(&["MULTI"]).unwrap();
    let e = r.error().unwrap_or_else(|| panic!("MULTI must be refused, got {r:?}")).to_ascii_lowercase();
    assert!(e.contains("multi") || e.contains("not supported"), "unclear refusal: {e}");
    assert_eq!(c.cmd_str(&["SET", "after:multi", "1"]), "+OK\r\n", "not queued: MULTI was refused");
    assert_ne!(redis_cli(p, &["multi"]), "OK\n");
}

fn redis_py_plain(fx: &Fixture) {
    require_tool!("python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/proxy_plain.py");
    run_redis_py(&[script], fx.proxy.port, "redis-py redis.Redis via slotway");
}

fn redis_py_cluster_client(fx: &Fixture) {
    require_tool!("python3");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/proxy_cluster.py");
    run_redis_py(&[script], fx.proxy.port, "redis-py redis.cluster.RedisCluster via slotway");
}

/// The smallest form of what the model check below looks for: in one
/// pipeline, a read after a write of the same key sees that write, whether
/// the read is a GET or an MGET (which the proxy may split).
fn pipeline_keeps_per_key_order(fx: &Fixture) {
    let mut lines = Vec::new();
    for i in 0..300 {
        let k = format!("ord:{}", i % 10);
        lines.push(format!("SET {k} {i}"));
        lines.push(if i % 2 == 0 { format!("GET {k}") } else { format!("MGET {k}") });
    }
    let got = fx.proxy.client().pipeline(&cmds(&lines)).expect("600 replies");
    let wrong: Vec<String> = (0..300)
        .filter_map(|i| {
            let v = i.to_string();
            let want = if i % 2 == 0 {
                bulk(&v)
            } else {
                Reply::Array(Some(vec![Reply::Bulk(Some(v.into_bytes()))])).encode()
            };
            let g = &got[2 * i + 1];
            (g != &want).then(|| format!("{} after {}: {:?}", lines[2 * i + 1], lines[2 * i], text(g)))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of 300 reads missed the write just before them, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// 10,000 pipelined SET/GET/INCR/MGET/DEL over 300 random keys, every
/// reply compared byte for byte with what a single Redis would say.
fn raw_pipeline_against_model(fx: &Fixture) {
    let mut rng = Rng::new(0x5107_0a7e);
    let mut model: HashMap<String, i64> = HashMap::new();
    let mut lines = Vec::with_capacity(10_000);
    let mut want = Vec::with_capacity(10_000);
    let key = |rng: &mut Rng| format!("pk:{}", rng.below(300));
    for _ in 0..10_000 {
        match rng.below(10) {
            0..=2 => {
                let (k, v) = (key(&mut rng), rng.below(1_000_000) as i64);
                lines.push(format!("SET {k} {v}"));
                want.push(b"+OK\r\n".to_vec());
                model.insert(k, v);
            }
            3..=4 => {
                let k = key(&mut rng);
                lines.push(format!("GET {k}"));
                want.push(model.get(&k).map_or(b"$-1\r\n".to_vec(), |v| bulk(&v.to_string())));
            }
            5..=6 => {
                let k = key(&mut rng);
                lines.push(format!("INCR {k}"));
                let v = model.entry(k).or_insert(0);
                *v += 1;
                want.push(format!(":{v}\r\n").into_bytes());
            }
            7..=8 => {
                let ks: Vec<String> = (0..1 + rng.below(5)).map(|_| key(&mut rng)).collect();
                lines.push(format!("MGET {}", ks.join(" ")));
                let items = ks.iter().map(|k| Reply::Bulk(model.get(k).map(|v| v.to_string().into_bytes()))).collect();
                want.push(Reply::Array(Some(items)).encode());
            }
            _ => {
                let ks: Vec<String> = (0..1 + rng.below(3)).map(|_| key(&mut rng)).collect();
                lines.push(format!("DEL {}", ks.join(" ")));
                let unique: HashSet<&String> = ks.iter().collect();
                let n = unique.into_iter().filter(|k| model.remove(*k).is_some()).count();
                want.push(format!(":{n}\r\n").into_bytes());
            }
        }
    }
    let got = fx.proxy.client().pipeline(&cmds(&lines)).expect("10,000 replies");
    assert_eq!(got.len(), want.len());
    let wrong: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    let shown: Vec<String> = wrong
        .iter()
        .take(5)
        .map(|&i| format!("#{i} {}: got {:?}, want {:?}", lines[i], text(&got[i]), text(&want[i])))
        .collect();
    // Around the first mismatch: the commands near it on the same keys,
    // and the command that wrote each value it returned, show which
    // commands the proxy ran out of order.
    let context = wrong.first().map_or(String::new(), |&i| {
        let keys: HashSet<&str> = lines[i].split(' ').skip(1).collect();
        let near = (i.saturating_sub(40)..(i + 40).min(lines.len()))
            .filter(|&j| lines[j].split(' ').skip(1).any(|k| keys.contains(k)))
            .map(|j| format!("  #{j} {} -> {:?}", lines[j], text(&got[j])));
        let values: Vec<String> = match Reply::parse(&got[i]) {
            Some(Reply::Array(Some(items))) => items.iter().filter_map(|r| r.bulk().map(text)).collect(),
            Some(Reply::Bulk(Some(b))) => vec![text(&b)],
            _ => Vec::new(),
        };
        let writers = values.iter().filter_map(|v| {
            let j = lines.iter().position(|l| l.starts_with("SET ") && l.ends_with(&format!(" {v}")))?;
            Some(format!("  value {v} was written by #{j} {}", lines[j]))
        });
        near.chain(writers).collect::<Vec<_>>().join("\n")
    });
    assert!(
        wrong.is_empty(),
        "{} of 10000 replies differ from the model (first 5):\n{}\nsame keys near the first:\n{context}",
        wrong.len(),
        shown.join("\n")
    );
}

fn scan_visits_every_key_once(fx: &Fixture) {
    let mut c = fx.proxy.client();
    c.cmd(&["DEL", "slotway:probe"]).unwrap();
    let lines: Vec<String> = (0..10_000).map(|i| format!("SET scan:{i} {i}")).collect();
    let replies = c.pipeline(&cmds(&lines)).expect("replies");
    assert!(replies.iter().all(|r| r == b"+OK\r\n"));
    assert_eq!(fx.cluster.dbsize(), 10_000);
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut cursor = b"0".to_vec();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls <= 20_000 && Instant::now() < deadline, "SCAN did not finish ({calls} calls)");
        let r = c.call(&[&b"SCAN"[..], &cursor, b"COUNT", b"100"]).unwrap();
        let items = r.array().unwrap_or_else(|| panic!("SCAN reply {r:?}"));
        let [next, keys] = items else { panic!("SCAN reply {r:?}") };
        for k in keys.array().expect("key list") {
            *seen.entry(k.bulk().expect("key").to_vec()).or_default() += 1;
        }
        cursor = next.bulk().expect("cursor").to_vec();
        if cursor == b"0" {
            break;
        }
    }
    let twice: Vec<String> =
        seen.iter().filter(|(_, &n)| n > 1).take(5).map(|(k, n)| format!("{} x{n}", text(k))).collect();
    assert!(twice.is_empty(), "keys returned more than once: {twice:?}");
    let missing: Vec<String> =
        (0..10_000).map(|i| format!("scan:{i}")).filter(|k| !seen.contains_key(k.as_bytes())).take(5).collect();
    assert!(missing.is_empty(), "keys never returned: {missing:?} ({} seen)", seen.len());
    assert_eq!(seen.len(), 10_000);
}

fn metrics_and_readyz(fx: &Fixture) {
    let mut c = fx.proxy.client();
    for i in 0..20 {
        assert_eq!(c.cmd_str(&["SET", &format!("metric:{i}"), "1"]), "+OK\r\n");
    }
    wait_until!(Duration::from_secs(10), fx.proxy.http_get("/readyz").is_ok_and(|(s, _)| s == 200));
    let (status, body) = fx.proxy.http_get("/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE "), "no # TYPE lines in /metrics:\n{body}");
    assert!(body.contains("# TYPE slotway_requests_total counter"), "slotway_requests_total is not a counter:\n{body}");
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("slotway_requests_total"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum();
    assert!(total >= 20.0, "slotway_requests_total sums to {total} after 20 SETs");
}

// === the harness itself, against the real cluster only ===

#[test]
fn cluster_harness() {
    require_tool!("redis-server");
    require_tool!("redis-cli");
    let mut cluster = RedisCluster::start(3, 0, &[]);
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    let total: usize = masters.iter().map(|&m| cluster.slot_count(masters[0], m)).sum();
    assert_eq!(total, 16384);
    let owner = cluster.slot_owner(masters[1], key_slot(b"name")).expect("owner");
    let mut c = cluster.client(owner);
    assert_eq!(c.cmd_str(&["SET", "name", "lqz"]), "+OK\r\n");
    let other = *masters.iter().find(|&&m| m != owner).unwrap();
    assert!(cluster.client(other).cmd_str(&["GET", "name"]).starts_with("-MOVED "));
    let pids: Vec<u32> = masters.iter().map(|&m| cluster.pid(m).unwrap()).collect();
    cluster.kill_node(other);
    assert!(RawClient::connect(other).is_err());
    assert!(cluster.pid(other).is_none());
    drop(cluster);
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} survived drop");
    }
}
