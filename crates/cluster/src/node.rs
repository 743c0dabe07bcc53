//! One node as this node knows it: identity, address, role, the slots it
//! serves, and what failure detection has seen of it.

use crate::SlotSet;

/// A node's name: 40 lowercase hex characters, as Redis makes them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 40]);

impl NodeId {
    pub fn random() -> NodeId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; 40];
        for b in id.iter_mut() {
            *b = HEX[rand::random::<usize>() % 16];
        }
        NodeId(id)
    }

    /// A name read from a peer, a file or a command: exactly 40 hex
    /// characters (either case, as Redis's `verifyClusterNodeId`).
    pub fn parse(s: &[u8]) -> Option<NodeId> {
        if s.len() != 40 || !s.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut id = [0u8; 40];
        id.copy_from_slice(s);
        Some(NodeId(id))
    }

    pub fn as_bytes(&self) -> &[u8; 40] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Built only from ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.as_str()[..8])
    }
}

pub const MYSELF: u16 = 1 << 0;
pub const MASTER: u16 = 1 << 1;
pub const REPLICA: u16 = 1 << 2;
/// `fail?`: this node has not heard from it for node-timeout.
pub const PFAIL: u16 = 1 << 3;
/// `fail`: a majority of masters agree it is down.
pub const FAIL: u16 = 1 << 4;
/// Met, but not yet answered with its real name.
pub const HANDSHAKE: u16 = 1 << 5;
/// Its address is not known yet.
pub const NOADDR: u16 = 1 << 6;
/// `cluster-replica-no-failover yes` on that replica.
pub const NOFAILOVER: u16 = 1 << 7;
/// Our handshake with it goes out as MEET (it may not know us).
pub const MEET: u16 = 1 << 8;

/// The flags CLUSTER NODES shows, in Redis's order and spelling.
pub const FLAG_NAMES: &[(u16, &str)] = &[
    (MYSELF, "myself"),
    (MASTER, "master"),
    (REPLICA, "slave"),
    (PFAIL, "fail?"),
    (FAIL, "fail"),
    (HANDSHAKE, "handshake"),
    (NOADDR, "noaddr"),
    (NOFAILOVER, "nofailover"),
];

#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    /// Empty while unknown (NOADDR).
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    /// The master a replica follows.
    pub master: Option<NodeId>,
    pub config_epoch: u64,
    pub slots: SlotSet,
    /// When our outstanding PING went out (0: none outstanding).
    pub ping_sent: u64,
    pub pong_received: u64,
    /// Anything at all heard from it (a busy link is not a dead one).
    pub data_received: u64,
    /// When it was flagged FAIL.
    pub fail_time: u64,
    /// When we last voted for a replica of this master.
    pub voted_time: u64,
    /// The replication offset it last announced.
    pub repl_offset: i64,
    /// Masters that gossiped it as PFAIL/FAIL, and when.
    pub fail_reports: Vec<(NodeId, u64)>,
    /// Our outbound bus link to it is up.
    pub link_up: bool,
    /// We asked for a link and have not heard back.
    pub connecting: bool,
    /// When we first heard of it (handshake timeout).
    pub ctime: u64,
    /// A master that has had replicas: one left without any may take a
    /// migrating replica (Redis's MIGRATE_TO flag).
    pub had_replicas: bool,
    /// Since when this master has had no working replica (0: it has one).
    pub orphaned_since: u64,
}

impl Node {
    pub fn new(id: NodeId, ip: &str, port: u16, cport: u16, flags: u16, now: u64) -> Node {
        Node {
            id,
            ip: ip.to_string(),
            port,
            cport,
            flags,
            master: None,
            config_epoch: 0,
            slots: SlotSet::default(),
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset: 0,
            fail_reports: Vec::new(),
            link_up: false,
            connecting: false,
            ctime: now,
            had_replicas: false,
            orphaned_since: 0,
        }
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    pub fn is_master(&self) -> bool {
        self.has(MASTER)
    }

    pub fn is_replica(&self) -> bool {
        self.has(REPLICA)
    }

    pub fn is_failing(&self) -> bool {
        self.has(PFAIL | FAIL)
    }

    /// `ip:port`, as MOVED and ASK name a node.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Drops reports older than `max_age` ms.
    pub fn expire_reports(&mut self, now: u64, max_age: u64) {
        self.fail_reports.retain(|&(_, at)| now.saturating_sub(at) <= max_age);
    }

    pub fn flag_names(&self) -> String {
        let names: Vec<&str> = FLAG_NAMES.iter().filter(|(f, _)| self.has(*f)).map(|(_, n)| *n).collect();
        if names.is_empty() {
            "noflags".into()
        } else {
            names.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_forty_hex() {
        let id = NodeId::random();
        assert_eq!(id.as_str().len(), 40);
        assert_eq!(NodeId::parse(id.as_bytes()), Some(id));
        assert!(NodeId::parse(b"xyz").is_none());
        assert!(NodeId::parse(&[b'g'; 40]).is_none());
    }

    #[test]
    fn flags_print_in_redis_order() {
        let mut n = Node::new(NodeId::random(), "127.0.0.1", 7000, 17000, MYSELF | MASTER, 0);
        assert_eq!(n.flag_names(), "myself,master");
        n.flags = REPLICA | PFAIL;
        assert_eq!(n.flag_names(), "slave,fail?");
        n.flags = 0;
        assert_eq!(n.flag_names(), "noflags");
    }
}
