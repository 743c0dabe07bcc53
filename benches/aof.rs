//! slotway-shard against redis-server 7.0 with `appendonly yes`, per
//! `appendfsync` policy (always, everysec, no), in the same run: SET
//! throughput from `redis-benchmark`, both servers in turn, `ROUNDS` times
//! interleaved, medians compared (see `shard_vs_redis.rs` for why).
//! Beside throughput, the CPU time each server spent per request (from
//! /proc, all threads): on a small shared machine throughput swings with
//! whatever else runs, the CPU a server needs per request much less.
//!
//! `cargo bench -p slotway-benches --bench aof` (environment:
//! `SLOTWAY_BENCH_N` requests per run, `SLOTWAY_BENCH_ROUNDS`).

use std::process::Command;

use slotway_benches::{cpu_ticks, env_u64, median, ticks_per_sec};
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
    println!(
        "{:<9} {:>3} {:>14} {:>14} {:>7} {:>11} {:>11} {:>7}",
        "fsync", "P", "redis-server", "slotway-shard", "ratio", "redis us/op", "shard us/op", "cpu"
    );
    let us_per_tick = 1e6 / ticks_per_sec() as f64;
    // One run: requests per second and CPU microseconds per request.
    let run = |pid: u32, port: u16, pipeline: u32, requests: u64| {
        let before = cpu_ticks(pid);
        let rps = redis_benchmark(port, pipeline, requests);
        let ticks = cpu_ticks(pid).saturating_sub(before);
        (rps, ticks as f64 * us_per_tick / requests as f64)
    };
    for policy in ["always", "everysec", "no"] {
        let args = ["--appendonly", "yes", "--appendfsync", policy];
        let redis = Server::redis(&args);
        let shard = Server::shard(&args);
        for pipeline in [1u32, 16] {
            let requests = n * u64::from(pipeline).min(8);
            let (mut theirs, mut ours, mut theirs_cpu, mut ours_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let (rps, cpu) = run(redis.pid(), redis.port, pipeline, requests);
                theirs.push(rps);
                theirs_cpu.push(cpu);
                let (rps, cpu) = run(shard.pid(), shard.port, pipeline, requests);
                ours.push(rps);
                ours_cpu.push(cpu);
            }
            let (r, s) = (median(theirs), median(ours));
            let (rc, sc) = (median(theirs_cpu), median(ours_cpu));
            println!(
                "{:<9} {:>3} {:>14.0} {:>14.0} {:>6.2}x {:>11.2} {:>11.2} {:>6.2}x",
                policy,
                pipeline,
                r,
                s,
                s / r,
                rc,
                sc,
                sc / rc
            );
        }
    }
    println!("goal: at least 1.00x at everysec (cpu column: shard CPU per request over redis's, lower is better)");
}
