//! Cluster mode side by side: a redis-server cluster and a slotway-shard
//! cluster, built the same way in the same run.
//!
//! - failover: three masters with a replica each, `cluster-node-timeout
//!   1000`; a writer keeps SETting keys of one master's slots, the master
//!   is `kill -9`ed, and we time how long until a write succeeds again and
//!   count acknowledged writes that are gone afterwards. Repeated
//!   `SLOTWAY_BENCH_FAILOVER_RUNS` times (10); slotway-shard also runs with
//!   `replica-ack-writes yes` (synchronous replication: zero lost).
//! - reshard: `SLOTWAY_BENCH_RESHARD_KEYS` keys (1,000,000) spread over
//!   three masters, then `redis-cli --cluster reshard` of 4096 slots to one
//!   of them, timed.
//!
//! `cargo bench -p slotway-benches --bench cluster` (`SLOTWAY_BENCH_ONLY=
//! failover|reshard` runs one part).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotway_benches::{env_u64, median};
use slotway_slots::key_slot;
use slotway_testkit::cluster::Follow;
use slotway_testkit::{workspace_bin, RedisCluster};

struct Side {
    name: &'static str,
    bin: PathBuf,
    extra: &'static [&'static str],
}

fn sides() -> Vec<Side> {
    let ours = workspace_bin("slotway-shard");
    vec![
        Side { name: "redis-server", bin: PathBuf::from("redis-server"), extra: &[] },
        Side { name: "slotway-shard", bin: ours.clone(), extra: &[] },
        Side { name: "slotway-shard sync", bin: ours, extra: &["--replica-ack-writes", "yes"] },
    ]
}

