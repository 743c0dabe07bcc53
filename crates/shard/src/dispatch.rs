//! Running one request: lookup, checks, MULTI queueing, the handler, and
//! the bookkeeping after it (WATCH, blocked clients, expired keys, stats).
//!
//! The order of checks follows Redis's `processCommand`: unknown command,
//! arity, authentication, no-multi, memory (eviction and the OOM refusal,
//! see [`crate::evict`]), pub/sub context, then MULTI queueing.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use slotway_resp::ReplyBuf;
use slotway_slots::commands::flags;

use crate::client::{Client, ReplyMode};
use crate::command::{Ctx, Lookup, Mode, Registered};
use crate::error::CmdError;

/// Runs one request from the client; the reply goes to `ctx.out`, unless
/// CLIENT REPLY OFF/SKIP says to drop it.
pub fn execute(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if ctx.client.reply == ReplyMode::On {
        check_and_run(ctx, args);
    } else {
        execute_quiet(ctx, args);
    }
    // ASKING covers exactly the next command (or the next transaction).
    if ctx.client.asking && ctx.client.multi.is_none() && ctx.client.last_cmd != "asking" {
        ctx.client.asking = false;
    }
    let multi = ctx.client.multi.as_ref().map_or(-1, |m| m.len() as i64);
    if multi >= 0 || ctx.client.handle.multi_len.load(Ordering::Relaxed) >= 0 {
        ctx.client.handle.multi_len.store(multi, Ordering::Relaxed);
    }
}

/// A request from a client whose replies are (partly) switched off.
fn execute_quiet(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if ctx.client.reply == ReplyMode::SkipNext {
        ctx.client.reply = ReplyMode::Skip;
    }
    let before = ctx.client.reply;
    let start = ctx.out.len();
    check_and_run(ctx, args);
    let after = ctx.client.reply;
    // CLIENT REPLY ON gets its +OK through; anything else is dropped.
    let drop = match before {
        ReplyMode::Off => after == ReplyMode::Off,
        ReplyMode::Skip => after != ReplyMode::On,
        _ => false,
    };
    if drop {
        ctx.out.buf.truncate(start);
    }
    if before == ReplyMode::Skip && after == ReplyMode::Skip {
        ctx.client.reply = ReplyMode::On;
    }
}

fn check_and_run(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    let reg = match ctx.shared.commands.find(args) {
        Lookup::Found(reg) => reg,
        Lookup::MissingSubcommand(reg) => reg,
        Lookup::Unknown => return refuse(ctx, None, &unknown_command(args)),
        Lookup::UnknownSubcommand(reg) => {
            let sub = String::from_utf8_lossy(&args[1][..args[1].len().min(128)]).into_owned();
            let err = CmdError::UnknownSubcommand(sub, reg.spec.name.to_ascii_uppercase());
            return refuse(ctx, Some(reg), &err.to_string());
        }
    };
    let spec = reg.spec;
    // Same table entry, same pointer: no string comparison per command.
    if !std::ptr::eq(ctx.client.last_cmd, spec.name) {
        ctx.client.last_cmd = spec.name;
        *ctx.client.handle.last_cmd.lock() = spec.name;
    }
    if !spec.arity_ok(args.len()) {
        return refuse(ctx, Some(reg), &CmdError::Arity(spec.name.to_string()).to_string());
    }
    if !ctx.client.authenticated && !spec.has(flags::NO_AUTH) {
        return refuse(ctx, Some(reg), "NOAUTH Authentication required.");
    }
    if !ctx.client.is_master && ctx.shared.cluster.get().is_some() {
        if let Some(err) = crate::cluster::routes::check(ctx, spec, args) {
            return refuse(ctx, Some(reg), &err);
        }
    }
    if spec.has(flags::WRITE) && !ctx.client.is_master {
        if let Some(err) = replication_refuses_write(ctx) {
            return refuse(ctx, Some(reg), err);
        }
    }
    if !spec.has(flags::STALE) && !ctx.client.is_master && crate::replication::refuses_stale(ctx.shared, ctx.config) {
        return refuse(
            ctx,
            Some(reg),
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        );
    }
    if ctx.client.multi.is_some() && spec.has(flags::NO_MULTI) {
        return refuse(ctx, Some(reg), "ERR Command not allowed inside a transaction");
    }
    // Redis's order: memory first, then the disk's health.
    if !crate::replication::ignores_maxmemory(ctx.shared, ctx.config) && !crate::evict::admit(ctx, spec) {
        return refuse(ctx, Some(reg), crate::evict::OOM_ERROR);
    }
    if (spec.has(flags::WRITE) || spec.name == "ping") && ctx.shared.persist.writes_denied(ctx.config) {
        return refuse(ctx, Some(reg), crate::persist::snapshot::MISCONF);
    }
    if ctx.client.in_pubsub_mode() && !allowed_in_pubsub(spec.name) {
        reg.rejected.fetch_add(1, Ordering::Relaxed);
        ctx.out.error(&format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ));
        return;
    }
    if let Some(queue) = ctx.client.multi.as_mut() {
        if !matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
            queue.push(args.to_vec());
            ctx.out.simple(b"QUEUED");
            return;
        }
    }
    run(ctx, reg, args);
}

