//! CLIENT: naming, listing and killing connections, pausing the server,
//! reply suppression and unblocking blocked clients.
//!
//! Client-side caching (CLIENT TRACKING ON) is not implemented: the
//! tracking subcommands answer as Redis does for a client with tracking off,
//! and TRACKING ON is refused with an explicit error.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use slotway_slots::commands::flags;

use super::connection::{set_client_name, valid_client_name, BAD_CLIENT_NAME};
use super::{is, Action, Ctx};
use crate::client::{ClientHandle, ReplyMode, FLAG_MONITOR, FLAG_NO_EVICT};
use crate::error::{CmdError, CmdResult};

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

/// Writes a HELP reply: one simple string per line.
pub fn help_reply(ctx: &mut Ctx<'_>, lines: &[&str]) {
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l.as_bytes());
    }
}

/// `ERR unknown subcommand or wrong number of arguments for 'x'. Try
/// NAME HELP.`, for a known subcommand given the wrong options.
pub fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    CmdError::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&args[1]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"id" => ctx.out.int(ctx.client.id() as i64),
        b"setname" => {
            if !valid_client_name(&args[2]) {
                return Err(CmdError::err(BAD_CLIENT_NAME));
            }
            set_client_name(ctx, &args[2]);
            ctx.out.ok();
        }
        b"getname" => {
            let name = ctx.client.handle.name.lock().clone();
            ctx.out.bulk_opt(name.as_deref());
        }
        b"info" => {
            let mut line = String::new();
            let me = ctx.client.handle.clone();
            info_line(ctx, &me, &mut line);
            ctx.out.verbatim(line.as_bytes());
        }
        b"list" => list(ctx, args)?,
        b"kill" => kill(ctx, args)?,
        b"pause" => pause(ctx, args)?,
        b"unpause" => {
            ctx.shared.pause.stop();
            ctx.out.ok();
        }
        b"reply" => {
            if is(&args[2], "on") {
                ctx.client.reply = ReplyMode::On;
                ctx.out.ok();
            } else if is(&args[2], "off") {
                ctx.client.reply = ReplyMode::Off;
            } else if is(&args[2], "skip") {
                if ctx.client.reply == ReplyMode::On {
                    ctx.client.reply = ReplyMode::SkipNext;
                }
            } else {
                return Err(CmdError::Syntax);
            }
        }
        b"unblock" => unblock(ctx, args)?,
        b"no-evict" => {
            let on = on_off(&args[2])?;
            ctx.client.handle.set_flag(FLAG_NO_EVICT, on);
            ctx.out.ok();
        }
        b"trackinginfo" => {
            ctx.out.map(3);
            ctx.out.bulk(b"flags");
            ctx.out.set(1);
            ctx.out.bulk(b"off");
            ctx.out.bulk(b"redirect");
            ctx.out.int(-1);
            ctx.out.bulk(b"prefixes");
            ctx.out.array(0);
        }
        b"getredir" => ctx.out.int(-1),
        b"caching" => {
            return Err(CmdError::err(
                "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
            ))
        }
        b"tracking" => tracking(ctx, args)?,
        b"help" => help_reply(ctx, HELP),
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

fn on_off(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// CLIENT TRACKING: options are checked as Redis does, OFF is accepted;
/// ON is refused since client-side caching is not implemented.
fn tracking(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let on = on_off(&args[2])?;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if (is(a, "redirect") || is(a, "prefix")) && more {
            j += 1;
        } else if !(is(a, "bcast") || is(a, "optin") || is(a, "optout") || is(a, "noloop")) {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if on {
        return Err(CmdError::err("ERR client-side caching (CLIENT TRACKING ON) is not supported by this server"));
    }
    ctx.out.ok();
    Ok(())
}

// === CLIENT LIST / INFO ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    PubSub,
}

fn parse_type(arg: &[u8]) -> Result<ClientType, CmdError> {
    let t = arg.to_ascii_lowercase();
    Ok(match &t[..] {
        b"normal" => ClientType::Normal,
        b"replica" | b"slave" => ClientType::Replica,
        b"master" => ClientType::Master,
        b"pubsub" => ClientType::PubSub,
        _ => return Err(CmdError::err(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(arg)))),
    })
}

