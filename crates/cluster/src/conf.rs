//! Reading `nodes.conf` (`cluster-config-file`), the file a node keeps
//! its view of the cluster in, in Redis's format: CLUSTER NODES lines and a
//! last `vars currentEpoch <n> lastVoteEpoch <n>` line. Writing it is
//! [`crate::render::nodes_conf`].

use crate::node::{self, Node, NodeId};
use crate::state::{ClusterState, Settings};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {msg}")]
pub struct ConfError {
    pub line: usize,
    pub msg: String,
}

fn bad<T>(line: usize, msg: impl Into<String>) -> Result<T, ConfError> {
    Err(ConfError { line, msg: msg.into() })
}

/// Parses `ip:port@cport[,hostname]`; a missing `@cport` means port + 10000.
fn parse_addr(s: &str) -> Option<(String, u16, u16)> {
    let s = s.split(',').next()?;
    let (hostport, cport) = match s.rsplit_once('@') {
        Some((hp, c)) => (hp, Some(c.parse::<u16>().ok()?)),
        None => (s, None),
    };
    let (ip, port) = hostport.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let cport = cport.unwrap_or_else(|| port.wrapping_add(10000));
    Some((ip.to_string(), port, cport))
}

fn flag(name: &str) -> Option<u16> {
    Some(match name {
        "myself" => node::MYSELF,
        "master" => node::MASTER,
        "slave" => node::REPLICA,
        "fail?" => node::PFAIL,
        "fail" => node::FAIL,
        "handshake" => node::HANDSHAKE,
        "noaddr" => node::NOADDR,
        "nofailover" => node::NOFAILOVER,
        "noflags" => 0,
        _ => return None,
    })
}

fn slot(s: &str, line: usize) -> Result<u16, ConfError> {
    match s.parse::<u16>() {
        Ok(v) if (v as usize) < crate::SLOTS => Ok(v),
        _ => bad(line, format!("invalid slot '{s}'")),
    }
}

/// Builds the state a node had when it wrote `text`.
pub fn load(text: &str, settings: Settings, now: u64) -> Result<ClusterState, ConfError> {
    let mut st = ClusterState::new(settings, 0, 0, now);
    st.nodes.clear();
    let mut myself = None;
    let mut masters: Vec<(NodeId, NodeId)> = Vec::new();
    let mut owners: Vec<(u16, NodeId)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let f: Vec<&str> = raw.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f[0] == "vars" {
            for kv in f[1..].chunks(2) {
                let [k, v] = kv else { return bad(line, "odd number of vars fields") };
                let v: u64 = v.parse().map_err(|_| ConfError { line, msg: format!("invalid value for {k}") })?;
                match *k {
                    "currentEpoch" => st.current_epoch = v,
                    "lastVoteEpoch" => st.last_vote_epoch = v,
                    _ => tracing::warn!(var = k, "skipping unknown nodes.conf variable"),
                }
            }
            continue;
        }
        if f.len() < 8 {
            return bad(line, "a node line needs at least 8 fields");
        }
        let id = NodeId::parse(f[0].as_bytes()).ok_or_else(|| ConfError { line, msg: "invalid node name".into() })?;
        let (ip, port, cport) = parse_addr(f[1]).ok_or_else(|| ConfError { line, msg: "invalid address".into() })?;
        let mut flags = 0;
        for name in f[2].split(',') {
            flags |= flag(name).ok_or_else(|| ConfError { line, msg: format!("unknown flag '{name}'") })?;
        }
        let mut n = Node::new(id, &ip, port, cport, flags, now);
        if f[3] != "-" {
            let m =
                NodeId::parse(f[3].as_bytes()).ok_or_else(|| ConfError { line, msg: "invalid master name".into() })?;
            masters.push((id, m));
        }
        // Times in the file are from another life of this process.
        n.pong_received = if f[5] != "0" { now } else { 0 };
        let epoch: u64 = f[6].parse().map_err(|_| ConfError { line, msg: "invalid config epoch".into() })?;
        // A replica's line shows its master's epoch (Redis ignores it too).
        if flags & node::REPLICA == 0 {
            n.config_epoch = epoch;
        }
        if flags & node::MYSELF != 0 {
            if myself.is_some() {
                return bad(line, "more than one myself line");
            }
            myself = Some(id);
        }
        for tok in &f[8..] {
            if let Some(open) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                let (s, dir, other) = if let Some((s, o)) = open.split_once("->-") {
                    (s, true, o)
                } else if let Some((s, o)) = open.split_once("-<-") {
                    (s, false, o)
                } else {
                    return bad(line, format!("invalid open slot '{tok}'"));
                };
                let s = slot(s, line)?;
                let other = NodeId::parse(other.as_bytes())
                    .ok_or_else(|| ConfError { line, msg: "invalid node name".into() })?;
                if dir {
                    st.migrating.insert(s, other);
                } else {
                    st.importing.insert(s, other);
                }
            } else if let Some((a, b)) = tok.split_once('-') {
                let (a, b) = (slot(a, line)?, slot(b, line)?);
                for s in a..=b {
                    owners.push((s, id));
                }
            } else {
                owners.push((slot(tok, line)?, id));
            }
        }
        st.nodes.insert(id, n);
    }
    let Some(me) = myself else {
        return bad(0, "corrupted cluster config file: no line for myself");
    };
    st.myself = me;
    for (r, m) in masters {
        if let Some(n) = st.nodes.get_mut(&r) {
            n.master = Some(m);
        }
    }
    for (s, id) in owners {
        st.assign(s, id);
    }
    let max_epoch = st.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0);
    st.current_epoch = st.current_epoch.max(max_epoch);
    // What was failing then says nothing about now.
    for n in st.nodes.values_mut() {
        n.flags &= !(node::PFAIL | node::FAIL | node::HANDSHAKE);
        if n.id != me {
            n.flags |= node::MEET;
        }
    }
    st.version += 1;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("127.0.0.1:7000@17000"), Some(("127.0.0.1".into(), 7000, 17000)));
        assert_eq!(parse_addr("127.0.0.1:7000"), Some(("127.0.0.1".into(), 7000, 17000)));
        assert_eq!(parse_addr(":0@0"), Some(("".into(), 0, 0)));
        assert_eq!(parse_addr("::1:7000@17000,host"), Some(("::1".into(), 7000, 17000)));
        assert_eq!(parse_addr("nope"), None);
    }

    #[test]
    fn errors_name_the_line() {
        let e = load("\nabc def\n", Settings::default(), 0).err().unwrap();
        assert_eq!(e.line, 2);
        let id = "a".repeat(40);
        let e = load(&format!("{id} 127.0.0.1:1@2 myself,bogus - 0 0 0 connected\n"), Settings::default(), 0)
            .err()
            .unwrap();
        assert!(e.msg.contains("bogus"), "{e}");
        let e = load("vars currentEpoch 1 lastVoteEpoch 0\n", Settings::default(), 0).err().unwrap();
        assert!(e.msg.contains("myself"));
    }
}
