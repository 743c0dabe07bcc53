//! Integration tests live in this package's `[[test]]` targets; see
//! `compat.rs` (slotway-shard against redis-server, byte for byte) and
//! `shard.rs` (slotway-shard driven by redis-cli, redis-py and raw sockets).
