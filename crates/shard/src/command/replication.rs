//! Replication commands: REPLICAOF/SLAVEOF, REPLCONF, PSYNC, SYNC, ROLE,
//! WAIT, and INFO's replication section. The mechanics are in
//! [`crate::replication`]; these parse, check and answer with Redis's
//! exact texts.

use std::time::Duration;

use bytes::Bytes;

use super::info::Section;
use super::{is, parse_i64, Action, Cmd, Ctx, Mode};
use crate::error::{CmdError, CmdResult};
use crate::replication::{failover, master, replica};
use crate::server::unix_ms;

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "replicaof", run: replicaof },
    Cmd { name: "slaveof", run: replicaof },
    Cmd { name: "replconf", run: replconf },
    Cmd { name: "psync", run: psync },
    Cmd { name: "sync", run: sync },
    Cmd { name: "role", run: role },
    Cmd { name: "wait", run: wait },
    Cmd { name: "failover", run: failover },
];

fn replicaof(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.config.cluster_enabled {
        return Err(CmdError::err("ERR REPLICAOF not allowed in cluster mode."));
    }
    if ctx.shared.repl.state.lock().failover.phase != failover::Phase::None {
        return Err(CmdError::err("ERR REPLICAOF not allowed while failing over."));
    }
    if is(&args[1], "no") && is(&args[2], "one") {
        if ctx.shared.repl.is_replica() {
            replica::unset_master(ctx.shared, "user request from REPLICAOF NO ONE");
        }
        ctx.out.ok();
        return Ok(());
    }
    if ctx.client.handle.has_flag(crate::client::FLAG_REPLICA) {
        return Err(CmdError::err("ERR Command is not valid when client is a replica."));
    }
    let port = parse_i64(&args[2])
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CmdError::err("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let same = ctx
        .shared
        .repl
        .state
        .lock()
        .master
        .as_ref()
        .is_some_and(|m| m.port == port && m.host.eq_ignore_ascii_case(&host));
    if same {
        ctx.out.simple(b"OK Already connected to specified master");
        return Ok(());
    }
    replica::set_master(&ctx.shared.arc(), host, port);
    ctx.out.ok();
    Ok(())
}

/// REPLCONF <option> <value> ...: what a replica says about itself before
/// PSYNC, and ACK/GETACK on a replication link (which get no reply).
fn replconf(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is(opt, "listening-port") {
            let port = parse_i64(val)?;
            ctx.client.hello.listening_port = u16::try_from(port).unwrap_or(0);
        } else if is(opt, "ip-address") {
            ctx.client.hello.ip_address = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "ack") || is(opt, "getack") {
            // Only meaningful on a replication link, and never answered.
            return Ok(());
        } else if is(opt, "capa") {
            // `eof` allows the diskless framing; others (psync2) we need not
            // know: every replica we serve understands +CONTINUE <id>.
            if is(val, "eof") {
                ctx.client.hello.capa_eof = true;
            }
        } else if is(opt, "rdb-only") || is(opt, "rdb-filter-only") {
            // Snapshot-only clients (redis-cli --rdb) read what we send.
        } else {
            return Err(CmdError::err(format!("ERR Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt))));
        }
    }
    ctx.out.ok();
    Ok(())
}

/// PSYNC <replid> <offset> [FAILOVER]: with FAILOVER, our master hands
/// its role over to us (it checked we have its whole stream), provided it
/// names the history we follow.
fn psync(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.client.handle.has_flag(crate::client::FLAG_REPLICA) {
        return Ok(());
    }
    if args.len() > 3 && is(&args[3], "failover") {
        let ours = ctx.shared.repl.state.lock().replid.as_bytes() == &args[1][..];
        if !ours {
            return Err(CmdError::err("ERR PSYNC FAILOVER replid must match my replid."));
        }
        if ctx.shared.repl.is_replica() {
            let who = ctx.client.handle.addr;
            replica::unset_master(ctx.shared, &format!("failover request from '{who}'"));
        }
    }
    let offset = parse_i64(&args[2])?;
    start(ctx, Some((&args[1][..], offset)))
}

/// SYNC: the old full transfer (`redis-cli --rdb`, `--cluster backup`).
fn sync(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    start(ctx, None)
}

fn start(ctx: &mut Ctx<'_>, psync: Option<(&[u8], i64)>) -> CmdResult {
    if ctx.client.handle.has_flag(crate::client::FLAG_REPLICA) {
        return Ok(());
    }
    if ctx.mode != Mode::Normal {
        return Err(CmdError::err("ERR Command not allowed inside a transaction"));
    }
    if !ctx.out.buf.is_empty() {
        return Err(CmdError::err("ERR SYNC and PSYNC are invalid with pending output"));
    }
    let mut reply = Vec::new();
    let handover =
        master::start_sync(ctx.shared, ctx.store, ctx.config, &ctx.client.handle, &ctx.client.hello, psync, &mut reply)
            .map_err(CmdError::err)?;
    ctx.out.raw(&reply);
    ctx.action = Some(Action::Replicate(Box::new(handover)));
    Ok(())
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms], parsed as Redis
/// 7.0 does (ABORT only alone); the mechanics are in
/// [`crate::replication::failover`].
fn failover(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.config.cluster_enabled {
        return Err(CmdError::err("ERR FAILOVER not allowed in cluster mode."));
    }
    if args.len() == 2 && is(&args[1], "abort") {
        if !failover::abort(ctx.shared, "Failover manually aborted") {
            return Err(CmdError::err("ERR No failover in progress."));
        }
        ctx.out.ok();
        return Ok(());
    }
    let mut req = failover::Request { target: None, timeout_ms: None, force: false };
    let mut j = 1;
    while j < args.len() {
        if is(&args[j], "timeout") && j + 1 < args.len() && req.timeout_ms.is_none() {
            let ms = parse_i64(&args[j + 1])?;
            if ms <= 0 {
                return Err(CmdError::err("ERR FAILOVER timeout must be greater than 0"));
            }
            req.timeout_ms = Some(ms as u64);
            j += 2;
        } else if is(&args[j], "to") && j + 2 < args.len() && req.target.is_none() {
            let port = parse_i64(&args[j + 2])?;
            let host = String::from_utf8_lossy(&args[j + 1]).into_owned();
            req.target = Some((host, port));
            j += 3;
        } else if is(&args[j], "force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    failover::start(ctx.shared, req).map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}

fn role(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let repl = &ctx.shared.repl;
    let st = repl.state.lock();
    let out = &mut *ctx.out;
    if let Some(m) = &st.master {
        out.array(5);
        out.bulk(b"slave");
        out.bulk(m.host.as_bytes());
        out.int(m.port as i64);
        out.bulk(m.state.name().as_bytes());
        out.int(if m.is_up() { st.offset } else { -1 });
        return Ok(());
    }
    out.array(3);
    out.bulk(b"master");
    out.int(st.offset);
    let online: Vec<_> = st.replicas.iter().filter(|r| r.is_online()).collect();
    out.array(online.len());
    for r in online {
        out.array(3);
        out.bulk(r.ip.as_bytes());
        out.bulk(r.port.to_string().as_bytes());
        out.bulk(r.ack_offset().to_string().as_bytes());
    }
    Ok(())
}

/// WAIT numreplicas timeout: how many replicas acknowledged this client's
/// last write; waits (outside the lock) for up to `timeout` ms.
fn wait(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.shared.repl.is_replica() {
        return Err(CmdError::err(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is \
             configured to be writable (which is not the default) writes to replicas are just local and are not \
             propagated.",
        ));
    }
    let want = parse_i64(&args[1])?;
    let timeout = parse_i64(&args[2]).map_err(|_| CmdError::err("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::TimeoutNegative);
    }
    let offset = ctx.client.woff;
    let acked = ctx.shared.repl.acked_count(offset);
    if want <= acked as i64 || ctx.mode != Mode::Normal {
        ctx.out.int(acked as i64);
        return Ok(());
    }
    ctx.action = Some(Action::WaitAcks {
        numreplicas: want as usize,
        offset,
        timeout: (timeout > 0).then(|| Duration::from_millis(timeout as u64)),
    });
    Ok(())
}

/// INFO's `# Replication`, with Redis 7.0's fields in its order.
pub fn info(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let cfg = ctx.config;
    let now = unix_ms();
    let repl = &ctx.shared.repl;
    let st = repl.state.lock();
    if let Some(m) = &st.master {
        s.f("role", "slave");
        s.f("master_host", &m.host);
        s.f("master_port", m.port);
        s.f("master_link_status", if m.is_up() { "up" } else { "down" });
        let io_ago =
            if m.last_io_ms == 0 || !m.is_up() { -1 } else { (now.saturating_sub(m.last_io_ms) / 1000) as i64 };
        s.f("master_last_io_seconds_ago", io_ago);
        let syncing = m.state == replica::LinkState::Sync;
        s.f("master_sync_in_progress", u8::from(syncing));
        s.f("slave_read_repl_offset", m.read_offset);
        s.f("slave_repl_offset", st.offset);
        if syncing {
            let left = if m.sync_total < 0 { -1 } else { m.sync_total - m.sync_read };
            let perc = if m.sync_total > 0 { m.sync_read as f64 * 100.0 / m.sync_total as f64 } else { 0.0 };
            s.f("master_sync_total_bytes", m.sync_total);
            s.f("master_sync_read_bytes", m.sync_read);
            s.f("master_sync_left_bytes", left);
            s.f("master_sync_perc", format!("{perc:.2}"));
            s.f("master_sync_last_io_seconds_ago", now.saturating_sub(m.last_io_ms) / 1000);
        }
        if !m.is_up() {
            let down = if m.down_since_ms == 0 { -1 } else { (now.saturating_sub(m.down_since_ms) / 1000) as i64 };
            s.f("master_link_down_since_seconds", down);
        }
        s.f("slave_priority", cfg.int("replica-priority"));
        s.f("slave_read_only", u8::from(cfg.flag("replica-read-only")));
        s.f("replica_announced", u8::from(cfg.flag("replica-announced")));
    } else {
        s.f("role", "master");
    }
    s.f("connected_slaves", st.replicas.len());
    for (i, r) in st.replicas.iter().enumerate() {
        let offset = if r.is_online() { r.ack_offset() } else { 0 };
        s.f(
            &format!("slave{i}"),
            format!("ip={},port={},state={},offset={offset},lag={}", r.ip, r.port, r.state_name(), r.lag_secs(now)),
        );
    }
    s.f("master_failover_state", st.failover.phase.name());
    s.f("master_replid", &st.replid);
    s.f("master_replid2", &st.replid2);
    s.f("master_repl_offset", st.offset);
    s.f("second_repl_offset", st.second_offset);
    let b = st.backlog.as_ref();
    s.f("repl_backlog_active", u8::from(b.is_some()));
    s.f("repl_backlog_size", b.map_or(cfg.int("repl-backlog-size") as i64, |b| b.size() as i64));
    s.f("repl_backlog_first_byte_offset", b.map_or(0, |b| b.first_byte_offset()));
    s.f("repl_backlog_histlen", b.map_or(0, |b| b.histlen()));
}
