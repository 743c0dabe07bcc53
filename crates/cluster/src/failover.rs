//! Failover: a replica's election when its master fails (or on CLUSTER
//! FAILOVER), and a master's vote, as the Redis Cluster specification
//! describes them.

use crate::msg::{Body, Header, MF_FORCEACK};
use crate::node::{self, NodeId};
use crate::state::{ClusterState, Effect, Election, Env, ManualFailover, StateError, MF_TIMEOUT_MS};

/// How long a master must be orphaned before a replica migrates to it.
pub const MIGRATION_DELAY_MS: u64 = 5_000;

/// CLUSTER FAILOVER's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    /// Agree on the master's final offset, then elect.
    Coordinated,
    /// Elect without the master's agreement.
    Force,
    /// Take the slots without an election.
    Takeover,
}

impl ClusterState {
    /// CLUSTER FAILOVER on a replica.
    pub fn manual_failover(&mut self, env: &Env, mode: FailoverMode) -> Result<(), StateError> {
        if self.i_am_master() {
            return Err(StateError("ERR You should send CLUSTER FAILOVER to a replica".into()));
        }
        let master = self.me().master.and_then(|m| self.nodes.get(&m));
        let Some(master) = master else {
            return Err(StateError("ERR I'm a replica but my master is unknown to me".into()));
        };
        if mode == FailoverMode::Coordinated && (master.has(node::FAIL) || !master.link_up) {
            return Err(StateError("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into()));
        }
        let master_id = master.id;
        self.mf = ManualFailover { end: env.now + MF_TIMEOUT_MS, master_offset: -1, ..Default::default() };
        tracing::info!(?mode, "manual failover user request accepted");
        match mode {
            FailoverMode::Takeover => {
                // No votes: a new epoch of our own, then the slots.
                self.bump_epoch_without_consensus();
                self.take_over_master(env);
            }
            FailoverMode::Force => self.mf.can_start = true,
            FailoverMode::Coordinated => {
                let msg = self.msg(env, Body::MfStart);
                self.send(master_id, msg);
            }
        }
        Ok(())
    }

    /// Cron's part of a manual failover: time it out, and (replica) let
    /// the election start once we reached the paused master's offset.
    pub(crate) fn manual_failover_cron(&mut self, env: &Env) {
        if self.mf.end == 0 {
            return;
        }
        if env.now > self.mf.end {
            tracing::warn!("manual failover timed out");
            if self.i_am_master() {
                self.effect(Effect::PauseWrites(0));
            }
            self.mf = ManualFailover { master_offset: -1, ..Default::default() };
            return;
        }
        if !self.i_am_master()
            && !self.mf.can_start
            && self.mf.master_offset >= 0
            && env.offset >= self.mf.master_offset
        {
            tracing::info!(offset = env.offset, "all master replication stream processed, manual failover can start");
            self.mf.can_start = true;
        }
    }

    /// A replica's rank: siblings (that may fail over) with more data.
    fn my_rank(&self, env: &Env) -> usize {
        let Some(master) = self.me().master else { return 0 };
        self.nodes
            .values()
            .filter(|n| {
                n.id != self.myself
                    && n.is_replica()
                    && n.master == Some(master)
                    && !n.has(node::NOFAILOVER)
                    && n.repl_offset > env.offset
            })
            .count()
    }

    /// Cron's part of an automatic (or manual) failover on a replica.
    pub(crate) fn replica_failover_cron(&mut self, env: &Env) {
        let nt = self.settings.node_timeout;
        let manual = self.mf.end != 0 && self.mf.can_start;
        if self.i_am_master() {
            return;
        }
        let Some(master) = self.me().master.and_then(|m| self.nodes.get(&m)) else { return };
        if (!master.has(node::FAIL) && !manual) || master.slots.is_empty() {
            return;
        }
        if !manual && self.settings.replica_no_failover {
            return;
        }
        // Data too old to be trusted as the new master's.
        let data_age = env.master_link_down_ms.saturating_sub(nt);
        let factor = self.settings.replica_validity_factor;
        if !manual && factor > 0 && data_age > 10_000 + nt * factor {
            return;
        }
        let auth_timeout = (nt * 2).max(2000);
        let retry = auth_timeout * 2;
        let auth_age = env.now.saturating_sub(self.election.auth_time);
        if self.election.auth_time == 0 || (auth_age > retry && env.now > self.election.auth_time) {
            let rank = if manual { 0 } else { self.my_rank(env) };
            let delay = if manual { 0 } else { 500 + rand::random::<u64>() % 500 + rank as u64 * 1000 };
            self.election = Election { auth_time: env.now + delay, rank, ..Default::default() };
            tracing::info!(delay_ms = delay, rank, offset = env.offset, "start of election delayed");
            return;
        }
        if !self.election.auth_sent && !manual {
            let rank = self.my_rank(env);
            if rank > self.election.rank {
                self.election.auth_time += (rank - self.election.rank) as u64 * 1000;
                self.election.rank = rank;
            }
        }
        if env.now < self.election.auth_time {
            return;
        }
        if env.now - self.election.auth_time > auth_timeout {
            return;
        }
        if !self.election.auth_sent {
            self.current_epoch += 1;
            self.election.auth_epoch = self.current_epoch;
            self.election.auth_sent = true;
            tracing::info!(epoch = self.current_epoch, "starting a failover election");
            let mut msg = self.msg(env, Body::AuthRequest);
            if manual {
                msg.header.mflags |= MF_FORCEACK;
            }
            let to: Vec<NodeId> =
                self.nodes.values().filter(|n| n.link_up && n.id != self.myself).map(|n| n.id).collect();
            for id in to {
                self.send(id, msg.clone());
            }
            self.changed();
            return;
        }
        if self.election.auth_count >= self.quorum() {
            tracing::info!("failover election won: I'm the new master");
            if self.me().config_epoch < self.election.auth_epoch {
                let e = self.election.auth_epoch;
                self.me_mut().config_epoch = e;
                tracing::info!(epoch = e, "configEpoch set after successful failover");
            }
            self.take_over_master(env);
        }
    }

    /// We replace our master: its slots are ours, we are a master, and
    /// everyone hears it at once.
    pub(crate) fn take_over_master(&mut self, env: &Env) {
        let Some(old) = self.me().master else { return };
        let slots: Vec<u16> = self.nodes.get(&old).map(|m| m.slots.iter().collect()).unwrap_or_default();
        let me = self.myself;
        let n = self.me_mut();
        n.flags = (n.flags & !node::REPLICA) | node::MASTER;
        n.master = None;
        for s in slots {
            self.assign(s, me);
        }
        self.election = Election::default();
        self.mf = ManualFailover { master_offset: -1, ..Default::default() };
        self.effect(Effect::Promote);
        self.update_state();
        self.changed();
        self.broadcast(env, Body::Pong(Vec::new()));
    }

    /// A master's answer to a replica asking for its vote.
    pub(crate) fn maybe_vote(&mut self, env: &Env, h: &Header) {
        let nt = self.settings.node_timeout;
        if !self.i_am_master() || self.me().slots.is_empty() {
            return;
        }
        let force = h.mflags & MF_FORCEACK != 0;
        let refuse =
            |why: &str| tracing::info!(candidate = %h.sender, epoch = h.current_epoch, why, "failover auth denied");
        if h.current_epoch < self.current_epoch {
            return refuse("request epoch is older than mine");
        }
        if self.last_vote_epoch == self.current_epoch {
            return refuse("already voted for this epoch");
        }
        let Some(sender) = self.nodes.get(&h.sender) else { return };
        if sender.is_master() {
            return refuse("it is a master");
        }
        let Some(master) = sender.master.and_then(|m| self.nodes.get(&m)) else {
            return refuse("its master is unknown");
        };
        if !master.has(node::FAIL) && !force {
            return refuse("its master is not failing");
        }
        if env.now.saturating_sub(master.voted_time) < nt * 2 && master.voted_time != 0 {
            return refuse("voted for a replica of that master recently");
        }
        for slot in h.slots.iter() {
            let Some(owner) = self.owner[slot as usize].and_then(|o| self.nodes.get(&o)) else { continue };
            if owner.config_epoch > h.config_epoch {
                return refuse("a slot it claims has a newer owner");
            }
        }
        let master_id = master.id;
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.nodes.get_mut(&master_id) {
            m.voted_time = env.now;
        }
        tracing::info!(candidate = %h.sender, epoch = self.current_epoch, "failover auth granted");
        self.changed();
        let msg = self.msg(env, Body::AuthAck);
        self.send(h.sender, msg);
    }

    /// Replica migration: a master with more good replicas than
    /// `cluster-migration-barrier` gives one (the smallest name among the
    /// best-served masters' replicas) to a master left without any for
    /// [`MIGRATION_DELAY_MS`].
    pub(crate) fn replica_migration_cron(&mut self, env: &Env) {
        let good = |st: &Self, m: &NodeId| {
            st.nodes.values().filter(|n| n.is_replica() && n.master == Some(*m) && !n.is_failing()).count()
        };
        let masters: Vec<NodeId> =
            self.nodes.values().filter(|n| n.is_master() && !n.slots.is_empty()).map(|n| n.id).collect();
        let mut orphan = None;
        let mut most = 0;
        for m in &masters {
            let count = good(self, m);
            let n = self.nodes.get_mut(m).expect("listed");
            if count > 0 {
                n.had_replicas = true;
                n.orphaned_since = 0;
            } else if n.had_replicas && !n.is_failing() {
                if n.orphaned_since == 0 {
                    n.orphaned_since = env.now;
                }
                orphan = Some((n.id, n.orphaned_since));
            }
            most = most.max(count);
        }
        if !self.settings.allow_replica_migration || !self.ok || self.i_am_master() {
            return;
        }
        let Some(my_master) = self.me().master else { return };
        let mine = good(self, &my_master);
        if mine <= self.settings.migration_barrier || mine < most {
            return;
        }
        // Among the replicas of the masters with the most good replicas,
        // the smallest name moves: exactly one replica decides to go.
        let candidate = self
            .nodes
            .values()
            .filter(|n| n.is_replica() && !n.is_failing())
            .filter(|n| n.master.is_some_and(|m| masters.contains(&m) && good(self, &m) == most))
            .map(|n| n.id)
            .min();
        if candidate != Some(self.myself) {
            return;
        }
        if let Some((target, since)) = orphan {
            if env.now.saturating_sub(since) > MIGRATION_DELAY_MS {
                tracing::info!(master = %target, "migrating to orphaned master");
                self.set_my_master(target);
            }
        }
    }

    pub(crate) fn count_vote(&mut self, h: &Header) {
        let Some(voter) = self.nodes.get(&h.sender) else { return };
        if voter.is_master() && !voter.slots.is_empty() && h.current_epoch >= self.election.auth_epoch {
            self.election.auth_count += 1;
        }
    }
}
