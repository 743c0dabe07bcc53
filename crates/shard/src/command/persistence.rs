//! Persistence commands: SAVE, BGSAVE, LASTSAVE, DUMP, RESTORE and
//! RESTORE-ASKING. The work is in [`crate::persist`]; these parse, check
//! and reply with Redis's exact texts.

use bytes::Bytes;

use super::{is, parse_i64, Cmd, Ctx, Mode};
use crate::error::{CmdError, CmdResult};
use crate::persist::rdb;
use crate::persist::snapshot;
use crate::store::db::Access;
use crate::store::Entry;

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "save", run: save },
    Cmd { name: "bgsave", run: bgsave },
    Cmd { name: "lastsave", run: lastsave },
    Cmd { name: "dump", run: dump },
    Cmd { name: "restore", run: restore },
    Cmd { name: "restore-asking", run: restore },
];

const IN_PROGRESS: &str = "ERR Background save already in progress";

fn save(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.shared.persist.in_progress() {
        return Err(CmdError::err(IN_PROGRESS));
    }
    snapshot::save(ctx.shared, ctx.store, ctx.config).map_err(|_| CmdError::err("ERR"))?;
    ctx.out.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]. Inside MULTI the save is scheduled, as in Redis: a
/// transaction must not fork halfway.
fn bgsave(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let schedule = match args {
        [_] => false,
        [_, s] if is(s, "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    if ctx.shared.persist.in_progress() {
        return Err(CmdError::err(IN_PROGRESS));
    }
    // One child at a time, as Redis: an AOF rewrite's child is running.
    let other_child = ctx.shared.aof.rewrite_in_progress.load(std::sync::atomic::Ordering::Acquire);
    if other_child && !schedule && ctx.mode != Mode::Exec {
        return Err(CmdError::err(
            "ERR Another child process is active (AOF?): can't BGSAVE right now. \
             Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    if other_child || ctx.mode == Mode::Exec {
        ctx.shared.persist.schedule();
        ctx.out.simple(b"Background saving scheduled");
        return Ok(());
    }
    snapshot::bgsave(ctx.shared, ctx.store, ctx.config).map_err(|_| CmdError::err("ERR"))?;
    ctx.out.simple(b"Background saving started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.out.int(ctx.shared.persist.status().lastsave as i64);
    Ok(())
}

fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.split();
    match db.get_read(&args[1], now) {
        Some(e) => out.bulk(&rdb::dump_payload(&e.value)),
        None => out.null(),
    }
    Ok(())
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], with
/// Redis's order of checks: options, existing key, TTL, payload.
fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None::<i64>, None::<i64>);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if is(a, "replace") {
            replace = true;
        } else if is(a, "absttl") {
            absttl = true;
        } else if is(a, "idletime") && more && freq.is_none() {
            j += 1;
            let v = parse_i64(&args[j])?;
            if v < 0 {
                return Err(CmdError::err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
        } else if is(a, "freq") && more && idle.is_none() {
            j += 1;
            let v = parse_i64(&args[j])?;
            if !(0..=255).contains(&v) {
                return Err(CmdError::err("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let now = ctx.now;
    let key = &args[1];
    if !replace && ctx.db().get_write(key, now).is_some() {
        return Err(CmdError::err("BUSYKEY Target key name already exists."));
    }
    let mut ttl = parse_i64(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::err("ERR Invalid TTL value, must be >= 0"));
    }
    let value = rdb::read_payload(&args[3]).map_err(|version_or_crc| {
        CmdError::err(if version_or_crc {
            "ERR DUMP payload version or checksum are wrong"
        } else {
            "ERR Bad data format"
        })
    })?;
    let deleted = replace && ctx.db().delete(key, now).is_some();
    if ttl > 0 && !absttl {
        ttl = ttl.saturating_add(now as i64);
    }
    if ttl > 0 && ttl as u64 <= now {
        if deleted {
            ctx.dirty(1);
        }
        ctx.out.ok();
        return Ok(());
    }
    let mut entry = Entry::new(value);
    if let Some(secs) = idle {
        entry.set_idle_secs(secs as u64);
    }
    let db = ctx.db();
    db.insert(key, entry);
    if ttl > 0 {
        db.set_expire(key, ttl as u64);
    }
    // FREQ counts only under an LFU policy, as IDLETIME only under the
    // others (the insert started the key's LFU record afresh).
    if let (Some(freq), Access::Lfu { .. }) = (freq, db.access) {
        if let Some(e) = db.get_mut(key, now) {
            e.set_lfu(freq as u64, 0);
        }
    }
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests;
