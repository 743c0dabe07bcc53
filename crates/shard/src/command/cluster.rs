//! CLUSTER and the per-connection cluster commands (ASKING, READONLY,
//! READWRITE), with Redis 7.0's replies and error texts. The rules live in
//! `slotway_cluster`; this parses arguments, reads what only the keyspace
//! knows (key counts) and writes replies.

use bytes::Bytes;
use slotway_cluster::{ClusterState, FailoverMode, Node, SetSlot};

use super::{help, is, parse_i64, Cmd, Ctx};
use crate::cluster::Cluster;
use crate::error::{CmdError, CmdResult};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "cluster", run: cluster },
    Cmd { name: "asking", run: asking },
    Cmd { name: "readonly", run: readonly },
    Cmd { name: "readwrite", run: readwrite },
];

const DISABLED: &str = "ERR This instance has cluster support disabled";

fn enabled<'a>(ctx: &Ctx<'a>) -> Result<std::sync::Arc<Cluster>, CmdError> {
    ctx.shared.cluster.get().cloned().ok_or_else(|| CmdError::err(DISABLED))
}

fn asking(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    ctx.client.asking = true;
    ctx.out.ok();
    Ok(())
}

fn readonly(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    ctx.client.readonly = true;
    ctx.out.ok();
    Ok(())
}

fn readwrite(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    ctx.client.readonly = false;
    ctx.out.ok();
    Ok(())
}

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
];

fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // As Redis: without cluster mode even HELP is refused.
    let c = enabled(ctx)?;
    let sub = args[1].to_ascii_lowercase();
    if sub == b"help" {
        help(ctx, "CLUSTER", HELP);
        return Ok(());
    }
    match &sub[..] {
        b"myid" => ctx.out.bulk(c.state.lock().myself.as_bytes()),
        b"nodes" => {
            let text = slotway_cluster::render::nodes(&c.state.lock());
            ctx.out.verbatim(text.as_bytes());
        }
        b"info" => {
            let text = slotway_cluster::render::info(&c.state.lock());
            ctx.out.verbatim(text.as_bytes());
        }
        b"keyslot" => ctx.out.int(slotway_slots::key_slot(&args[2]) as i64),
        b"countkeysinslot" => {
            let slot = parse_i64(&args[2])?;
            if !(0..16384).contains(&slot) {
                return Err(CmdError::err("ERR Invalid slot"));
            }
            ctx.out.int(ctx.store.dbs[0].count_in_slot(slot as u16) as i64);
        }
        b"getkeysinslot" => {
            let slot = parse_i64(&args[2])?;
            let count = parse_i64(&args[3])?;
            if !(0..16384).contains(&slot) || count < 0 {
                return Err(CmdError::err("ERR Invalid slot or number of keys"));
            }
            let keys = ctx.store.dbs[0].keys_in_slot(slot as u16, count as usize);
            ctx.out.array(keys.len());
            for k in keys {
                ctx.out.bulk(&k);
            }
        }
        b"meet" => meet(ctx, &c, args)?,
        b"addslots" | b"delslots" => {
            let slots = args[2..].iter().map(|a| slot_arg(a)).collect::<Result<Vec<u16>, _>>()?;
            assign(ctx, &c, &slots, sub == b"addslots")?;
        }
        b"addslotsrange" | b"delslotsrange" => {
            if args.len() % 2 == 1 {
                return Err(CmdError::Arity(format!("cluster|{}", String::from_utf8_lossy(&sub))));
            }
            let mut slots = Vec::new();
            for pair in args[2..].chunks(2) {
                let (a, b) = (slot_arg(&pair[0])?, slot_arg(&pair[1])?);
                if a > b {
                    return Err(CmdError::err(format!(
                        "ERR start slot number {a} is greater than end slot number {b}"
                    )));
                }
                slots.extend(a..=b);
            }
            assign(ctx, &c, &slots, sub == b"addslotsrange")?;
        }
        b"flushslots" => {
            if !ctx.store.dbs[0].is_empty() {
                return Err(CmdError::err("ERR DB must be empty to perform CLUSTER FLUSHSLOTS."));
            }
            c.update(ctx.shared, Some(ctx.store), |st, _| st.flush_slots());
            ctx.out.ok();
        }
        b"setslot" => setslot(ctx, &c, args)?,
        b"replicate" => {
            let empty = ctx.store.dbs[0].is_empty();
            c.update(ctx.shared, Some(ctx.store), |st, _| st.replicate(&args[2], empty)).map_err(state_err)?;
            ctx.out.ok();
        }
        b"replicas" | b"slaves" => {
            let st = c.state.lock();
            let id = st.lookup(&args[2], "ERR Unknown node").map_err(state_err)?;
            if st.nodes[&id].is_replica() {
                return Err(CmdError::err("ERR The specified node is not a master"));
            }
            let replicas = st.replicas_of(&id);
            ctx.out.array(replicas.len());
            for r in replicas {
                let mut line = String::new();
                slotway_cluster::render::node_line(&st, r, &mut line);
                ctx.out.bulk(line.trim_end().as_bytes());
            }
        }
        b"forget" => {
            let now = ctx.now;
            c.update(ctx.shared, Some(ctx.store), |st, _| st.forget(&args[2], now)).map_err(state_err)?;
            ctx.out.ok();
        }
        b"reset" => {
            let hard = match args.get(2) {
                None => false,
                Some(a) if is(a, "soft") => false,
                Some(a) if is(a, "hard") => true,
                Some(_) => return Err(CmdError::Syntax),
            };
            if args.len() > 3 {
                return Err(CmdError::Syntax);
            }
            let master = c.state.lock().i_am_master();
            if master && !ctx.store.dbs[0].is_empty() {
                return Err(CmdError::err("ERR CLUSTER RESET can't be called with master nodes containing keys"));
            }
            c.update(ctx.shared, Some(ctx.store), |st, _| st.reset(hard));
            ctx.out.ok();
        }
        b"saveconfig" => {
            c.save().map_err(|e| CmdError::err(format!("ERR error saving the cluster node config: {e}")))?;
            ctx.out.ok();
        }
        b"set-config-epoch" => {
            let epoch = parse_i64(&args[2])?;
            c.update(ctx.shared, Some(ctx.store), |st, _| st.set_config_epoch(epoch)).map_err(state_err)?;
            ctx.out.ok();
        }
        b"bumpepoch" => {
            let (bumped, epoch) = c.update(ctx.shared, Some(ctx.store), |st, _| st.bump_epoch());
            let word = if bumped { "BUMPED" } else { "STILL" };
            ctx.out.simple(format!("{word} {epoch}").as_bytes());
        }
        b"count-failure-reports" => {
            let n = c.state.lock().count_failure_reports(&args[2], ctx.now).map_err(state_err)?;
            ctx.out.int(n as i64);
        }
        b"failover" => {
            let mode = match args.get(2) {
                None => FailoverMode::Coordinated,
                Some(a) if is(a, "force") => FailoverMode::Force,
                Some(a) if is(a, "takeover") => FailoverMode::Takeover,
                Some(_) => return Err(CmdError::Syntax),
            };
            if args.len() > 3 {
                return Err(CmdError::Syntax);
            }
            c.update(ctx.shared, Some(ctx.store), |st, env| st.manual_failover(env, mode)).map_err(state_err)?;
            ctx.out.ok();
        }
        b"slots" => slots(ctx, &c.state.lock()),
        b"shards" => shards(ctx, &c.state.lock()),
        b"links" => links(ctx, &c),
        _ => return Err(super::subcommand_syntax(args)),
    }
    Ok(())
}

