//! CONFIG GET / SET / REWRITE / RESETSTAT / HELP.
//!
//! SET works on a copy of the configuration and publishes it with one
//! `ArcSwap` store only when every pair validated, so a failing CONFIG SET
//! changes nothing and the next batch of every connection sees the whole
//! change.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{glob_match, help, is, Cmd, Ctx};
use crate::config::{self, rewrite, value, DIRECTIVES};
use crate::error::{CmdError, CmdResult};

pub const COMMANDS: &[Cmd] = &[Cmd { name: "config", run: config_cmd }];

const HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

fn config_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "get") {
        get(ctx, &args[2..])
    } else if is(sub, "set") {
        set(ctx, args)
    } else if is(sub, "rewrite") {
        rewrite_cmd(ctx)
    } else if is(sub, "resetstat") {
        reset_stats(ctx);
        ctx.out.ok();
        Ok(())
    } else {
        help(ctx, "CONFIG", HELP);
        Ok(())
    }
}

/// The value CONFIG GET shows; `dir` is the live working directory.
fn shown(ctx: &Ctx<'_>, idx: usize) -> String {
    if DIRECTIVES[idx].name == "dir" {
        return std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    }
    value::show(&ctx.config.values[idx])
}

fn get(ctx: &mut Ctx<'_>, patterns: &[Bytes]) -> CmdResult {
    let mut found: Vec<(String, usize)> = Vec::new();
    let mut add = |name: String, idx: usize| {
        if !found.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            found.push((name, idx));
        }
    };
    for p in patterns {
        if !p.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            // A plain name is echoed as the client spelled it, as Redis.
            if let Some(idx) = config::find(p) {
                add(String::from_utf8_lossy(p).into_owned(), idx);
            }
            continue;
        }
        for (idx, d) in DIRECTIVES.iter().enumerate() {
            for name in std::iter::once(d.name).chain(d.alias) {
                if glob_match(p, name.as_bytes(), true) {
                    add(name.to_string(), idx);
                }
            }
        }
    }
    ctx.out.map(found.len());
    for (name, idx) in &found {
        ctx.out.bulk(name.as_bytes());
        let v = shown(ctx, *idx);
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

fn set_failed(arg: &[u8], why: &str) -> CmdError {
    CmdError::err(format!(
        "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
        String::from_utf8_lossy(arg)
    ))
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pairs = &args[2..];
    if !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    // First every name, so that an unknown or immutable one refuses the
    // whole command before any value is looked at.
    let mut targets = Vec::with_capacity(pairs.len() / 2);
    for (i, pair) in pairs.chunks(2).enumerate() {
        let name = &pair[0];
        let Some(idx) = config::find(name) else {
            return Err(CmdError::err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(name)
            )));
        };
        let d = &DIRECTIVES[idx];
        if d.immutable() {
            return Err(set_failed(name, "can't set immutable config"));
        }
        let local = ctx.client.handle.addr.ip().is_loopback();
        let allowed = ctx.config.word_is("enable-protected-configs", "yes")
            || (local && ctx.config.word_is("enable-protected-configs", "local"));
        if d.protected() && !allowed {
            return Err(set_failed(name, "can't set protected config"));
        }
        if pairs.chunks(2).take(i).any(|p| p[0].eq_ignore_ascii_case(name)) {
            return Err(set_failed(name, "duplicate parameter"));
        }
        targets.push((idx, name, &pair[1]));
    }
    let mut next = ctx.config.clone();
    let mut new_dir = None;
    for (idx, name, val) in targets {
        let raw = std::str::from_utf8(val).map_err(|_| set_failed(name, "argument must be a valid string"))?;
        next.set_value(idx, raw).map_err(|why| set_failed(name, &why))?;
        if DIRECTIVES[idx].name == "dir" {
            new_dir = Some((name, raw));
        }
    }
    // The only change with an effect outside the config: done last, once
    // everything else has validated.
    if let Some((name, dir)) = new_dir {
        std::env::set_current_dir(dir).map_err(|e| set_failed(name, &config::io_reason(&e)))?;
    }
    next.refresh();
    if next.loglevel != ctx.config.loglevel {
        if let Some(hook) = config::LOG_LEVEL_HOOK.get() {
            hook(&next.loglevel);
        }
    }
    crate::aof::config_changed(ctx.shared, ctx.store, ctx.config, &next)
        .map_err(|why| set_failed(b"appendonly", &why))?;
    ctx.shared.config.store(Arc::new(next));
    ctx.out.ok();
    Ok(())
}