fn type_of(h: &ClientHandle) -> ClientType {
    if h.subscriptions.load(Ordering::Relaxed) + h.psubscriptions.load(Ordering::Relaxed) > 0 {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

/// Every connected client, oldest first (Redis lists them in connection
/// order).
fn all_clients(ctx: &Ctx<'_>) -> Vec<Arc<ClientHandle>> {
    let mut v: Vec<_> = ctx.shared.clients.lock().values().cloned().collect();
    v.sort_unstable_by_key(|h| h.id);
    v
}

/// The calling client's CLIENT INFO line, without its newline (ACL LOG).
pub fn own_info(ctx: &Ctx<'_>) -> String {
    let mut line = String::new();
    info_line(ctx, &ctx.client.handle, &mut line);
    line.pop();
    line
}

fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut want_type = None;
    let mut ids = None;
    if args.len() == 4 && is(&args[2], "type") {
        want_type = Some(parse_type(&args[3])?);
    } else if args.len() >= 4 && is(&args[2], "id") {
        let mut v = Vec::new();
        for a in &args[3..] {
            v.push(super::parse_i64(a).map_err(|_| CmdError::err("ERR Invalid client ID"))?);
        }
        ids = Some(v);
    } else if args.len() != 2 {
        return Err(CmdError::Syntax);
    }
    let mut text = String::new();
    for h in all_clients(ctx) {
        if want_type.is_some_and(|t| t != type_of(&h)) {
            continue;
        }
        if ids.as_ref().is_some_and(|ids| !ids.contains(&(h.id as i64))) {
            continue;
        }
        info_line(ctx, &h, &mut text);
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// One CLIENT LIST line, with Redis 7.0.15's fields in its order. The
/// calling client is described from its session state, others from their
/// shared handles.
fn info_line(ctx: &Ctx<'_>, h: &ClientHandle, out: &mut String) {
    let me = h.id == ctx.client.id();
    let now = ctx.now;
    let age = now.saturating_sub(h.created_ms) / 1000;
    let idle = if me { 0 } else { now.saturating_sub(h.last_interaction_ms.load(Ordering::Relaxed)) / 1000 };
    let (sub, psub) = (h.subscriptions.load(Ordering::Relaxed), h.psubscriptions.load(Ordering::Relaxed));
    let multi =
        if me { ctx.client.multi.as_ref().map_or(-1, |m| m.len() as i64) } else { h.multi_len.load(Ordering::Relaxed) };
    let mut fl = String::new();
    if h.has_flag(FLAG_MONITOR) {
        fl.push('O');
    }
    if sub + psub > 0 {
        fl.push('P');
    }
    if multi >= 0 {
        fl.push('x');
    }
    if ctx.store.is_blocked(h.id) {
        fl.push('b');
    }
    if ctx.store.is_dirty_cas(h.id) {
        fl.push('d');
    }
    if h.has_flag(FLAG_NO_EVICT) {
        fl.push('e');
    }
    if fl.is_empty() {
        fl.push('N');
    }
    let name = h.name.lock().as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
    let cmd = if me { ctx.client.last_cmd } else { *h.last_cmd.lock() };
    let omem = h.pending_out.load(Ordering::Relaxed);
    // What a connection holds besides its buffers: the session, its
    // decoder and the handle.
    const BASE: usize = 2048;
    const READ_BUF: usize = 16 * 1024;
    let tot = BASE + READ_BUF + omem;
    let _ = writeln!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} \
         qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r \
         cmd={} user=default redir=-1 resp={}",
        h.id,
        h.addr,
        h.laddr,
        h.fd.load(Ordering::Relaxed),
        name,
        age,
        idle,
        fl,
        if me { ctx.client.db } else { h.db.load(Ordering::Relaxed) },
        sub,
        psub,
        multi,
        READ_BUF,
        omem,
        tot,
        if cmd.is_empty() { "NULL" } else { cmd },
        h.resp.load(Ordering::Relaxed),
    );
}

// === CLIENT KILL ===

#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    ctype: Option<ClientType>,
    skipme: bool,
}

