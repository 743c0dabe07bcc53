//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//! [AUTH password] [AUTH2 username password] [KEYS key ...].
//!
//! Three steps, all under the keyspace lock, as Redis's MIGRATE blocks its
//! server: the handler takes each key's DUMP payload and TTL ([`Plan`]);
//! [`transfer`] connects, sends AUTH, SELECT and one RESTORE (RESTORE-ASKING
//! in cluster mode) per key in one pipelined write, and reads the replies;
//! [`apply`] deletes the keys the target accepted (unless COPY). Holding
//! the lock throughout is what makes a migration lose nothing: a write to a
//! key between its DUMP and its deletion would otherwise be acknowledged
//! here and then deleted, while the target kept the older value. The wait
//! is bounded by the command's timeout.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::{is, parse_i64, Cmd, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::persist::rdb;
use crate::server::Shared;
use crate::store::Store;

pub const COMMANDS: &[Cmd] = &[Cmd { name: "migrate", run: migrate }];

/// What to send, taken under the lock.
#[derive(Debug)]
pub struct Plan {
    host: String,
    port: String,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    auth: Option<(Option<Bytes>, Bytes)>,
    /// Source database, and (key, relative TTL in ms or 0, payload).
    source_db: usize,
    keys: Vec<(Bytes, i64, Vec<u8>)>,
    /// RESTORE-ASKING from a cluster node: the target is importing the slot.
    restore: &'static [u8],
}

fn migrate(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut copy, mut replace) = (false, false);
    let mut auth = None;
    let mut keys: &[Bytes] = &args[3..4];
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if is(a, "copy") {
            copy = true;
        } else if is(a, "replace") {
            replace = true;
        } else if is(a, "auth") {
            if more == 0 {
                return Err(CmdError::Syntax);
            }
            j += 1;
            auth = Some((None, args[j].clone()));
        } else if is(a, "auth2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if is(a, "keys") {
            if !args[3].is_empty() {
                return Err(CmdError::err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = &args[j + 1..];
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = parse_i64(&args[5])?;
    let db = parse_i64(&args[4])?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let now = ctx.now;
    let source_db = ctx.client.db;
    let mut found = Vec::new();
    for k in keys {
        let d = ctx.db();
        if let Some(e) = d.get_read(k, now) {
            let at = e.expire();
            let payload = rdb::dump_payload(&e.value);
            let ttl = if at == 0 { 0 } else { (d.exact_expire(k, at).saturating_sub(now) as i64).max(1) };
            found.push((k.clone(), ttl, payload));
        }
    }
    if found.is_empty() {
        ctx.out.simple(b"NOKEY");
        return Ok(());
    }
    let plan = Plan {
        host: String::from_utf8_lossy(&args[1]).into_owned(),
        port: String::from_utf8_lossy(&args[2]).into_owned(),
        db,
        timeout,
        copy,
        replace,
        auth,
        source_db,
        keys: found,
        restore: if ctx.config.cluster_enabled { b"RESTORE-ASKING" } else { b"RESTORE" },
    };
    let outcome = transfer(&plan);
    let reply = apply(ctx.store, ctx.shared, &plan, outcome);
    ctx.out.raw(&reply);
    Ok(())
}

/// What the target said: per key whether it took it, or a whole-command
/// error reply.
type Outcome = Result<Vec<Result<(), String>>, String>;

fn transfer(plan: &Plan) -> Outcome {
    const CONNECT: &str = "-IOERR error or timeout connecting to the client\r\n";
    let addr = (plan.host.as_str(), plan.port.parse::<u16>().map_err(|_| CONNECT.to_string())?)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CONNECT.to_string())?;
    const WRITE: &str = "-IOERR error or timeout writing to target instance\r\n";
    // Redis connects without blocking and learns of a refused connection
    // only when it writes; only a connect that times out is "connecting".
    let mut sock = TcpStream::connect_timeout(&addr, plan.timeout)
        .map_err(|e| if e.kind() == std::io::ErrorKind::TimedOut { CONNECT } else { WRITE }.to_string())?;
    let _ = sock.set_read_timeout(Some(plan.timeout));
    let _ = sock.set_write_timeout(Some(plan.timeout));
    let _ = sock.set_nodelay(true);
    let mut buf = Vec::new();
    if let Some((user, pass)) = &plan.auth {
        let mut parts: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = user {
            parts.push(u);
        }
        parts.push(pass);
        encode(&mut buf, &parts);
    }
    encode(&mut buf, &[b"SELECT", plan.db.to_string().as_bytes()]);
    for (key, ttl, payload) in &plan.keys {
        let ttl = ttl.to_string();
        let mut parts: Vec<&[u8]> = vec![plan.restore, key, ttl.as_bytes(), payload];
        if plan.replace {
            parts.push(b"REPLACE");
        }
        encode(&mut buf, &parts);
    }
    sock.write_all(&buf).map_err(|_| WRITE.to_string())?;
    let mut r = BufReader::new(sock);
    let mut line = || -> Result<String, String> {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(n) if n > 0 && l.ends_with('\n') => Ok(l.trim_end().to_string()),
            _ => Err("-IOERR error or timeout reading to target instance\r\n".to_string()),
        }
    };
    let target_error = |l: &str| format!("-ERR Target instance replied with error: {}\r\n", &l[1..]);
    let preamble = usize::from(plan.auth.is_some()) + 1;
    for _ in 0..preamble {
        let l = line()?;
        if l.starts_with('-') {
            return Err(target_error(&l));
        }
    }
    let mut per_key = Vec::with_capacity(plan.keys.len());
    for _ in &plan.keys {
        let l = line()?;
        per_key.push(if l.starts_with('-') { Err(target_error(&l)) } else { Ok(()) });
    }
    Ok(per_key)
}

/// Deletes what the target took (unless COPY) and renders the reply. The
/// deletions propagate as DELs (MIGRATE itself never does: a replica or
/// the AOF must not move the keys again).
fn apply(store: &mut Store, shared: &Shared, plan: &Plan, outcome: Outcome) -> Vec<u8> {
    let per_key = match outcome {
        Ok(p) => p,
        Err(reply) => return reply.into_bytes(),
    };
    let mut first_error = None;
    let mut deleted = Vec::new();
    let now = crate::server::unix_ms();
    for ((key, _, _), res) in plan.keys.iter().zip(per_key) {
        match res {
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(()) if !plan.copy => {
                if let Some(db) = store.dbs.get_mut(plan.source_db) {
                    if db.delete(key, now).is_some() {
                        store.dirty += 1;
                        store.touch(plan.source_db, key);
                        deleted.push(crate::store::Blob::from(&key[..]));
                    }
                }
            }
            Ok(()) => {}
        }
    }
    if shared.propagator.is_active() && !deleted.is_empty() {
        crate::propagate::expired(shared, plan.source_db, &deleted);
    }
    first_error.unwrap_or_else(|| "+OK\r\n".into()).into_bytes()
}

fn encode(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        buf.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        buf.extend_from_slice(p);
        buf.extend_from_slice(b"\r\n");
    }
}
