//! Which node is a master, which slots it serves, and which master each
//! replica follows, the way `redis-cli --cluster create` decides.
//!
//! Masters: `N / (R + 1)` of the `N` nodes (at least 3), taken from the
//! node list interleaved by host (one node per host in turn), so masters
//! spread over machines. Slots: master `i` of `m` ends at
//! `lround((i + 1) * 16384 / m - 1)`, the last at 16383 (3 masters:
//! 0-5460, 5461-10922, 10923-16383). Replicas: every other node, in the
//! interleaved order, round-robin over the masters, starting at the offset
//! that puts the fewest replicas on their master's host.

use super::CreateError;

/// Hash slots in a Redis Cluster.
pub const SLOTS: u32 = 16384;

/// Fewer masters than this cannot form a cluster that survives a failure;
/// redis-cli refuses them too.
pub const MIN_MASTERS: usize = 3;

/// The roles of a set of nodes, by index into the address list given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub masters: Vec<MasterPlan>,
    pub replicas: Vec<ReplicaPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterPlan {
    /// Index of the node in the address list.
    pub node: usize,
    /// First and last slot, inclusive.
    pub slots: (u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaPlan {
    pub node: usize,
    /// Index into [`Plan::masters`].
    pub master: usize,
}

impl Plan {
    /// Plans `addrs` (`host:port`) with `replicas` replicas per master.
    pub fn new(addrs: &[String], replicas: usize) -> Result<Plan, CreateError> {
        let mut hosts: Vec<&str> = Vec::with_capacity(addrs.len());
        for (i, addr) in addrs.iter().enumerate() {
            let host = split_addr(addr).ok_or_else(|| CreateError::BadAddress(addr.clone()))?.0;
            if addrs[..i].contains(addr) {
                return Err(CreateError::Duplicate(addr.clone()));
            }
            hosts.push(host);
        }
        let count = addrs.len() / replicas.saturating_add(1);
        if count < MIN_MASTERS {
            return Err(CreateError::TooFewNodes { nodes: addrs.len(), replicas, masters: count });
        }
        if count > SLOTS as usize {
            return Err(CreateError::TooManyMasters { masters: count });
        }
        let order = interleave(&hosts);
        let masters: Vec<MasterPlan> =
            slot_ranges(count).into_iter().zip(&order).map(|(slots, &node)| MasterPlan { node, slots }).collect();
        let rest = &order[count..];
        let same_host = |offset: usize| {
            rest.iter()
                .enumerate()
                .filter(|&(k, &node)| hosts[node] == hosts[masters[(k + offset) % count].node])
                .count()
        };
        // `min_by_key` keeps the first minimum: offset 0 when nothing helps.
        let offset = (0..count).min_by_key(|&o| same_host(o)).unwrap_or(0);
        let replicas =
            rest.iter().enumerate().map(|(k, &node)| ReplicaPlan { node, master: (k + offset) % count }).collect();
        Ok(Plan { masters, replicas })
    }
}

/// `host:port` split at the last colon; the port must be a number.
pub fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// The inclusive slot range of each of `masters` masters.
pub fn slot_ranges(masters: usize) -> Vec<(u16, u16)> {
    let m = masters as u64;
    let mut first = 0u64;
    (0..m)
        .map(|i| {
            // lround((i + 1) * 16384 / m - 1) in integers: the value is
            // positive, so rounding half up is floor(x + 1/2).
            let last = if i + 1 == m {
                u64::from(SLOTS) - 1
            } else {
                ((2 * ((i + 1) * u64::from(SLOTS) - m) + m) / (2 * m)).min(u64::from(SLOTS) - 1)
            };
            let range = (first as u16, last as u16);
            first = last + 1;
            range
        })
        .collect()
}

/// Node indexes ordered one per host in turn, hosts in order of first
/// appearance, each host's nodes in the order given.
fn interleave(hosts: &[&str]) -> Vec<usize> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, &host) in hosts.iter().enumerate() {
        match groups.iter_mut().find(|(h, _)| *h == host) {
            Some((_, nodes)) => nodes.push(i),
            None => groups.push((host, vec![i])),
        }
    }
    let longest = groups.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    (0..longest).flat_map(|round| groups.iter().filter_map(move |(_, n)| n.get(round).copied())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn three_masters_split_as_redis_cli() {
        assert_eq!(slot_ranges(3), vec![(0, 5460), (5461, 10922), (10923, 16383)]);
    }

    #[test]
    fn every_split_covers_each_slot_once() {
        for m in 1..=64 {
            let ranges = slot_ranges(m);
            assert_eq!(ranges.len(), m);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges[m - 1].1, 16383);
            for w in ranges.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "{m} masters: {ranges:?}");
            }
            let sizes: Vec<u32> = ranges.iter().map(|&(a, b)| u32::from(b - a) + 1).collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{m} masters: uneven {sizes:?}");
        }
        // Four masters: 4096 each, as redis-cli prints.
        assert_eq!(slot_ranges(4), vec![(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]);
    }

    #[test]
    fn six_local_nodes_three_masters_one_replica_each() {
        let nodes = addrs(&[
            "127.0.0.1:7000",
            "127.0.0.1:7001",
            "127.0.0.1:7002",
            "127.0.0.1:7003",
            "127.0.0.1:7004",
            "127.0.0.1:7005",
        ]);
        let plan = Plan::new(&nodes, 1).unwrap();
        let masters: Vec<(usize, (u16, u16))> = plan.masters.iter().map(|m| (m.node, m.slots)).collect();
        assert_eq!(masters, vec![(0, (0, 5460)), (1, (5461, 10922)), (2, (10923, 16383))]);
        let replicas: Vec<(usize, usize)> = plan.replicas.iter().map(|r| (r.node, r.master)).collect();
        assert_eq!(replicas, vec![(3, 0), (4, 1), (5, 2)]);
    }

    #[test]
    fn masters_spread_over_hosts_and_replicas_avoid_their_master_host() {
        let nodes = addrs(&["10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1", "10.0.0.2:2", "10.0.0.3:1", "10.0.0.3:2"]);
        let plan = Plan::new(&nodes, 1).unwrap();
        let host = |i: usize| nodes[i].split(':').next().unwrap();
        let master_hosts: Vec<&str> = plan.masters.iter().map(|m| host(m.node)).collect();
        assert_eq!(master_hosts, vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(plan.replicas.len(), 3);
        for r in &plan.replicas {
            assert_ne!(host(r.node), host(plan.masters[r.master].node), "{plan:?}");
        }
        let mut followed: Vec<usize> = plan.replicas.iter().map(|r| r.master).collect();
        followed.sort();
        assert_eq!(followed, vec![0, 1, 2]);
    }

    #[test]
    fn extra_nodes_become_replicas_spread_evenly() {
        let nodes: Vec<String> = (0..8).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect();
        let plan = Plan::new(&nodes, 1).unwrap();
        assert_eq!(plan.masters.len(), 4);
        let plan = Plan::new(&nodes[..7], 1).unwrap();
        assert_eq!(plan.masters.len(), 3);
        let mut per_master = [0; 3];
        plan.replicas.iter().for_each(|r| per_master[r.master] += 1);
        assert_eq!(per_master, [2, 1, 1]);
        let plan = Plan::new(&nodes[..6], 0).unwrap();
        assert_eq!((plan.masters.len(), plan.replicas.len()), (6, 0));
    }

    #[test]
    fn refuses_too_few_duplicates_and_bad_addresses() {
        let five: Vec<String> = (0..5).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect();
        assert!(matches!(Plan::new(&five, 1), Err(CreateError::TooFewNodes { nodes: 5, replicas: 1, masters: 2 })));
        let dup = addrs(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"]);
        assert!(matches!(Plan::new(&dup, 0), Err(CreateError::Duplicate(a)) if a == "127.0.0.1:1"));
        for bad in ["127.0.0.1", ":7000", "127.0.0.1:x", "127.0.0.1:70000"] {
            let list = addrs(&[bad, "127.0.0.1:2", "127.0.0.1:3"]);
            assert!(matches!(Plan::new(&list, 0), Err(CreateError::BadAddress(_))), "{bad}");
        }
    }
}