fn kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let me = ctx.client.id();
    if args.len() == 3 {
        // The old form: one address, an error when nobody has it.
        let victim = all_clients(ctx).into_iter().find(|h| h.addr.to_string().as_bytes() == &args[2][..]);
        let Some(h) = victim else { return Err(CmdError::err("ERR No such client")) };
        ctx.out.ok();
        if h.id == me {
            ctx.action = Some(Action::Close);
        } else {
            h.kill.cancel();
        }
        return Ok(());
    }
    let mut f = KillFilter { skipme: true, ..Default::default() };
    let mut j = 2;
    while j < args.len() {
        let Some(val) = args.get(j + 1) else { return Err(CmdError::Syntax) };
        let opt = &args[j];
        if is(opt, "id") {
            let id = super::parse_i64(val).ok().filter(|&n| n > 0);
            f.id = Some(id.ok_or_else(|| CmdError::err("ERR client-id should be greater than 0"))? as u64);
        } else if is(opt, "type") {
            f.ctype = Some(parse_type(val)?);
        } else if is(opt, "addr") {
            f.addr = Some(val.clone());
        } else if is(opt, "laddr") {
            f.laddr = Some(val.clone());
        } else if is(opt, "user") {
            if &val[..] != b"default" {
                return Err(CmdError::err(format!("ERR No such user '{}'", String::from_utf8_lossy(val))));
            }
        } else if is(opt, "skipme") {
            f.skipme = match on_yes_no(val) {
                Some(v) => v,
                None => return Err(CmdError::Syntax),
            };
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    let mut killed = 0;
    let mut close_me = false;
    for h in all_clients(ctx) {
        if f.id.is_some_and(|id| id != h.id)
            || f.ctype.is_some_and(|t| t != type_of(&h))
            || f.addr.as_ref().is_some_and(|a| h.addr.to_string().as_bytes() != &a[..])
            || f.laddr.as_ref().is_some_and(|a| h.laddr.to_string().as_bytes() != &a[..])
        {
            continue;
        }
        if h.id == me {
            if f.skipme {
                continue;
            }
            close_me = true;
        } else {
            h.kill.cancel();
        }
        killed += 1;
    }
    ctx.out.int(killed);
    if close_me {
        ctx.action = Some(Action::Close);
    }
    Ok(())
}

fn on_yes_no(arg: &[u8]) -> Option<bool> {
    if is(arg, "yes") {
        Some(true)
    } else if is(arg, "no") {
        Some(false)
    } else {
        None
    }
}

// === CLIENT UNBLOCK ===

fn unblock(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let id = super::parse_i64(&args[2])?;
    let error = match args.len() {
        3 => false,
        4 if is(&args[3], "timeout") => false,
        4 if is(&args[3], "error") => true,
        4 => return Err(CmdError::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
        _ => return Err(subcommand_syntax(args)),
    };
    let waiter = u64::try_from(id).ok().and_then(|id| ctx.store.unblock(id));
    let Some(w) = waiter else {
        ctx.out.int(0);
        return Ok(());
    };
    // The blocked session is waiting on this channel for its reply, which
    // is what it would get on timeout, or Redis's UNBLOCKED error.
    let reply = if error {
        bytes::BytesMut::from(&b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"[..])
    } else {
        crate::dispatch::timeout_reply(w.proto)
    };
    let _ = w.tx.send(reply);
    ctx.out.int(1);
    Ok(())
}

// === CLIENT PAUSE ===

/// CLIENT PAUSE state, shared by every session. Sessions check it before
/// running each command (an atomic load while nothing is paused) and wait
/// outside the keyspace lock.
#[derive(Default)]
pub struct Pause {
    active: AtomicBool,
    /// End of the pause and whether it holds every command (ALL) or only
    /// writes (WRITE).
    state: Mutex<Option<(Instant, bool)>>,
    resumed: tokio::sync::Notify,
}

impl Pause {
    /// A new pause extends the current one and can only make it stricter,
    /// as in Redis.
    pub fn start(&self, until: Instant, all: bool) {
        let mut st = self.state.lock();
        let (end, all) = match *st {
            Some((e, a)) if e > Instant::now() => (e.max(until), a || all),
            _ => (until, all),
        };
        *st = Some((end, all));
        self.active.store(true, Ordering::Release);
    }

    pub fn stop(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Release);
        self.resumed.notify_waiters();
    }

    /// Until when a request must wait, or `None` to run it now;
    /// `may_write` is asked only while a pause is on.
    pub fn holds_request(&self, may_write: impl FnOnce() -> bool) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        self.holds(may_write())
    }

    /// When a command of this kind must wait until, or `None` to run now.
    pub fn holds(&self, may_write: bool) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut st = self.state.lock();
        match *st {
            Some((end, all)) if end > Instant::now() => (all || may_write).then_some(end),
            _ => {
                *st = None;
                self.active.store(false, Ordering::Release);
                None
            }
        }
    }

    /// Sleeps until `until` or an UNPAUSE, whichever comes first.
    pub async fn wait(&self, until: Instant) {
        let resumed = self.resumed.notified();
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = resumed => {}
        }
    }
}