/// ADDSLOTS/DELSLOTS and their RANGE forms, once the slots are parsed.
fn assign(ctx: &mut Ctx<'_>, c: &Cluster, slots: &[u16], add: bool) -> CmdResult {
    c.update(ctx.shared, Some(ctx.store), |st, _| if add { st.add_slots(slots) } else { st.del_slots(slots) })
        .map_err(state_err)?;
    ctx.out.ok();
    Ok(())
}

fn state_err(e: slotway_cluster::StateError) -> CmdError {
    CmdError::err(e.0)
}

fn slot_arg(a: &[u8]) -> Result<u16, CmdError> {
    match parse_i64(a) {
        Ok(s) if (0..16384).contains(&s) => Ok(s as u16),
        _ => Err(CmdError::err("ERR Invalid or out of range slot")),
    }
}

fn meet(ctx: &mut Ctx<'_>, c: &Cluster, args: &[Bytes]) -> CmdResult {
    if args.len() > 5 {
        return Err(super::subcommand_syntax(args));
    }
    let port_of = |a: &[u8], what: &str| -> Result<u16, CmdError> {
        parse_i64(a)
            .ok()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| CmdError::err(format!("ERR Invalid {what} port specified: {}", String::from_utf8_lossy(a))))
    };
    let port = port_of(&args[3], "TCP base")?;
    let cport = match args.get(4) {
        Some(a) => port_of(a, "TCP bus")?,
        None => port.wrapping_add(10000),
    };
    let ip = String::from_utf8_lossy(&args[2]).into_owned();
    let now = ctx.now;
    c.update(ctx.shared, Some(ctx.store), |st, _| st.meet(&ip, port, cport, now)).map_err(state_err)?;
    ctx.out.ok();
    Ok(())
}

fn setslot(ctx: &mut Ctx<'_>, c: &Cluster, args: &[Bytes]) -> CmdResult {
    let slot = slot_arg(&args[2])?;
    let bad = || CmdError::err("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP");
    let action = args.get(3).ok_or_else(bad)?;
    let how = if is(action, "stable") && args.len() == 4 {
        SetSlot::Stable
    } else if args.len() == 5 {
        let (word, unknown) = if is(action, "node") {
            ("node", "ERR Unknown node")
        } else if is(action, "migrating") || is(action, "importing") {
            ("", "ERR I don't know about node")
        } else {
            return Err(bad());
        };
        let id = c.state.lock().lookup(&args[4], unknown).map_err(state_err)?;
        if word == "node" {
            SetSlot::Node(id)
        } else if is(action, "migrating") {
            SetSlot::Migrating(id)
        } else {
            SetSlot::Importing(id)
        }
    } else {
        return Err(bad());
    };
    let keys = ctx.store.dbs[0].count_in_slot(slot);
    c.update(ctx.shared, Some(ctx.store), |st, _| st.set_slot(slot, how, keys)).map_err(state_err)?;
    ctx.out.ok();
    Ok(())
}

fn node_entry(ctx: &mut Ctx<'_>, n: &Node) {
    ctx.out.array(4);
    ctx.out.bulk(n.ip.as_bytes());
    ctx.out.int(n.port as i64);
    ctx.out.bulk(n.id.as_bytes());
    ctx.out.map(0);
}

/// CLUSTER SLOTS: per run of slots with one owner, the owner and its
/// healthy replicas.
fn slots(ctx: &mut Ctx<'_>, st: &ClusterState) {
    let mut runs: Vec<(u16, u16, slotway_cluster::NodeId)> = Vec::new();
    for (slot, owner) in st.owner.iter().enumerate() {
        let Some(owner) = owner else { continue };
        match runs.last_mut() {
            Some((_, end, o)) if o == owner && *end as usize + 1 == slot => *end = slot as u16,
            _ => runs.push((slot as u16, slot as u16, *owner)),
        }
    }
    ctx.out.array(runs.len());
    for (start, end, owner) in runs {
        let master = &st.nodes[&owner];
        let replicas: Vec<&Node> =
            st.replicas_of(&owner).into_iter().filter(|r| !r.has(slotway_cluster::node::FAIL)).collect();
        ctx.out.array(3 + replicas.len());
        ctx.out.int(start as i64);
        ctx.out.int(end as i64);
        node_entry(ctx, master);
        for r in replicas {
            node_entry(ctx, r);
        }
    }
}

