//! slotway-ctl: managing a Redis Cluster of slotway-shard (or redis-server)
//! nodes.
//!
//! - [`client`]: a small async RESP client for admin commands, one command
//!   at a time, every call bounded by a timeout, reconnecting after a
//!   broken exchange.
//! - [`nodes`]: reading `CLUSTER NODES` and `CLUSTER INFO` replies, and the
//!   slot-agreement check `redis-cli --cluster` uses.
//! - [`create`]: forming a new cluster from empty nodes with the commands
//!   `redis-cli --cluster create --cluster-replicas R` sends: slot split,
//!   master/replica assignment, ADDSLOTS, SET-CONFIG-EPOCH, MEET, wait for
//!   agreement, REPLICATE, wait for `cluster_state:ok`.
//!
//! The `slotway demo` command uses [`create`]; the `slotway-ctl` cluster
//! manager will share it.

pub mod client;
pub mod create;
pub mod nodes;

pub use client::{Client, ClientError};
pub use create::{create, CreateError, CreateOptions, Layout, Plan};