/// Runs a command that already passed the checks: the handler, then the
/// bookkeeping. EXEC and blocked-client replays enter here.
pub fn run(ctx: &mut Ctx<'_>, reg: &Registered, args: &[Bytes]) {
    let dirty_before = ctx.store.dirty;
    // One relaxed load when nothing consumes the stream.
    let propagating = ctx.shared.propagator.is_active();
    let reply_start = ctx.out.len();
    if propagating {
        ctx.shared.propagator.begin();
    }
    let started = Instant::now();
    let result = (reg.run)(ctx, args);
    let usec = started.elapsed().as_micros() as u64;
    reg.calls.fetch_add(1, Ordering::Relaxed);
    reg.usec.fetch_add(usec, Ordering::Relaxed);
    ctx.shared.stats.commands.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = result {
        reg.failed.fetch_add(1, Ordering::Relaxed);
        ctx.shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.out.error(&e.to_string());
    }
    let db = ctx.client.db;
    if ctx.store.dirty != dirty_before && ctx.store.tracks_keys() {
        for i in reg.spec.written_keys(args).unwrap_or_default() {
            ctx.store.touch(db, &args[i]);
        }
    }
    for d in 0..ctx.store.dbs.len() {
        if !ctx.store.dbs[d].expired.is_empty() {
            let expired = std::mem::take(&mut ctx.store.dbs[d].expired);
            ctx.store.stats.expired_keys += expired.len() as u64;
            for k in &expired {
                ctx.store.touch(d, k);
            }
            if propagating {
                crate::propagate::expired(ctx.shared, d, &expired);
            }
        }
        if !ctx.store.dbs[d].evicted.is_empty() {
            // Counted and shown to WATCH when evicted (crate::evict);
            // here only handed on: replicas and the AOF get a DEL.
            let evicted = std::mem::take(&mut ctx.store.dbs[d].evicted);
            if propagating {
                crate::propagate::expired(ctx.shared, d, &evicted);
            }
        }
    }
    if propagating {
        if ctx.store.dirty != dirty_before {
            let reply = ctx.out.buf.get(reply_start..).unwrap_or_default();
            match crate::propagate::rewrite::effect(reg.spec.name, args, &ctx.store.dbs[db], reply) {
                crate::propagate::rewrite::Effect::Same => ctx.shared.propagator.push_args(db, args),
                crate::propagate::rewrite::Effect::Rewritten(cmds) => {
                    for argv in cmds {
                        ctx.shared.propagator.push(db, argv);
                    }
                }
            }
        }
        ctx.shared.propagator.end();
    }
    if ctx.shared.monitors.active()
        && ctx.mode != Mode::ServeBlocked
        && !reg.spec.has(flags::SKIP_MONITOR | flags::ADMIN)
    {
        ctx.shared.monitors.feed(ctx.client, args);
    }
    if ctx.config.slowlog_log_slower_than >= 0 && usec as i64 >= ctx.config.slowlog_log_slower_than {
        let hidden = crate::command::server::redacted(args);
        ctx.shared.slowlog_push(hidden.as_deref().unwrap_or(args), usec, ctx.client, ctx.config.slowlog_max_len);
    }
}

