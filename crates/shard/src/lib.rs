//! slotway-shard: a Redis-compatible server, and (in cluster mode) a Redis
//! Cluster node.
//!
//! A request flows: [`server`] accepts a connection and spawns a
//! [`session`]; the session decodes requests with `slotway_resp`, takes the
//! keyspace lock once per batch and hands each request to
//! [`dispatch::execute`], which checks it against the shared command table
//! (`slotway_slots::commands`) and runs the handler from [`command`]. The
//! handler works on the [`store`] and writes its reply into the session's
//! output buffer, which the session writes back when the batch is done.
//! Blocked clients, WATCH and pub/sub hang off the store and [`pubsub`].

pub mod aof;
pub mod client;
pub mod cluster;
pub mod command;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod evict;
pub mod expire;
pub mod glob;
pub(crate) mod long_double;
pub mod memory;
pub mod persist;
pub mod propagate;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
