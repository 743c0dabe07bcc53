//! COMMAND: the command table as Redis 7.0 describes itself, built from
//! `slotway_slots::commands`.
//!
//! COMMAND INFO's layout is Redis's exactly: name, arity, flags, first key,
//! last key, step, ACL categories, tips, key specs, subcommands. COMMAND
//! DOCS answers from Redis's own documentation ([`super::docs`]), falling
//! back to what the table knows (`since`, `group`) for a command it lacks.

use bytes::Bytes;
use slotway_resp::ReplyBuf;
use slotway_slots::commands::{self as table, BeginSearch, CommandSpec, FindKeys, KeySpec};

use super::super::{glob_match, help, is, Ctx};
use super::int_fields;
use crate::error::{CmdError, CmdResult};

const HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() == 1 {
        let all = table::all();
        ctx.out.array(all.len());
        for c in all {
            write_info(ctx.out, c);
        }
        return Ok(());
    }
    let sub = args[1].to_ascii_lowercase();
    match &sub[..] {
        b"count" => ctx.out.int(table::all().len() as i64),
        b"info" => {
            if args.len() == 2 {
                let all = table::all();
                ctx.out.array(all.len());
                for c in all {
                    write_info(ctx.out, c);
                }
            } else {
                ctx.out.array(args.len() - 2);
                for name in &args[2..] {
                    match find(name) {
                        Some(c) => write_info(ctx.out, c),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        b"docs" => {
            let found: Vec<&CommandSpec> = if args.len() == 2 {
                table::all().iter().collect()
            } else {
                args[2..].iter().filter_map(|n| find(n)).collect()
            };
            ctx.out.map(found.len());
            for c in found {
                ctx.out.bulk(c.name.as_bytes());
                match super::docs::lookup(c.name) {
                    Some(d) => d.write(ctx.out),
                    None => write_docs(ctx.out, c),
                }
            }
        }
        b"getkeys" | b"getkeysandflags" => getkeys(ctx, &args[2..], sub.len() > 7)?,
        b"list" => list(ctx, args)?,
        b"help" => help(ctx, "COMMAND", HELP),
        _ => return Err(super::super::subcommand_syntax(args)),
    }
    Ok(())
}

/// A command by name, or a subcommand as `parent|sub`.
fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        None => table::lookup(name),
        Some(bar) => table::lookup(&name[..bar])?.subcommand(&name[bar + 1..]),
    }
}

fn write_info(out: &mut ReplyBuf, c: &CommandSpec) {
    out.array(10);
    out.bulk(c.name.as_bytes());
    out.int(c.arity as i64);
    let flags: Vec<&str> = c.flag_names().collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f.as_bytes());
    }
    out.int(c.first_key as i64);
    out.int(c.last_key as i64);
    out.int(c.step as i64);
    let cats: Vec<&str> = c.acl_names().collect();
    out.set(cats.len());
    for cat in cats {
        out.simple(format!("@{cat}").as_bytes());
    }
    out.set(c.tips.len());
    for t in c.tips {
        out.bulk(t.as_bytes());
    }
    out.set(c.key_specs.len());
    // Redis also prints a `notes` string on a dozen key specs; that is its
    // prose, so it is left out here.
    for ks in c.key_specs {
        write_key_spec(out, ks);
    }
    out.set(c.subcommands.len());
    for s in c.subcommands {
        write_info(out, s);
    }
}

fn key_flag_names(bits: u32) -> Vec<&'static str> {
    table::KEY_FLAG_NAMES.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n).collect()
}

fn write_key_flags(out: &mut ReplyBuf, bits: u32) {
    let names = key_flag_names(bits);
    out.set(names.len());
    for n in names {
        out.simple(n.as_bytes());
    }
}

fn write_key_spec(out: &mut ReplyBuf, ks: &KeySpec) {
    out.map(3);
    out.bulk(b"flags");
    write_key_flags(out, ks.flags);
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    match ks.begin {
        BeginSearch::Index(i) => write_spec(out, b"index", &[("index", i as i64)]),
        BeginSearch::Keyword { keyword, start_from } => {
            out.bulk(b"keyword");
            out.bulk(b"spec");
            out.map(2);
            out.bulk(b"keyword");
            out.bulk(keyword.as_bytes());
            out.bulk(b"startfrom");
            out.int(start_from as i64);
        }
        BeginSearch::Unknown => write_spec(out, b"unknown", &[]),
    }
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    match ks.find {
        FindKeys::Range { last_key, key_step, limit } => write_spec(
            out,
            b"range",
            &[("lastkey", last_key as i64), ("keystep", key_step as i64), ("limit", limit as i64)],
        ),
        FindKeys::KeyNum { key_num_idx, first_key, key_step } => write_spec(
            out,
            b"keynum",
            &[("keynumidx", key_num_idx as i64), ("firstkey", first_key as i64), ("keystep", key_step as i64)],
        ),
        FindKeys::Unknown => write_spec(out, b"unknown", &[]),
    }
}

