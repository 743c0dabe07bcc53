//! Routing as data: one `match` from the command table's facts (name,
//! flags, group, key specs, request/response policy tips) to a [`Route`].
//!
//! Routes are named by shape, as Envoy's splitter names its requests:
//! a [`Route::ByKey`] request goes whole to the master of its keys' slot;
//! a [`Route::Split`] request is fragmented by slot and its replies merged
//! by a [`Merge`] policy; [`Route::AllMasters`] is fanned out to every
//! master. The same function feeds the session and `docs/commands.md`
//! ([`command_table_markdown`]), so the published table cannot drift from
//! what the proxy does.

use slotway_slots::commands::{self, flags, CommandSpec, FindKeys, Group};

/// How the replies of a fanned-out or split request become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Integers added up (DEL, EXISTS, DBSIZE).
    Sum,
    /// The first reply when none is an error (MSET, FLUSHALL).
    AllOk,
    /// Arrays concatenated (KEYS).
    Concat,
    /// The first success, else the last error (SCRIPT KILL).
    OneOk,
    /// Arrays of 0/1 combined element-wise with AND (SCRIPT EXISTS).
    LogicalAnd,
    /// One array whose elements go back to their keys' positions (MGET).
    KeyOrder,
}

/// Where a split request's keys sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `CMD k1 k2 ...`
    Keys,
    /// `CMD k1 v1 k2 v2 ...`
    KeyValuePairs,
}

/// Commands the proxy answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Ping,
    Echo,
    Quit,
    Select,
    Hello,
    Auth,
    Reset,
    /// READONLY / READWRITE: the proxy reads from masters either way.
    ReadMode,
    ClientSetName,
    ClientGetName,
    ClientId,
    CommandCount,
    ClusterSlots,
    ClusterShards,
    ClusterNodes,
    ClusterInfo,
    ClusterKeyslot,
    ClusterMyId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Local(Local),
    /// All keys in one slot: the whole request to that slot's master
    /// (CROSSSLOT otherwise; keyless: any master).
    ByKey,
    /// XREAD/XREADGROUP: by key, refused with BLOCK (the only form that
    /// blocks).
    ByKeyUnlessBlock,
    /// No keys and one node's answer is the answer: a random master.
    AnyMaster,
    Split(Shape, Merge),
    AllMasters(Merge),
    /// SCAN: walks the masters in turn with a packed cursor.
    Scan,
    /// RANDOMKEY: a random master, the next ones while it has no keys.
    RandomKey,
    /// INFO: the proxy's own sections plus the masters' keyspace, summed.
    Info,
    Refused(&'static str),
}

pub const BLOCKING: &str = "blocking commands would hold up a shared upstream connection";

