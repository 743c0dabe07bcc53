//! Generic key commands (first cut: DEL).

use bytes::Bytes;

use super::{Cmd, Ctx};
use crate::error::CmdResult;

pub const COMMANDS: &[Cmd] = &[Cmd { name: "del", run: del }];

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let mut n = 0;
    for k in &args[1..] {
        if ctx.db().get(k, now).is_some() {
            ctx.db().remove(k);
            n += 1;
        }
    }
    ctx.dirty(n as u64);
    ctx.out.int(n);
    Ok(())
}
