//! Handling one message from the bus: epochs, roles and slot claims from
//! its header, then what its body says (gossip, FAIL, UPDATE, PUBLISH,
//! votes, manual failover).

use rand::seq::SliceRandom;

use crate::msg::{Body, Gossip, Header, Msg, MF_PAUSED};
use crate::node::{self, Node, NodeId};
use crate::state::{ClusterState, Effect, Env, ManualFailover, MF_TIMEOUT_MS};
use crate::SlotSet;

/// Where a message came from.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// Our outbound link to this node carried it (a reply to our PING).
    pub outbound_of: Option<NodeId>,
    /// The peer's address on that connection.
    pub peer_ip: &'a str,
    /// Our own address on that connection (how a node learns its IP).
    pub local_ip: &'a str,
}

impl ClusterState {
    pub fn handle(&mut self, env: &Env, link: Link<'_>, msg: Msg) {
        let kind = crate::msg::STAT_NAMES.iter().position(|n| *n == msg.body.stat_name()).unwrap_or(0);
        self.received[kind] += 1;
        let Msg { header: h, body } = msg;
        if let Some(via) = link.outbound_of {
            if !self.check_link_identity(env, via, &h, link) {
                return;
            }
        }
        let known = self.nodes.get(&h.sender).is_some_and(|n| !n.has(node::HANDSHAKE));
        if known {
            self.note_sender(env, &h, link);
        }
        match body {
            Body::Ping(g) | Body::Meet(g) | Body::Pong(g) => {
                let meet = kind == 2;
                let ping_like = kind != 1;
                if ping_like && (meet || self.me().ip.is_empty()) && self.settings.announce_ip.is_empty() {
                    self.learn_my_ip(link.local_ip);
                }
                if !known && meet && !self.is_banned(&h.sender, env.now) {
                    let ip = if h.ip.is_empty() { link.peer_ip } else { &h.ip };
                    let mut n =
                        Node::new(h.sender, ip, h.port, h.cport, h.flags & (node::MASTER | node::REPLICA), env.now);
                    n.data_received = env.now;
                    self.nodes.insert(h.sender, n);
                    self.changed();
                }
                let known = self.nodes.get(&h.sender).is_some_and(|n| !n.has(node::HANDSHAKE));
                if known {
                    if kind == 1 && link.outbound_of == Some(h.sender) {
                        self.note_pong(env, h.sender);
                    }
                    self.apply_role_and_slots(env, &h);
                    self.apply_gossip(env, &h, &g);
                }
                if ping_like {
                    let pong = self.msg(env, Body::Pong(self.gossip_for(&h.sender)));
                    self.sent[1] += 1;
                    self.effect(Effect::Reply(pong));
                }
            }
            _ if !known => {}
            Body::Fail(id) => {
                if let Some(n) = self.nodes.get_mut(&id) {
                    if id != self.myself && !n.has(node::FAIL) {
                        n.flags = (n.flags | node::FAIL) & !node::PFAIL;
                        n.fail_time = env.now;
                        tracing::info!(node = %id, reporter = %h.sender, "FAIL message received");
                        self.changed();
                    }
                }
            }
            Body::Publish { channel, message } => {
                self.effect(Effect::Publish { channel, message, shard: false });
            }
            Body::PublishShard { channel, message } => {
                self.effect(Effect::Publish { channel, message, shard: true });
            }
            Body::AuthRequest => self.maybe_vote(env, &h),
            Body::AuthAck => self.count_vote(&h),
            Body::Update { id, config_epoch, slots } => {
                let Some(n) = self.nodes.get(&id) else { return };
                if n.config_epoch >= config_epoch {
                    return;
                }
                if n.is_replica() {
                    self.set_node_as_master(&id);
                }
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.config_epoch = config_epoch;
                }
                self.update_slots_with(env, id, config_epoch, &slots);
                self.changed();
            }
            Body::MfStart => {
                let mine = self.nodes.get(&h.sender).is_some_and(|n| n.master == Some(self.myself));
                if !mine || !self.i_am_master() {
                    return;
                }
                tracing::info!(replica = %h.sender, "manual failover requested by replica");
                self.mf = ManualFailover { end: env.now + MF_TIMEOUT_MS, master_offset: -1, can_start: false };
                self.effect(Effect::PauseWrites(env.now + MF_TIMEOUT_MS * 2));
                // Tell the replica our final offset (the header says PAUSED).
                self.ping(env, h.sender);
            }
        }
    }

    fn is_banned(&self, id: &NodeId, now: u64) -> bool {
        self.banned.get(id).is_some_and(|&until| until > now)
    }

    fn learn_my_ip(&mut self, local_ip: &str) {
        if !local_ip.is_empty() && self.me().ip != local_ip {
            tracing::info!(ip = local_ip, "learned my address from a MEET");
            self.me_mut().ip = local_ip.to_string();
            self.changed();
        }
    }

    /// A reply on our outbound link must come from the node we dialled;
    /// a handshake node learns its real name here. `false`: drop the message.
    fn check_link_identity(&mut self, env: &Env, via: NodeId, h: &Header, link: Link<'_>) -> bool {
        let Some(n) = self.nodes.get(&via) else { return false };
        if n.has(node::HANDSHAKE) {
            if h.sender == self.myself || self.nodes.contains_key(&h.sender) {
                // Already known under its real name (both sides met).
                self.nodes.remove(&via);
                self.effect(Effect::Disconnect(via));
                self.version += 1;
                return false;
            }
            let mut n = self.nodes.remove(&via).expect("checked");
            n.id = h.sender;
            n.flags = h.flags & (node::MASTER | node::REPLICA);
            if n.ip.is_empty() {
                n.ip = link.peer_ip.to_string();
            }
            n.pong_received = env.now;
            n.data_received = env.now;
            n.ping_sent = 0;
            self.nodes.insert(h.sender, n);
            self.effect(Effect::Rename(via, h.sender));
            tracing::info!(node = %h.sender, "handshake completed");
            self.changed();
            return true;
        }
        if via != h.sender {
            // Someone else answers at that address now.
            self.effect(Effect::Disconnect(via));
            if let Some(n) = self.nodes.get_mut(&via) {
                n.link_up = false;
            }
            return false;
        }
        true
    }

    /// Epochs, liveness and the offset from any known sender's header.
    fn note_sender(&mut self, env: &Env, h: &Header, link: Link<'_>) {
        if h.current_epoch > self.current_epoch {
            self.current_epoch = h.current_epoch;
            self.changed();
        }
        let am_replica_of_sender = self.me().is_replica() && self.me().master == Some(h.sender);
        let Some(n) = self.nodes.get_mut(&h.sender) else { return };
        n.data_received = env.now;
        n.repl_offset = h.offset;
        if n.ip.is_empty() {
            n.ip = if h.ip.is_empty() { link.peer_ip.to_string() } else { h.ip.clone() };
        }
        let nofailover = h.flags & node::NOFAILOVER != 0;
        if n.has(node::NOFAILOVER) != nofailover {
            n.flags ^= node::NOFAILOVER;
        }
        let epoch_grew = h.config_epoch > n.config_epoch;
        if epoch_grew {
            n.config_epoch = h.config_epoch;
        }
        if epoch_grew {
            self.changed();
        }
        if am_replica_of_sender && h.mflags & MF_PAUSED != 0 && self.mf.end != 0 && self.mf.master_offset == -1 {
            self.mf.master_offset = h.offset;
            tracing::info!(offset = h.offset, "received replication offset for paused master manual failover");
        }
    }

    /// A PONG on our link: the node is alive.
    fn note_pong(&mut self, env: &Env, id: NodeId) {
        let nt = self.settings.node_timeout;
        let Some(n) = self.nodes.get_mut(&id) else { return };
        n.pong_received = env.now;
        n.ping_sent = 0;
        n.flags &= !node::MEET;
        if n.has(node::PFAIL) {
            n.flags &= !node::PFAIL;
            self.version += 1;
        } else if n.has(node::FAIL) {
            // A replica or slotless master is back at once; a master with
            // slots only if nobody took them over in 2 * node-timeout.
            if !n.is_master() || n.slots.is_empty() || env.now.saturating_sub(n.fail_time) > nt * 2 {
                n.flags &= !node::FAIL;
                tracing::info!(node = %id, "clearing FAIL state: node is reachable again");
                self.changed();
            }
        }
    }

    pub(crate) fn set_node_as_master(&mut self, id: &NodeId) {
        if let Some(n) = self.nodes.get_mut(id) {
            if n.is_master() {
                return;
            }
            n.flags = (n.flags & !node::REPLICA) | node::MASTER;
            n.master = None;
            self.changed();
        }
    }

    fn apply_role_and_slots(&mut self, env: &Env, h: &Header) {
        let id = h.sender;
        if h.flags & node::MASTER != 0 {
            self.set_node_as_master(&id);
        } else if h.flags & node::REPLICA != 0 {
            let was_master = self.nodes[&id].is_master();
            if was_master {
                let theirs: Vec<u16> = self.nodes[&id].slots.iter().collect();
                for s in theirs {
                    self.unassign(s);
                }
                let n = self.nodes.get_mut(&id).expect("known");
                n.flags = (n.flags & !node::MASTER) | node::REPLICA;
                self.changed();
            }
            let master = h.master.filter(|m| self.nodes.contains_key(m));
            let n = self.nodes.get_mut(&id).expect("known");
            if master.is_some() && n.master != master {
                n.master = master;
                self.changed();
            }
        }
        if h.flags & node::MASTER != 0 && self.i_am_master() && h.config_epoch == self.me().config_epoch {
            self.handle_epoch_collision(id);
        }
        let sender_master = if h.flags & node::MASTER != 0 { Some(id) } else { self.nodes[&id].master };
        let Some(sm) = sender_master.and_then(|m| self.nodes.get(&m)) else { return };
        if sm.slots == h.slots {
            return;
        }
        if h.flags & node::MASTER != 0 {
            self.update_slots_with(env, id, h.config_epoch, &h.slots);
        }
        // The sender claims slots a newer configuration gave to someone
        // else: tell it.
        for slot in h.slots.iter() {
            let Some(owner) = self.owner[slot as usize] else { continue };
            if owner == id {
                continue;
            }
            let o = &self.nodes[&owner];
            if o.config_epoch > h.config_epoch {
                let body = Body::Update { id: owner, config_epoch: o.config_epoch, slots: o.slots.clone() };
                let msg = self.msg(env, body);
                self.send(id, msg);
                break;
            }
        }
    }

    /// Two masters with one configEpoch: the one with the smaller name
    /// takes a new epoch.
    fn handle_epoch_collision(&mut self, other: NodeId) {
        if other <= self.myself {
            return;
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        tracing::info!(epoch = e, "configEpoch collision resolved");
        self.changed();
    }

    /// `sender`'s claim on `slots` at `epoch`, as Redis's
    /// `clusterUpdateSlotsConfigWith`: it wins unassigned slots and slots of
    /// owners with an older configEpoch; a master left with none of its
    /// slots (or a replica whose master was) follows the winner.
    pub(crate) fn update_slots_with(&mut self, env: &Env, sender: NodeId, epoch: u64, slots: &SlotSet) {
        if sender == self.myself {
            return;
        }
        let cur_master = if self.i_am_master() { Some(self.myself) } else { self.me().master };
        let mut new_primary = false;
        let mut migrated_ours = 0;
        let mut lost = Vec::new();
        for slot in slots.iter() {
            let owner = self.owner[slot as usize];
            if owner == Some(sender) || self.importing.contains_key(&slot) {
                continue;
            }
            let older = owner.and_then(|o| self.nodes.get(&o)).is_none_or(|o| o.config_epoch < epoch);
            if !older {
                continue;
            }
            if owner == Some(self.myself) {
                lost.push(slot);
            }
            if owner.is_some() && owner == cur_master {
                new_primary = true;
                migrated_ours += 1;
            }
            self.assign(slot, sender);
            self.migrating.remove(&slot);
            self.changed();
        }
        let _ = env;
        let cur_master_empty = cur_master.and_then(|m| self.nodes.get(&m)).is_some_and(|m| m.slots.is_empty());
        if new_primary && cur_master_empty && (self.settings.allow_replica_migration || slots.len() == migrated_ours) {
            tracing::info!(master = %sender, "configuration change detected: reconfiguring myself as a replica");
            self.set_my_master(sender);
        } else if !lost.is_empty() {
            self.effect(Effect::DropSlots(lost));
        }
    }

    fn apply_gossip(&mut self, env: &Env, h: &Header, entries: &[Gossip]) {
        let sender_is_master = h.flags & node::MASTER != 0;
        for g in entries {
            if g.id == self.myself {
                continue;
            }
            if self.nodes.contains_key(&g.id) {
                if sender_is_master {
                    let max_age = self.settings.node_timeout * 2;
                    let n = self.nodes.get_mut(&g.id).expect("known");
                    if g.flags & (node::PFAIL | node::FAIL) != 0 {
                        match n.fail_reports.iter_mut().find(|(r, _)| *r == h.sender) {
                            Some(r) => r.1 = env.now,
                            None => n.fail_reports.push((h.sender, env.now)),
                        }
                    } else {
                        n.fail_reports.retain(|(r, _)| *r != h.sender);
                    }
                    n.expire_reports(env.now, max_age);
                    self.mark_failing_if_needed(env, g.id);
                }
            } else if g.flags & (node::NOADDR | node::HANDSHAKE) == 0
                && !g.ip.is_empty()
                && !self.is_banned(&g.id, env.now)
            {
                let flags = (g.flags & (node::MASTER | node::REPLICA)) | node::MEET;
                let n = Node::new(g.id, &g.ip, g.port, g.cport, flags, env.now);
                self.nodes.insert(g.id, n);
                tracing::info!(node = %g.id, addr = %format!("{}:{}", g.ip, g.port), "learned of a node through gossip");
                self.changed();
            }
        }
    }

    /// PFAIL to FAIL once enough masters agree.
    pub(crate) fn mark_failing_if_needed(&mut self, env: &Env, id: NodeId) {
        let quorum = self.quorum();
        let me_master = self.i_am_master();
        let max_age = self.settings.node_timeout * 2;
        let Some(n) = self.nodes.get_mut(&id) else { return };
        if !n.has(node::PFAIL) || n.has(node::FAIL) {
            return;
        }
        n.expire_reports(env.now, max_age);
        let failures = n.fail_reports.len() + me_master as usize;
        if failures < quorum {
            return;
        }
        n.flags = (n.flags | node::FAIL) & !node::PFAIL;
        n.fail_time = env.now;
        tracing::info!(node = %id, "marking node as failing (quorum reached)");
        self.changed();
        self.broadcast(env, Body::Fail(id));
    }

    /// Gossip about a few random nodes (and every PFAIL one) for `to`.
    pub(crate) fn gossip_for(&self, to: &NodeId) -> Vec<Gossip> {
        let candidates: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| {
                n.id != self.myself && n.id != *to && !n.has(node::HANDSHAKE | node::NOADDR) && !n.ip.is_empty()
            })
            .collect();
        let wanted = (self.nodes.len() / 10).max(3);
        let mut rng = rand::thread_rng();
        let mut chosen: Vec<&Node> = candidates.choose_multiple(&mut rng, wanted).copied().collect();
        for n in &candidates {
            if n.has(node::PFAIL) && !chosen.iter().any(|c| c.id == n.id) {
                chosen.push(n);
            }
        }
        // Ourselves too, so that a node that learned us only second-hand
        // has our address.
        let mut out: Vec<Gossip> = chosen
            .into_iter()
            .map(|n| Gossip {
                id: n.id,
                ip: n.ip.clone(),
                port: n.port,
                cport: n.cport,
                flags: n.flags & !(node::MYSELF | node::MEET),
                ping_sent: n.ping_sent,
                pong_received: n.pong_received,
            })
            .collect();
        out.truncate(1024);
        out
    }

    /// A PING (or MEET, if it may not know us) on our link to `id`.
    pub(crate) fn ping(&mut self, env: &Env, id: NodeId) {
        let Some(n) = self.nodes.get(&id) else { return };
        let meet = n.has(node::MEET);
        let g = self.gossip_for(&id);
        let body = if meet { Body::Meet(g) } else { Body::Ping(g) };
        let msg = self.msg(env, body);
        if let Some(n) = self.nodes.get_mut(&id) {
            if n.ping_sent == 0 {
                n.ping_sent = env.now;
            }
        }
        self.send(id, msg);
    }
}
