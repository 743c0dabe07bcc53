//! Commands: the context a handler runs in, the registry that maps a name
//! to its handler, and helpers shared by every command family.
//!
//! A handler is a plain `fn(&mut Ctx, &[Bytes]) -> CmdResult`. It reads and
//! writes the keyspace through [`Ctx`], writes its reply into `ctx.out`, and
//! returns an error instead of writing one. Arity, authentication, MULTI
//! queueing and WATCH/blocking bookkeeping are done around it by
//! [`crate::dispatch`], so handlers only do their command's work. A handler
//! that modifies data calls [`Ctx::dirty`]; that is what makes WATCHers
//! abort, blocked clients wake and save rules count.

pub mod bitmap;
pub mod client;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod hash;
pub mod info;
pub mod keys;
pub mod list;
pub mod migrate;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod string;
pub mod transaction;
pub mod zset;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use hashbrown::HashMap;
use slotway_resp::ReplyBuf;
use slotway_slots::commands::CommandSpec;

use crate::client::Client;
use crate::config::Config;
use crate::error::{CmdError, CmdResult};
use crate::server::Shared;
use crate::store::{Blob, Db, Store};

pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// A command family's entry in the registry: a name from the shared command
/// table and the function that runs it.
pub struct Cmd {
    pub name: &'static str,
    pub run: Handler,
}

/// How the command is being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Straight from the client.
    Normal,
    /// Inside EXEC: blocking commands answer at once instead of blocking.
    Exec,
    /// Replayed for a blocked client because one of its keys got data.
    ServeBlocked,
}

/// What the session must do after the command's reply.
#[derive(Debug)]
pub enum Action {
    /// Park the client until one of `keys` is ready or the timeout passes.
    Block { keys: Vec<Blob>, timeout: Option<Duration> },
    /// Close the connection once the reply is written (QUIT, CLIENT KILL).
    Close,
    /// Stop the server (SHUTDOWN); the flag asks for a final save.
    Shutdown { save: Option<bool> },
    /// SHUTDOWN waiting for replicas (`crate::shutdown`): no reply unless
    /// the shutdown fails or is aborted.
    ShutdownWait(tokio::sync::watch::Receiver<u64>),
    /// The connection is a replica now (PSYNC, SYNC): the session hands
    /// its socket to the replica task.
    Replicate(Box<crate::replication::master::Handover>),
    /// WAIT: answer once `numreplicas` replicas acknowledged `offset`, or
    /// at the timeout, waiting outside the keyspace lock.
    WaitAcks { numreplicas: usize, offset: i64, timeout: Option<Duration> },
}

pub struct Ctx<'a> {
    pub store: &'a mut Store,
    pub shared: &'a Shared,
    /// The configuration snapshot for this batch of requests.
    pub config: &'a Config,
    pub client: &'a mut Client,
    pub out: &'a mut ReplyBuf,
    /// Unix time in milliseconds, fixed for the command.
    pub now: u64,
    pub mode: Mode,
    pub action: Option<Action>,
}

impl<'a> Ctx<'a> {
    /// A context for running requests: the session's, a replayed blocked
    /// command's, the AOF loader's, the replica's stream's.
    pub fn new(
        store: &'a mut Store,
        shared: &'a Shared,
        config: &'a Config,
        client: &'a mut Client,
        out: &'a mut ReplyBuf,
        now: u64,
        mode: Mode,
    ) -> Ctx<'a> {
        Ctx { store, shared, config, client, out, now, mode, action: None }
    }
}

/// A registered command (or subcommand): its table entry, its handler and
/// its counters (INFO commandstats).
pub struct Registered {
    pub spec: &'static CommandSpec,
    pub run: Handler,
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub failed: AtomicU64,
    pub rejected: AtomicU64,
}

