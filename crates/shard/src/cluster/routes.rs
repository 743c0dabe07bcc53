//! Who serves each slot, as one immutable snapshot that `dispatch` reads
//! without a lock, and the redirection rules of Redis's
//! `getNodeByQuery`: CROSSSLOT, CLUSTERDOWN, MOVED, ASK and TRYAGAIN.

use std::collections::HashMap;

use bytes::Bytes;
use slotway_cluster::{ClusterState, SlotSet};
use slotway_slots::commands::CommandSpec;
use slotway_slots::key_slot;

use crate::command::Ctx;

const NONE: u16 = u16::MAX;

pub struct Routes {
    /// Per slot, an index into `addrs` (`NONE`: unassigned).
    owner: Vec<u16>,
    /// `ip:port` of each node that owns slots (or is our master).
    addrs: Vec<String>,
    me: u16,
    /// Our master's index, when we are a replica.
    master: u16,
    /// Slots we migrate, and the target's index.
    migrating: HashMap<u16, u16>,
    importing: SlotSet,
    pub ok: bool,
}

impl Routes {
    pub fn build(st: &ClusterState) -> Routes {
        let mut index: HashMap<slotway_cluster::NodeId, u16> = HashMap::new();
        let mut addrs = Vec::new();
        let mut idx = |id: &slotway_cluster::NodeId| -> u16 {
            *index.entry(*id).or_insert_with(|| {
                addrs.push(st.nodes.get(id).map(|n| n.addr()).unwrap_or_default());
                (addrs.len() - 1) as u16
            })
        };
        let me = idx(&st.myself);
        // From each node's slot bitmap, not slot by slot through the
        // owner table: a reshard rebuilds this on every SETSLOT.
        let mut owner = vec![NONE; slotway_cluster::SLOTS];
        for n in st.nodes.values().filter(|n| !n.slots.is_empty()) {
            let i = idx(&n.id);
            for (a, b) in n.slots.ranges() {
                owner[a as usize..=b as usize].fill(i);
            }
        }
        let master = match st.me().master {
            Some(m) if st.me().is_replica() => idx(&m),
            _ => NONE,
        };
        let migrating = st.migrating.iter().map(|(s, t)| (*s, idx(t))).collect();
        let mut importing = SlotSet::default();
        st.importing.keys().for_each(|&s| importing.insert(s));
        Routes { owner, addrs, me, master, migrating, importing, ok: st.ok }
    }

    /// True when this node serves `slot` as its master.
    pub fn serves(&self, slot: u16) -> bool {
        self.owner.get(slot as usize) == Some(&self.me)
    }
}

pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
const TRYAGAIN: &str = "TRYAGAIN Multiple keys request during rehashing of slot";

/// The redirection (as an error reply) a keyed command gets on this
/// node, or `None` to run it here.
pub fn check(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[Bytes]) -> Option<String> {
    let cluster = ctx.shared.cluster.get()?;
    let Ok(keys) = spec.keys(args) else { return None };
    let first = *keys.first()?;
    let slot = key_slot(&args[first]);
    if keys[1..].iter().any(|&i| key_slot(&args[i]) != slot) {
        return Some(CROSSSLOT.into());
    }
    let routes = cluster.routes.load();
    let readonly_cmd = !spec.is_write();
    let owner = routes.owner[slot as usize];
    if owner == NONE {
        return Some("CLUSTERDOWN Hash slot not served".into());
    }
    if !routes.ok && (!readonly_cmd || !ctx.config.flag("cluster-allow-reads-when-down")) {
        return Some("CLUSTERDOWN The cluster is down".into());
    }
    let is_migrate = spec.name == "migrate";
    if owner == routes.me {
        if let Some(&target) = routes.migrating.get(&slot) {
            if is_migrate {
                return None;
            }
            let (present, missing) = count_keys(ctx, &keys, args);
            if missing > 0 {
                if present > 0 {
                    return Some(TRYAGAIN.into());
                }
                return Some(format!("ASK {slot} {}", routes.addrs[target as usize]));
            }
        }
        return None;
    }
    if routes.importing.contains(slot) && (is_migrate || ctx.client.asking || spec.name == "restore-asking") {
        if keys.len() > 1 {
            let (_, missing) = count_keys(ctx, &keys, args);
            if missing > 0 {
                return Some(TRYAGAIN.into());
            }
        }
        return None;
    }
    // A replica serves its master's slots to READONLY clients, and shard
    // channels to anyone (Redis 7.0's pubsubshard rule).
    let shard_pubsub = matches!(spec.name, "ssubscribe" | "sunsubscribe" | "spublish");
    if (ctx.client.readonly || shard_pubsub) && readonly_cmd && routes.master == owner {
        return None;
    }
    Some(format!("MOVED {slot} {}", routes.addrs[owner as usize]))
}

fn count_keys(ctx: &mut Ctx<'_>, keys: &[usize], args: &[Bytes]) -> (usize, usize) {
    let db = &ctx.store.dbs[ctx.client.db];
    let now = ctx.now;
    let present = keys.iter().filter(|&&i| db.peek(&args[i]).is_some_and(|e| !e.is_expired(now))).count();
    (present, keys.len() - present)
}
