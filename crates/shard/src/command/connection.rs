//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET.

use bytes::Bytes;

use super::{Action, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "ping", run: ping },
    Cmd { name: "echo", run: echo },
    Cmd { name: "quit", run: quit },
    Cmd { name: "select", run: select },
];

fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::Arity("ping".into()));
    }
    if ctx.client.in_pubsub_mode() {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
        return Ok(());
    }
    match args.get(1) {
        Some(msg) => ctx.out.bulk(msg),
        None => ctx.out.simple(b"PONG"),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.out.ok();
    ctx.action = Some(Action::Close);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let idx = super::parse_i64(&args[1]).map_err(|_| CmdError::err("ERR value is not an integer or out of range"))?;
    if idx < 0 || idx as usize >= ctx.store.dbs.len() {
        return Err(CmdError::DbIndex);
    }
    ctx.client.db = idx as usize;
    ctx.client.handle.db.store(idx as usize, std::sync::atomic::Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}
