//! Server commands: COMMAND, TIME, SHUTDOWN, SLOWLOG, LATENCY, MEMORY,
//! LOLWUT, DEBUG, MONITOR and ACL (for the single default user).
//!
//! CONFIG and INFO live elsewhere, persistence commands in
//! [`super::persistence`], replication commands (REPLICAOF, FAILOVER, ...)
//! in [`super::replication`].

mod acl;
pub use acl::AclLog;
mod commands;
mod diag;
mod docs;
mod docs_table;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use slotway_resp::ReplyBuf;
use tokio::sync::mpsc;

use super::{is, Action, Cmd, Ctx};
use crate::client::{Client, ClientHandle, ClientId, FLAG_MONITOR};
use crate::error::{CmdError, CmdResult};

/// The Redis version this server answers as.
pub const REDIS_VERSION: &str = "7.0.15";

/// `name, integer` pairs inside a map whose header is already written.
fn int_fields(out: &mut ReplyBuf, fields: &[(&str, i64)]) {
    for &(name, v) in fields {
        out.bulk(name.as_bytes());
        out.int(v);
    }
}

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "command", run: commands::command },
    Cmd { name: "time", run: time },
    Cmd { name: "shutdown", run: shutdown },
    Cmd { name: "slowlog", run: diag::slowlog },
    Cmd { name: "latency", run: diag::latency },
    Cmd { name: "memory", run: diag::memory },
    Cmd { name: "lolwut", run: lolwut },
    Cmd { name: "debug", run: debug },
    Cmd { name: "module", run: module },
    Cmd { name: "monitor", run: monitor },
    Cmd { name: "acl", run: acl::acl },
];

fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk(now.as_secs().to_string().as_bytes());
    ctx.out.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. The mechanics (waiting
/// for replicas, the final save) are in [`crate::shutdown`]; a save that
/// fails leaves the server up unless FORCE.
fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut flags = crate::shutdown::Flags::default();
    let (mut abort, mut any, mut save, mut nosave) = (false, false, false, false);
    for a in &args[1..] {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            flags.now = true;
        } else if is(a, "force") {
            flags.force = true;
        } else if is(a, "abort") {
            abort = true;
            continue;
        } else {
            return Err(CmdError::Syntax);
        }
        any = true;
    }
    // As Redis: both SAVE and NOSAVE, or ABORT with anything, is a
    // syntax error.
    if (abort && any) || (save && nosave) {
        return Err(CmdError::Syntax);
    }
    flags.save = (save || nosave).then_some(save);
    if abort {
        if crate::shutdown::abort(ctx.shared) {
            ctx.out.ok();
            return Ok(());
        }
        return Err(CmdError::err("ERR No shutdown in progress."));
    }
    match crate::shutdown::request(&ctx.shared.arc(), ctx.store, ctx.config, flags) {
        crate::shutdown::Outcome::Done => ctx.action = Some(Action::Shutdown { save: flags.save }),
        crate::shutdown::Outcome::Waiting(rx) => ctx.action = Some(Action::ShutdownWait(rx)),
        crate::shutdown::Outcome::Failed => return Err(CmdError::err(SHUTDOWN_FAILED)),
    }
    Ok(())
}

/// What SHUTDOWN answers when the server stays up.
pub const SHUTDOWN_FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// LOLWUT: Redis 7.0 has no art of its own, only the version line.
fn lolwut(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() >= 3 && is(&args[1], "version") {
        super::parse_i64(&args[2])?;
    }
    ctx.out.verbatim(format!("Redis ver. {REDIS_VERSION}\n").as_bytes());
    Ok(())
}

/// DEBUG is off by default in Redis 7.0 (`enable-debug-command no`).
fn debug(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CmdError::err(
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
    ))
}

