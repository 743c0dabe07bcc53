//! The commands the proxy answers itself: connection commands whose state
//! lives here (AUTH, HELLO, SELECT, CLIENT SETNAME...), and CLUSTER
//! commands that present the proxy as one node owning every slot, so a
//! cluster-aware client pointed at it keeps talking to it alone.

use std::sync::Arc;

use bytes::Bytes;
use slotway_resp::{Proto, ReplyBuf};
use slotway_slots::commands::{self, CommandSpec};

use super::Client;
use crate::router::Local;
use crate::state::Proxy;

/// Redis's unknown-command error, with its 128-character budget for the
/// quoted arguments.
pub fn unknown_command(args: &[Bytes]) -> Bytes {
    let name = args.first().map(|a| String::from_utf8_lossy(&a[..a.len().min(128)]).into_owned()).unwrap_or_default();
    let mut shown = String::new();
    for a in args.iter().skip(1) {
        let room = 128usize.saturating_sub(shown.len());
        if room == 0 {
            break;
        }
        shown.push_str(&format!("'{}' ", String::from_utf8_lossy(&a[..a.len().min(room)])));
    }
    Bytes::from(format!("-ERR unknown command '{name}', with args beginning with: {shown}\r\n"))
}

fn err(msg: &str) -> Bytes {
    Bytes::from(format!("-{msg}\r\n"))
}

fn arity(spec: &CommandSpec) -> Bytes {
    err(&format!("ERR wrong number of arguments for '{}' command", spec.name))
}

/// The proxy's node id: stable for a listen address, 40 hex digits.
pub fn node_id(listen: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        for b in listen.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}

fn host_port(listen: &str) -> (String, u16) {
    match listen.rsplit_once(':') {
        Some((h, p)) => (h.trim_matches(['[', ']']).to_string(), p.parse().unwrap_or(0)),
        None => (listen.to_string(), 0),
    }
}

pub fn answer(proxy: &Arc<Proxy>, client: &mut Client, l: Local, spec: &CommandSpec, args: &[Bytes]) -> Bytes {
    if !spec.arity_ok(args.len()) {
        return arity(spec);
    }
    let mut r = ReplyBuf::new(Proto::Resp2);
    let config = proxy.config.load();
    match l {
        Local::Ping => match args.get(1) {
            Some(m) => r.bulk(m),
            None => r.simple(b"PONG"),
        },
        Local::Echo => r.bulk(&args[1]),
        Local::Quit => {
            client.closing = true;
            r.ok();
        }
        Local::Select => match std::str::from_utf8(&args[1]).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(0) => r.ok(),
            Some(_) => return err("ERR SELECT is not allowed in cluster mode"),
            None => return err("ERR value is not an integer or out of range"),
        },
        Local::Auth => {
            let Some(want) = &config.client_password else {
                return err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            };
            let (user, pass) =
                if args.len() == 3 { (&args[1][..], &args[2][..]) } else { (&b"default"[..], &args[1][..]) };
            if user != b"default" || pass != want.as_bytes() {
                return err("WRONGPASS invalid username-password pair or user is disabled.");
            }
            client.authenticated = true;
            r.ok();
        }
        Local::Hello => return hello(proxy, client, args),
        Local::Reset => {
            client.name = None;
            client.resp3 = false;
            client.authenticated = config.client_password.is_none();
            r.simple(b"RESET");
        }
        Local::ReadMode => r.ok(),
        Local::ClientSetName => {
            let name = &args[2];
            if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                return err("ERR Client names cannot contain spaces, newlines or special characters.");
            }
            client.name = if name.is_empty() { None } else { Some(name.clone()) };
            r.ok();
        }
        Local::ClientGetName => r.bulk_opt(client.name.as_deref()),
        Local::ClientId => r.int(client.id as i64),
        Local::CommandCount => r.int(commands::all().len() as i64),
        Local::ClusterKeyslot => r.int(slotway_slots::key_slot(&args[2]) as i64),
        Local::ClusterMyId => r.bulk(node_id(&config.listen).as_bytes()),
        Local::ClusterSlots => {
            let (host, port) = host_port(&client.local_addr);
            r.array(1);
            r.array(3);
            r.int(0);
            r.int(slotway_slots::SLOTS as i64 - 1);
            r.array(4);
            r.bulk(host.as_bytes());
            r.int(port as i64);
            r.bulk(node_id(&config.listen).as_bytes());
            r.array(0);
        }
        Local::ClusterShards => {
            let (host, port) = host_port(&client.local_addr);
            r.array(1);
            r.array(4);
            r.bulk(b"slots");
            r.array(2);
            r.int(0);
            r.int(slotway_slots::SLOTS as i64 - 1);
            r.bulk(b"nodes");
            r.array(1);
            r.array(14);
            for (k, v) in [
                ("id", node_id(&config.listen)),
                ("port", port.to_string()),
                ("ip", host.clone()),
                ("endpoint", host),
                ("role", "master".into()),
                ("replication-offset", "0".into()),
                ("health", "online".into()),
            ] {
                r.bulk(k.as_bytes());
                match k {
                    "port" | "replication-offset" => r.int(v.parse().unwrap_or(0)),
                    _ => r.bulk(v.as_bytes()),
                }
            }
        }
        Local::ClusterNodes => {
            let (host, port) = host_port(&client.local_addr);
            let line = format!(
                "{} {host}:{port}@{} myself,master - 0 0 1 connected 0-16383\n",
                node_id(&config.listen),
                port as u32 + 10000
            );
            r.bulk(line.as_bytes());
        }
        Local::ClusterInfo => {
            let ok = proxy.ready();
            let state = if ok { "ok" } else { "fail" };
            let assigned = proxy.topology.load().slots.iter().filter(|&&s| s != crate::topology::UNASSIGNED).count();
            let text = format!(
                "cluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\n\
                 cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n\
                 cluster_current_epoch:1\r\ncluster_my_epoch:1\r\n"
            );
            r.verbatim(text.as_bytes());
        }
    }
    r.buf.freeze()
}

