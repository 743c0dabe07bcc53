//! ACL for the one user this server has, `default`, whose only possible
//! setting is `requirepass`. Creating, changing or deleting users is not
//! supported and says so.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

use super::super::{help, is, subcommand_syntax, Ctx};
use crate::error::{CmdError, CmdResult};

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

/// ACL CAT's order, which is not the order COMMAND prints categories in.
const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

pub fn acl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"whoami" => ctx.out.bulk(b"default"),
        b"users" => {
            ctx.out.array(1);
            ctx.out.bulk(b"default");
        }
        b"list" => {
            let rule = match ctx.config.requirepass.as_deref() {
                None => "user default on nopass ~* &* +@all".to_string(),
                Some(pw) => format!("user default on #{} ~* &* +@all", sha256_hex(pw)),
            };
            ctx.out.array(1);
            ctx.out.bulk(rule.as_bytes());
        }
        b"getuser" => getuser(ctx, args),
        b"cat" => cat(ctx, args)?,
        b"genpass" => {
            let bits = match args.get(2) {
                None => 256,
                Some(a) => {
                    let n = super::super::parse_i64(a)?;
                    if !(1..=4096).contains(&n) {
                        return Err(CmdError::err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
                    }
                    n as usize
                }
            };
            let hex: String = (0..bits.div_ceil(4)).map(|_| format!("{:x}", rand::random::<u8>() & 15)).collect();
            ctx.out.bulk(hex.as_bytes());
        }
        b"log" => match args.get(2) {
            Some(a) if is(a, "reset") => {
                ctx.shared.acl_log.entries.lock().clear();
                ctx.out.ok();
            }
            Some(a) => {
                let n = super::super::parse_i64(a)?;
                ctx.shared.acl_log.reply(ctx, usize::try_from(n).unwrap_or(0));
            }
            None => ctx.shared.acl_log.reply(ctx, 10),
        },
        b"dryrun" => {
            if &args[2][..] != b"default" {
                return Err(CmdError::err(format!("ERR User '{}' not found", String::from_utf8_lossy(&args[2]))));
            }
            let cmd = &args[3..];
            let Some(spec) = slotway_slots::commands::lookup_args(cmd) else {
                return Err(CmdError::err(format!("ERR Command '{}' not found", String::from_utf8_lossy(&cmd[0]))));
            };
            if !spec.arity_ok(cmd.len()) {
                return Err(CmdError::Arity(spec.name.to_string()));
            }
            ctx.out.ok();
        }
        b"load" | b"save" => return Err(CmdError::err(NO_ACL_FILE)),
        b"deluser" => {
            if args[2..].iter().any(|u| &u[..] == b"default") {
                return Err(CmdError::err("ERR The 'default' user cannot be removed"));
            }
            ctx.out.int(0);
        }
        b"setuser" => {
            return Err(CmdError::err(
                "ERR ACL SETUSER is not supported: this server has only the 'default' user, configured by requirepass",
            ))
        }
        b"help" => help(ctx, "ACL", HELP),
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

struct LogEntry {
    count: u64,
    object: &'static str,
    username: Bytes,
    at_ms: u64,
    client_info: String,
}

/// ACL LOG: failed authentications, newest first, at most 128 (Redis's
/// `acllog-max-len`). A failure like one of the last ten within a minute
/// counts on that entry instead of adding one, as in Redis. Only
/// authentication failures exist here: with one all-powerful user no
/// command or key is ever denied.
#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<LogEntry>>,
}

impl AclLog {
    const MAX: usize = 128;
    const GROUP_MS: u64 = 60_000;

    pub fn auth_failure(&self, ctx: &Ctx<'_>, object: &'static str, user: &[u8]) {
        let client_info = super::super::client::own_info(ctx);
        let now = ctx.now;
        let mut log = self.entries.lock();
        let similar = log
            .iter_mut()
            .take(10)
            .find(|e| e.object == object && &e.username[..] == user && now.saturating_sub(e.at_ms) < Self::GROUP_MS);
        if let Some(e) = similar {
            e.count += 1;
            e.at_ms = now;
            e.client_info = client_info;
            return;
        }
        log.push_front(LogEntry { count: 1, object, username: Bytes::copy_from_slice(user), at_ms: now, client_info });
        log.truncate(Self::MAX);
    }

