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
