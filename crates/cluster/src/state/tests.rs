//! The rules end to end: several states wired together in memory, a
//! simulated clock, nodes that can be cut off.

use std::collections::HashSet;

use super::*;
use crate::failover::FailoverMode;
use crate::gossip::Link;

struct Sim {
    nodes: Vec<ClusterState>,
    now: u64,
    down: HashSet<usize>,
}

impl Sim {
    fn new(n: usize, node_timeout: u64) -> Sim {
        let settings = Settings { node_timeout, ..Settings::default() };
        let nodes = (0..n).map(|i| ClusterState::new(settings.clone(), 7000 + i as u16, 17000 + i as u16, 1)).collect();
        Sim { nodes, now: 1_000_000, down: HashSet::new() }
    }

    fn env(&self) -> Env {
        Env { now: self.now, offset: 0, master_link_down_ms: 0 }
    }

    fn index_of_port(&self, port: u16) -> usize {
        (port - 7000) as usize
    }

    fn id(&self, i: usize) -> NodeId {
        self.nodes[i].myself
    }

    /// Runs every pending effect until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let effects = self.nodes[i].take_effects();
                if self.down.contains(&i) {
                    continue;
                }
                for e in effects {
                    moved = true;
                    self.apply(i, e);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn apply(&mut self, i: usize, e: Effect) {
        let env = self.env();
        match e {
            Effect::Connect(id) => {
                let port = self.nodes[i].nodes[&id].port;
                let j = self.index_of_port(port);
                if self.down.contains(&j) {
                    self.nodes[i].link_down(&env, id);
                } else {
                    self.nodes[i].link_up(&env, id);
                }
            }
            Effect::Send(to, msg) => {
                let Some(n) = self.nodes[i].nodes.get(&to) else { return };
                let j = self.index_of_port(n.port);
                if self.down.contains(&j) {
                    return;
                }
                let link = Link { outbound_of: None, peer_ip: "127.0.0.1", local_ip: "127.0.0.1" };
                self.nodes[j].handle(&env, link, msg);
                let replies: Vec<Effect> = self.nodes[j].take_effects();
                for r in replies {
                    match r {
                        Effect::Reply(m) => {
                            let link = Link { outbound_of: Some(to), peer_ip: "127.0.0.1", local_ip: "127.0.0.1" };
                            self.nodes[i].handle(&env, link, m);
                        }
                        other => self.nodes[j].effects.push(other),
                    }
                }
            }
            _ => {}
        }
    }

    /// Advances the clock by `ms` in cron steps.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            self.now += 100;
            for i in 0..self.nodes.len() {
                if !self.down.contains(&i) {
                    let env = self.env();
                    self.nodes[i].cron(&env);
                }
            }
            self.settle();
        }
    }

    fn up(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| !self.down.contains(i))
    }

    /// `n` nodes met through node 0; nodes 0-2 masters of a third of
    /// the slots each; `replicas` as (replica, master) pairs.
    fn formed(n: usize, replicas: &[(usize, usize)]) -> Sim {
        let mut sim = Sim::new(n, 1000);
        for i in 1..n {
            sim.nodes[0].meet("127.0.0.1", 7000 + i as u16, 17000 + i as u16, sim.now).unwrap();
        }
        sim.run(3000);
        let ranges = [(0u16, 5460u16), (5461, 10922), (10923, 16383)];
        for (i, (a, b)) in ranges.into_iter().enumerate() {
            sim.nodes[i].add_slots(&(a..=b).collect::<Vec<u16>>()).unwrap();
        }
        for &(r, m) in replicas {
            let id = sim.id(m);
            sim.nodes[r].replicate(id.as_bytes(), true).unwrap();
        }
        sim.run(3000);
        sim
    }

    /// Six nodes, three masters with slots, three replicas.
    fn six() -> Sim {
        Sim::formed(6, &[(3, 0), (4, 1), (5, 2)])
    }
}

