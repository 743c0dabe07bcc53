//! slotway-shard against redis-server 7.0 with `appendonly yes`, per
//! `appendfsync` policy (always, everysec, no), in the same run: SET
//! throughput from `redis-benchmark`, both servers in turn, `ROUNDS` times
//! interleaved, medians compared (see `shard_vs_redis.rs` for why).
//!
//! `cargo bench -p slotway-benches --bench aof` (environment:
//! `SLOTWAY_BENCH_N` requests per run, `SLOTWAY_BENCH_ROUNDS`).

use std::process::Command;

use slotway_benches::{env_u64, median};
use slotway_testkit::{have_tool, Server};

/// One redis-benchmark SET run; requests per second.
fn redis_benchmark(port: u16, pipeline: u32, n: u64) -> f64 {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "50", "-r", "100000", "-n", &n.to_string()])
        .args(["-P", &pipeline.to_string(), "-t", "set", "--csv"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().skip(1).find_map(|l| l.split(',').nth(1).and_then(|c| c.trim_matches('"').parse().ok())).unwrap_or(0.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for tool in ["redis-server", "redis-benchmark"] {
        if !have_tool(tool) {
            eprintln!("aof: {tool} is not installed (apt-get install redis-server redis-tools); skipping");
            return;
        }
    }
    let n = env_u64("SLOTWAY_BENCH_N", 100_000);
    let rounds = env_u64("SLOTWAY_BENCH_ROUNDS", 3).max(1);
    println!("SET, appendonly yes, redis-benchmark -c 50 -r 100000, {n} requests x P per run, median of {rounds} interleaved runs");
    println!("{:<9} {:>3} {:>14} {:>14} {:>7}", "fsync", "P", "redis-server", "slotway-shard", "ratio");
    for policy in ["always", "everysec", "no"] {
        let args = ["--appendonly", "yes", "--appendfsync", policy];
        let redis = Server::redis(&args);
        let shard = Server::shard(&args);
        for pipeline in [1u32, 16] {
            let requests = n * u64::from(pipeline).min(8);
            let (mut theirs, mut ours) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                theirs.push(redis_benchmark(redis.port, pipeline, requests));
                ours.push(redis_benchmark(shard.port, pipeline, requests));
            }
            let (r, s) = (median(theirs), median(ours));
            println!("{:<9} {:>3} {:>14.0} {:>14.0} {:>6.2}x", policy, pipeline, r, s, s / r);
        }
    }
    println!("goal: at least 1.00x at everysec");
}
