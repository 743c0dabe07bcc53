//! BGSAVE of slotway-shard against redis-server 7.0, in the same run: the
//! time from BGSAVE's reply until the child is reaped, for the keyspace
//! `redis-benchmark -t set -n N -r N -d 32 -P 16` leaves (about 63% of N
//! distinct keys), and the p99 of GET latency while back-to-back BGSAVEs
//! run, next to the p99 with no save running.
//!
//! Both servers are measured in turn, `ROUNDS` times interleaved, and the
//! medians compared: the machine is small and shared, and one run can be
//! far off.
//!
//! `cargo bench -p slotway-benches --bench bgsave` (environment:
//! `SLOTWAY_BENCH_KEYS`, default 1,000,000; `SLOTWAY_BENCH_ROUNDS`).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotway_benches::{env_u64, median};
use slotway_testkit::{have_tool, RawClient, Server};

fn bench(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-benchmark");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn saving(c: &mut RawClient) -> bool {
    c.cmd_str(&["INFO", "persistence"]).contains("rdb_bgsave_in_progress:1")
}

/// One BGSAVE, timed from its reply until the server reports it done
/// (bounded: a minute at most).
fn bgsave_secs(c: &mut RawClient) -> f64 {
    let start = Instant::now();
    let reply = c.cmd_str(&["BGSAVE"]);
    assert!(reply.contains("started"), "BGSAVE: {reply}");
    while saving(c) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed().as_secs_f64()
}

/// p99 of GET latency (ms) over 200,000 requests from 10 clients, with
/// BGSAVEs running back to back meanwhile when `during_save`.
fn get_p99(server: &Server, during_save: bool) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let saver = during_save.then(|| {
        let stop = stop.clone();
        let port = server.port;
        std::thread::spawn(move || {
            let mut c = RawClient::connect(port).expect("connect");
            for _ in 0..100 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                bgsave_secs(&mut c);
            }
        })
    });
    let csv = bench(
        server.port,
        &["-t", "get", "-n", "200000", "-P", "1", "-c", "10", "-r", "1000000", "--precision", "3", "--csv"],
    );
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = saver {
        let _ = s.join();
    }
    // "test","rps","avg","min","p50","p95","p99","max"
    csv.lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(6))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for tool in ["redis-server", "redis-benchmark"] {
        if !have_tool(tool) {
            eprintln!("bgsave: {tool} is not installed; skipping");
            return;
        }
    }
    let keys = env_u64("SLOTWAY_BENCH_KEYS", 1_000_000).to_string();
    let rounds = env_u64("SLOTWAY_BENCH_ROUNDS", 3).max(1);
    let servers = [("redis-server", Server::redis(&[])), ("slotway-shard", Server::shard(&[]))];
    for (_, s) in &servers {
        bench(s.port, &["-t", "set", "-n", &keys, "-r", &keys, "-d", "32", "-P", "16", "-q"]);
    }
    let mut save = [Vec::new(), Vec::new()];
    let mut idle = [Vec::new(), Vec::new()];
    let mut busy = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, (_, s)) in servers.iter().enumerate() {
            save[i].push(bgsave_secs(&mut s.client()));
            idle[i].push(get_p99(s, false));
            busy[i].push(get_p99(s, true));
        }
    }
    let dbsize = servers[1].1.client().cmd_str(&["DBSIZE"]);
    println!(
        "keyspace: redis-benchmark -t set -n {keys} -r {keys} -d 32 -P 16 ({} keys); median of {rounds}",
        dbsize.trim()
    );
    println!("{:<14} {:>12} {:>14} {:>16}", "server", "BGSAVE s", "GET p99 ms", "GET p99 ms save");
    for (i, (name, _)) in servers.iter().enumerate() {
        let (a, b, c) = (median(save[i].clone()), median(idle[i].clone()), median(busy[i].clone()));
        println!("{name:<14} {a:>12.3} {b:>14.3} {c:>16.3}");
    }
    let ratio = median(save[1].clone()) / median(save[0].clone());
    println!("BGSAVE time ratio slotway-shard / redis-server: {ratio:.2}");
}
