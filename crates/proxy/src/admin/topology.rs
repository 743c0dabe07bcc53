//! `GET /topology`: the slot table in force, as JSON an operator can read,
//! with each shard's slots compacted to `[start, end]` ranges.
//!
//! ```json
//! {"version": 3, "fetched_at": 1764627000.5, "age_seconds": 1.25,
//!  "unassigned_slots": 0,
//!  "shards": [{"master": "10.0.0.1:7000", "master_id": "…",
//!              "replicas": ["10.0.0.2:7001"], "slots": [[0, 5460]]}]}
//! ```
//!
//! Before the first discovery `version` is 0 and the times are `null`.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::topology::{Topology, UNASSIGNED};

pub fn to_json(t: &Topology, now: SystemTime) -> Value {
    let mut ranges: Vec<Vec<[usize; 2]>> = vec![Vec::new(); t.shards.len()];
    let mut unassigned = 0usize;
    let mut start = 0;
    // One pass over runs of equal owners: a run ends where the owner changes.
    for (slot, &owner) in t.slots.iter().enumerate() {
        if owner == UNASSIGNED {
            unassigned += 1;
        }
        let run_ends = t.slots.get(slot + 1) != Some(&owner);
        if run_ends {
            if let Some(list) = ranges.get_mut(owner as usize) {
                list.push([start, slot]);
            }
            start = slot + 1;
        }
    }
    let addr = |i: usize| t.nodes.get(i).map(|n| n.addr.as_str());
    let shards: Vec<Value> = t
        .shards
        .iter()
        .zip(ranges)
        .map(|(shard, slots)| {
            json!({
                "master": addr(shard.master),
                "master_id": t.nodes.get(shard.master).and_then(|n| n.id.as_deref()),
                "replicas": shard.replicas.iter().filter_map(|&r| addr(r)).collect::<Vec<_>>(),
                "slots": slots,
            })
        })
        .collect();
    let discovered = t.version > 0;
    let fetched_at = t.fetched_at.duration_since(SystemTime::UNIX_EPOCH).ok().filter(|_| discovered);
    // A clock stepped back makes the age negative; say 0 rather than fail.
    let age = discovered.then(|| now.duration_since(t.fetched_at).map(|d| d.as_secs_f64()).unwrap_or(0.0));
    json!({
        "version": t.version,
        "fetched_at": fetched_at.map(|d| d.as_secs_f64()),
        "age_seconds": age,
        "unassigned_slots": unassigned,
        "shards": shards,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::topology::{Node, Shard};

    #[test]
    fn empty_table() {
        let v = to_json(&Topology::empty(), SystemTime::now());
        assert_eq!(
            v,
            json!({"version": 0, "fetched_at": null, "age_seconds": null, "unassigned_slots": 16384, "shards": []})
        );
    }

    #[test]
    fn ranges_are_compacted_per_shard() {
        let mut t = Topology::empty();
        t.version = 4;
        t.fetched_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        t.nodes = vec![
            Node { addr: "10.0.0.1:7000".into(), id: Some("a".repeat(40)) },
            Node { addr: "10.0.0.2:7001".into(), id: None },
            Node { addr: "10.0.0.3:7002".into(), id: None },
        ];
        t.shards = vec![Shard { master: 0, replicas: vec![1] }, Shard { master: 2, replicas: vec![] }];
        for (slot, owner) in t.slots.iter_mut().enumerate() {
            *owner = match slot {
                0..=99 => 0,
                100..=199 => UNASSIGNED,
                200..=8000 => 1,
                8001 => 0,
                _ => 1,
            };
        }
        let v = to_json(&t, SystemTime::UNIX_EPOCH + Duration::from_millis(1_002_500));
        assert_eq!(
            v,
            json!({
                "version": 4,
                "fetched_at": 1000.0,
                "age_seconds": 2.5,
                "unassigned_slots": 100,
                "shards": [
                    {"master": "10.0.0.1:7000", "master_id": "a".repeat(40),
                     "replicas": ["10.0.0.2:7001"], "slots": [[0, 99], [8001, 8001]]},
                    {"master": "10.0.0.3:7002", "master_id": null,
                     "replicas": [], "slots": [[200, 8000], [8002, 16383]]},
                ],
            })
        );
    }
}