/// One failover: (seconds until writes succeed again, acknowledged writes lost).
fn failover_once(bin: &Path, extra: &[&str]) -> (f64, usize) {
    let mut args = vec!["--cluster-node-timeout", "1000"];
    args.extend_from_slice(extra);
    let mut cluster = RedisCluster::start_with(bin, 3, 1, &args);
    let seed = cluster.masters()[1];
    let victim = cluster.masters()[0];
    let map = cluster.slot_map(seed);
    let keys: Vec<String> = (0..)
        .map(|i| format!("fo:{i}"))
        .filter(|k| map[key_slot(k.as_bytes()) as usize] == Some(victim))
        .take(10_000)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<parking_lot_free::Cell> = Arc::new(parking_lot_free::Cell::default());
    let writer = {
        let (stop, keys, killed_at) = (stop.clone(), keys.clone(), killed_at.clone());
        std::thread::spawn(move || {
            let f = Follow { seed, budget: Duration::from_secs(30) };
            let mut acked = Vec::new();
            let mut resumed = None;
            for (n, key) in keys.iter().cycle().enumerate().take(2_000_000) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let value = n.to_string();
                let issued = Instant::now();
                if f.call(&["SET", key, &value]).is_ok_and(|r| r == b"+OK\r\n") {
                    acked.push((key.clone(), value));
                    // The first write issued after the kill waits out the
                    // failover inside `call`; its completion ends the outage.
                    if resumed.is_none() {
                        if let Some(k) = killed_at.get().filter(|&k| issued >= k) {
                            resumed = Some(k.elapsed());
                        }
                    }
                }
            }
            (acked, resumed)
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    killed_at.set(Instant::now());
    cluster.kill_node(victim);
    // Give the failover time, then some more writes on the new master.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && cluster.masters().len() < 3 {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let (acked, resumed) = writer.join().expect("writer");
    // The last acknowledged value of each key must be there.
    let mut last = std::collections::HashMap::new();
    for (k, v) in acked {
        last.insert(k, v);
    }
    let f = Follow { seed, budget: Duration::from_secs(10) };
    let lost = last
        .iter()
        .filter(|(k, v)| {
            let got = f.call(&["GET", k]).unwrap_or_default();
            got != format!("${}\r\n{v}\r\n", v.len()).into_bytes()
        })
        .count();
    (resumed.map_or(f64::NAN, |d| d.as_secs_f64()), lost)
}

/// A tiny Instant cell shared with the writer, without a lock crate.
mod parking_lot_free {
    use std::sync::Mutex;
    use std::time::Instant;

    #[derive(Default)]
    pub struct Cell(Mutex<Option<Instant>>);

    impl Cell {
        pub fn set(&self, t: Instant) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        }
        pub fn get(&self) -> Option<Instant> {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

fn failover() {
    let runs = env_u64("SLOTWAY_BENCH_FAILOVER_RUNS", 10) as usize;
    println!("failover after kill -9 of a master, cluster-node-timeout 1000, {runs} runs each");
    println!("{:<20} {:>10} {:>10} {:>10} {:>12}", "nodes", "median s", "max s", "min s", "lost writes");
    for side in sides() {
        let mut times = Vec::new();
        let mut lost = Vec::new();
        for _ in 0..runs {
            let (t, l) = failover_once(&side.bin, side.extra);
            times.push(t);
            lost.push(l);
        }
        let max = times.iter().copied().fold(f64::NAN, f64::max);
        let min = times.iter().copied().fold(f64::NAN, f64::min);
        let lost_s: Vec<String> = lost.iter().map(|l| l.to_string()).collect();
        println!("{:<20} {:>10.2} {:>10.2} {:>10.2} {:>12}", side.name, median(times), max, min, lost_s.join(","));
    }
}

/// Loads `n` keys straight into their owners with `redis-cli --pipe`.
fn load(cluster: &RedisCluster, n: u64) {
    let seed = cluster.masters()[0];
    let map = cluster.slot_map(seed);
    let mut per: std::collections::HashMap<u16, Vec<u8>> = std::collections::HashMap::new();
    for i in 0..n {
        let key = format!("key:{i}");
        let owner = map[key_slot(key.as_bytes()) as usize].expect("covered");
        let buf = per.entry(owner).or_default();
        let value = format!("value-{i}");
        write!(buf, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()).unwrap();
    }
    for (port, bytes) in per {
        let mut child = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli --pipe");
        child.stdin.take().expect("stdin").write_all(&bytes).expect("pipe");
        assert!(child.wait().expect("redis-cli").success());
    }
    assert_eq!(cluster.dbsize(), n as i64, "every key loaded");
}

fn reshard() {
    let n = env_u64("SLOTWAY_BENCH_RESHARD_KEYS", 1_000_000);
    println!("redis-cli --cluster reshard of 4096 slots, {n} keys in the cluster");
    let mut results = Vec::new();
    for side in sides().into_iter().take(2) {
        let cluster = RedisCluster::start_with(&side.bin, 3, 0, &["--cluster-node-timeout", "5000"]);
        load(&cluster, n);
        let masters = cluster.masters();
        let (from, to) = (cluster.node_id(masters[0]), cluster.node_id(masters[2]));
        let started = Instant::now();
        let out = Command::new("redis-cli")
            .args(["--cluster", "reshard", &format!("127.0.0.1:{}", masters[0])])
            .args(["--cluster-from", &from, "--cluster-to", &to, "--cluster-slots", "4096", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli --cluster reshard");
        let took = started.elapsed().as_secs_f64();
        assert!(out.success(), "reshard failed on {}", side.name);
        assert_eq!(cluster.dbsize(), n as i64, "no key lost on {}", side.name);
        println!("{:<20} {:>8.2} s", side.name, took);
        results.push(took);
    }
    if let [redis, ours] = results[..] {
        println!("speed ratio (redis time / slotway time, goal >= 1.0): {:.2}x", redis / ours);
    }
}

fn main() {
    let only = std::env::var("SLOTWAY_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "failover" {
        failover();
    }
    if only.is_empty() || only == "reshard" {
        reshard();
    }
}
