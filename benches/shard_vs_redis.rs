//! slotway-shard against redis-server 7.0, in the same run on the same
//! machine: `redis-benchmark` throughput per command and pipeline depth, and
//! memory per key for 1,000,000 32-byte string values.
//!
//! Each (command, pipeline) line runs both servers in turn, `ROUNDS` times,
//! interleaved, and compares medians: on a small shared machine one run of
//! either server can be 15% off, and interleaving spreads any drift over
//! both.
//!
//! `cargo bench -p slotway-benches --bench shard_vs_redis` (environment:
//! `SLOTWAY_BENCH_N` requests per run, `SLOTWAY_BENCH_ROUNDS`,
//! `SLOTWAY_BENCH_KEYS` for the memory test).

use std::process::Command;

use slotway_benches::{env_u64, median};
use slotway_testkit::{have_tool, RawClient, Server};

const TESTS: &[&str] = &["set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd", "mset"];

/// One redis-benchmark run of one test; requests per second.
fn redis_benchmark(port: u16, test: &str, pipeline: u32, n: u64) -> f64 {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "50", "-r", "100000", "-n", &n.to_string()])
        .args(["-P", &pipeline.to_string(), "-t", test, "--csv"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().skip(1).find_map(|l| l.split(',').nth(1).and_then(|c| c.trim_matches('"').parse().ok())).unwrap_or(0.0)
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
    let n = env_u64("SLOTWAY_BENCH_N", 100_000);
    let rounds = env_u64("SLOTWAY_BENCH_ROUNDS", 3).max(1);
    let redis = Server::redis(&[]);
    let shard = Server::shard(&[]);
    println!("redis-benchmark -c 50 -r 100000, {n} requests x P per run, median of {rounds} interleaved runs");
    println!("{:<6} {:>3} {:>14} {:>14} {:>7}", "test", "P", "redis-server", "slotway-shard", "ratio");
    let mut worst = f64::MAX;
    for pipeline in [1u32, 16] {
        for test in TESTS {
            let requests = n * u64::from(pipeline).min(8);
            let (mut theirs, mut ours) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                theirs.push(redis_benchmark(redis.port, test, pipeline, requests));
                ours.push(redis_benchmark(shard.port, test, pipeline, requests));
            }
            let (r, s) = (median(theirs), median(ours));
            worst = worst.min(s / r);
            println!("{:<6} {:>3} {:>14.0} {:>14.0} {:>6.2}x", test, pipeline, r, s, s / r);
        }
    }
    println!("lowest ratio: {worst:.2}x (goal: at least 1.00x on every line)");
    let keys = env_u64("SLOTWAY_BENCH_KEYS", 1_000_000);
    for s in [&redis, &shard] {
        s.client().cmd(&["FLUSHALL"]).expect("flush");
    }
    let theirs = bytes_per_key(&redis, keys);
    let ours = bytes_per_key(&shard, keys);
    println!();
    println!("memory for {keys} SETs of 32-byte values (INFO used_memory delta / keys)");
    println!(
        "redis-server {theirs:.1} B/key, slotway-shard {ours:.1} B/key, ratio {:.2}x (goal: at most 1.25x)",
        ours / theirs
    );
}