#[test]
fn one_meet_and_gossip_make_everyone_know_everyone() {
    let sim = Sim::six();
    for i in 0..6 {
        let st = &sim.nodes[i];
        assert_eq!(st.nodes.len(), 6, "node {i} knows {:?}", st.nodes.keys().collect::<Vec<_>>());
        assert!(st.nodes.values().all(|n| !n.has(node::HANDSHAKE)));
        assert_eq!(st.me().ip, "127.0.0.1", "learned its address");
        assert!(st.ok, "node {i}: cluster_state ok");
        assert_eq!(st.size(), 3);
    }
    // Every node agrees on who serves slot 6000 and on the replicas.
    let owner = sim.id(1);
    assert!(sim.nodes.iter().all(|st| st.owner[6000] == Some(owner)));
    assert!(sim.nodes.iter().all(|st| st.nodes[&sim.id(4)].master == Some(owner)));
    let text = crate::render::nodes(&sim.nodes[0]);
    assert_eq!(text.lines().count(), 6);
    assert!(text.starts_with(&format!("{} 127.0.0.1:7000@17000 myself,master - 0 0 ", sim.id(0))));
    assert!(text.contains(" connected 5461-10922\n"));
}

#[test]
fn a_dead_master_is_replaced_by_its_replica() {
    let mut sim = Sim::six();
    let dead = sim.id(0);
    sim.down.insert(0);
    sim.run(8000);
    for i in sim.up().collect::<Vec<_>>() {
        let st = &sim.nodes[i];
        assert!(st.nodes[&dead].has(node::FAIL), "node {i} sees the master as failed");
        assert_eq!(st.owner[0], Some(sim.id(3)), "node {i}: slot 0 moved to the replica");
        assert!(st.ok, "node {i}: cluster ok again");
    }
    assert!(sim.nodes[3].i_am_master());
    assert!(sim.nodes[3].me().config_epoch > sim.nodes[1].me().config_epoch.min(sim.nodes[2].me().config_epoch));

    // The old master comes back and finds out it is a replica now.
    sim.down.remove(&0);
    sim.run(5000);
    let st = &sim.nodes[0];
    assert!(st.me().is_replica(), "old master is a replica again");
    assert_eq!(st.me().master, Some(sim.id(3)));
    assert!(sim.nodes[1].nodes[&dead].is_replica());
    assert!(!sim.nodes[1].nodes[&dead].has(node::FAIL));
}

#[test]
fn coordinated_manual_failover_swaps_roles() {
    let mut sim = Sim::six();
    let env = sim.env();
    sim.nodes[4].manual_failover(&env, FailoverMode::Coordinated).unwrap();
    sim.run(2000);
    assert!(sim.nodes[4].i_am_master());
    assert!(sim.nodes[1].me().is_replica());
    assert_eq!(sim.nodes[1].me().master, Some(sim.id(4)));
    assert!(sim.nodes.iter().all(|st| st.owner[6000] == Some(sim.id(4))));
    assert!(sim.nodes[0].ok);
}

#[test]
fn a_spare_replica_migrates_to_an_orphaned_master() {
    // Master 0 has two replicas (3 and 6), masters 1 and 2 one each.
    let mut sim = Sim::formed(7, &[(3, 0), (4, 1), (5, 2), (6, 0)]);
    // Master 1's only replica dies: master 1 is orphaned.
    sim.down.insert(4);
    sim.run(12_000);
    let spare = [3, 6].into_iter().min_by_key(|&i| sim.id(i)).unwrap();
    assert_eq!(sim.nodes[spare].me().master, Some(sim.id(1)), "the smaller-named spare moved");
    let other = if spare == 3 { 6 } else { 3 };
    assert_eq!(sim.nodes[other].me().master, Some(sim.id(0)), "the other stayed");
}

#[test]
fn takeover_needs_no_votes() {
    let mut sim = Sim::six();
    sim.down.insert(0);
    sim.down.insert(1);
    let env = sim.env();
    sim.nodes[5].manual_failover(&env, FailoverMode::Takeover).unwrap();
    sim.settle();
    assert!(sim.nodes[5].i_am_master());
    assert_eq!(sim.nodes[5].owner[16000], Some(sim.id(5)));
}

