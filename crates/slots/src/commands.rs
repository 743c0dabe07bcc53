//! The command table: every Redis 7.0 command with its arity, flags, ACL
//! categories, tips and key specs, and the key finder that reads them.
//!
//! The data lives in [`table`](crate::table) (generated from a real Redis);
//! this module gives it types and answers the two questions both programs
//! ask: "what is this command?" ([`lookup`], [`lookup_sub`]) and "which of
//! its arguments are keys?" ([`CommandSpec::keys`]). Key finding follows
//! Redis's key-spec rules, plus the few commands Redis itself finds keys
//! for by hand (SORT's STORE, MIGRATE's KEYS).

use std::collections::HashMap;
use std::sync::OnceLock;

pub use crate::table::{acl, flags, key_flags, ACL_NAMES, FLAG_NAMES, KEY_FLAG_NAMES};

/// The documentation group of a command (COMMAND DOCS `group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Bitmap,
    Cluster,
    Connection,
    Generic,
    Geo,
    Hash,
    Hyperloglog,
    List,
    Pubsub,
    Scripting,
    Server,
    Set,
    SortedSet,
    Stream,
    String,
    Transactions,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Bitmap => "bitmap",
            Group::Cluster => "cluster",
            Group::Connection => "connection",
            Group::Generic => "generic",
            Group::Geo => "geo",
            Group::Hash => "hash",
            Group::Hyperloglog => "hyperloglog",
            Group::List => "list",
            Group::Pubsub => "pubsub",
            Group::Scripting => "scripting",
            Group::Server => "server",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Stream => "stream",
            Group::String => "string",
            Group::Transactions => "transactions",
        }
    }
}

/// Where the search for a key spec's keys starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument index.
    Index(i32),
    /// After the first argument equal to `keyword` (case-insensitive),
    /// searching from `start_from` (negative: from the end, backwards).
    Keyword { keyword: &'static str, start_from: i32 },
    /// Only the command itself knows.
    Unknown,
}

/// How many keys follow the start of a key spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `last_key` (relative to the start; negative counts from
    /// the end), every `key_step` arguments; `limit` > 1 with a negative
    /// `last_key` takes only 1/limit of the remaining arguments.
    Range {
        last_key: i32,
        key_step: i32,
        limit: i32,
    },
    /// The argument at `key_num_idx` (relative to the start) says how many
    /// keys follow from `first_key`.
    KeyNum {
        key_num_idx: i32,
        first_key: i32,
        key_step: i32,
    },
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// [`key_flags`] bits.
    pub flags: u32,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// One command (or one subcommand, named `parent|sub`).
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Exact argument count including the name, or `-n` for "at least n".
    pub arity: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// The legacy (first, last, step) key range COMMAND INFO still prints.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// [`acl`] bits.
    pub acl: u32,
    /// Routing and behaviour hints (`request_policy:all_shards`, ...).
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub group: Group,
    pub since: &'static str,
    pub deprecated: bool,
    pub subcommands: &'static [CommandSpec],
}

/// Why a command's keys could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("Invalid arguments specified for command")]
    InvalidArguments,
}

fn index() -> &'static HashMap<&'static str, &'static CommandSpec> {
    static INDEX: OnceLock<HashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    INDEX.get_or_init(|| crate::table::TABLE.iter().map(|c| (c.name, c)).collect())
}

/// The command called `name`, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index().get(std::str::from_utf8(lower).ok()?).copied()
}

/// The command for a request: the subcommand's entry for container
/// commands (`CONFIG GET` is `config|get`), the command's otherwise.
/// `None` when the command is unknown; for an unknown subcommand, the
/// container itself.
pub fn lookup_args<A: AsRef<[u8]>>(args: &[A]) -> Option<&'static CommandSpec> {
    let cmd = lookup(args.first()?.as_ref())?;
    if cmd.subcommands.is_empty() {
        return Some(cmd);
    }
    Some(args.get(1).and_then(|sub| cmd.subcommand(sub.as_ref())).unwrap_or(cmd))
}

