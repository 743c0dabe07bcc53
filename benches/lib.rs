//! Side-by-side benchmarks; see `shard_vs_redis.rs`. Run with
//! `cargo bench -p slotway-benches`.