/// Answers a request that fails the checks before its handler; inside
/// MULTI that also dooms the transaction.
fn refuse(ctx: &mut Ctx<'_>, reg: Option<&Registered>, err: &str) {
    if let Some(reg) = reg {
        reg.rejected.fetch_add(1, Ordering::Relaxed);
        if reg.spec.name == "exec" && ctx.client.multi.is_some() {
            // A refused EXEC ends the transaction and says why, as Redis's
            // execCommandAbort does.
            crate::command::transaction::discard_transaction(ctx);
            ctx.shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
            ctx.out.error(&format!("EXECABORT Transaction discarded because of: {err}"));
            return;
        }
    }
    if ctx.client.multi.is_some() {
        ctx.client.multi_error = true;
    }
    ctx.shared.stats.error_replies.fetch_add(1, Ordering::Relaxed);
    ctx.out.error(err);
}

/// Writes a replica refuses (`replica-read-only`) and writes a master
/// refuses without enough good replicas (`min-replicas-to-write`).
fn replication_refuses_write(ctx: &Ctx<'_>) -> Option<&'static str> {
    let repl = &ctx.shared.repl;
    if repl.is_replica() {
        if ctx.config.replica_read_only {
            return Some("READONLY You can't write against a read only replica.");
        }
        return None;
    }
    let min = ctx.config.min_replicas_to_write;
    if min > 0 && repl.good_replicas(ctx.config.min_replicas_max_lag, ctx.now) < min {
        return Some("NOREPLICAS Not enough good replicas to write.");
    }
    None
}

fn allowed_in_pubsub(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `, with
/// Redis's 128-character budget for the quoted arguments.
fn unknown_command(args: &[Bytes]) -> String {
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
    let mut shown = String::new();
    for a in &args[1..] {
        let room = 128usize.saturating_sub(shown.len());
        if room == 0 {
            break;
        }
        let a = String::from_utf8_lossy(&a[..a.len().min(room)]).into_owned();
        shown.push_str(&format!("'{}' ", a));
    }
    format!("ERR unknown command '{}', with args beginning with: {}", name, shown)
}

/// Serves blocked clients whose keys got data: keys in the order they were
/// touched, and each key's clients in the order they blocked. Runs under
/// the keyspace lock right after the command that made the keys ready, so
/// no other client can see an element a waiter is owed. Keys that serving
/// itself touches (BLMOVE pushing into a key others wait on) are served in
/// a following round, as Redis does.
pub fn serve_blocked(store: &mut crate::store::Store, shared: &crate::server::Shared) {
    let config = shared.config.load_full();
    let now = crate::server::unix_ms();
    while !store.ready.is_empty() {
        let round = std::mem::take(&mut store.ready);
        for (db, key) in round {
            for id in store.blocked_on(db, &key) {
                // Every blocking command serves from an existing key, so
                // once it is gone the rest of the queue keeps waiting.
                if store.dbs[db].peek(&key).is_none() {
                    break;
                }
                let Some(w) = store.waiter(id) else { continue };
                if w.tx.is_closed() {
                    // Its connection is gone: it must not take an element.
                    store.unblock(id);
                    continue;
                }
                let (args, proto, handle) = (w.args.clone(), w.proto, w.handle.clone());
                let Lookup::Found(reg) = shared.commands.find(&args) else { continue };
                let mut client = Client::new(handle, true);
                client.db = db;
                client.proto = proto;
                let mut out = ReplyBuf::new(proto);
                store.set_serving_key(Some(key.clone()));
                let mut ctx = Ctx::new(store, shared, &config, &mut client, &mut out, now, Mode::ServeBlocked);
                run(&mut ctx, reg, &args);
                let still_blocked = ctx.action.is_some();
                store.set_serving_key(None);
                if still_blocked {
                    // Nothing for this client after all (an older waiter
                    // took it, or the key holds another type): it keeps its
                    // place in every queue.
                    continue;
                }
                if let Some(w) = store.unblock(id) {
                    let _ = w.tx.send(out.buf);
                }
            }
        }
    }
}

/// The reply a blocked command gives when its timeout passes.
pub fn timeout_reply(proto: slotway_resp::Proto) -> BytesMut {
    let mut out = ReplyBuf::new(proto);
    out.null_array();
    out.buf
}