/// MODULE: this server has no module loader, so the list is always empty
/// and a load that `enable-module-command` allows fails as a failed load
/// does in Redis.
fn module(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args[1].to_ascii_lowercase().as_slice() {
        b"list" => ctx.out.array(0),
        b"help" => crate::command::help(
            ctx,
            "MODULE",
            &[
                "LIST",
                "    Return a list of loaded modules.",
                "LOAD <path> [<arg> ...]",
                "    Load a module library from <path>, passing to it any optional arguments.",
                "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
                "    Load a module library from <path>, while passing it module configurations and optional arguments.",
                "UNLOAD <name>",
                "    Unload a module.",
            ],
        ),
        sub => {
            let allowed = match ctx.config.enable_module_command {
                "yes" => true,
                "local" => ctx.client.handle.addr.ip().is_loopback(),
                _ => false,
            };
            if !allowed {
                return Err(CmdError::err(
                    "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
                ));
            }
            if sub == b"unload" {
                return Err(CmdError::err("ERR Error unloading module: no such module with that name"));
            }
            tracing::warn!("MODULE {}: slotway-shard cannot load Redis modules", String::from_utf8_lossy(sub));
            return Err(CmdError::err("ERR Error loading the extension. Please check the server logs."));
        }
    }
    Ok(())
}

fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.monitor_rx.is_some() {
        return Ok(());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    ctx.client.monitor_rx = Some(rx);
    ctx.client.handle.set_flag(FLAG_MONITOR, true);
    ctx.shared.monitors.add(ctx.client.handle.clone(), tx);
    ctx.out.ok();
    Ok(())
}

/// Clients in MONITOR mode and the channels their sessions read. Dispatch
/// checks [`Monitors::active`] (one atomic load) before anything else, so
/// the cost is nil while nobody monitors.
#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<(Arc<ClientHandle>, mpsc::UnboundedSender<Bytes>)>>,
}

impl Monitors {
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn add(&self, handle: Arc<ClientHandle>, tx: mpsc::UnboundedSender<Bytes>) {
        let mut list = self.list.lock();
        list.push((handle, tx));
        self.count.store(list.len(), Ordering::Relaxed);
    }

