//! The slot table: which node serves each of the 16384 slots, as one
//! immutable value. A refresh builds a new [`Topology`] and swaps it in
//! whole; readers `load_full()` it once per request and never see a half
//! update.

use std::time::SystemTime;

use slotway_resp::Frame;
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

    /// The address of the master serving `slot`.
    pub fn master_addr(&self, slot: u16) -> Option<&str> {
        self.master_for(slot).map(|n| n.addr.as_str())
    }

    /// Builds a table from a CLUSTER SLOTS reply. `asked` is the address the
    /// reply came from: a node that does not know its own IP reports `""`.
    pub fn from_cluster_slots(reply: &Frame, asked: &str, version: u64) -> Result<Topology, String> {
        let Frame::Array(ranges) = reply else {
            return Err(format!("CLUSTER SLOTS from {asked}: not an array"));
        };
        let asked_host = asked.rsplit_once(':').map(|(h, _)| h).unwrap_or(asked);
        let mut t = Topology { version, fetched_at: SystemTime::now(), ..Topology::empty() };
        for range in ranges {
            let Frame::Array(f) = range else { return Err("CLUSTER SLOTS: range is not an array".into()) };
            let (Some(Frame::Integer(start)), Some(Frame::Integer(end))) = (f.first(), f.get(1)) else {
                return Err("CLUSTER SLOTS: bad range bounds".into());
            };
            if !(0..SLOTS as i64).contains(start) || !(*start..SLOTS as i64).contains(end) {
                return Err("CLUSTER SLOTS: range out of bounds".into());
            }
            let mut members = Vec::new();
            for node in f.iter().skip(2) {
                let Frame::Array(n) = node else { return Err("CLUSTER SLOTS: node is not an array".into()) };
                let host = n.first().and_then(Frame::as_bytes).map(String::from_utf8_lossy).unwrap_or_default();
                let Some(Frame::Integer(port)) = n.get(1) else {
                    return Err("CLUSTER SLOTS: node without port".into());
                };
                let host = if host.is_empty() || host == "?" { asked_host.into() } else { host };
                let id = n.get(2).and_then(Frame::as_bytes).map(|b| String::from_utf8_lossy(b).into_owned());
                members.push(t.node_index_or_add(&format!("{host}:{port}"), id));
            }
            let Some((&master, replicas)) = members.split_first() else {
                return Err("CLUSTER SLOTS: range without a master".into());
            };
            let shard = match t.shards.iter().position(|s| s.master == master) {
                Some(i) => i,
                None => {
                    t.shards.push(Shard { master, replicas: replicas.to_vec() });
                    t.shards.len() - 1
                }
            };
            for slot in *start..=*end {
                t.slots[slot as usize] = shard as u16;
            }
        }
        Ok(t)
    }

    /// The table with `slot` moved to the master at `addr` (a MOVED reply),
    /// as a new value: the next full refresh brings the rest of the news.
    pub fn with_slot_moved(&self, slot: u16, addr: &str) -> Topology {
        let mut t = self.clone();
        t.version += 1;
        let node = t.node_index_or_add(addr, None);
        let shard = match t.shards.iter().position(|s| s.master == node) {
            Some(i) => i,
            None => {
                t.shards.push(Shard { master: node, replicas: Vec::new() });
                t.shards.len() - 1
            }
        };
        if let Some(s) = t.slots.get_mut(slot as usize) {
            *s = shard as u16;
        }
        t
    }

    fn node_index_or_add(&mut self, addr: &str, id: Option<String>) -> usize {
        match self.nodes.iter().position(|n| n.addr == addr) {
            Some(i) => i,
            None => {
                self.nodes.push(Node { addr: addr.to_string(), id });
                self.nodes.len() - 1
            }
        }
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

    fn node(host: &str, port: i64) -> Frame {
        Frame::Array(vec![Frame::Bulk(host.as_bytes().to_vec().into()), Frame::Integer(port)])
    }

    #[test]
    fn cluster_slots_reply_becomes_a_table() {
        let reply = Frame::Array(vec![
            Frame::Array(vec![Frame::Integer(0), Frame::Integer(8191), node("10.0.0.1", 7000), node("10.0.0.2", 7001)]),
            Frame::Array(vec![Frame::Integer(8192), Frame::Integer(16383), node("", 7002)]),
        ]);
        let t = Topology::from_cluster_slots(&reply, "10.0.0.9:7002", 3).unwrap();
        assert!(t.all_slots_assigned());
        assert_eq!(t.version, 3);
        assert_eq!(t.master_addr(0), Some("10.0.0.1:7000"));
        assert_eq!(t.master_addr(16383), Some("10.0.0.9:7002"));
        assert_eq!(t.shards[0].replicas.len(), 1);
        assert_eq!(t.masters().count(), 2);
        let moved = t.with_slot_moved(5, "10.0.0.9:7002");
        assert_eq!(moved.master_addr(5), Some("10.0.0.9:7002"));
        assert_eq!(moved.master_addr(6), Some("10.0.0.1:7000"));
        assert_eq!(moved.version, 4);
        assert!(Topology::from_cluster_slots(&Frame::Integer(1), "x:1", 1).is_err());
    }
}
