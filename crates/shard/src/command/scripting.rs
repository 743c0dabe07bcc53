//! Scripting and functions, before the scripting engine exists.
//!
//! Nothing can be loaded yet, so every reply here is the true answer for a
//! server with no scripts and no function libraries: SCRIPT EXISTS says 0,
//! EVALSHA finds no script, FCALL no function, FUNCTION LIST is empty, and
//! the flush commands succeed (there is nothing to flush), FUNCTION DUMP
//! serializes the empty library and FUNCTION RESTORE accepts one (what
//! `redis-cli --cluster add-node` copies between nodes). Commands that
//! would need the engine (EVAL, SCRIPT LOAD, FUNCTION LOAD, restoring a
//! non-empty library) answer an error that says so instead of pretending.

use bytes::Bytes;

use super::{help, is, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "eval", run: needs_engine },
    Cmd { name: "eval_ro", run: needs_engine },
    Cmd { name: "evalsha", run: evalsha },
    Cmd { name: "evalsha_ro", run: evalsha },
    Cmd { name: "fcall", run: fcall },
    Cmd { name: "fcall_ro", run: fcall },
    Cmd { name: "script", run: script },
    Cmd { name: "function", run: function },
];

fn engine_missing(what: &str) -> CmdError {
    CmdError::err(format!("ERR {what} needs the scripting engine, which this slotway-shard version does not have yet"))
}

fn needs_engine(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Err(engine_missing(&String::from_utf8_lossy(&args[0]).to_ascii_uppercase()))
}

fn evalsha(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CmdError::err("NOSCRIPT No matching script. Please use EVAL."))
}

fn fcall(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CmdError::err("ERR Function not found"))
}

fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "flush") {
        if args.len() > 3 || (args.len() == 3 && !is(&args[2], "sync") && !is(&args[2], "async")) {
            return Err(CmdError::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
        }
        ctx.out.ok();
    } else if is(sub, "exists") {
        ctx.out.array(args.len() - 2);
        for _ in &args[2..] {
            ctx.out.int(0);
        }
    } else if is(sub, "kill") {
        return Err(CmdError::err("NOTBUSY No scripts in execution right now."));
    } else if is(sub, "help") {
        help(ctx, "SCRIPT", SCRIPT_HELP);
    } else {
        // LOAD, DEBUG.
        return Err(engine_missing(&format!("SCRIPT {}", String::from_utf8_lossy(sub).to_ascii_uppercase())));
    }
    Ok(())
}

fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "flush") {
        match args.len() {
            2 => {}
            3 if is(&args[2], "sync") || is(&args[2], "async") => {}
            3 => return Err(CmdError::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")),
            _ => {
                return Err(CmdError::err(
                    "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
                ))
            }
        }
        ctx.out.ok();
    } else if is(sub, "list") {
        let mut i = 2;
        while i < args.len() {
            if is(&args[i], "withcode") {
                i += 1;
            } else if is(&args[i], "libraryname") {
                if i + 1 >= args.len() {
                    return Err(CmdError::err("ERR library name argument was not given"));
                }
                i += 2;
            } else {
                return Err(CmdError::err(format!("ERR Unknown argument {}", String::from_utf8_lossy(&args[i]))));
            }
        }
        ctx.out.array(0);
    } else if is(sub, "delete") {
        return Err(CmdError::err("ERR Library not found"));
    } else if is(sub, "kill") {
        return Err(CmdError::err("NOTBUSY No scripts in execution right now."));
    } else if is(sub, "stats") {
        ctx.out.map(2);
        ctx.out.bulk(b"running_script");
        ctx.out.null();
        ctx.out.bulk(b"engines");
        ctx.out.map(0);
    } else if is(sub, "help") {
        help(ctx, "FUNCTION", FUNCTION_HELP);
    } else if is(sub, "dump") && args.len() == 2 {
        // The serialized empty library: no function records, then the
        // RDB version and the CRC-64, as every DUMP payload ends.
        let mut payload = crate::persist::rdb::RDB_VERSION.to_le_bytes().to_vec();
        let crc = crate::persist::crc64::checksum(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        ctx.out.bulk(&payload);
    } else if is(sub, "restore") && (3..=4).contains(&args.len()) {
        if let Some(policy) = args.get(3) {
            if !["flush", "append", "replace"].iter().any(|p| is(policy, p)) {
                return Err(CmdError::err(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                ));
            }
        }
        let p = &args[2];
        let ok = p.len() >= 10 && {
            let (body, footer) = p.split_at(p.len() - 8);
            let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
            version <= crate::persist::rdb::RDB_VERSION
                && crate::persist::crc64::checksum(body).to_le_bytes() == footer[..]
        };
        if !ok {
            return Err(CmdError::err("ERR payload version or checksum are wrong"));
        }
        if p.len() > 10 {
            return Err(engine_missing("FUNCTION RESTORE of a non-empty library"));
        }
        ctx.out.ok();
    } else {
        // LOAD, DUMP, RESTORE.
        return Err(engine_missing(&format!("FUNCTION {}", String::from_utf8_lossy(sub).to_ascii_uppercase())));
    }
    Ok(())
}

const SCRIPT_HELP: &[&str] = &[
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "KILL",
    "    Kill the currently executing Lua script.",
];

const FUNCTION_HELP: &[&str] = &[
    "DELETE <LIBRARY NAME>",
    "    Delete a library and all its functions.",
    "KILL",
    "    Kill the function currently in execution.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries.",
    "STATS",
    "    Return information about the current function running.",
];

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn answers_for_a_server_without_scripts() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("SCRIPT FLUSH"), "+OK\r\n");
        assert_eq!(t.cmd("SCRIPT FLUSH ASYNC"), "+OK\r\n");
        assert_eq!(t.cmd("SCRIPT FLUSH x"), "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n");
        assert_eq!(t.cmd("FUNCTION FLUSH"), "+OK\r\n");
        assert_eq!(t.cmd("FUNCTION LIST"), "*0\r\n");
        assert_eq!(t.cmd("FUNCTION LIST WITHCODE LIBRARYNAME x"), "*0\r\n");
        assert_eq!(t.cmd("FUNCTION LIST LIBRARYNAME"), "-ERR library name argument was not given\r\n");
        assert_eq!(t.cmd("SCRIPT EXISTS a b"), "*2\r\n:0\r\n:0\r\n");
        assert_eq!(t.cmd("EVALSHA abc 0"), "-NOSCRIPT No matching script. Please use EVAL.\r\n");
        assert_eq!(t.cmd("FCALL f 0"), "-ERR Function not found\r\n");
        assert!(t.cmd("EVAL x 0").starts_with("-ERR EVAL needs the scripting engine"));
        assert!(t.cmd("FUNCTION LOAD x").starts_with("-ERR FUNCTION LOAD needs the scripting engine"));
        assert_eq!(t.cmd("SCRIPT NOPE"), "-ERR unknown subcommand 'NOPE'. Try SCRIPT HELP.\r\n");
    }
}
