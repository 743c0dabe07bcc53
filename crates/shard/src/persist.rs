//! Persistence: RDB snapshots (SAVE, BGSAVE, save rules, load at start,
//! SHUTDOWN's final save) and the formats they are made of.
//!
//! [`rdb`] turns a [`crate::store::Store`] into RDB bytes and back, built
//! on the compact formats in [`listpack`], [`ziplist`] and [`intset`], with
//! [`lzf`] compression and a [`crc64`] checksum. [`snapshot`] decides when
//! and where to save: a foreground save writes under the keyspace lock; a
//! background save forks ([`fork`]) while holding the lock, so the child
//! serializes a point-in-time copy while the parent keeps serving.

pub mod crc64;
pub mod fork;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod snapshot;
pub mod ziplist;

pub use rdb::write_rdb;
