//! Side-by-side benchmarks; see `shard_vs_redis.rs` (slotway-shard
//! against redis-server), `proxy_vs_twemproxy.rs` (slotway against
//! twemproxy, and the latency it adds over a direct redis-server),
//! `aof.rs` (SET with appendonly at each fsync policy) and `bgsave.rs`
//! (BGSAVE time and GET latency during it). Run with
//! `cargo bench -p slotway-benches`. This library holds what they share.

/// A whole-number setting from the environment (`SLOTWAY_BENCH_N`...).
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The middle value: what interleaved runs are compared by (NaN for no
/// runs: a column that did not run).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU time (user + system, every thread) `pid` has used so far, in clock
/// ticks, from `/proc/<pid>/stat`; 0 where there is no /proc.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 if it cannot be asked.
pub fn ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}
