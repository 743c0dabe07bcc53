//! CLIENT LIST, CLIENT INFO and CLIENT KILL: describing and selecting
//! connections.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::super::{is, Action, Ctx};
use crate::client::{ClientHandle, FLAG_MONITOR, FLAG_NO_EVICT};
use crate::error::{CmdError, CmdResult};

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
    if h.has_flag(crate::client::FLAG_MASTER) {
        ClientType::Master
    } else if h.has_flag(crate::client::FLAG_REPLICA) {
        ClientType::Replica
    } else if h.subscriptions.load(Ordering::Relaxed) + h.psubscriptions.load(Ordering::Relaxed) > 0 {
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

pub(super) fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut want_type = None;
    let mut ids = None;
    if args.len() == 4 && is(&args[2], "type") {
        want_type = Some(parse_type(&args[3])?);
    } else if args.len() >= 4 && is(&args[2], "id") {
        let mut v = Vec::new();
        for a in &args[3..] {
            v.push(super::super::parse_i64(a).map_err(|_| CmdError::err("ERR Invalid client ID"))?);
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
pub(super) fn info_line(ctx: &Ctx<'_>, h: &ClientHandle, out: &mut String) {
    let me = h.id == ctx.client.id();
    let now = ctx.now;
    let age = now.saturating_sub(h.created_ms) / 1000;
    let idle = if me { 0 } else { now.saturating_sub(h.last_interaction_ms.load(Ordering::Relaxed)) / 1000 };
    let (sub, psub) = (h.subscriptions.load(Ordering::Relaxed), h.psubscriptions.load(Ordering::Relaxed));
    let multi =
        if me { ctx.client.multi.as_ref().map_or(-1, |m| m.len() as i64) } else { h.multi_len.load(Ordering::Relaxed) };
    let mut fl = String::new();
    if h.has_flag(crate::client::FLAG_REPLICA) {
        fl.push('S');
    }
    if h.has_flag(crate::client::FLAG_MASTER) {
        fl.push('M');
    }
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
    if ctx.store.is_dirty_cas(h.id, &[], ctx.now) {
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

pub(super) fn kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
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
            let id = super::super::parse_i64(val).ok().filter(|&n| n > 0);
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

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

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
}