#[test]
fn masters_with_one_epoch_end_up_with_distinct_ones() {
    let mut sim = Sim::new(3, 1000);
    for i in 1..3 {
        sim.nodes[0].meet("127.0.0.1", 7000 + i as u16, 17000 + i as u16, sim.now).unwrap();
    }
    // All three start at configEpoch 0: the collision rule separates them.
    sim.run(5000);
    let mut epochs: Vec<u64> = sim.nodes.iter().map(|st| st.me().config_epoch).collect();
    epochs.sort();
    epochs.dedup();
    assert_eq!(epochs.len(), 3, "distinct configEpochs: {epochs:?}");
}

#[test]
fn a_forgotten_node_stays_forgotten_for_the_ban() {
    let mut sim = Sim::six();
    let gone = sim.id(5);
    for i in 0..5 {
        let now = sim.now;
        sim.nodes[i].forget(gone.as_bytes(), now).unwrap();
    }
    // Node 5 itself still gossips about everyone, but nobody re-adds it
    // while banned (it would be re-added by its own MEETs; it is stopped).
    sim.down.insert(5);
    sim.run(10_000);
    assert!((0..5).all(|i| !sim.nodes[i].nodes.contains_key(&gone)));
    assert_eq!(sim.nodes[0].forget(gone.as_bytes(), sim.now).unwrap_err().0, format!("ERR Unknown node {gone}"));
}

#[test]
fn admin_errors_speak_redis() {
    let mut st = ClusterState::new(Settings::default(), 7000, 17000, 0);
    st.add_slots(&[1, 2]).unwrap();
    assert_eq!(st.add_slots(&[2]).unwrap_err().0, "ERR Slot 2 is already busy");
    assert_eq!(st.del_slots(&[3]).unwrap_err().0, "ERR Slot 3 is already unassigned");
    assert_eq!(st.add_slots(&[5, 5]).unwrap_err().0, "ERR Slot 5 specified multiple times");
    let me = st.myself;
    assert_eq!(st.replicate(me.as_bytes(), true).unwrap_err().0, "ERR Can't replicate myself");
    assert_eq!(st.forget(b"abc", 0).unwrap_err().0, "ERR Unknown node abc");
    assert_eq!(st.set_config_epoch(3), Ok(()));
    assert_eq!(st.set_config_epoch(4).unwrap_err().0, "ERR Node config epoch is already non-zero");
    assert_eq!(st.current_epoch, 3);
    assert_eq!(st.bump_epoch(), (false, 3), "already the unique maximum");
    assert_eq!(st.set_slot(1, SetSlot::Node(me), 0), Ok(()), "assigning a slot to its owner is harmless");
    let err = st.set_slot(9, SetSlot::Migrating(me), 0).unwrap_err();
    assert_eq!(err.0, "ERR I'm not the owner of hash slot 9");
}

#[test]
fn nodes_conf_round_trips() {
    let sim = Sim::six();
    let mut st = sim.nodes.into_iter().next().unwrap();
    st.migrating.insert(7, st.nodes.keys().copied().find(|&id| id != st.myself).unwrap());
    let text = crate::render::nodes_conf(&st);
    assert!(text.ends_with(&format!("vars currentEpoch {} lastVoteEpoch {}\n", st.current_epoch, st.last_vote_epoch)));
    let back = crate::conf::load(&text, Settings::default(), 5).unwrap();
    assert_eq!(back.myself, st.myself);
    assert_eq!(back.nodes.len(), 6);
    assert_eq!(back.owner, st.owner);
    assert_eq!(back.migrating, st.migrating);
    assert_eq!(back.current_epoch, st.current_epoch);
    for (id, n) in &st.nodes {
        assert_eq!(back.nodes[id].master, n.master);
        if n.is_master() {
            // A replica's line shows its master's epoch; only masters' are read.
            assert_eq!(back.nodes[id].config_epoch, n.config_epoch);
        }
        assert_eq!(back.nodes[id].port, n.port);
    }
}
