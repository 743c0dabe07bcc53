//! Reading what nodes say about the cluster: `CLUSTER NODES` lines,
//! `INFO`/`CLUSTER INFO` fields, and the slot-agreement signature.
//!
//! Parsing follows what `redis-cli --cluster` relies on: LF-terminated
//! lines of space-separated fields (id, `ip:port@cport[,hostname]`, flags,
//! master id or `-`, ping-sent, pong-recv, config epoch, link state, slot
//! tokens). Before a node has met anyone its own address reads
//! `:7000@17000` (no IP yet), which is accepted.

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLine {
    pub id: String,
    /// The IP as the node knows it; empty before it has met another node.
    pub ip: String,
    pub port: u16,
    pub bus_port: u16,
    pub flags: Vec<String>,
    /// The master's id for a replica.
    pub master_id: Option<String>,
    /// Slot tokens as printed (`0-5460`, `7`), open-slot markers
    /// (`[...]`) left out.
    pub slots: Vec<String>,
}

impl NodeLine {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Every complete line of a `CLUSTER NODES` reply. A line with fewer than
/// eight fields or an address without a port is malformed: `Err` names it.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeLine>, String> {
    // As redis-cli: only LF-terminated lines count.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete.split('\n').filter(|l| !l.trim().is_empty()).map(parse_line).collect()
}

fn parse_line(line: &str) -> Result<NodeLine, String> {
    let fields: Vec<&str> = line.trim_end_matches('\r').split(' ').collect();
    if fields.len() < 8 {
        return Err(format!("CLUSTER NODES line with {} fields: {line:?}", fields.len()));
    }
    let bad_addr = || format!("CLUSTER NODES line with a bad address: {line:?}");
    // `ip:port@cport[,hostname]`: cut the hostname, then at the last `@`,
    // then at the last `:` (IPv6 addresses contain colons).
    let addr = fields[1].split(',').next().unwrap_or_default();
    let (host_port, bus) = addr.rsplit_once('@').ok_or_else(bad_addr)?;
    let (ip, port) = host_port.rsplit_once(':').ok_or_else(bad_addr)?;
    let port: u16 = port.parse().map_err(|_| bad_addr())?;
    let bus_port: u16 = bus.parse().map_err(|_| bad_addr())?;
    let master_id = match fields[3] {
        "-" => None,
        id => Some(id.to_owned()),
    };
    Ok(NodeLine {
        id: fields[0].to_owned(),
        ip: ip.to_owned(),
        port,
        bus_port,
        flags: fields[2].split(',').map(str::to_owned).collect(),
        master_id,
        slots: fields[8..].iter().filter(|t| !t.is_empty() && !t.starts_with('[')).map(|t| t.to_string()).collect(),
    })
}

/// The node's own line (flag `myself`).
pub fn myself(lines: &[NodeLine]) -> Option<&NodeLine> {
    lines.iter().find(|l| l.has_flag("myself"))
}

/// What a node believes about slot ownership, in the form redis-cli
/// compares: per node owning slots `<id>:<tok>,<tok>...` with the tokens
/// sorted as strings, those entries sorted and joined by `|`. Two nodes
/// agree exactly when their signatures are equal.
pub fn slot_signature(lines: &[NodeLine]) -> String {
    let mut owners: Vec<String> = lines
        .iter()
        .filter(|l| !l.slots.is_empty())
        .map(|l| {
            let mut tokens = l.slots.clone();
            tokens.sort();
            format!("{}:{}", l.id, tokens.join(","))
        })
        .collect();
    owners.sort();
    owners.join("|")
}

/// The value of `name:` in an `INFO` or `CLUSTER INFO` reply.
pub fn info_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,host-b master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [1234->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :30001@31001 myself,master - 0 0 1 connected 0-5460
";

    #[test]
    fn parses_lines() {
        let lines = parse_nodes(NODES).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].master_id.as_deref(), Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"));
        assert!(lines[0].has_flag("slave"));
        assert_eq!((lines[1].ip.as_str(), lines[1].port, lines[1].bus_port), ("127.0.0.1", 30002, 31002));
        assert_eq!(lines[2].slots, vec!["10923-16383"]);
        let me = myself(&lines).unwrap();
        assert_eq!((me.ip.as_str(), me.port, me.bus_port), ("", 30001, 31001));
        assert_eq!(me.id, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca");
    }

    #[test]
    fn ignores_an_unterminated_tail_and_refuses_short_lines() {
        let text = format!("{NODES}abc 127.0.0.1:1@2 master");
        assert_eq!(parse_nodes(&text).unwrap().len(), 4);
        assert!(parse_nodes("abc 127.0.0.1:1@2 master\n").is_err());
        assert!(parse_nodes("abc 127.0.0.1 master - 0 0 1 connected\n").is_err());
        assert_eq!(parse_nodes("").unwrap(), vec![]);
    }

    #[test]
    fn signatures_compare_slot_ownership_only() {
        let a = parse_nodes(NODES).unwrap();
        // Same ownership, other line order, other link details, no replica.
        let b = parse_nodes(
            "\
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 myself,master - 0 0 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 master - 5 6 1 disconnected 0-5460
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 0 2 connected 5461-10922
",
        )
        .unwrap();
        assert_eq!(slot_signature(&a), slot_signature(&b));
        // A node that has not heard of the third master yet disagrees.
        let c: Vec<NodeLine> = b.iter().filter(|l| l.port != 30003).cloned().collect();
        assert_ne!(slot_signature(&a), slot_signature(&c));
        assert_eq!(slot_signature(&[]), "");
    }

    #[test]
    fn reads_info_fields() {
        let info = "# Cluster\r\ncluster_state:ok\r\ncluster_known_nodes:6\r\n";
        assert_eq!(info_field(info, "cluster_state"), Some("ok"));
        assert_eq!(info_field(info, "cluster_known_nodes"), Some("6"));
        assert_eq!(info_field(info, "cluster"), None);
    }
}