impl Registered {
    fn new(spec: &'static CommandSpec, run: Handler) -> Self {
        Registered {
            spec,
            run,
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }
}

/// What a request names.
pub enum Lookup<'r> {
    Found(&'r Registered),
    /// Not a command this server runs.
    Unknown,
    /// A container command (CONFIG, CLIENT...) without its subcommand.
    MissingSubcommand(&'r Registered),
    /// A container command with a subcommand it does not have.
    UnknownSubcommand(&'r Registered),
}

/// Every command this server runs, by lowercase name; subcommands by
/// `parent|sub`, sharing their container's handler.
pub struct Registry {
    /// Keyed by the name clients type: the table name, or the new name a
    /// `rename-command` gave it (subcommands keep their `parent|sub` key).
    map: HashMap<Box<str>, Registered>,
}

impl Registry {
    pub fn new() -> Self {
        let families: &[&[Cmd]] = &[
            connection::COMMANDS,
            config::COMMANDS,
            info::COMMANDS,
            pubsub::COMMANDS,
            transaction::COMMANDS,
            server::COMMANDS,
            keys::COMMANDS,
            string::COMMANDS,
            bitmap::COMMANDS,
            hash::COMMANDS,
            list::COMMANDS,
            set::COMMANDS,
            zset::COMMANDS,
            scripting::COMMANDS,
            persistence::COMMANDS,
            migrate::COMMANDS,
            crate::aof::COMMANDS,
            replication::COMMANDS,
            cluster::COMMANDS,
        ];
        let mut map = HashMap::new();
        for cmd in families.iter().copied().flatten() {
            let spec = slotway_slots::commands::lookup(cmd.name.as_bytes())
                .unwrap_or_else(|| panic!("command '{}' missing from the command table", cmd.name));
            for sub in spec.subcommands {
                map.insert(sub.name.into(), Registered::new(sub, cmd.run));
            }
            assert!(
                map.insert(spec.name.into(), Registered::new(spec, cmd.run)).is_none(),
                "'{}' registered twice",
                cmd.name
            );
        }
        Registry { map }
    }

    /// Applies `rename-command old new` lines: the command answers to `new`
    /// only; an empty `new` disables it. Renaming a command this server does
    /// not run is harmless, as there is nothing to reach.
    pub fn rename(&mut self, renames: &[(String, String)]) {
        for (old, new) in renames {
            if let Some(reg) = self.map.remove(old.to_ascii_lowercase().as_str()) {
                if !new.is_empty() {
                    self.map.insert(new.to_ascii_lowercase().into(), reg);
                }
            }
        }
    }

    /// Finds the command of a request, resolving subcommands, without
    /// allocating.
    pub fn find(&self, args: &[Bytes]) -> Lookup<'_> {
        let Some(top) = self.get(&args[0]) else { return Lookup::Unknown };
        if top.spec.subcommands.is_empty() {
            return Lookup::Found(top);
        }
        let Some(sub) = args.get(1) else { return Lookup::MissingSubcommand(top) };
        match top.spec.subcommand(sub).and_then(|s| self.map.get(s.name)) {
            Some(r) => Lookup::Found(r),
            None => Lookup::UnknownSubcommand(top),
        }
    }

    /// A top-level command by name, case-insensitively.
    pub fn get(&self, name: &[u8]) -> Option<&Registered> {
        let mut buf = [0u8; 32];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.map.get(std::str::from_utf8(lower).ok()?)
    }

    /// A command or subcommand by its table name (`config|get`).
    pub fn by_name(&self, name: &str) -> Option<&Registered> {
        self.map.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Registered> {
        self.map.values()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Ctx<'_> {
    pub fn db(&mut self) -> &mut Db {
        &mut self.store.dbs[self.client.db]
    }

    /// Records `n` modifications (see the module doc).
    pub fn dirty(&mut self, n: u64) {
        self.store.dirty += n;
    }

    /// The selected database and the output buffer, borrowed apart so a
    /// handler can read a value and write it out at once.
    pub fn split(&mut self) -> (&mut Db, &mut ReplyBuf) {
        (&mut self.store.dbs[self.client.db], &mut *self.out)
    }

    /// For blocking commands with nothing to return yet: block the client
    /// on `keys` (the command is run again, in [`Mode::ServeBlocked`], each
    /// time one of them is touched), or, where blocking is not allowed
    /// (inside EXEC), reply a null array now as if the timeout had passed.
    /// A replayed command that calls this again keeps its place in line.
    pub fn block(&mut self, keys: &[Bytes], timeout: Option<Duration>) -> CmdResult {
        match self.mode {
            Mode::Exec => self.out.null_array(),
            Mode::Normal => {
                let keys = keys.iter().map(|k| Blob::from(&k[..])).collect();
                self.action = Some(Action::Block { keys, timeout });
            }
            // Already parked on its keys; only the fact that it still waits
            // matters to the caller.
            Mode::ServeBlocked => self.action = Some(Action::Block { keys: Vec::new(), timeout }),
        }
        Ok(())
    }
}

// === argument parsing helpers shared by the families ===

/// An integer argument, with Redis's error for anything else.
pub fn parse_i64(arg: &[u8]) -> Result<i64, CmdError> {
    slotway_resp::request::parse_int(arg).ok_or(CmdError::NotInteger)
}

/// A float argument as Redis's `getLongDoubleFromObject`/`strtod` accept it:
/// `inf`, `-inf`, `+inf`, exponents; never NaN.
pub fn parse_f64(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ if s.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => return None,
        _ => s.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// A BLPOP-style timeout in seconds (float), as an optional duration
/// (`None`: wait forever).
///
/// Redis reads the number as a C `long double` (so hex floats and
/// `infinity` parse), converts `ceil(secs * 1000)` to whole milliseconds,
/// and treats 0 as forever. A value whose milliseconds do not fit a
/// `long long` converts to its minimum on x86 and is reported as
/// negative, which is why `inf` is "timeout is negative".
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs = parse_long_double(arg).ok_or(CmdError::TimeoutNotFloat)?;
    // In a long double, -0.001 * 1000 comes out a hair above -1 and rounds
    // up to 0 (forever); in f64 it is exactly -1. It is the one input where
    // the precision changes the outcome rather than a millisecond.
    if secs == -0.001 {
        return Ok(None);
    }
    let ms = (secs * 1000.0).ceil();
    // `i64::MAX as f64` is 2^63, the first value a long long cannot hold;
    // `ms` is never NaN. -0.0 (from -0.0001) is not below zero: it means
    // forever, as in Redis.
    if ms >= i64::MAX as f64 || ms < 0.0 {
        return Err(CmdError::TimeoutNegative);
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// What `strtold` accepts for Redis's `getLongDoubleFromObject`: decimal
/// and hex floats, `inf`/`infinity`, no surrounding space, no NaN, and no
/// overflow or underflow of the `long double` range (about 1e±4932).
/// Magnitudes beyond `f64` but inside that range come back as infinity
/// or a signed smallest value, which is all a timeout needs.
fn parse_long_double(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let sign = if neg { -1.0 } else { 1.0 };
    if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        return parse_hex_float(&body[2..]).map(|v| sign * v);
    }
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == 'i' || c == 'I') {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let literal_inf = body.starts_with(['i', 'I']);
    let has_nonzero_digit =
        body.split(['e', 'E']).next().is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if (v.is_infinite() && !literal_inf) || (v == 0.0 && has_nonzero_digit) {
        // Outside f64: decide by the decimal exponent whether a long double
        // still holds it.
        if decimal_exponent(body)?.abs() > 4931 {
            return None;
        }
        return Some(if v == 0.0 { sign * f64::MIN_POSITIVE } else { sign * v });
    }
    Some(sign * v)
}

/// The power of ten of a decimal literal's leading digit (`1.5e3` -> 3).
fn decimal_exponent(body: &str) -> Option<i64> {
    let mut parts = body.splitn(2, ['e', 'E']);
    let mantissa = parts.next()?;
    let exp: i64 = parts.next().map_or(Some(0), |e| e.parse().ok())?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int = int.trim_start_matches('0');
    let lead = if !int.is_empty() {
        int.len() as i64 - 1
    } else {
        -(frac.bytes().take_while(|&b| b == b'0').count() as i64) - 1
    };
    Some(exp.saturating_add(lead))
}

/// The part of a C hex float after `0x`: hex digits, an optional fraction
/// and an optional binary exponent `p[+-]N`.
pub(crate) fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

/// Case-insensitive match of an option argument.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's glob matching (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), as
/// `stringmatchlen`. Used by KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    crate::glob::matches(pattern, s, nocase)
}

// === replies shared by the container commands ===

/// `NAME HELP`: Redis's layout around a container command's own `lines`
/// (each subcommand's syntax and an indented description).
pub fn help(ctx: &mut Ctx<'_>, name: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    let mut first = Vec::with_capacity(name.len() + 56);
    first.extend_from_slice(name.as_bytes());
    first.extend_from_slice(b" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    ctx.out.simple(&first);
    for l in lines {
        ctx.out.simple(l.as_bytes());
    }
    ctx.out.simple(b"HELP");
    ctx.out.simple(b"    Prints this help.");
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