/// Every top-level command, sorted by name.
pub fn all() -> &'static [CommandSpec] {
    crate::table::TABLE
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= self.arity.unsigned_abs() as usize
        }
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn in_acl(&self, category: u32) -> bool {
        self.acl & category != 0
    }

    /// The subcommand `sub` of this container command.
    pub fn subcommand(&self, sub: &[u8]) -> Option<&'static CommandSpec> {
        let parent_len = self.name.len() + 1;
        self.subcommands.iter().find(|s| s.name.as_bytes()[parent_len..].eq_ignore_ascii_case(sub))
    }

    /// The name as users type it: `config get` for `config|get`.
    pub fn full_name(&self) -> String {
        self.name.replace('|', " ")
    }

    /// The flag names, in the order COMMAND prints them.
    pub fn flag_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        names(FLAG_NAMES, self.flags)
    }

    pub fn acl_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        names(ACL_NAMES, self.acl)
    }

    pub fn tip(&self, prefix: &str) -> Option<&'static str> {
        self.tips.iter().find_map(|t| t.strip_prefix(prefix))
    }

    /// Whether any key spec says the command writes its keys.
    pub fn is_write(&self) -> bool {
        self.has(flags::WRITE)
    }

    /// The indices of the key arguments of `args` (which include the
    /// command name), in argument order.
    pub fn keys<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Vec<usize>, KeysError> {
        self.keys_where(args, false)
    }

    /// The keys the command may modify (key specs flagged RW, OW or RM):
    /// BITOP's sources are read, only its destination is written.
    pub fn written_keys<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Vec<usize>, KeysError> {
        self.keys_where(args, true)
    }

    fn keys_where<A: AsRef<[u8]>>(&self, args: &[A], written_only: bool) -> Result<Vec<usize>, KeysError> {
        const WRITES: u32 = key_flags::RW | key_flags::OW | key_flags::RM;
        let mut out = Vec::new();
        match self.name {
            // Redis finds these by hand. SORT reads its key (index 1) and
            // writes only the STORE destination.
            "sort" | "sort_ro" => {
                sort_keys(args, self.name == "sort", &mut out);
                if written_only {
                    out.retain(|&i| i != 1);
                }
            }
            "migrate" => migrate_keys(args, &mut out),
            _ => {
                let mut specs = 0;
                for spec in self.key_specs.iter().filter(|s| !written_only || s.flags & WRITES != 0) {
                    spec_keys(spec, args, &mut out)?;
                    specs += 1;
                }
                if specs > 1 {
                    out.sort_unstable();
                    out.dedup();
                }
            }
        }
        Ok(out)
    }
}

fn names(table: &'static [&'static str], bits: u32) -> impl Iterator<Item = &'static str> {
    table.iter().enumerate().filter(move |(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n)
}

fn spec_keys<A: AsRef<[u8]>>(spec: &KeySpec, args: &[A], out: &mut Vec<usize>) -> Result<(), KeysError> {
    let argc = args.len() as i64;
    let first = match spec.begin {
        BeginSearch::Index(i) => i as i64,
        BeginSearch::Keyword { keyword, start_from } => {
            let found = if start_from > 0 {
                (start_from as i64..argc).find(|&i| args[i as usize].as_ref().eq_ignore_ascii_case(keyword.as_bytes()))
            } else {
                (1..=argc + start_from as i64)
                    .rev()
                    .find(|&i| args[i as usize].as_ref().eq_ignore_ascii_case(keyword.as_bytes()))
            };
            match found {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        }
        BeginSearch::Unknown => return Ok(()),
    };
    let (last, step) = match spec.find {
        FindKeys::Range { last_key, key_step, limit } => {
            let last = if last_key >= 0 {
                first + last_key as i64
            } else if limit <= 1 {
                argc + last_key as i64
            } else {
                first + (argc - first) / limit as i64 + last_key as i64
            };
            (last, key_step as i64)
        }
        FindKeys::KeyNum { key_num_idx, first_key, key_step } => {
            let at = first + key_num_idx as i64;
            let Some(arg) = args.get(at as usize) else { return Err(KeysError::InvalidArguments) };
            let numkeys = std::str::from_utf8(arg.as_ref())
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or(KeysError::InvalidArguments)?;
            let start = first + first_key as i64;
            let last = start + (numkeys - 1) * key_step as i64;
            if numkeys > 0 && last >= argc {
                return Err(KeysError::InvalidArguments);
            }
            return {
                out.extend((0..numkeys).map(|k| (start + k * key_step as i64) as usize));
                Ok(())
            };
        }
        FindKeys::Unknown => return Ok(()),
    };
    let mut i = first;
    while i <= last && i < argc && i >= 1 {
        out.push(i as usize);
        i += step.max(1);
    }
    Ok(())
}

/// SORT key [BY p] [LIMIT o c] [GET p]... [ASC|DESC] [ALPHA] [STORE dst]:
/// STORE can sit anywhere among the options, and the last one wins.
fn sort_keys<A: AsRef<[u8]>>(args: &[A], can_store: bool, out: &mut Vec<usize>) {
    if args.len() < 2 {
        return;
    }
    out.push(1);
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = args[i].as_ref();
        let skip = if a.eq_ignore_ascii_case(b"limit") {
            2
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            1
        } else if can_store && a.eq_ignore_ascii_case(b"store") {
            if i + 1 < args.len() {
                store = Some(i + 1);
            }
            1
        } else {
            0
        };
        i += skip + 1;
    }
    out.extend(store);
}

/// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw |
/// AUTH2 user pw] [KEYS key...]: with an empty key, the keys follow KEYS.
fn migrate_keys<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<usize>) {
    if args.len() < 6 {
        return;
    }
    if !args[3].as_ref().is_empty() {
        out.push(3);
        return;
    }
    let mut i = 6;
    while i < args.len() {
        let a = args[i].as_ref();
        if a.eq_ignore_ascii_case(b"auth") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"keys") {
            out.extend(i + 1..args.len());
            return;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(line: &str) -> Vec<String> {
        let args: Vec<&str> = line.split(' ').collect();
        let spec = lookup_args(&args).expect("known command");
        spec.keys(&args).expect("valid").into_iter().map(|i| args[i].to_string()).collect()
    }

    #[test]
    fn lookup_is_case_insensitive_and_knows_subcommands() {
        assert_eq!(lookup(b"GeT").map(|c| c.arity), Some(2));
        assert!(lookup(b"nosuchcommand").is_none());
        assert_eq!(lookup_args(&["config", "GET", "x"]).map(|c| c.name), Some("config|get"));
        assert_eq!(lookup_args(&["config", "nope"]).map(|c| c.name), Some("config"));
        assert!(all().len() >= 200);
    }

    #[test]
    fn key_positions() {
        assert_eq!(keys("get a"), ["a"]);
        assert_eq!(keys("mset a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("del a b c"), ["a", "b", "c"]);
        assert_eq!(keys("eval s 2 k1 k2 a1"), ["k1", "k2"]);
        assert_eq!(keys("eval s 0 a1"), Vec::<String>::new());
        assert_eq!(keys("zunionstore dst 2 a b WEIGHTS 1 2"), ["dst", "a", "b"]);
        assert_eq!(keys("xread COUNT 2 STREAMS s1 s2 0 0"), ["s1", "s2"]);
        assert_eq!(keys("sort k BY w_* LIMIT 0 1 STORE out"), ["k", "out"]);
        assert_eq!(keys("sort k GET store"), ["k"]);
        assert_eq!(keys("migrate h 1 k 0 10"), ["k"]);
        assert_eq!(keys("migrate h 1  0 10 REPLACE AUTH pw KEYS a b"), ["a", "b"]);
        assert_eq!(keys("lmove a b LEFT RIGHT"), ["a", "b"]);
        assert_eq!(keys("blmpop 0 2 a b LEFT"), ["a", "b"]);
        assert_eq!(keys("object encoding k"), ["k"]);
        assert_eq!(keys("ping"), Vec::<String>::new());
    }

    #[test]
    fn written_keys_leave_sources_out() {
        let written = |line: &str| {
            let args: Vec<&str> = line.split(' ').collect();
            let spec = lookup_args(&args).expect("known command");
            spec.written_keys(&args).expect("valid").into_iter().map(|i| args[i].to_string()).collect::<Vec<_>>()
        };
        assert_eq!(written("bitop and dst a b"), ["dst"]);
        assert_eq!(written("sinterstore dst a b"), ["dst"]);
        assert_eq!(written("lmove a b LEFT RIGHT"), ["a", "b"]);
        assert_eq!(written("sort k STORE out"), ["out"]);
        assert_eq!(written("set k v"), ["k"]);
        assert_eq!(written("get k"), Vec::<String>::new());
    }

    #[test]
    fn bad_numkeys_is_an_error() {
        let spec = lookup(b"eval").expect("eval");
        assert!(spec.keys(&["eval", "s", "5", "k"]).is_err());
        assert!(spec.keys(&["eval", "s", "x"]).is_err());
    }

    #[test]
    fn flags_print_in_command_order() {
        let set = lookup(b"set").expect("set");
        assert_eq!(set.flag_names().collect::<Vec<_>>(), ["write", "denyoom"]);
        assert!(lookup(b"auth").expect("auth").has(flags::NO_AUTH));
    }
}