fn hello(proxy: &Arc<Proxy>, client: &mut Client, args: &[Bytes]) -> Bytes {
    let config = proxy.config.load();
    if let Some(v) = args.get(1) {
        match std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(2) => {}
            Some(3) => {}
            Some(_) => return err("NOPROTO unsupported protocol version"),
            None => return err("ERR Protocol version is not an integer or out of range"),
        }
    }
    let mut i = 2;
    let mut authed = client.authenticated;
    let mut name = None;
    while i < args.len() {
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"AUTH") && i + 2 < args.len() {
            let ok = config.client_password.as_deref().is_some_and(|p| args[i + 2] == p.as_bytes())
                && &args[i + 1][..] == b"default";
            if !ok {
                return err("WRONGPASS invalid username-password pair or user is disabled.");
            }
            authed = true;
            i += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && i + 1 < args.len() {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return err(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)));
        }
    }
    if !authed {
        return err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    client.authenticated = true;
    if name.is_some() {
        client.name = name;
    }
    if let Some(v) = args.get(1) {
        client.resp3 = &v[..] == b"3";
    }
    let mut r = ReplyBuf::new(if client.resp3 { Proto::Resp3 } else { Proto::Resp2 });
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(b"7.0.15");
    r.bulk(b"proto");
    r.int(if client.resp3 { 3 } else { 2 });
    r.bulk(b"id");
    r.int(client.id as i64);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
    r.buf.freeze()
}

/// INFO: the proxy's own view, then the masters' keyspace summed. Section
/// names pick sections as Redis does (`all`, `default`, `everything` are
/// everything here).
pub async fn info(proxy: Arc<Proxy>, args: Vec<Bytes>, lane: usize) -> Bytes {
    let wanted = |name: &str| {
        args.len() < 2
            || args[1..].iter().any(|a| {
                a.eq_ignore_ascii_case(name.as_bytes())
                    || [&b"all"[..], b"default", b"everything"].iter().any(|w| a.eq_ignore_ascii_case(w))
            })
    };
    let topo = proxy.topology.load_full();
    let mut text = String::new();
    if wanted("server") {
        text.push_str(&format!(
            "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nslotway_version:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        ));
    }
    if wanted("proxy") {
        text.push_str(&format!(
            "# Proxy\r\nslot_table_version:{}\r\nmasters:{}\r\nnodes:{}\r\nslots_assigned:{}\r\nconnected_clients:{}\r\n\r\n",
            topo.version,
            topo.shards.len(),
            topo.nodes.len(),
            topo.slots.iter().filter(|&&s| s != crate::topology::UNASSIGNED).count(),
            proxy.metrics.client_connections.get(),
        ));
    }
    if wanted("keyspace") {
        text.push_str(&crate::fanout::keyspace(&proxy, lane).await);
    }
    let text = text.trim_end_matches("\r\n");
    let mut r = ReplyBuf::new(Proto::Resp2);
    if text.is_empty() {
        r.bulk(b"");
    } else {
        r.bulk(format!("{text}\r\n").as_bytes());
    }
    r.buf.freeze()
}
