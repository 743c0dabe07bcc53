//! CLIENT: naming, listing and killing connections, pausing the server,
//! reply suppression and unblocking blocked clients.
//!
//! Client-side caching (CLIENT TRACKING ON) is not implemented: the
//! tracking subcommands answer as Redis does for a client with tracking off,
//! and TRACKING ON is refused with an explicit error.

use bytes::Bytes;

mod list;
mod pause;

pub use list::own_info;
pub use pause::{may_write, Pause, BY_FAILOVER, BY_SHUTDOWN};

use super::connection::{set_client_name, valid_client_name, BAD_CLIENT_NAME};
use super::{help, is, subcommand_syntax, Ctx};
use crate::client::{ReplyMode, FLAG_NO_EVICT};
use crate::error::{CmdError, CmdResult};

const HELP: &[&str] = &[
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
];

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
            list::info_line(ctx, &me, &mut line);
            ctx.out.verbatim(line.as_bytes());
        }
        b"list" => list::list(ctx, args)?,
        b"kill" => list::kill(ctx, args)?,
        b"pause" => pause::pause(ctx, args)?,
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
        b"help" => help(ctx, "CLIENT", HELP),
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