/// A key spec step's type name and its `spec` map of integer fields.
fn write_spec(out: &mut ReplyBuf, kind: &[u8], fields: &[(&str, i64)]) {
    out.bulk(kind);
    out.bulk(b"spec");
    out.map(fields.len());
    int_fields(out, fields);
}

fn write_docs(out: &mut ReplyBuf, c: &CommandSpec) {
    let fields = 2 + usize::from(c.deprecated) + usize::from(!c.subcommands.is_empty());
    out.map(fields);
    out.bulk(b"since");
    out.bulk(c.since.as_bytes());
    out.bulk(b"group");
    out.bulk(c.group.name().as_bytes());
    if c.deprecated {
        out.bulk(b"doc_flags");
        out.set(1);
        out.simple(b"deprecated");
    }
    if !c.subcommands.is_empty() {
        out.bulk(b"subcommands");
        out.map(c.subcommands.len());
        for s in c.subcommands {
            out.bulk(s.name.as_bytes());
            write_docs(out, s);
        }
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS `cmd` (the command and its arguments).
fn getkeys(ctx: &mut Ctx<'_>, cmd: &[Bytes], with_flags: bool) -> CmdResult {
    let spec = table::lookup_args(cmd)
        .filter(|s| s.subcommands.is_empty())
        .ok_or_else(|| CmdError::err("ERR Invalid command specified"))?;
    let has_keys =
        spec.has(table::flags::MOVABLEKEYS) || spec.key_specs.iter().any(|k| k.flags & table::key_flags::NOT_KEY == 0);
    if !has_keys {
        return Err(CmdError::err("ERR The command has no key arguments"));
    }
    if !spec.arity_ok(cmd.len()) {
        return Err(CmdError::err("ERR Invalid number of arguments specified for command"));
    }
    let mut keys = key_flags(spec, cmd);
    for (_, fl) in keys.iter_mut() {
        if *fl & table::key_flags::VARIABLE_FLAGS != 0 {
            *fl = actual_flags(spec.name, cmd, *fl);
        }
    }
    ctx.out.array(keys.len());
    for (i, fl) in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(&cmd[i]);
            write_key_flags(ctx.out, fl);
        } else {
            ctx.out.bulk(&cmd[i]);
        }
    }
    Ok(())
}

/// Each key argument with the flags of the key spec that found it; an
/// argument list the specs cannot read gives no keys, as in Redis.
fn key_flags(spec: &'static CommandSpec, cmd: &[Bytes]) -> Vec<(usize, u32)> {
    let all = spec.keys(cmd).unwrap_or_default();
    let flags_of = |n: usize| spec.key_specs.get(n).map_or(0, |k| k.flags);
    match spec.name {
        // The keys these find by hand: the first, then STORE / KEYS.
        "sort" | "sort_ro" | "migrate" => {
            let second = if spec.name == "migrate" { 1 } else { 2 };
            all.iter()
                .enumerate()
                .map(|(n, &i)| {
                    (i, if n == 0 && (spec.name != "migrate" || i == 3) { flags_of(0) } else { flags_of(second) })
                })
                .collect()
        }
        _ => {
            let mut out = Vec::with_capacity(all.len());
            for ks in spec.key_specs {
                let one = CommandSpec { key_specs: std::slice::from_ref(ks), subcommands: &[], ..*spec };
                for i in one.keys(cmd).unwrap_or_default() {
                    if !out.iter().any(|(k, _)| *k == i) {
                        out.push((i, ks.flags));
                    }
                }
            }
            if spec.key_specs.len() > 1 {
                out.sort_unstable_by_key(|(i, _)| *i);
            }
            out
        }
    }
}