    pub fn remove(&self, id: ClientId) {
        if !self.active() {
            return;
        }
        let mut list = self.list.lock();
        list.retain(|(h, _)| h.id != id);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Sends a command line, as Redis prints it, to every monitor. A
    /// monitor that stops reading is disconnected once its queue passes
    /// Redis's replica output limit (256 MB), so the queue stays bounded.
    pub fn feed(&self, client: &Client, args: &[Bytes]) {
        const LIMIT: usize = 256 << 20;
        let line = Bytes::from(monitor_line(client, args, std::time::SystemTime::now()));
        let mut list = self.list.lock();
        list.retain(|(h, tx)| {
            if h.pending_out.fetch_add(line.len(), Ordering::Relaxed) + line.len() > LIMIT {
                h.kill.cancel();
                return false;
            }
            tx.send(line.clone()).is_ok()
        });
        self.count.store(list.len(), Ordering::Relaxed);
    }
}

/// `+1700000000.123456 [0 127.0.0.1:5000] "SET" "k" "v"\r\n`, with
/// passwords replaced by `(redacted)`.
fn monitor_line(client: &Client, args: &[Bytes], at: std::time::SystemTime) -> Vec<u8> {
    let t = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out =
        format!("+{}.{:06} [{} {}]", t.as_secs(), t.subsec_micros(), client.db, client.handle.addr).into_bytes();
    let secret = secret_args(args);
    for (i, a) in args.iter().enumerate() {
        out.push(b' ');
        if secret.contains(&i) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote_repr(a, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `args` with passwords replaced by `(redacted)`, as the slow log keeps
/// them; `None` when nothing is secret (the common case, no copy).
pub fn redacted(args: &[Bytes]) -> Option<Vec<Bytes>> {
    if !(is(&args[0], "auth") || is(&args[0], "hello")) {
        return None;
    }
    let secret = secret_args(args);
    Some(
        args.iter()
            .enumerate()
            .map(|(i, a)| if secret.contains(&i) { Bytes::from_static(b"(redacted)") } else { a.clone() })
            .collect(),
    )
}

/// The arguments Redis hides from MONITOR: AUTH's, and HELLO's AUTH pair.
fn secret_args(args: &[Bytes]) -> Vec<usize> {
    if is(&args[0], "auth") {
        return (1..args.len()).collect();
    }
    let mut v = Vec::new();
    if is(&args[0], "hello") {
        let mut j = 2;
        while j < args.len() {
            if is(&args[j], "auth") && j + 2 < args.len() {
                v.extend([j + 1, j + 2]);
                j += 3;
            } else {
                j += 1 + usize::from(is(&args[j], "setname"));
            }
        }
    }
    v
}

/// A double-quoted, escaped string, as Redis's `sdscatrepr`.
pub fn quote_repr(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{:02x}", b).as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestServer;

    #[test]
    fn time_lolwut_debug_shutdown() {
        let mut t = TestServer::new();
        let r = t.cmd("TIME");
        assert!(r.starts_with("*2\r\n$10\r\n"), "{r}");
        assert_eq!(t.cmd("LOLWUT"), "$18\r\nRedis ver. 7.0.15\n\r\n");
        assert_eq!(t.cmd("LOLWUT VERSION x"), "-ERR value is not an integer or out of range\r\n");
        assert!(t.cmd("DEBUG SLEEP 0").starts_with("-ERR DEBUG command not allowed."));
        assert_eq!(t.cmd("SHUTDOWN ABORT"), "-ERR No shutdown in progress.\r\n");
        assert_eq!(t.cmd("SHUTDOWN ABORT NOW"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SHUTDOWN SAVE NOSAVE"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("SHUTDOWN NOSAVE NOW"), "");
    }

    #[test]
    fn monitor_lines_quote_and_redact() {
        let t = TestServer::new();
        let args: Vec<Bytes> = vec!["SET".into(), "a".into(), Bytes::from_static(b"x\ny\"\x01\\")];
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_000_123);
        let line = monitor_line(&t.client, &args, at);
        assert_eq!(
            String::from_utf8_lossy(&line),
            "+1700000000.000123 [0 127.0.0.1:1] \"SET\" \"a\" \"x\\ny\\\"\\x01\\\\\"\r\n"
        );
        let auth: Vec<Bytes> = vec!["AUTH".into(), "pw".into()];
        assert!(String::from_utf8_lossy(&monitor_line(&t.client, &auth, at)).ends_with("\"AUTH\" \"(redacted)\"\r\n"));
        let hello: Vec<Bytes> = vec!["HELLO".into(), "3".into(), "AUTH".into(), "u".into(), "p".into()];
        assert!(String::from_utf8_lossy(&monitor_line(&t.client, &hello, at))
            .ends_with("\"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"));
    }

    #[test]
    fn slowlog_hides_passwords() {
        let mut t = TestServer::with_config(crate::config::Config { slowlog_log_slower_than: 0, ..Default::default() });
        t.cmd("AUTH default secret");
        let r = t.cmd("SLOWLOG GET 1");
        assert!(r.contains("*3\r\n$4\r\nAUTH\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n"), "{r}");
        assert!(!r.contains("secret"));
    }

    #[test]
    fn monitor_streams_other_commands() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("MONITOR"), "+OK\r\n");
        assert!(t.shared.monitors.active());
        t.cmd("PING");
        t.cmd("CLIENT KILL ID 12345");
        let rx = t.client.monitor_rx.as_mut().expect("monitoring");
        let line = rx.try_recv().expect("a line");
        assert!(String::from_utf8_lossy(&line).ends_with("] \"PING\"\r\n"));
        // CLIENT KILL is an admin command: never shown.
        assert!(rx.try_recv().is_err());
        t.cmd("RESET");
        assert!(!t.shared.monitors.active());
    }
}