fn rewrite_cmd(ctx: &mut Ctx<'_>) -> CmdResult {
    let Some(path) = ctx.config.file.clone() else {
        return Err(CmdError::err("ERR The server is running without a config file"));
    };
    // The live configuration, not the batch snapshot: a CONFIG SET earlier
    // in the same pipeline must be written too.
    let cfg = ctx.shared.config.load_full();
    match rewrite::rewrite_file(&cfg, &path) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CmdError::err(format!("ERR Rewriting config file: {}", config::io_reason(&e))))
        }
    }
}

/// What INFO counts since start or the last CONFIG RESETSTAT.
fn reset_stats(ctx: &mut Ctx<'_>) {
    let s = &ctx.shared.stats;
    for c in [
        &s.commands,
        &s.connections_received,
        &s.rejected_connections,
        &s.error_replies,
        &s.net_input_bytes,
        &s.net_output_bytes,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    for r in ctx.shared.commands.iter() {
        for c in [&r.calls, &r.usec, &r.failed, &r.rejected] {
            c.store(0, Ordering::Relaxed);
        }
    }
    ctx.store.stats = Default::default();
    for db in &ctx.store.dbs {
        db.hits.set(0);
        db.misses.set(0);
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;
    use bytes::Bytes;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn get_exact_glob_and_alias() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("config get maxmemory"), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
        assert_eq!(t.cmd("config get MAXMEMORY"), "*2\r\n$9\r\nMAXMEMORY\r\n$1\r\n0\r\n");
        assert_eq!(t.cmd("config get slave-read-only"), "*2\r\n$15\r\nslave-read-only\r\n$3\r\nyes\r\n");
        assert_eq!(t.cmd("config get nope"), "*0\r\n");
        let r = t.cmd("config get maxmemory* maxmemory");
        assert!(r.starts_with("*10\r\n"), "{r}");
        assert_eq!(t.cmd("config get *").split("\r\n").next(), Some("*388"));
        t.client.proto = slotway_resp::Proto::Resp3;
        assert_eq!(t.cmd("config get hz"), "%1\r\n$2\r\nhz\r\n$2\r\n10\r\n");
    }

    #[test]
    fn set_is_atomic_and_takes_effect() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("config set maxmemory 1mb hz 20"), "+OK\r\n");
        assert_eq!(t.shared.config.load().maxmemory, 1 << 20);
        assert_eq!(t.shared.config.load().hz, 20);
        assert_eq!(
            t.cmd("config set maxmemory 2mb hz abc"),
            "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"
        );
        assert_eq!(t.shared.config.load().maxmemory, 1 << 20);
        assert_eq!(
            t.cmd("config set maxmemory 1mb hz 5 x y"),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'x'\r\n"
        );
        assert_eq!(
            t.cmd("config set maxmemory abc"),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n"
        );
        assert_eq!(
            t.cmd("config set daemonize yes"),
            "-ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config\r\n"
        );
        assert_eq!(
            t.cmd("config set dir /tmp"),
            "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n"
        );
        assert_eq!(
            t.cmd("config set maxmemory 1 MAXMEMORY 2"),
            "-ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate parameter\r\n"
        );
        assert_eq!(t.cmd("config set a b c"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd_args(&args(&["config", "set", "save", "900 1 300 10"])), "+OK\r\n");
        assert_eq!(t.shared.config.load().save, vec![(900, 1), (300, 10)]);
        assert_eq!(t.cmd_args(&args(&["config", "set", "save", ""])), "+OK\r\n");
        assert!(t.shared.config.load().save.is_empty());
        assert_eq!(t.cmd("config set requirepass secret"), "+OK\r\n");
        assert_eq!(t.shared.config.load().requirepass.as_deref(), Some(&b"secret"[..]));
    }

    #[test]
    fn rewrite_needs_a_file_and_help_and_resetstat() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("config rewrite"), "-ERR The server is running without a config file\r\n");
        assert!(t.cmd("config help").starts_with("*11\r\n+CONFIG <subcommand>"));
        t.cmd("get nokey");
        assert_eq!(t.cmd("config resetstat"), "+OK\r\n");
        assert_eq!(t.shared.stats.commands.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn rewrite_updates_the_file() {
        let dir = std::env::temp_dir().join(format!("slotway-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.conf");
        std::fs::write(&path, "# keep me\nmaxmemory 100mb\n").unwrap();
        let mut cfg = crate::config::Config::default();
        cfg.apply_str("maxmemory 100mb").unwrap();
        cfg.file = Some(path.clone());
        let mut t = TestServer::with_config(cfg);
        assert_eq!(t.cmd("config set maxmemory 200mb"), "+OK\r\n");
        assert_eq!(t.cmd("config rewrite"), "+OK\r\n");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# keep me\nmaxmemory 200mb\n"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