/// The flags a `variable_flags` key spec has for these arguments: SET
/// reads its key only with GET, BITFIELD writes only with SET or INCRBY.
fn actual_flags(name: &str, cmd: &[Bytes], declared: u32) -> u32 {
    use table::key_flags::{ACCESS, OW, RO, RW, UPDATE};
    match name {
        "set" if cmd.iter().skip(3).any(|a| is(a, "get")) => RW | ACCESS | UPDATE,
        "set" => OW | UPDATE,
        "bitfield" if cmd.iter().skip(2).any(|a| is(a, "set") || is(a, "incrby")) => RW | ACCESS | UPDATE,
        "bitfield" => RO | ACCESS,
        _ => declared,
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT cat | PATTERN glob].
fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    enum Filter<'a> {
        All,
        Module,
        Acl(Option<u32>),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if is(&args[2], "filterby") => {
            if is(&args[3], "module") {
                Filter::Module
            } else if is(&args[3], "aclcat") {
                let cat = table::ACL_NAMES.iter().position(|n| is(&args[4], n)).map(|i| 1u32 << i);
                Filter::Acl(cat)
            } else if is(&args[3], "pattern") {
                Filter::Pattern(&args[4])
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let mut names = Vec::new();
    for c in table::all() {
        for s in std::iter::once(c).chain(c.subcommands.iter()) {
            let keep = match filter {
                Filter::All => true,
                Filter::Module => false,
                Filter::Acl(cat) => cat.is_some_and(|bit| s.acl & bit != 0),
                Filter::Pattern(p) => glob_match(p, s.name.as_bytes(), true),
            };
            if keep {
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

#[cfg(test)]
mod tests {
    use crate::test_util::TestServer;

    #[test]
    fn info_layout() {
        let mut t = TestServer::new();
        assert_eq!(
            t.cmd("COMMAND INFO get"),
            "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
        );
        assert_eq!(t.cmd("COMMAND INFO nosuch"), "*1\r\n$-1\r\n");
        assert!(t.cmd("COMMAND INFO config|get").starts_with("*1\r\n*10\r\n$10\r\nconfig|get\r\n:-3\r\n"));
        // Redis's key-spec notes are its prose: not carried.
        assert!(!t.cmd("COMMAND INFO getex").contains("notes"));
        t.cmd("HELLO 3");
        assert!(t.cmd("COMMAND INFO get").starts_with("*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n"));
    }

    #[test]
    fn count_list_docs() {
        let mut t = TestServer::new();
        let n = slotway_slots::commands::all().len();
        assert_eq!(t.cmd("COMMAND COUNT"), format!(":{n}\r\n"));
        assert!(t.cmd("COMMAND").starts_with(&format!("*{n}\r\n")));
        assert_eq!(t.cmd("COMMAND LIST FILTERBY PATTERN zunion*"), "*2\r\n$6\r\nzunion\r\n$11\r\nzunionstore\r\n");
        assert_eq!(t.cmd("COMMAND LIST FILTERBY MODULE x"), "*0\r\n");
        assert_eq!(t.cmd("COMMAND LIST FILTERBY FOO x"), "-ERR syntax error\r\n");
        assert_eq!(
            t.cmd("COMMAND DOCS get"),
            "*2\r\n$3\r\nget\r\n*6\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$9\r\narguments\r\n*1\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"
        );
        assert!(t.cmd("COMMAND DOCS client|kill").starts_with("*2\r\n$11\r\nclient|kill\r\n*6\r\n$5\r\nsince\r\n"));
        // Every command in the table has its documentation.
        for c in slotway_slots::commands::all() {
            assert!(super::super::docs::lookup(c.name).is_some(), "{}", c.name);
            for s in c.subcommands {
                assert!(super::super::docs::lookup(s.name).is_some(), "{}", s.name);
            }
        }
        assert_eq!(t.cmd("COMMAND DOCS nosuch"), "*0\r\n");
    }

    #[test]
    fn getkeys() {
        let mut t = TestServer::new();
        assert_eq!(t.cmd("COMMAND GETKEYS zunionstore d 2 a b"), "*3\r\n$1\r\nd\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(t.cmd("COMMAND GETKEYS eval s 5 a"), "*0\r\n");
        assert_eq!(t.cmd("COMMAND GETKEYS nosuch a"), "-ERR Invalid command specified\r\n");
        assert_eq!(t.cmd("COMMAND GETKEYS get a b"), "-ERR Invalid number of arguments specified for command\r\n");
        assert_eq!(t.cmd("COMMAND GETKEYS publish a b"), "-ERR The command has no key arguments\r\n");
        assert_eq!(
            t.cmd("COMMAND GETKEYSANDFLAGS lmove a b left right"),
            "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n*2\r\n$1\r\nb\r\n*2\r\n+RW\r\n+insert\r\n"
        );
        assert_eq!(
            t.cmd("COMMAND GETKEYSANDFLAGS sort k STORE d"),
            "*2\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n*2\r\n$1\r\nd\r\n*2\r\n+OW\r\n+update\r\n"
        );
    }
}
