//! String commands (first cut: GET and plain SET).

use bytes::Bytes;

use super::{Cmd, Ctx};
use crate::error::CmdResult;
use crate::store::{Entry, Value};

pub const COMMANDS: &[Cmd] = &[Cmd { name: "get", run: get }, Cmd { name: "set", run: set }];

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    out.bulk_opt(db.get_str(&args[1], now)?.map(|v| &v[..]));
    Ok(())
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ctx.db().insert(&args[1], Entry::new(Value::Str(args[2][..].into())));
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}
