//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in [`crate::dispatch`]; a command refused while queued
//! (unknown, wrong arity, not allowed in MULTI) sets `multi_error` and EXEC
//! then aborts with EXECABORT. Inside EXEC each command runs through
//! [`dispatch::run`] in [`Mode::Exec`], so errors are just elements of the
//! reply array and blocking commands answer at once.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Cmd, Ctx, Lookup, Mode};
use crate::dispatch;
use crate::error::{CmdError, CmdResult};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "multi", run: multi },
    Cmd { name: "exec", run: exec },
    Cmd { name: "discard", run: discard },
    Cmd { name: "watch", run: watch },
    Cmd { name: "unwatch", run: unwatch },
];

fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.client.handle.in_multi.store(true, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::err("ERR DISCARD without MULTI"));
    }
    discard_transaction(ctx);
    ctx.out.ok();
    Ok(())
}

/// Leaves MULTI and forgets the watched keys (DISCARD, EXEC, RESET).
pub fn discard_transaction(ctx: &mut Ctx<'_>) {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    ctx.client.handle.in_multi.store(false, Ordering::Relaxed);
    unwatch_all(ctx);
}

fn unwatch_all(ctx: &mut Ctx<'_>) {
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.store.unwatch(ctx.client.id(), &watched);
}

fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let Some(queued) = ctx.client.multi.take() else {
        return Err(CmdError::err("ERR EXEC without MULTI"));
    };
    let failed = ctx.client.multi_error;
    let aborted = ctx.store.is_dirty_cas(ctx.client.id(), &ctx.client.watched, ctx.now);
    // Unwatch first: the transaction's own writes must not count against it.
    discard_transaction(ctx);
    if failed {
        return Err(CmdError::err("EXECABORT Transaction discarded because of previous errors."));
    }
    if aborted {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(queued.len());
    let shared = ctx.shared;
    let mode = std::mem::replace(&mut ctx.mode, Mode::Exec);
    for args in &queued {
        match shared.commands.find(args) {
            Lookup::Found(reg) | Lookup::MissingSubcommand(reg) => dispatch::run(ctx, reg, args),
            // Checked when queued; the registry does not change.
            Lookup::Unknown | Lookup::UnknownSubcommand(_) => ctx.out.error("ERR unknown command"),
        }
    }
    ctx.mode = mode;
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("ERR WATCH inside MULTI is not allowed"));
    }
    let (id, db, now) = (ctx.client.id(), ctx.client.db, ctx.now);
    for key in &args[1..] {
        if ctx.client.watched.iter().any(|(d, k)| *d == db && k[..] == key[..]) {
            continue;
        }
        ctx.store.watch(id, db, key, now);
        ctx.client.watched.push((db, key[..].into()));
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn multi_exec_discard_errors() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("EXEC"), "-ERR EXEC without MULTI\r\n");
        assert_eq!(t.cmd("DISCARD"), "-ERR DISCARD without MULTI\r\n");
        assert_eq!(t.cmd("MULTI"), "+OK\r\n");
        assert_eq!(t.cmd("MULTI"), "-ERR MULTI calls can not be nested\r\n");
        assert_eq!(t.cmd("WATCH a"), "-ERR WATCH inside MULTI is not allowed\r\n");
        assert_eq!(t.cmd("SET a 1"), "+QUEUED\r\n");
        assert_eq!(t.cmd("GET a"), "+QUEUED\r\n");
        // Errors that are not queueing errors do not doom the transaction.
        assert_eq!(t.cmd("EXEC"), "*2\r\n+OK\r\n$1\r\n1\r\n");
        assert_eq!(t.cmd("EXEC"), "-ERR EXEC without MULTI\r\n");
    }

    #[test]
    fn queueing_errors_abort() {
        let mut t = TestServer::new();
        t.cmd("MULTI");
        assert_eq!(t.cmd("SET a"), "-ERR wrong number of arguments for 'set' command\r\n");
        assert_eq!(t.cmd("SET a 1"), "+QUEUED\r\n");
        assert_eq!(t.cmd("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
        assert_eq!(t.cmd("GET a"), "$-1\r\n");
        t.cmd("MULTI");
        assert!(t.cmd("NOSUCH x").starts_with("-ERR unknown command 'NOSUCH'"));
        assert_eq!(t.cmd("DISCARD"), "+OK\r\n");
        assert_eq!(t.cmd("MULTI"), "+OK\r\n");
        assert_eq!(t.cmd("EXEC"), "*0\r\n");
    }

    #[test]
    fn watch_own_write_and_unwatch() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("WATCH k"), "+OK\r\n");
        t.cmd("SET k 1");
        t.cmd("MULTI");
        t.cmd("GET k");
        assert_eq!(t.cmd("EXEC"), "*-1\r\n");
        // EXEC forgot the watch.
        t.cmd("SET k 2");
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*0\r\n");
        t.cmd("WATCH k");
        t.cmd("SET k 3");
        assert_eq!(t.cmd("UNWATCH"), "+OK\r\n");
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*0\r\n");
        t.cmd("WATCH k");
        t.cmd("SET k 3");
        t.cmd("MULTI");
        t.cmd("DISCARD");
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*0\r\n");
        assert_eq!(t.shared.store.lock().watched_keys(), 0);
    }

    #[test]
    fn watch_sees_expiry_and_flush() {
        let mut t = TestServer::new();
        let now = crate::server::unix_ms();
        {
            let mut store = t.shared.store.lock();
            let e = crate::store::Entry::new(crate::store::Value::Str(b"v"[..].into())).with_expire(now + 100_000);
            store.dbs[0].insert(b"e", e);
        }
        t.cmd("WATCH e");
        // The key expires while watched (nobody deletes it): EXEC fails.
        t.shared.store.lock().dbs[0].set_expire(b"e", now.saturating_sub(1));
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*-1\r\n");
        // Watched while already expired: its deletion is no change.
        t.cmd("WATCH e");
        {
            let mut store = t.shared.store.lock();
            store.dbs[0].remove(b"e");
            store.touch(0, b"e");
        }
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*0\r\n");
        // A flush aborts only watchers of keys that existed.
        t.cmd("SET other v");
        t.cmd("WATCH nokey");
        t.shared.store.lock().touch_all(Some(0));
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*0\r\n");
        t.cmd("SET k v");
        t.cmd("WATCH k");
        t.shared.store.lock().touch_all(None);
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*-1\r\n");
        t.cmd("WATCH k");
        t.shared.store.lock().touch_swap(0, 1);
        t.cmd("MULTI");
        assert_eq!(t.cmd("EXEC"), "*-1\r\n");
    }

    #[test]
    fn subscribe_inside_exec() {
        let mut t = TestServer::new();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        t.client.pubsub_tx = Some(tx);
        t.cmd("MULTI");
        t.cmd("SUBSCRIBE x");
        t.cmd("SSUBSCRIBE s");
        t.cmd("PUBLISH x y");
        assert_eq!(
            t.cmd("EXEC"),
            "*3\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n\
             -ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n\
             *3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\ny\r\n:1\r\n"
        );
    }
}
