//! The slot table: which node serves each of the 16384 slots, as one
//! immutable value. A refresh builds a new [`Topology`] and swaps it in
//! whole; readers `load_full()` it once per request and never see a half
//! update.

use std::time::SystemTime;

use slotway_slots::SLOTS;

/// `u16::MAX` in [`Topology::slots`]: no shard serves the slot.
pub const UNASSIGNED: u16 = u16::MAX;

/// One cluster node, as CLUSTER SLOTS / CLUSTER NODES name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `ip:port`, the address clients connect to.
    pub addr: String,
    /// The 40-character node id, when the discovery reply carried it.
    pub id: Option<String>,
}

/// A master and its replicas (indices into [`Topology::nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub master: usize,
    pub replicas: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Topology {
    /// Increases with every table swapped in (metrics, /topology).
    pub version: u64,
    pub fetched_at: SystemTime,
    pub nodes: Vec<Node>,
    pub shards: Vec<Shard>,
    /// Slot → index into `shards`, or [`UNASSIGNED`].
    pub slots: Box<[u16]>,
}

impl Topology {
    /// A table with no nodes: every slot unassigned (before discovery).
    pub fn empty() -> Topology {
        Topology {
            version: 0,
            fetched_at: SystemTime::UNIX_EPOCH,
            nodes: Vec::new(),
            shards: Vec::new(),
            slots: vec![UNASSIGNED; SLOTS as usize].into_boxed_slice(),
        }
    }

    /// The shard serving `slot`.
    pub fn shard_for(&self, slot: u16) -> Option<&Shard> {
        let idx = *self.slots.get(slot as usize)?;
        self.shards.get(idx as usize)
    }

    /// The master serving `slot`.
    pub fn master_for(&self, slot: u16) -> Option<&Node> {
        self.shard_for(slot).and_then(|s| self.nodes.get(s.master))
    }

    /// Every master, once each, in shard order.
    pub fn masters(&self) -> impl Iterator<Item = &Node> + '_ {
        self.shards.iter().filter_map(|s| self.nodes.get(s.master))
    }

    pub fn all_slots_assigned(&self) -> bool {
        self.slots.iter().all(|&s| s != UNASSIGNED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_serves_nothing() {
        let t = Topology::empty();
        assert!(t.master_for(0).is_none());
        assert!(!t.all_slots_assigned());
        assert_eq!(t.masters().count(), 0);
    }
}