/// The route of a command (or subcommand) from its table entry.
pub fn classify(spec: &CommandSpec) -> Route {
    use Route::*;
    match spec.name {
        "ping" => return Route::Local(self::Local::Ping),
        "echo" => return Route::Local(self::Local::Echo),
        "quit" => return Route::Local(self::Local::Quit),
        "select" => return Route::Local(self::Local::Select),
        "hello" => return Route::Local(self::Local::Hello),
        "auth" => return Route::Local(self::Local::Auth),
        "reset" => return Route::Local(self::Local::Reset),
        "readonly" | "readwrite" => return Route::Local(self::Local::ReadMode),
        "client|setname" => return Route::Local(self::Local::ClientSetName),
        "client|getname" => return Route::Local(self::Local::ClientGetName),
        "client|id" => return Route::Local(self::Local::ClientId),
        "command|count" => return Route::Local(self::Local::CommandCount),
        "cluster|slots" => return Route::Local(self::Local::ClusterSlots),
        "cluster|shards" => return Route::Local(self::Local::ClusterShards),
        "cluster|nodes" => return Route::Local(self::Local::ClusterNodes),
        "cluster|info" => return Route::Local(self::Local::ClusterInfo),
        "cluster|keyslot" => return Route::Local(self::Local::ClusterKeyslot),
        "cluster|myid" => return Route::Local(self::Local::ClusterMyId),
        "scan" => return Scan,
        "randomkey" => return RandomKey,
        "info" => return Info,
        "monitor" => return Refused("it would need every node's command stream on one connection"),
        "sync" | "psync" | "replconf" => return Refused("replication talks to the nodes directly"),
        "wait" => return Refused("a client's writes span nodes, so there is no one replica count to wait for"),
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe" => {
            return Refused("subscriptions need a dedicated upstream connection")
        }
        "msetnx" => return ByKey,
        "xread" | "xreadgroup" => return ByKeyUnlessBlock,
        _ => {}
    }
    if !spec.subcommands.is_empty() {
        // A container without a known subcommand: a node gives the exact
        // "unknown subcommand" or arity error.
        return AnyMaster;
    }
    if spec.group == Group::Transactions {
        return Refused("transactions need all of a client's commands on one node connection");
    }
    if spec.has(flags::BLOCKING) {
        return Refused(BLOCKING);
    }
    if spec.name.starts_with("client|") {
        return Refused("client connections end at the proxy");
    }
    if spec.group == Group::Cluster || spec.name == "asking" {
        return Refused("cluster administration goes to the nodes directly");
    }
    if spec.has(flags::ADMIN) {
        return Refused("administrative commands go to the nodes directly");
    }
    let response = spec.tip("response_policy:");
    let merge = match response {
        Some("agg_sum") => Some(Merge::Sum),
        Some("all_succeeded") => Some(Merge::AllOk),
        Some("one_succeeded") => Some(Merge::OneOk),
        Some("agg_logical_and") => Some(Merge::LogicalAnd),
        Some(_) => None,
        None => Some(Merge::Concat),
    };
    match (spec.tip("request_policy:"), merge) {
        (Some("all_shards" | "all_nodes"), Some(m)) => return AllMasters(m),
        (Some("all_shards" | "all_nodes"), None) => return Refused("its per-node replies have no defined merge"),
        (Some("multi_shard"), Some(m)) => {
            let pairs = spec.key_specs.iter().any(|k| matches!(k.find, FindKeys::Range { key_step: 2, .. }));
            let shape = if pairs { Shape::KeyValuePairs } else { Shape::Keys };
            let m = if m == Merge::Concat { Merge::KeyOrder } else { m };
            return Split(shape, m);
        }
        _ => {}
    }
    if spec.key_specs.is_empty() && !spec.has(flags::MOVABLEKEYS) {
        AnyMaster
    } else {
        ByKey
    }
}

/// The route for a request: its (sub)command's route, `None` when unknown.
pub fn route(args: &[bytes::Bytes]) -> Option<(&'static CommandSpec, Route)> {
    let spec = commands::lookup_args(args)?;
    Some((spec, classify(spec)))
}

impl Route {
    fn describe(self) -> String {
        match self {
            Route::Local(_) => "answered locally".into(),
            Route::ByKey => "routed by key (one slot, else CROSSSLOT)".into(),
            Route::ByKeyUnlessBlock => format!("routed by key; refused with BLOCK: {BLOCKING}"),
            Route::AnyMaster => "any master (no keys)".into(),
            Route::Split(_, m) => format!("split by slot, merged: {}", m.describe()),
            Route::AllMasters(m) => format!("fanned out to every master, merged: {}", m.describe()),
            Route::Scan => "fanned out: masters walked in turn by the cursor".into(),
            Route::RandomKey => "a random master".into(),
            Route::Info => "answered locally + masters' keyspace summed".into(),
            Route::Refused(why) => format!("refused: {why}"),
        }
    }
}

impl Merge {
    fn describe(self) -> &'static str {
        match self {
            Merge::Sum => "sum",
            Merge::AllOk => "all succeeded",
            Merge::Concat => "arrays concatenated",
            Merge::OneOk => "one succeeded",
            Merge::LogicalAnd => "logical and",
            Merge::KeyOrder => "in key order",
        }
    }
}

