//! Side-by-side benchmarks; see `shard_vs_redis.rs` (slotway-shard
//! against redis-server) and `proxy_vs_twemproxy.rs` (slotway against
//! twemproxy, and the latency it adds over a direct redis-server). Run with
//! `cargo bench -p slotway-benches`.
