//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//! [AUTH password] [AUTH2 username password] [KEYS key ...].
//!
//! Three steps, all under the keyspace lock, as Redis's MIGRATE blocks its
//! server: the handler takes each key's DUMP payload and TTL ([`Plan`]);
//! [`transfer`] sends AUTH, SELECT (when the target's connection has
//! another database selected) and one RESTORE (RESTORE-ASKING in cluster
//! mode) per key in one pipelined write over a cached connection
//! ([`Connections`]), and reads the replies;
//! [`apply`] deletes the keys the target accepted (unless COPY). Holding
//! the lock throughout is what makes a migration lose nothing: a write to a
//! key between its DUMP and its deletion would otherwise be acknowledged
//! here and then deleted, while the target kept the older value. The wait
//! is bounded by the command's timeout.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

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
    let outcome = transfer(ctx.shared, &plan);
    let reply = apply(ctx.store, ctx.shared, &plan, outcome);
    ctx.out.raw(&reply);
    Ok(())
}

/// What the target said: per key whether it took it, or a whole-command
/// error reply.
type Outcome = Result<Vec<Result<(), String>>, String>;

/// Connections to MIGRATE targets, kept open between calls as Redis does
/// (a reshard sends thousands of MIGRATEs to one node), each remembering
/// the database it has selected.
#[derive(Default)]
pub struct Connections(parking_lot::Mutex<HashMap<String, Cached>>);

struct Cached {
    sock: TcpStream,
    db: i64,
    used: Instant,
}

/// At most this many cached targets; idle ones close after [`IDLE`].
const MAX_CACHED: usize = 64;
const IDLE: Duration = Duration::from_secs(10);

const CONNECT: &str = "-IOERR error or timeout connecting to the client\r\n";
const WRITE: &str = "-IOERR error or timeout writing to target instance\r\n";
const READ: &str = "-IOERR error or timeout reading to target instance\r\n";

impl Connections {
    fn take(&self, target: &str) -> Option<Cached> {
        let mut map = self.0.lock();
        map.retain(|_, c| c.used.elapsed() < IDLE);
        map.remove(target)
    }

    fn put(&self, target: String, c: Cached) {
        let mut map = self.0.lock();
        if map.len() >= MAX_CACHED {
            if let Some(oldest) = map.iter().min_by_key(|(_, c)| c.used).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(target, c);
    }
}

fn connect(plan: &Plan) -> Result<Cached, String> {
    let addr = (plan.host.as_str(), plan.port.parse::<u16>().map_err(|_| CONNECT.to_string())?)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CONNECT.to_string())?;
    // Redis connects without blocking and learns of a refused connection
    // only when it writes; only a connect that times out is "connecting".
    let sock = TcpStream::connect_timeout(&addr, plan.timeout)
        .map_err(|e| if e.kind() == std::io::ErrorKind::TimedOut { CONNECT } else { WRITE }.to_string())?;
    let _ = sock.set_nodelay(true);
    Ok(Cached { sock, db: -1, used: Instant::now() })
}

/// Sends the plan over a cached connection (or a new one), retrying once
/// on a fresh connection when a cached one turns out to be dead.
fn transfer(shared: &Shared, plan: &Plan) -> Outcome {
    let target = format!("{}:{}", plan.host, plan.port);
    if let Some(conn) = shared.migrate_conns.take(&target) {
        match exchange(plan, conn) {
            Ok((outcome, conn)) => {
                shared.migrate_conns.put(target, conn);
                return Ok(outcome);
            }
            Err(Retry::Socket(_)) => {}
            Err(Retry::Final(e)) => return Err(e),
        }
    }
    match exchange(plan, connect(plan)?) {
        Ok((outcome, conn)) => {
            shared.migrate_conns.put(target, conn);
            Ok(outcome)
        }
        Err(Retry::Socket(e) | Retry::Final(e)) => Err(e),
    }
}

enum Retry {
    /// The connection failed: another one may do better.
    Socket(String),
    /// The target answered with an error.
    Final(String),
}

fn exchange(plan: &Plan, mut conn: Cached) -> Result<(Vec<Result<(), String>>, Cached), Retry> {
    let sock = &mut conn.sock;
    let _ = sock.set_read_timeout(Some(plan.timeout));
    let _ = sock.set_write_timeout(Some(plan.timeout));
    let mut buf = Vec::new();
    if let Some((user, pass)) = &plan.auth {
        let mut parts: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = user {
            parts.push(u);
        }
        parts.push(pass);
        encode(&mut buf, &parts);
    }
    let select = conn.db != plan.db;
    if select {
        encode(&mut buf, &[b"SELECT", plan.db.to_string().as_bytes()]);
    }
    for (key, ttl, payload) in &plan.keys {
        let ttl = ttl.to_string();
        let mut parts: Vec<&[u8]> = vec![plan.restore, key, ttl.as_bytes(), payload];
        if plan.replace {
            parts.push(b"REPLACE");
        }
        encode(&mut buf, &parts);
    }
    sock.write_all(&buf).map_err(|_| Retry::Socket(WRITE.to_string()))?;
    let mut r = BufReader::new(&*sock);
    let mut line = || -> Result<String, Retry> {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(n) if n > 0 && l.ends_with('\n') => Ok(l.trim_end().to_string()),
            _ => Err(Retry::Socket(READ.to_string())),
        }
    };
    let target_error = |l: &str| format!("-ERR Target instance replied with error: {}\r\n", &l[1..]);
    let preamble = usize::from(plan.auth.is_some()) + usize::from(select);
    for _ in 0..preamble {
        let l = line()?;
        if l.starts_with('-') {
            return Err(Retry::Final(target_error(&l)));
        }
    }
    let mut per_key = Vec::with_capacity(plan.keys.len());
    for _ in &plan.keys {
        let l = line()?;
        per_key.push(if l.starts_with('-') { Err(target_error(&l)) } else { Ok(()) });
    }
    conn.db = plan.db;
    conn.used = Instant::now();
    Ok((per_key, conn))
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