/// `docs/commands.md`: every command and subcommand with its route.
pub fn command_table_markdown() -> String {
    let mut out = String::from(
        "# Commands through slotway\n\n\
         Generated by `slotway_proxy::router::command_table_markdown()`; a unit test\n\
         fails when this file and the router disagree.\n\n\
         | Command | Route |\n|---|---|\n",
    );
    for spec in commands::all() {
        let route = if spec.subcommands.is_empty() {
            classify(spec).describe()
        } else {
            "by subcommand (a missing or unknown one gets the node's error)".into()
        };
        out.push_str(&format!("| `{}` | {} |\n", spec.full_name(), route));
        for sub in spec.subcommands {
            out.push_str(&format!("| `{}` | {} |\n", sub.full_name(), classify(sub).describe()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> Route {
        let args: Vec<&[u8]> = name.split(' ').map(str::as_bytes).collect();
        classify(commands::lookup_args(&args).unwrap())
    }

    #[test]
    fn routes_follow_the_table() {
        assert_eq!(r("get"), Route::ByKey);
        assert_eq!(r("set"), Route::ByKey);
        assert_eq!(r("eval"), Route::ByKey);
        assert_eq!(r("rename"), Route::ByKey);
        assert_eq!(r("msetnx"), Route::ByKey);
        assert_eq!(r("mget"), Route::Split(Shape::Keys, Merge::KeyOrder));
        assert_eq!(r("mset"), Route::Split(Shape::KeyValuePairs, Merge::AllOk));
        for c in ["del", "unlink", "exists", "touch"] {
            assert_eq!(r(c), Route::Split(Shape::Keys, Merge::Sum), "{c}");
        }
        assert_eq!(r("dbsize"), Route::AllMasters(Merge::Sum));
        assert_eq!(r("keys"), Route::AllMasters(Merge::Concat));
        assert_eq!(r("flushall"), Route::AllMasters(Merge::AllOk));
        assert_eq!(r("flushdb"), Route::AllMasters(Merge::AllOk));
        assert_eq!(r("script exists"), Route::AllMasters(Merge::LogicalAnd));
        assert_eq!(r("script kill"), Route::AllMasters(Merge::OneOk));
        assert_eq!(r("scan"), Route::Scan);
        assert_eq!(r("randomkey"), Route::RandomKey);
        assert_eq!(r("info"), Route::Info);
        assert_eq!(r("time"), Route::AnyMaster);
        assert_eq!(r("publish"), Route::AnyMaster);
        assert_eq!(r("ping"), Route::Local(Local::Ping));
        assert_eq!(r("client setname"), Route::Local(Local::ClientSetName));
        assert_eq!(r("cluster slots"), Route::Local(Local::ClusterSlots));
        assert_eq!(r("command count"), Route::Local(Local::CommandCount));
        for c in [
            "multi",
            "exec",
            "discard",
            "watch",
            "unwatch",
            "blpop",
            "brpoplpush",
            "subscribe",
            "monitor",
            "cluster meet",
            "config set",
            "shutdown",
            "client kill",
            "wait",
            "debug",
        ] {
            assert!(matches!(r(c), Route::Refused(_)), "{c}: {:?}", r(c));
        }
        assert_eq!(r("client nosuch"), Route::AnyMaster);
        assert_eq!(r("xread"), Route::ByKeyUnlessBlock);
    }

    #[test]
    fn docs_commands_md_matches_the_router() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/commands.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == command_table_markdown(),
            "docs/commands.md is stale: regenerate it with \
             `cargo test -p slotway-proxy write_docs_commands_md -- --ignored`"
        );
    }

    #[test]
    #[ignore]
    fn write_docs_commands_md() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/commands.md");
        std::fs::write(path, command_table_markdown()).unwrap();
    }
}
