//! slotway: plain single-node Redis clients on one address, in front of a
//! Redis Cluster.
//!
//! A request flows: [`session`] (one task per client connection) decodes
//! requests with `slotway_resp`, keeping each one's raw bytes; [`router`]
//! classifies it from the shared command table (`slotway_slots`): answered
//! here, sent to the master of its keys' slot, split by node and merged, or
//! fanned out to every master; [`upstream`] pipelines it on a shared
//! connection to that node and matches the reply in order; [`redirect`]
//! follows MOVED, ASK, TRYAGAIN and CLUSTERDOWN so they never reach the
//! client, and [`fanout`] splits multi-slot requests and merges replies.
//! Replies go back in request order even when they come from different
//! nodes.
//!
//! Shared state is [`state::Proxy`]: the configuration and the slot table
//! ([`topology::Topology`]) are immutable snapshots behind `ArcSwap`,
//! replaced whole by the reload and refresh tasks; [`metrics`] are
//! Prometheus collectors served by [`admin`] over HTTP.

pub mod admin;
pub mod config;
pub mod fanout;
pub mod metrics;
pub mod redirect;
pub mod router;
pub mod session;
pub mod state;
pub mod topology;
pub mod upstream;
