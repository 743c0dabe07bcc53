//! [`ClusterState`]: this node's view of the cluster, and the CLUSTER
//! admin operations on it.
//!
//! Every change that must survive a restart sets the save flag (the shard
//! writes `nodes.conf` when [`ClusterState::take_save`] says so); every
//! change of who serves what bumps [`ClusterState::version`], so the shard
//! knows to republish its routing snapshot.

use std::collections::{BTreeMap, HashMap};

use crate::msg::{Body, Header, Msg};
use crate::node::{self, Node, NodeId};
use crate::SLOTS;

/// Configuration the rules read (redis.conf's `cluster-*` directives).
#[derive(Clone, Debug)]
pub struct Settings {
    pub node_timeout: u64,
    pub replica_validity_factor: u64,
    pub require_full_coverage: bool,
    pub replica_no_failover: bool,
    pub allow_replica_migration: bool,
    pub migration_barrier: usize,
    /// `cluster-announce-ip`, or empty.
    pub announce_ip: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            node_timeout: 15000,
            replica_validity_factor: 10,
            require_full_coverage: true,
            replica_no_failover: false,
            allow_replica_migration: true,
            migration_barrier: 1,
            announce_ip: String::new(),
        }
    }
}

/// What the node tells the state about itself on every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Env {
    /// Unix time, ms.
    pub now: u64,
    /// Our replication offset (master_repl_offset).
    pub offset: i64,
    /// As a replica: ms since the link to our master went down (0: up).
    pub master_link_down_ms: u64,
}

/// What the state asks of the node around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write this message on our link to that node.
    Send(NodeId, Msg),
    /// Answer on the link the handled message came in on.
    Reply(Msg),
    /// Open an outbound bus link to this node (address in the state).
    Connect(NodeId),
    /// Close our link to this node (forgotten, or silent too long).
    Disconnect(NodeId),
    /// A handshake node turned out to be this one: rename its link.
    Rename(NodeId, NodeId),
    /// Replicate the master at this address.
    Replicate {
        ip: String,
        port: u16,
    },
    /// Stop replicating: we are a master now (new replication id).
    Promote,
    /// We lost these slots to another master: their keys must go.
    DropSlots(Vec<u16>),
    /// CLUSTER RESET of a replica: forget every key.
    FlushAll,
    /// Manual failover on a master: refuse writes until this time (0: resume).
    PauseWrites(u64),
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
        shard: bool,
    },
}

/// CLUSTER SETSLOT's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetSlot {
    Migrating(NodeId),
    Importing(NodeId),
    Node(NodeId),
    Stable,
}

/// An admin operation's refusal, with Redis's exact text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StateError(pub String);

fn err<T>(s: impl Into<String>) -> Result<T, StateError> {
    Err(StateError(s.into()))
}

/// A replica's election in progress.
#[derive(Debug, Default)]
pub(crate) struct Election {
    /// When we may ask for votes (or asked).
    pub auth_time: u64,
    pub auth_sent: bool,
    pub auth_count: usize,
    pub auth_epoch: u64,
    pub rank: usize,
}

/// CLUSTER FAILOVER in progress (`mf_*` in Redis).
#[derive(Debug, Default)]
pub(crate) struct ManualFailover {
    /// Deadline; 0 when none is in progress.
    pub end: u64,
    /// Replica side: the election may start.
    pub can_start: bool,
    /// Replica side: the paused master's final offset (-1: not known yet).
    pub master_offset: i64,
}

/// How long a forgotten node stays banned from gossip.
pub const FORGET_BAN_MS: u64 = 60_000;
/// A manual failover's deadline.
pub const MF_TIMEOUT_MS: u64 = 5_000;

pub struct ClusterState {
    pub settings: Settings,
    pub myself: NodeId,
    pub nodes: HashMap<NodeId, Node>,
    /// Who serves each slot.
    pub owner: Vec<Option<NodeId>>,
    /// Slots we are giving away, and to whom.
    pub migrating: BTreeMap<u16, NodeId>,
    /// Slots we are receiving, and from whom.
    pub importing: BTreeMap<u16, NodeId>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    /// `cluster_state:ok`.
    pub ok: bool,
    /// Forgotten nodes, and until when they stay forgotten.
    pub banned: HashMap<NodeId, u64>,
    pub sent: [u64; 10],
    pub received: [u64; 10],
    pub(crate) election: Election,
    pub(crate) mf: ManualFailover,
    pub(crate) ticks: u64,
    effects: Vec<Effect>,
    save: bool,
    /// Bumped on every change of slots, roles or addresses.
    pub version: u64,
}