/// Whether a request is held by a WRITE pause: writes and the commands
/// Redis marks as possibly replicating (PUBLISH, scripts, PFCOUNT), and an
/// EXEC whose transaction holds one.
pub fn may_write(shared: &crate::server::Shared, args: &[Bytes], client: &crate::client::Client) -> bool {
    let spec = match shared.commands.find(args) {
        super::Lookup::Found(r) => r.spec,
        _ => return false,
    };
    if spec.has(flags::WRITE)
        || matches!(spec.name, "publish" | "spublish" | "eval" | "evalsha" | "fcall" | "pfcount" | "script|load")
    {
        return true;
    }
    spec.name == "exec" && client.multi.as_ref().is_some_and(|q| q.iter().any(|a| may_write(shared, a, client)))
}

fn pause(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ms = super::parse_i64(&args[2]).map_err(|_| CmdError::err("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("ERR timeout is negative"));
    }
    let all = match args.len() {
        3 => true,
        4 if is(&args[3], "all") => true,
        4 if is(&args[3], "write") => false,
        4 => return Err(CmdError::err("ERR CLIENT PAUSE mode must be WRITE or ALL")),
        _ => return Err(subcommand_syntax(args)),
    };
    let until = Instant::now() + Duration::from_millis(ms as u64);
    ctx.shared.pause.start(until, all);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn names_and_ids() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("CLIENT ID"), format!(":{}\r\n", t.client.id()));
        assert_eq!(t.cmd("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(t.cmd("CLIENT SETNAME app"), "+OK\r\n");
        assert_eq!(t.cmd("CLIENT GETNAME"), "$3\r\napp\r\n");
        assert_eq!(
            t.cmd_args(&["CLIENT".into(), "SETNAME".into(), "a b".into()]),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(t.cmd_args(&["CLIENT".into(), "SETNAME".into(), "".into()]), "+OK\r\n");
        assert_eq!(t.cmd("CLIENT GETNAME"), "$-1\r\n");
    }

    #[test]
    fn list_line_has_redis_fields_in_order() {
        let mut t = TestServer::new();
        t.cmd("CLIENT SETNAME me");
        t.cmd("SELECT 2");
        let r = t.cmd("CLIENT LIST");
        let body = r.split_once("\r\n").expect("bulk").1;
        let line = body.strip_suffix("\n\r\n").expect("one line");
        let keys: Vec<&str> = line.split(' ').map(|kv| kv.split_once('=').expect("k=v").0).collect();
        assert_eq!(
            keys,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp"
            ]
        );
        assert!(line.contains(" name=me "), "{line}");
        assert!(line.contains(" db=2 "), "{line}");
        assert!(line.contains(" flags=N "), "{line}");
        assert!(line.contains(" cmd=client|list "), "{line}");
        assert!(line.ends_with(" user=default redir=-1 resp=2"), "{line}");
        assert!(t.cmd("CLIENT INFO").contains("cmd=client|info"));
        assert_eq!(t.cmd("CLIENT LIST TYPE pubsub"), "$0\r\n\r\n");
        assert_eq!(t.cmd("CLIENT LIST TYPE x"), "-ERR Unknown client type 'x'\r\n");
        assert_eq!(t.cmd("CLIENT LIST ID x"), "-ERR Invalid client ID\r\n");
        assert_eq!(t.cmd("CLIENT LIST ID 9999"), "$0\r\n\r\n");
        assert!(t.cmd(&format!("CLIENT LIST ID {}", t.client.id())).contains("name=me"));
        t.cmd("HELLO 3");
        assert!(t.cmd("CLIENT INFO").starts_with("="));
    }

    #[test]
    fn kill_filters() {
        let mut t = TestServer::new();
        let addr: std::net::SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let other = t.shared.new_client(addr, addr);
        assert_eq!(t.cmd("CLIENT KILL 1.2.3.4:5"), "-ERR No such client\r\n");
        assert_eq!(t.cmd("CLIENT KILL ID 0"), "-ERR client-id should be greater than 0\r\n");
        assert_eq!(t.cmd("CLIENT KILL USER bob"), "-ERR No such user 'bob'\r\n");
        assert_eq!(t.cmd("CLIENT KILL SKIPME maybe"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("CLIENT KILL ID 1 ID"), "-ERR syntax error\r\n");
        assert_eq!(t.cmd("CLIENT KILL ADDR 127.0.0.1:5556"), ":0\r\n");
        assert!(!other.kill.is_cancelled());
        assert_eq!(t.cmd("CLIENT KILL ADDR 127.0.0.1:5555 TYPE normal"), ":1\r\n");
        assert!(other.kill.is_cancelled());
        // The caller's own address, skipped by default.
        assert_eq!(t.cmd("CLIENT KILL ADDR 127.0.0.1:1"), ":0\r\n");
        assert_eq!(t.cmd("CLIENT KILL ADDR 127.0.0.1:1 SKIPME no"), ":1\r\n");
    }

    #[test]
    fn reply_off_and_skip() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("CLIENT REPLY OFF"), "");
        assert_eq!(t.cmd("PING"), "");
        assert_eq!(t.cmd("CLIENT REPLY ON"), "+OK\r\n");
        assert_eq!(t.cmd("CLIENT REPLY SKIP"), "");
        assert_eq!(t.cmd("PING"), "");
        assert_eq!(t.cmd("PING"), "+PONG\r\n");
        assert_eq!(t.cmd("CLIENT REPLY MAYBE"), "-ERR syntax error\r\n");
    }

    #[test]
    fn pause_validation_and_state() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("CLIENT PAUSE x"), "-ERR timeout is not an integer or out of range\r\n");
        assert_eq!(t.cmd("CLIENT PAUSE -1"), "-ERR timeout is negative\r\n");
        assert_eq!(t.cmd("CLIENT PAUSE 10 FOO"), "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n");
        assert_eq!(
            t.cmd("client pause 10 all x"),
            "-ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.\r\n"
        );
        assert_eq!(t.cmd("CLIENT PAUSE 100000 WRITE"), "+OK\r\n");
        assert!(t.shared.pause.holds(true).is_some());
        assert!(t.shared.pause.holds(false).is_none());
        assert_eq!(t.cmd("CLIENT UNPAUSE"), "+OK\r\n");
        assert!(t.shared.pause.holds(true).is_none());
    }

    #[test]
    fn tracking_answers_as_off() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("CLIENT GETREDIR"), ":-1\r\n");
        assert_eq!(
            t.cmd("CLIENT TRACKINGINFO"),
            "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
        );
        assert_eq!(t.cmd("CLIENT TRACKING off"), "+OK\r\n");
        assert_eq!(t.cmd("CLIENT TRACKING x"), "-ERR syntax error\r\n");
        assert!(t.cmd("CLIENT TRACKING on").starts_with("-ERR client-side caching"));
        assert!(t.cmd("CLIENT CACHING yes").starts_with("-ERR CLIENT CACHING can be called only"));
        assert_eq!(t.cmd("CLIENT NO-EVICT on"), "+OK\r\n");
        assert!(t.cmd("CLIENT INFO").contains(" flags=e "));
        assert_eq!(t.cmd("CLIENT NO-EVICT maybe"), "-ERR syntax error\r\n");
    }

    #[test]
    fn unblock_answers_the_blocked_session() {
        let mut t = TestServer::new();
        let addr: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
        for (reason, want) in [("TIMEOUT", "*-1\r\n"), ("ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")]
        {
            let other = t.shared.new_client(addr, addr);
            let (tx, mut rx) = tokio::sync::oneshot::channel();
            t.shared.store.lock().block(crate::store::Waiter {
                client: other.id,
                db: 0,
                keys: vec![b"q"[..].into()],
                args: vec!["BLPOP".into(), "q".into(), "0".into()],
                proto: slotway_resp::Proto::Resp2,
                handle: other.clone(),
                tx,
            });
            assert!(t.cmd(&format!("CLIENT LIST ID {}", other.id)).contains(" flags=b "));
            assert_eq!(t.cmd(&format!("CLIENT UNBLOCK {} {reason}", other.id)), ":1\r\n");
            assert_eq!(&rx.try_recv().expect("reply sent")[..], want.as_bytes());
            assert!(!t.shared.store.lock().is_blocked(other.id));
            assert_eq!(t.cmd(&format!("CLIENT UNBLOCK {}", other.id)), ":0\r\n");
        }
    }

    #[test]
    fn unblock_without_waiter() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("CLIENT UNBLOCK 99"), ":0\r\n");
        assert_eq!(t.cmd("CLIENT UNBLOCK x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(t.cmd("CLIENT UNBLOCK 99 FOO"), "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n");
    }
}