    fn reply(&self, ctx: &mut Ctx<'_>, n: usize) {
        let log = self.entries.lock();
        let n = n.min(log.len());
        let out = &mut *ctx.out;
        out.array(n);
        for e in log.iter().take(n) {
            out.map(7);
            out.bulk(b"count");
            out.int(e.count as i64);
            out.bulk(b"reason");
            out.bulk(b"auth");
            out.bulk(b"context");
            out.bulk(b"toplevel");
            out.bulk(b"object");
            out.bulk(e.object.as_bytes());
            out.bulk(b"username");
            out.bulk(&e.username);
            out.bulk(b"age-seconds");
            out.double(ctx.now.saturating_sub(e.at_ms) as f64 / 1000.0);
            out.bulk(b"client-info");
            out.bulk(e.client_info.as_bytes());
        }
    }
}

fn getuser(ctx: &mut Ctx<'_>, args: &[Bytes]) {
    if &args[2][..] != b"default" {
        ctx.out.null();
        return;
    }
    let pass = ctx.config.requirepass.as_deref().map(sha256_hex);
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    out.set(if pass.is_some() { 1 } else { 2 });
    out.bulk(b"on");
    if pass.is_none() {
        out.bulk(b"nopass");
    }
    out.bulk(b"passwords");
    out.array(usize::from(pass.is_some()));
    if let Some(p) = &pass {
        out.bulk(p.as_bytes());
    }
    for (k, v) in [("commands", "+@all"), ("keys", "~*"), ("channels", "&*")] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"selectors");
    out.array(0);
}

fn cat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(name) = args.get(2) else {
        ctx.out.array(CATEGORIES.len());
        for c in CATEGORIES {
            ctx.out.bulk(c.as_bytes());
        }
        return Ok(());
    };
    let bit = slotway_slots::commands::ACL_NAMES
        .iter()
        .position(|n| is(name, n))
        .map(|i| 1u32 << i)
        .ok_or_else(|| CmdError::err(format!("ERR Unknown category '{}'", String::from_utf8_lossy(name))))?;
    let mut names = Vec::new();
    for c in slotway_slots::commands::all() {
        for s in std::iter::once(c).chain(c.subcommands.iter()) {
            if s.acl & bit != 0 {
                names.push(s.name);
            }
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// SHA-256 in lowercase hex: how ACL shows a password (FIPS 180-4).
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;
    use crate::config::Config;
    use crate::test_util::TestServer;

    #[test]
    fn sha256_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"pw"), "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
        assert_eq!(sha256_hex(&[b'a'; 100]).len(), 64);
    }

    #[test]
    fn default_user() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("ACL WHOAMI"), "$7\r\ndefault\r\n");
        assert_eq!(t.cmd("ACL LIST"), "*1\r\n$34\r\nuser default on nopass ~* &* +@all\r\n");
        assert_eq!(t.cmd("ACL GETUSER nobody"), "$-1\r\n");
        assert!(t.cmd("ACL GETUSER default").starts_with("*12\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$6\r\nnopass\r\n"));
        assert_eq!(t.cmd("ACL CAT nope"), "-ERR Unknown category 'nope'\r\n");
        assert!(t.cmd("ACL CAT").starts_with("*21\r\n$8\r\nkeyspace\r\n"));
        assert!(t.cmd("ACL CAT connection").contains("$5\r\nhello\r\n"));
        assert!(t.cmd("ACL SETUSER bob on").starts_with("-ERR ACL SETUSER is not supported"));
        assert!(t.cmd("ACL GENPASS 5").starts_with("$2\r\n"));
        assert!(t.cmd("ACL GENPASS").starts_with("$64\r\n"));
        assert_eq!(t.cmd("ACL DRYRUN default nosuch"), "-ERR Command 'nosuch' not found\r\n");
        assert_eq!(t.cmd("ACL LOG"), "*0\r\n");
        t.cmd("AUTH bob x");
        t.cmd("AUTH bob y");
        t.cmd("HELLO 2 AUTH eve z");
        let log = t.cmd("ACL LOG");
        assert!(log.starts_with("*2\r\n*14\r\n$5\r\ncount\r\n:1\r\n$6\r\nreason\r\n$4\r\nauth\r\n"), "{log}");
        assert!(log.contains("$6\r\nobject\r\n$5\r\nhello\r\n$8\r\nusername\r\n$3\r\neve\r\n"), "{log}");
        assert!(log.contains("$5\r\ncount\r\n:2\r\n"), "{log}");
        assert!(log.contains(" cmd=auth user=default redir=-1 resp=2\r\n"), "{log}");
        assert!(t.cmd("ACL LOG 1").starts_with("*1\r\n"));
        assert_eq!(t.cmd("ACL LOG RESET"), "+OK\r\n");
        assert_eq!(t.cmd("ACL LOG"), "*0\r\n");
        let mut p = TestServer::with_config(Config { requirepass: Some(b"pw".to_vec()), ..Config::default() });
        assert_eq!(
            p.cmd("ACL LIST"),
            "*1\r\n$93\r\nuser default on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~* &* +@all\r\n"
        );
    }
}
