//! Redis Cluster membership as a state machine, with no IO.
//!
//! A cluster node's view of the cluster lives in [`ClusterState`]: the
//! known nodes, who owns each of the 16384 slots, slots being migrated,
//! the epochs and the failover bookkeeping. Everything that happens to a
//! node enters through one of three doors and leaves as [`Effect`]s:
//!
//! - the CLUSTER admin commands (`ClusterState::add_slots`, `meet`,
//!   `set_slot`, `replicate`, `forget`, `reset`, ...), called by the shard's
//!   command handlers;
//! - a message from the cluster bus ([`msg::Msg`], our own framed wire
//!   format), fed to [`ClusterState::handle`];
//! - the clock: [`ClusterState::cron`], ten times a second, which pings,
//!   detects failures, runs elections and recomputes `cluster_state`.
//!
//! The shard turns effects into IO: messages to send over its bus links,
//! links to open or drop, replication to start or stop, keys to delete,
//! writes to pause, messages to publish, and `nodes.conf` to save
//! ([`conf`] reads and writes it in Redis's format; [`render`] produces
//! CLUSTER NODES / INFO / SLOTS / SHARDS). Time is always passed in, so
//! the rules (PFAIL after node-timeout, FAIL on a majority of reports,
//! rank-delayed elections, one vote per epoch) are unit-tested here
//! without sockets or sleeps.

pub mod conf;
mod cron;
mod failover;
mod gossip;
pub mod msg;
pub mod node;
pub mod render;
pub mod slots;
mod state;

pub use failover::FailoverMode;
pub use gossip::Link;
pub use node::{Node, NodeId};
pub use slots::SlotSet;
pub use state::{ClusterState, Effect, Env, SetSlot, Settings, StateError};

/// The number of hash slots.
pub const SLOTS: usize = slotway_slots::SLOTS as usize;
