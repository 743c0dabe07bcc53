//! slotway against twemproxy (nutcracker), the proxy people replace with
//! it, in the same run on the same machine, with one redis-server alone as
//! the floor:
//!
//! - twemproxy: one pool (`redis: true`, `hash: fnv1a_64`,
//!   `distribution: ketama`) over 3 standalone redis-servers;
//! - slotway: in front of a 3-master Redis Cluster;
//! - direct: one redis-server, no proxy.
//!
//! redis-benchmark (SET, GET, MSET; -c 50; -P 1 and -P 16; -r 100000) runs
//! against each in turn, `ROUNDS` times interleaved so drift on a shared
//! machine hits every column alike; medians are compared. Printed: ops/s,
//! slotway/twemproxy (goal: at least 1.2x) and the p50 latency slotway adds
//! over direct (goal: at most 100 µs). Without nutcracker that column is
//! skipped (`apt-get install -y nutcracker`).
//!
//! `cargo bench -p slotway-benches --bench proxy_vs_twemproxy`
//! (`SLOTWAY_BENCH_N` requests per run, `SLOTWAY_BENCH_ROUNDS`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use slotway_benches::{env_u64, median};
use slotway_testkit::wait::wait_for;
use slotway_testkit::{free_port, have_tool, scratch_dir, Proxy, RawClient, RedisCluster, Server};

const TESTS: &[&str] = &["set", "get", "mset"];

/// One run's (requests per second, p50 latency in ms), from `--csv`.
fn redis_benchmark(port: u16, test: &str, pipeline: u32, n: u64) -> Option<(f64, f64)> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "50", "-r", "100000", "-n", &n.to_string()])
        .args(["-P", &pipeline.to_string(), "-t", test, "--csv"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<String> = lines.next()?.split(',').map(|c| c.trim_matches('"').to_owned()).collect();
    let row: Vec<String> = lines.next()?.split(',').map(|c| c.trim_matches('"').to_owned()).collect();
    let col = |name: &str| header.iter().position(|h| h == name).and_then(|i| row.get(i)?.parse::<f64>().ok());
    let rps = col("rps")?;
    // redis-benchmark before 7.0 has no p50 column; its median is unknown.
    let p50 = col("p50_latency_ms").unwrap_or(f64::NAN);
    (rps > 0.0).then_some((rps, p50))
}

/// nutcracker over `servers`, killed by its pid on drop.
struct Twemproxy {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl Twemproxy {
    fn start(servers: &[u16]) -> Option<Twemproxy> {
        let port = free_port();
        let dir = scratch_dir(&format!("nutcracker-{port}"));
        let mut yaml = format!(
            "slotway_bench:\n  listen: 127.0.0.1:{port}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  \
             auto_eject_hosts: false\n  preconnect: true\n  timeout: 5000\n  servers:\n"
        );
        for s in servers {
            yaml.push_str(&format!("    - 127.0.0.1:{s}:1\n"));
        }
        let conf = dir.join("nutcracker.yml");
        std::fs::write(&conf, yaml).ok()?;
        let child = Command::new("nutcracker")
            .arg("-c")
            .arg(&conf)
            .args(["-s", &free_port().to_string(), "-a", "127.0.0.1", "-o"])
            .arg(dir.join("nutcracker.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let t = Twemproxy { port, child, dir };
        let up = wait_for(Duration::from_secs(10), || {
            RawClient::connect(port)
                .ok()
                .and_then(|mut c| c.cmd(&["SET", "probe", "1"]).ok())
                .is_some_and(|r| r == b"+OK\r\n")
        });
        up.is_ok().then_some(t)
    }
}

impl Drop for Twemproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for tool in ["redis-server", "redis-cli", "redis-benchmark"] {
        if !have_tool(tool) {
            eprintln!(
                "proxy_vs_twemproxy: {tool} is not installed (apt-get install redis-server redis-tools); skipping"
            );
            return;
        }
    }
    let n = env_u64("SLOTWAY_BENCH_N", 100_000);
    let rounds = env_u64("SLOTWAY_BENCH_ROUNDS", 3).max(1);

    let direct = Server::redis(&[]);
    let pool: Vec<Server> = (0..3).map(|_| Server::redis(&[])).collect();
    let twemproxy = if have_tool("nutcracker") {
        let t = Twemproxy::start(&pool.iter().map(|s| s.port).collect::<Vec<_>>());
        if t.is_none() {
            eprintln!("nutcracker did not start; skipping the twemproxy column");
        }
        t
    } else {
        eprintln!("nutcracker (twemproxy) is not installed (apt-get install -y nutcracker); skipping that column");
        None
    };
    let cluster = RedisCluster::start(3, 0, &[]);
    let seed = cluster.masters()[0];
    let slotway = match catch_unwind(AssertUnwindSafe(|| Proxy::start(&[seed], &[]))) {
        Ok(p) => Some(p),
        Err(_) => {
            eprintln!("slotway did not start; skipping the slotway column");
            None
        }
    };

    let targets: Vec<(&str, Option<u16>)> = vec![
        ("direct", Some(direct.port)),
        ("twemproxy", twemproxy.as_ref().map(|t| t.port)),
        ("slotway", slotway.as_ref().map(|p| p.port)),
    ];
    println!("redis-benchmark -c 50 -r 100000, {n} requests x min(P,8) per run, median of {rounds} interleaved runs");
    println!(
        "{:<5} {:>3} {:>12} {:>12} {:>12} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "test", "P", "direct/s", "twemproxy/s", "slotway/s", "sw/tw", "p50 dir", "p50 sw", "+p50 sw", "+p50 tw"
    );
    let (mut worst_ratio, mut worst_added) = (f64::MAX, f64::MIN);
    for pipeline in [1u32, 16] {
        for test in TESTS {
            let requests = n * u64::from(pipeline).min(8);
            let mut rps: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
            let mut p50: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
            for _ in 0..rounds {
                for (i, (_, port)) in targets.iter().enumerate() {
                    if let Some((r, p)) = port.and_then(|port| redis_benchmark(port, test, pipeline, requests)) {
                        rps[i].push(r);
                        p50[i].push(p);
                    }
                }
            }
            let rps: Vec<f64> = rps.into_iter().map(median).collect();
            let p50_us: Vec<f64> = p50.into_iter().map(|v| median(v) * 1000.0).collect();
            let ratio = rps[2] / rps[1];
            let (added_sw, added_tw) = (p50_us[2] - p50_us[0], p50_us[1] - p50_us[0]);
            if ratio.is_finite() {
                worst_ratio = worst_ratio.min(ratio);
            }
            if added_sw.is_finite() {
                worst_added = worst_added.max(added_sw);
            }
            println!(
                "{:<5} {:>3} {:>12.0} {:>12.0} {:>12.0} {:>8.2}x {:>7.0}µs {:>7.0}µs {:>9.0}µs {:>9.0}µs",
                test, pipeline, rps[0], rps[1], rps[2], ratio, p50_us[0], p50_us[2], added_sw, added_tw
            );
        }
    }
    println!("(NaN: that column did not run)");
    if worst_ratio != f64::MAX {
        println!("lowest slotway/twemproxy: {worst_ratio:.2}x (goal: at least 1.20x on every line)");
    }
    if worst_added != f64::MIN {
        println!("most p50 latency slotway adds over direct: {worst_added:.0} µs (goal: at most 100 µs)");
    }
    drop(cluster);
}
