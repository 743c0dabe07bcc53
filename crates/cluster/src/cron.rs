//! The clock's part, ten times a second: links to open, pings to send,
//! PFAIL and FAIL, elections and `cluster_state`.

use rand::seq::SliceRandom;

use crate::node::{self, NodeId};
use crate::state::{ClusterState, Effect, Env};

impl ClusterState {
    pub fn cron(&mut self, env: &Env) {
        self.ticks += 1;
        let nt = self.settings.node_timeout.max(1);
        let now = env.now;
        self.banned.retain(|_, until| *until > now);

        // Handshakes that never completed.
        let stale: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.has(node::HANDSHAKE) && now.saturating_sub(n.ctime) > nt.max(1000))
            .map(|n| n.id)
            .collect();
        for id in stale {
            self.nodes.remove(&id);
            self.effect(Effect::Disconnect(id));
            self.version += 1;
        }

        // Once a second, the node we heard from least recently among a few.
        if self.ticks.is_multiple_of(10) {
            let mut rng = rand::thread_rng();
            let candidates: Vec<(NodeId, u64)> = self
                .nodes
                .values()
                .filter(|n| n.id != self.myself && n.link_up && n.ping_sent == 0 && !n.has(node::HANDSHAKE))
                .map(|n| (n.id, n.pong_received))
                .collect();
            let pick = candidates.choose_multiple(&mut rng, 5).min_by_key(|(_, pong)| *pong).map(|(id, _)| *id);
            if let Some(id) = pick {
                self.ping(env, id);
            }
        }

        let ids: Vec<NodeId> = self.nodes.keys().filter(|&&id| id != self.myself).copied().collect();
        let mut changed_liveness = false;
        for id in ids {
            let n = &self.nodes[&id];
            if n.has(node::NOADDR) || n.ip.is_empty() {
                continue;
            }
            if !n.link_up {
                continue;
            }
            // A link waiting on a pong for half the timeout while silent
            // is likely dead: reconnect, keeping the ping time.
            if n.ping_sent != 0
                && now.saturating_sub(n.ping_sent) > nt / 2
                && now.saturating_sub(n.data_received) > nt / 2
            {
                self.effect(Effect::Disconnect(id));
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.link_up = false;
                }
                continue;
            }
            if n.ping_sent == 0 && now.saturating_sub(n.pong_received) > nt / 2 {
                self.ping(env, id);
            }
        }
        let ids: Vec<NodeId> = self.nodes.keys().filter(|&&id| id != self.myself).copied().collect();
        for id in ids {
            let n = &self.nodes[&id];
            if n.has(node::HANDSHAKE) || n.ping_sent == 0 {
                continue;
            }
            let delay = now.saturating_sub(n.ping_sent).min(now.saturating_sub(n.data_received));
            if delay > nt && !n.is_failing() {
                tracing::info!(node = %id, "node is not reachable: PFAIL");
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.flags |= node::PFAIL;
                }
                changed_liveness = true;
            }
        }
        if changed_liveness {
            self.version += 1;
            let pfail: Vec<NodeId> = self.nodes.values().filter(|n| n.has(node::PFAIL)).map(|n| n.id).collect();
            for id in pfail {
                self.mark_failing_if_needed(env, id);
            }
        }

        // Links to open: every node we know an address for.
        let want: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.id != self.myself && !n.link_up && !n.ip.is_empty() && !n.connecting)
            .map(|n| n.id)
            .collect();
        for id in want {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.connecting = true;
            }
            self.effect(Effect::Connect(id));
        }

        self.manual_failover_cron(env);
        self.replica_failover_cron(env);
        self.update_state();
        self.replica_migration_cron(env);
    }

    /// Our outbound link to `id` is up: say hello at once.
    pub fn link_up(&mut self, env: &Env, id: NodeId) {
        let Some(n) = self.nodes.get_mut(&id) else { return };
        n.link_up = true;
        n.connecting = false;
        let old_ping = n.ping_sent;
        self.ping(env, id);
        // A reconnect must not restart the failure detection clock.
        if old_ping != 0 {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.ping_sent = old_ping;
            }
        }
    }

    /// Our outbound link to `id` failed or closed.
    pub fn link_down(&mut self, env: &Env, id: NodeId) {
        let Some(n) = self.nodes.get_mut(&id) else { return };
        n.link_up = false;
        n.connecting = false;
        if n.ping_sent == 0 {
            // Unreachable counts as an unanswered ping.
            n.ping_sent = env.now;
        }
    }
}