/// CLUSTER SHARDS: each master with its slot ranges and its nodes.
fn shards(ctx: &mut Ctx<'_>, st: &ClusterState) {
    let mut masters: Vec<&Node> = st.nodes.values().filter(|n| n.is_master()).collect();
    masters.sort_by_key(|n| n.id);
    ctx.out.array(masters.len());
    for m in masters {
        ctx.out.map(2);
        ctx.out.bulk(b"slots");
        let ranges: Vec<(u16, u16)> = m.slots.ranges().collect();
        ctx.out.array(ranges.len() * 2);
        for (a, b) in ranges {
            ctx.out.int(a as i64);
            ctx.out.int(b as i64);
        }
        ctx.out.bulk(b"nodes");
        let mut nodes = vec![m];
        nodes.extend(st.replicas_of(&m.id));
        ctx.out.array(nodes.len());
        for n in nodes {
            let offset = if n.id == st.myself { ctx.shared.repl.master_offset() } else { n.repl_offset };
            let health = if n.has(slotway_cluster::node::FAIL) { "failed" } else { "online" };
            ctx.out.map(7);
            ctx.out.bulk(b"id");
            ctx.out.bulk(n.id.as_bytes());
            ctx.out.bulk(b"port");
            ctx.out.int(n.port as i64);
            ctx.out.bulk(b"ip");
            ctx.out.bulk(n.ip.as_bytes());
            ctx.out.bulk(b"endpoint");
            ctx.out.bulk(n.ip.as_bytes());
            ctx.out.bulk(b"role");
            ctx.out.bulk(if n.is_master() { b"master" as &[u8] } else { b"replica" });
            ctx.out.bulk(b"replication-offset");
            ctx.out.int(offset);
            ctx.out.bulk(b"health");
            ctx.out.bulk(health.as_bytes());
        }
    }
}

/// CLUSTER LINKS: our link to each node ("to") and theirs to us
/// ("from"). Messages wait in a bounded queue per link rather than a byte
/// buffer, so the buffer fields read 0; `events` is `rw` while messages
/// wait to be written.
fn links(ctx: &mut Ctx<'_>, c: &Cluster) {
    let up: std::collections::HashSet<slotway_cluster::NodeId> =
        c.state.lock().nodes.values().filter(|n| n.link_up).map(|n| n.id).collect();
    let mut rows: Vec<(&str, slotway_cluster::NodeId, u64, usize)> =
        c.outbound_links().into_iter().filter(|(id, ..)| up.contains(id)).map(|(id, t, q)| ("to", id, t, q)).collect();
    rows.extend(c.inbound.lock().values().filter_map(|(id, t)| id.map(|id| ("from", id, *t, 0))));
    rows.sort_by_key(|r| (r.1, r.0));
    ctx.out.array(rows.len());
    for (direction, id, created, queued) in rows {
        ctx.out.map(6);
        ctx.out.bulk(b"direction");
        ctx.out.bulk(direction.as_bytes());
        ctx.out.bulk(b"node");
        ctx.out.bulk(id.as_bytes());
        ctx.out.bulk(b"create-time");
        ctx.out.int(created as i64);
        ctx.out.bulk(b"events");
        ctx.out.bulk(if queued > 0 { b"rw" as &[u8] } else { b"r" });
        ctx.out.bulk(b"send-buffer-allocated");
        ctx.out.int(0);
        ctx.out.bulk(b"send-buffer-used");
        ctx.out.int(0);
    }
}