impl ClusterState {
    /// A brand-new node: alone, a master, no slots, epoch 0.
    pub fn new(settings: Settings, port: u16, cport: u16, now: u64) -> ClusterState {
        let id = NodeId::random();
        let me = Node::new(id, &settings.announce_ip, port, cport, node::MYSELF | node::MASTER, now);
        let mut nodes = HashMap::new();
        nodes.insert(id, me);
        ClusterState {
            settings,
            myself: id,
            nodes,
            owner: vec![None; SLOTS],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            banned: HashMap::new(),
            sent: [0; 10],
            received: [0; 10],
            election: Election::default(),
            mf: ManualFailover { master_offset: -1, ..Default::default() },
            ticks: 0,
            effects: Vec::new(),
            save: true,
            version: 1,
        }
    }

    pub fn me(&self) -> &Node {
        &self.nodes[&self.myself]
    }

    pub(crate) fn me_mut(&mut self) -> &mut Node {
        self.nodes.get_mut(&self.myself).expect("myself is always known")
    }

    pub fn i_am_master(&self) -> bool {
        self.me().is_master()
    }

    /// The master whose slots we serve: ourselves, or the one we follow.
    pub fn my_master(&self) -> Option<&Node> {
        if self.i_am_master() {
            Some(self.me())
        } else {
            self.me().master.and_then(|m| self.nodes.get(&m))
        }
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The PONGs owed on the link the last message came in on.
    pub fn take_replies(&mut self) -> Vec<Msg> {
        let mut replies = Vec::new();
        self.effects.retain(|e| match e {
            Effect::Reply(m) => {
                replies.push(m.clone());
                false
            }
            _ => true,
        });
        replies
    }

    pub(crate) fn effect(&mut self, e: Effect) {
        self.effects.push(e);
    }

    /// Whether `nodes.conf` must be written (and clears the flag).
    pub fn take_save(&mut self) -> bool {
        std::mem::take(&mut self.save)
    }

    pub(crate) fn changed(&mut self) {
        self.save = true;
        self.version += 1;
    }

    /// Masters serving at least one slot: the electorate.
    pub fn size(&self) -> usize {
        self.nodes.values().filter(|n| n.is_master() && !n.slots.is_empty()).count()
    }

    pub(crate) fn quorum(&self) -> usize {
        self.size() / 2 + 1
    }

    pub fn replicas_of(&self, master: &NodeId) -> Vec<&Node> {
        let mut r: Vec<&Node> = self.nodes.values().filter(|n| n.is_replica() && n.master == Some(*master)).collect();
        r.sort_by_key(|n| n.id);
        r
    }

    /// The node by name or, failing that, an error in Redis's words.
    pub fn lookup(&self, name: &[u8], unknown: &str) -> Result<NodeId, StateError> {
        let shown = String::from_utf8_lossy(name);
        NodeId::parse(name)
            .filter(|id| self.nodes.contains_key(id))
            .ok_or_else(|| StateError(format!("{unknown} {shown}")))
    }

    pub(crate) fn assign(&mut self, slot: u16, to: NodeId) {
        if let Some(old) = self.owner[slot as usize] {
            if let Some(n) = self.nodes.get_mut(&old) {
                n.slots.remove(slot);
            }
        }
        self.owner[slot as usize] = Some(to);
        if let Some(n) = self.nodes.get_mut(&to) {
            n.slots.insert(slot);
        }
    }

    pub(crate) fn unassign(&mut self, slot: u16) {
        if let Some(old) = self.owner[slot as usize].take() {
            if let Some(n) = self.nodes.get_mut(&old) {
                n.slots.remove(slot);
            }
        }
    }

    /// Forgets a node: its slots, its replicas' link to it, reports it made.
    pub(crate) fn remove_node(&mut self, id: &NodeId) {
        let Some(gone) = self.nodes.remove(id) else { return };
        for slot in gone.slots.iter() {
            self.owner[slot as usize] = None;
        }
        self.migrating.retain(|_, t| t != id);
        self.importing.retain(|_, t| t != id);
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|(r, _)| r != id);
            if n.master == Some(*id) {
                n.master = None;
            }
        }
        self.effect(Effect::Disconnect(*id));
        self.changed();
    }

    /// Our header for any message: replicas speak for their master's
    /// slots and epoch, as Redis's `clusterBuildMessageHdr`.
    pub(crate) fn header(&self, env: &Env) -> Header {
        let me = self.me();
        let master = self.my_master();
        let (config_epoch, slots) = match master {
            Some(m) => (m.config_epoch, m.slots.clone()),
            None => (me.config_epoch, me.slots.clone()),
        };
        let mut flags = me.flags & (node::MASTER | node::REPLICA);
        if self.settings.replica_no_failover {
            flags |= node::NOFAILOVER;
        }
        let paused = self.i_am_master() && self.mf.end != 0;
        Header {
            sender: self.myself,
            current_epoch: self.current_epoch,
            config_epoch,
            offset: env.offset,
            flags,
            master: if me.is_replica() { me.master } else { None },
            slots,
            ip: self.settings.announce_ip.clone(),
            port: me.port,
            cport: me.cport,
            state_ok: self.ok,
            mflags: if paused { crate::msg::MF_PAUSED } else { 0 },
        }
    }

    pub(crate) fn msg(&self, env: &Env, body: Body) -> Msg {
        Msg { header: self.header(env), body }
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: Msg) {
        self.sent[crate::msg::STAT_NAMES.iter().position(|n| *n == msg.body.stat_name()).unwrap_or(0)] += 1;
        self.effect(Effect::Send(to, msg));
    }

    /// To every node we have a link with (not in handshake).
    pub fn broadcast(&mut self, env: &Env, body: Body) {
        let msg = self.msg(env, body);
        let to: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && n.link_up && !n.has(node::HANDSHAKE))
            .map(|n| n.id)
            .collect();
        for id in to {
            self.send(id, msg.clone());
        }
    }

    /// A PUBLISH goes to every node; an SPUBLISH to the other nodes
    /// serving our slots (our master or replicas).
    pub fn forward_publish(&mut self, env: &Env, body: Body) {
        let Some(master) = self.my_master().map(|m| m.id) else { return };
        let shard_only = matches!(body, Body::PublishShard { .. });
        let msg = self.msg(env, body);
        let to: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && n.link_up && !n.has(node::HANDSHAKE))
            .filter(|n| !shard_only || n.id == master || n.master == Some(master))
            .map(|n| n.id)
            .collect();
        for id in to {
            self.send(id, msg.clone());
        }
    }

    // === CLUSTER admin operations ===

    /// CLUSTER MEET: start a handshake with the node at that address.
    pub fn meet(&mut self, ip: &str, port: u16, cport: u16, now: u64) -> Result<(), StateError> {
        if ip.parse::<std::net::IpAddr>().is_err() || port == 0 || cport == 0 {
            return err(format!("ERR Invalid node address specified: {ip}:{port}"));
        }
        let in_progress =
            self.nodes.values().any(|n| n.has(node::HANDSHAKE) && n.ip == ip && n.port == port && n.cport == cport);
        if !in_progress {
            self.start_handshake(ip, port, cport, now);
        }
        Ok(())
    }

    pub(crate) fn start_handshake(&mut self, ip: &str, port: u16, cport: u16, now: u64) {
        let id = NodeId::random();
        let n = Node::new(id, ip, port, cport, node::HANDSHAKE | node::MEET, now);
        self.nodes.insert(id, n);
        self.version += 1;
    }

    /// ADDSLOTS/DELSLOTS' argument check: each slot once, and each
    /// assigned (`want_assigned`) or free, as Redis words the refusal.
    fn check_slots(&self, slots: &[u16], want_assigned: bool) -> Result<(), StateError> {
        let mut seen = crate::SlotSet::default();
        for &s in slots {
            match (self.owner[s as usize].is_some(), want_assigned) {
                (true, false) => return err(format!("ERR Slot {s} is already busy")),
                (false, true) => return err(format!("ERR Slot {s} is already unassigned")),
                _ => {}
            }
            if seen.contains(s) {
                return err(format!("ERR Slot {s} specified multiple times"));
            }
            seen.insert(s);
        }
        Ok(())
    }

    /// CLUSTER ADDSLOTS / ADDSLOTSRANGE.
    pub fn add_slots(&mut self, slots: &[u16]) -> Result<(), StateError> {
        self.check_slots(slots, false)?;
        let me = self.myself;
        for &s in slots {
            self.importing.remove(&s);
            self.assign(s, me);
        }
        self.changed();
        Ok(())
    }

    /// CLUSTER DELSLOTS / DELSLOTSRANGE.
    pub fn del_slots(&mut self, slots: &[u16]) -> Result<(), StateError> {
        self.check_slots(slots, true)?;
        for &s in slots {
            self.unassign(s);
            self.migrating.remove(&s);
            self.importing.remove(&s);
        }
        self.changed();
        Ok(())
    }

    /// CLUSTER FLUSHSLOTS (the caller checked the keyspace is empty).
    pub fn flush_slots(&mut self) {
        let mine: Vec<u16> = self.me().slots.iter().collect();
        for s in mine {
            self.unassign(s);
        }
        self.changed();
    }

    /// CLUSTER SETSLOT. `keys_in_slot` is how many keys we hold in it.
    pub fn set_slot(&mut self, slot: u16, how: SetSlot, keys_in_slot: usize) -> Result<(), StateError> {
        if !self.i_am_master() {
            return err("ERR Please use SETSLOT only with masters.");
        }
        let me = self.myself;
        let target_master = |st: &Self, id: NodeId| -> Result<(), StateError> {
            if st.nodes[&id].is_replica() {
                return err("ERR Target node is not a master");
            }
            Ok(())
        };
        match how {
            SetSlot::Migrating(id) => {
                if self.owner[slot as usize] != Some(me) {
                    return err(format!("ERR I'm not the owner of hash slot {slot}"));
                }
                if !self.nodes.contains_key(&id) {
                    return err(format!("ERR I don't know about node {id}"));
                }
                target_master(self, id)?;
                self.migrating.insert(slot, id);
            }
            SetSlot::Importing(id) => {
                if self.owner[slot as usize] == Some(me) {
                    return err(format!("ERR I'm already the owner of hash slot {slot}"));
                }
                if !self.nodes.contains_key(&id) {
                    return err(format!("ERR I don't know about node {id}"));
                }
                target_master(self, id)?;
                self.importing.insert(slot, id);
            }
            SetSlot::Stable => {
                let was_open = self.migrating.remove(&slot).is_some() | self.importing.remove(&slot).is_some();
                if !was_open {
                    return Ok(());
                }
            }
            SetSlot::Node(id) => {
                if !self.nodes.contains_key(&id) {
                    return err(format!("ERR Unknown node {id}"));
                }
                target_master(self, id)?;
                if self.owner[slot as usize] == Some(me) && id != me && keys_in_slot > 0 {
                    return err(format!(
                        "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
                if keys_in_slot == 0 {
                    self.migrating.remove(&slot);
                }
                if id == me && self.importing.remove(&slot).is_some() {
                    // Closing an import: our claim must win without waiting
                    // for a failover to hand us a new epoch.
                    self.bump_epoch_without_consensus();
                }
                // As Redis 7.0: a master giving away its last slot stays a
                // (slotless) master, and the news spreads with the next
                // pings rather than at once, so the source's own SETSLOT
                // NODE lands before the target's claim reaches it.
                self.assign(slot, id);
            }
        }
        self.changed();
        Ok(())
    }

    /// CLUSTER REPLICATE. `empty` says our keyspace holds no keys.
    pub fn replicate(&mut self, name: &[u8], empty: bool) -> Result<(), StateError> {
        let id = self.lookup(name, "ERR Unknown node")?;
        if id == self.myself {
            return err("ERR Can't replicate myself");
        }
        if self.nodes[&id].is_replica() {
            return err("ERR I can only replicate a master, not a replica.");
        }
        if self.i_am_master() && (!self.me().slots.is_empty() || !empty) {
            return err("ERR To set a master the node must be empty and without assigned slots.");
        }
        self.set_my_master(id);
        Ok(())
    }

    /// We follow `master` from now on.
    pub(crate) fn set_my_master(&mut self, master: NodeId) {
        let was_master = self.i_am_master();
        let mine: Vec<u16> = self.me().slots.iter().collect();
        for s in mine {
            self.unassign(s);
        }
        self.migrating.clear();
        self.importing.clear();
        let me = self.me_mut();
        me.flags = (me.flags & !node::MASTER) | node::REPLICA;
        me.master = Some(master);
        let (ip, port) = self.nodes.get(&master).map(|m| (m.ip.clone(), m.port)).unwrap_or_default();
        if was_master && self.mf.end != 0 {
            self.effect(Effect::PauseWrites(0));
        }
        self.mf = ManualFailover { master_offset: -1, ..Default::default() };
        self.election = Election::default();
        self.effect(Effect::Replicate { ip, port });
        self.changed();
    }

    /// CLUSTER FORGET.
    pub fn forget(&mut self, name: &[u8], now: u64) -> Result<(), StateError> {
        let id = self.lookup(name, "ERR Unknown node")?;
        if id == self.myself {
            return err("ERR I tried hard but I can't forget myself...");
        }
        if self.me().is_replica() && self.me().master == Some(id) {
            return err("ERR Can't forget my master!");
        }
        self.banned.insert(id, now + FORGET_BAN_MS);
        self.remove_node(&id);
        Ok(())
    }

    /// CLUSTER RESET: forget everyone and every slot; HARD also takes a
    /// new name and zeroes the epochs. The caller refused a master with keys.
    pub fn reset(&mut self, hard: bool) {
        if self.me().is_replica() {
            let me = self.me_mut();
            me.flags = (me.flags & !node::REPLICA) | node::MASTER;
            me.master = None;
            self.effect(Effect::Promote);
            self.effect(Effect::FlushAll);
        }
        for s in 0..SLOTS as u16 {
            self.unassign(s);
        }
        self.migrating.clear();
        self.importing.clear();
        let others: Vec<NodeId> = self.nodes.keys().filter(|&&id| id != self.myself).copied().collect();
        for id in others {
            self.remove_node(&id);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            let mut me = self.nodes.remove(&self.myself).expect("myself");
            me.config_epoch = 0;
            me.id = NodeId::random();
            self.myself = me.id;
            self.nodes.insert(me.id, me);
        }
        self.election = Election::default();
        self.mf = ManualFailover { master_offset: -1, ..Default::default() };
        self.changed();
    }

    /// CLUSTER SET-CONFIG-EPOCH.
    pub fn set_config_epoch(&mut self, epoch: i64) -> Result<(), StateError> {
        if epoch < 0 {
            return err(format!("ERR Invalid config epoch specified: {epoch}"));
        }
        if self.nodes.len() > 1 {
            return err("ERR The user can assign a config epoch only when the node does not know any other node.");
        }
        if self.me().config_epoch != 0 {
            return err("ERR Node config epoch is already non-zero");
        }
        self.me_mut().config_epoch = epoch as u64;
        self.current_epoch = self.current_epoch.max(epoch as u64);
        self.changed();
        Ok(())
    }

    /// CLUSTER BUMPEPOCH: `(bumped, our configEpoch)`.
    pub fn bump_epoch(&mut self) -> (bool, u64) {
        let bumped = self.bump_epoch_without_consensus();
        (bumped, self.me().config_epoch)
    }

    /// Takes a new configEpoch unless ours is already the unique maximum.
    pub(crate) fn bump_epoch_without_consensus(&mut self) -> bool {
        let mine = self.me().config_epoch;
        let max = self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0);
        let unique = self.nodes.values().filter(|n| n.config_epoch == max).count() == 1;
        if mine == 0 || mine != max || !unique {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.changed();
            return true;
        }
        false
    }

    pub fn count_failure_reports(&self, name: &[u8], now: u64) -> Result<usize, StateError> {
        let id = self.lookup(name, "ERR Unknown node")?;
        let max_age = self.settings.node_timeout * 2;
        Ok(self.nodes[&id].fail_reports.iter().filter(|(_, at)| now.saturating_sub(*at) <= max_age).count())
    }

    /// Slots assigned, and slots whose owner is PFAIL / FAIL (from each
    /// node's bitmap, which `assign` keeps equal to the owner table).
    pub fn slot_counts(&self) -> (usize, usize, usize) {
        let (mut assigned, mut pfail, mut fail) = (0, 0, 0);
        for n in self.nodes.values() {
            let count = n.slots.len();
            assigned += count;
            if n.has(node::FAIL) {
                fail += count;
            } else if n.has(node::PFAIL) {
                pfail += count;
            }
        }
        (assigned, pfail, fail)
    }

    /// `cluster_state`: every slot served by a non-failed master (when
    /// full coverage is required) and a majority of masters reachable.
    pub(crate) fn update_state(&mut self) {
        let mut ok = true;
        if self.settings.require_full_coverage {
            let (assigned, _, fail) = self.slot_counts();
            ok = assigned == SLOTS && fail == 0;
        }
        let size = self.size();
        let reachable = self.nodes.values().filter(|n| n.is_master() && !n.slots.is_empty() && !n.is_failing()).count();
        if size == 0 || reachable < size / 2 + 1 {
            ok = false;
        }
        if ok != self.ok {
            self.ok = ok;
            self.version += 1;
            tracing::info!(state = if ok { "ok" } else { "fail" }, "cluster state changed");
        }
    }
}

#[cfg(test)]
mod tests;
