//! Text the tools parse: CLUSTER NODES lines (also the body of
//! `nodes.conf`) and CLUSTER INFO, in Redis 7.0's exact layout.

use std::fmt::Write;

use crate::node::{self, Node};
use crate::state::ClusterState;

/// One CLUSTER NODES line, `\n`-terminated.
pub fn node_line(st: &ClusterState, n: &Node, out: &mut String) {
    let master = match (n.is_replica(), n.master) {
        (true, Some(m)) => m.to_string(),
        _ => "-".into(),
    };
    let myself = n.id == st.myself;
    let (ping, pong) = if myself { (0, 0) } else { (n.ping_sent, n.pong_received) };
    // A replica shows its master's epoch, as Redis's nodeEpoch().
    let epoch = match n.master.and_then(|m| st.nodes.get(&m)) {
        Some(m) if n.is_replica() => m.config_epoch,
        _ => n.config_epoch,
    };
    let link = if myself || n.link_up { "connected" } else { "disconnected" };
    let _ = write!(
        out,
        "{} {}:{}@{} {} {} {} {} {} {}",
        n.id,
        n.ip,
        n.port,
        n.cport,
        n.flag_names(),
        master,
        ping,
        pong,
        epoch,
        link
    );
    if n.is_master() {
        for (a, b) in n.slots.ranges() {
            if a == b {
                let _ = write!(out, " {a}");
            } else {
                let _ = write!(out, " {a}-{b}");
            }
        }
    }
    if myself {
        for (slot, to) in &st.migrating {
            let _ = write!(out, " [{slot}->-{to}]");
        }
        for (slot, from) in &st.importing {
            let _ = write!(out, " [{slot}-<-{from}]");
        }
    }
    out.push('\n');
}

fn sorted(st: &ClusterState) -> Vec<&Node> {
    let mut nodes: Vec<&Node> = st.nodes.values().collect();
    // Myself first, then by name: stable output, easy to read.
    nodes.sort_by_key(|n| (n.id != st.myself, n.id));
    nodes
}

/// CLUSTER NODES.
pub fn nodes(st: &ClusterState) -> String {
    let mut out = String::with_capacity(st.nodes.len() * 128);
    for n in sorted(st) {
        node_line(st, n, &mut out);
    }
    out
}

/// `nodes.conf`: the lines without handshake nodes, then the epochs.
pub fn nodes_conf(st: &ClusterState) -> String {
    let mut out = String::with_capacity(st.nodes.len() * 128 + 64);
    for n in sorted(st) {
        if !n.has(node::HANDSHAKE) {
            node_line(st, n, &mut out);
        }
    }
    let _ = writeln!(out, "vars currentEpoch {} lastVoteEpoch {}", st.current_epoch, st.last_vote_epoch);
    out
}

/// CLUSTER INFO.
pub fn info(st: &ClusterState) -> String {
    let (assigned, pfail, fail) = st.slot_counts();
    let my_epoch = st.my_master().map_or(st.me().config_epoch, |m| m.config_epoch);
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "cluster_state:{}\r\ncluster_slots_assigned:{}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:{}\r\n\
         cluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\n\
         cluster_my_epoch:{}\r\n",
        if st.ok { "ok" } else { "fail" },
        assigned,
        assigned - pfail - fail,
        pfail,
        fail,
        st.nodes.len(),
        st.size(),
        st.current_epoch,
        my_epoch,
    );
    for (dir, counts) in [("sent", &st.sent), ("received", &st.received)] {
        for (i, name) in crate::msg::STAT_NAMES.iter().enumerate() {
            if counts[i] > 0 {
                let _ = write!(out, "cluster_stats_messages_{name}_{dir}:{}\r\n", counts[i]);
            }
        }
        let _ = write!(out, "cluster_stats_messages_{dir}:{}\r\n", counts.iter().sum::<u64>());
    }
    out.push_str("total_cluster_links_buffer_limit_exceeded:0\r\n");
    out
}
