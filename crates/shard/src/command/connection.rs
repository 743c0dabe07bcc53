//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET.
//!
//! There is one user, `default`. Without `requirepass` it has no password
//! (any password authenticates it by name); with one, both `AUTH pw` and
//! `AUTH default pw` check it, as Redis's ACL default user does.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use slotway_resp::Proto;

use super::{is, Action, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};

pub const COMMANDS: &[Cmd] = &[
    Cmd { name: "ping", run: ping },
    Cmd { name: "echo", run: echo },
    Cmd { name: "quit", run: quit },
    Cmd { name: "select", run: select },
    Cmd { name: "auth", run: auth },
    Cmd { name: "hello", run: hello },
    Cmd { name: "reset", run: reset },
    Cmd { name: "client", run: super::client::client },
];

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

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
    if ctx.config.cluster_enabled && idx != 0 {
        return Err(CmdError::err("ERR SELECT is not allowed in cluster mode"));
    }
    if idx < 0 || idx as usize >= ctx.store.dbs.len() {
        return Err(CmdError::DbIndex);
    }
    ctx.client.db = idx as usize;
    ctx.client.handle.db.store(idx as usize, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

/// Compares without an early exit, so the time taken does not tell how
/// much of a guessed password was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `user`/`pass` log in as the default user.
fn check_user(ctx: &Ctx<'_>, user: &[u8], pass: &[u8]) -> bool {
    user == b"default" && ctx.config.requirepass.as_deref().is_none_or(|pw| same_secret(pw, pass))
}

fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ok = match args.len() {
        2 => match ctx.config.requirepass.as_deref() {
            None => {
                return Err(CmdError::err(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ))
            }
            Some(pw) => same_secret(pw, &args[1]),
        },
        3 => check_user(ctx, &args[1], &args[2]),
        _ => return Err(CmdError::Syntax),
    };
    if !ok {
        let user = if args.len() == 3 { &args[1][..] } else { b"default" };
        ctx.shared.acl_log.auth_failure(ctx, "auth", user);
        return Err(CmdError::err(WRONGPASS));
    }
    ctx.client.authenticated = true;
    ctx.out.ok();
    Ok(())
}

/// Redis accepts printable ASCII without spaces in client names.
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

pub const BAD_CLIENT_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// Sets (or, with an empty name, clears) the connection's name.
pub fn set_client_name(ctx: &mut Ctx<'_>, name: &Bytes) {
    *ctx.client.handle.name.lock() = (!name.is_empty()).then(|| name.clone());
}

fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut proto = None;
    if let Some(ver) = args.get(1) {
        let v = super::parse_i64(ver)
            .map_err(|_| CmdError::err("ERR Protocol version is not an integer or out of range"))?;
        proto = Some(match v {
            2 => Proto::Resp2,
            3 => Proto::Resp3,
            _ => return Err(CmdError::err("NOPROTO unsupported protocol version")),
        });
    }
    // Options act in order, as Redis does: a bad password stops before a
    // later syntax error is seen, and a bad name before a later AUTH.
    let mut name = None;
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "auth") && more >= 2 {
            if !check_user(ctx, &args[j + 1], &args[j + 2]) {
                ctx.shared.acl_log.auth_failure(ctx, "hello", &args[j + 1]);
                return Err(CmdError::err(WRONGPASS));
            }
            ctx.client.authenticated = true;
            j += 3;
        } else if is(&args[j], "setname") && more >= 1 {
            if !valid_client_name(&args[j + 1]) {
                return Err(CmdError::err(BAD_CLIENT_NAME));
            }
            name = Some(args[j + 1].clone());
            j += 2;
        } else {
            return Err(CmdError::err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[j])
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        set_client_name(ctx, &name);
    }
    if let Some(p) = proto {
        ctx.client.proto = p;
        ctx.out.proto = p;
        ctx.client.handle.resp.store(if p == Proto::Resp3 { 3 } else { 2 }, Ordering::Relaxed);
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::command::server::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.client.proto == Proto::Resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// RESET: the connection as it was right after connecting (keeping its
/// authentication only when no password is required).
fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let id = ctx.client.id();
    super::transaction::discard_transaction(ctx);
    super::pubsub::unsubscribe_all(ctx);
    ctx.client.db = 0;
    ctx.client.handle.db.store(0, Ordering::Relaxed);
    ctx.client.proto = Proto::Resp2;
    ctx.out.proto = Proto::Resp2;
    ctx.client.handle.resp.store(2, Ordering::Relaxed);
    *ctx.client.handle.name.lock() = None;
    ctx.client.reply = crate::client::ReplyMode::On;
    ctx.client.handle.set_flag(crate::client::FLAG_NO_EVICT, false);
    if ctx.client.monitor_rx.take().is_some() {
        ctx.shared.monitors.remove(id);
        ctx.client.handle.set_flag(crate::client::FLAG_MONITOR, false);
    }
    ctx.client.authenticated = ctx.config.requirepass.is_none();
    ctx.client.readonly = false;
    ctx.client.asking = false;
    ctx.out.simple(b"RESET");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::test_util::TestServer;

    fn with_pass() -> TestServer {
        let mut t = TestServer::with_config(Config { requirepass: Some(b"pw".to_vec()), ..Config::default() });
        t.client.authenticated = false;
        t
    }

    #[test]
    fn auth_without_password() {
        let mut t = TestServer::new();
        assert!(t.cmd("AUTH x").starts_with("-ERR AUTH <password> called without any password configured"));
        assert_eq!(t.cmd("AUTH default anything"), "+OK\r\n");
        assert_eq!(t.cmd("AUTH bob x"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        assert_eq!(t.cmd("AUTH a b c"), "-ERR syntax error\r\n");
    }

    #[test]
    fn auth_with_requirepass() {
        let mut t = with_pass();
        assert_eq!(t.cmd("GET a"), "-NOAUTH Authentication required.\r\n");
        assert!(t.cmd("HELLO 3").starts_with("-NOAUTH HELLO must be called"));
        assert_eq!(t.cmd("AUTH nope"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        assert_eq!(t.cmd("AUTH default nope"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        assert_eq!(t.cmd("AUTH pw"), "+OK\r\n");
        assert_eq!(t.cmd("GET a"), "$-1\r\n");
        assert_eq!(t.cmd("RESET"), "+RESET\r\n");
        assert_eq!(t.cmd("GET a"), "-NOAUTH Authentication required.\r\n");
        assert!(t.cmd("HELLO 3 AUTH default pw").starts_with("%7\r\n"));
        assert_eq!(t.cmd("GET a"), "_\r\n");
    }

    #[test]
    fn hello_switches_protocol() {
        let mut t = TestServer::new();
        let id = t.client.id();
        let r2 = t.cmd("HELLO");
        assert!(r2.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"), "{r2}");
        assert!(r2.contains(&format!("$2\r\nid\r\n:{id}\r\n")));
        assert!(
            r2.ends_with("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n")
        );
        assert!(t.cmd("HELLO 3").starts_with("%7\r\n"));
        assert_eq!(t.cmd("GET nokey"), "_\r\n");
        assert_eq!(t.cmd("HELLO 4"), "-NOPROTO unsupported protocol version\r\n");
        assert_eq!(t.cmd("HELLO x"), "-ERR Protocol version is not an integer or out of range\r\n");
        assert_eq!(t.cmd("HELLO 3 FOO"), "-ERR Syntax error in HELLO option 'FOO'\r\n");
        assert_eq!(
            t.cmd("HELLO 3 AUTH bob x FOO"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert!(t.cmd("HELLO 2 SETNAME nm").starts_with("*14\r\n"));
        assert_eq!(t.cmd("CLIENT GETNAME"), "$2\r\nnm\r\n");
        assert_eq!(t.cmd("RESET"), "+RESET\r\n");
        assert_eq!(t.cmd("CLIENT GETNAME"), "$-1\r\n");
    }

    #[test]
    fn reset_leaves_multi_and_db() {
        let mut t = TestServer::new();
        t.cmd("SELECT 3");
        t.client.multi = Some(Vec::new());
        assert_eq!(t.cmd("RESET"), "+RESET\r\n");
        assert_eq!(t.client.db, 0);
        assert!(t.client.multi.is_none());
    }
}
