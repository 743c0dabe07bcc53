//! slotway-shard against redis-server 7.0, in the same run on the same
//! machine: `redis-benchmark` throughput per command and pipeline depth, and
//! memory per key for 1,000,000 32-byte string values.
//!
//! `cargo bench -p slotway-benches --bench shard_vs_redis` (set
//! `SLOTWAY_BENCH_N` to change the request count per line).

use std::process::Command;

use slotway_testkit::{have_tool, RawClient, Server};

const TESTS: &[&str] = &["set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd", "mset"];

/// Runs redis-benchmark and returns requests per second per test.
fn redis_benchmark(port: u16, pipeline: u32, n: u64) -> Vec<(String, f64)> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "50", "-r", "100000", "-n", &n.to_string()])
        .args(["-P", &pipeline.to_string(), "-t", &TESTS.join(","), "--csv"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').map(|c| c.trim_matches('"')).collect();
            Some((cols.first()?.to_string(), cols.get(1)?.parse().ok()?))
        })
        .collect()
}

fn used_memory(c: &mut RawClient) -> u64 {
    let info = c.cmd_str(&["INFO", "memory"]);
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Bytes per key after SETting `keys` keys with 32-byte values.
fn bytes_per_key(server: &Server, keys: u64) -> f64 {
    let mut c = server.client();
    let before = used_memory(&mut c);
    let value = "v".repeat(32);
    let batch = 1000;
    for start in (0..keys).step_by(batch) {
        let end = (start + batch as u64).min(keys);
        for i in start..end {
            c.send(&["SET", &format!("key:{i:012}"), &value]).expect("send");
        }
        for _ in start..end {
            c.read_reply().expect("reply");
        }
    }
    let after = used_memory(&mut c);
    (after.saturating_sub(before)) as f64 / keys as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for tool in ["redis-server", "redis-benchmark"] {
        if !have_tool(tool) {
            eprintln!("shard_vs_redis: {tool} is not installed (apt-get install redis-server redis-tools); skipping");
            return;
        }
    }
    let n: u64 = std::env::var("SLOTWAY_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    println!("redis-benchmark -c 50 -r 100000 -n {n}  (requests/s; ratio = slotway-shard / redis-server)");
    println!("{:<8} {:>3} {:>14} {:>14} {:>7}", "test", "P", "redis-server", "slotway-shard", "ratio");
    for pipeline in [1, 16] {
        let theirs = redis_benchmark(redis.port, pipeline, n * pipeline as u64 / 4 + n);
        let ours = redis_benchmark(shard.port, pipeline, n * pipeline as u64 / 4 + n);
        for (name, r) in &theirs {
            let s = ours.iter().find(|(o, _)| o == name).map(|(_, v)| *v).unwrap_or(0.0);
            println!("{:<8} {:>3} {:>14.0} {:>14.0} {:>6.2}x", name, pipeline, r, s, s / r);
        }
    }
    let keys: u64 = std::env::var("SLOTWAY_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    for s in [&redis, &shard] {
        s.client().cmd(&["FLUSHALL"]).expect("flush");
    }
    let theirs = bytes_per_key(&redis, keys);
    let ours = bytes_per_key(&shard, keys);
    println!();
    println!("memory for {keys} SETs of 32-byte values (INFO used_memory delta / keys)");
    println!("redis-server {theirs:.1} B/key, slotway-shard {ours:.1} B/key, ratio {:.2}x", ours / theirs);
}
