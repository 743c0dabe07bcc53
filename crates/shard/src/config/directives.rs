//! The directive table: every redis.conf directive Redis 7.0.15 knows, its
//! type, bounds, flags and default. Directives of subsystems that are not
//! built yet are still accepted, stored and shown, as redis-server does.

/// How a directive's value is parsed, validated and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int {
        min: i128,
        max: i128,
    },
    /// A byte count that accepts `k`, `kb`, `m`, `mb`, `g`, `gb` suffixes.
    Mem {
        min: i128,
        max: i128,
    },
    /// A byte count or a percentage of `maxmemory` (`maxmemory-clients`).
    MemPct,
    Enum(&'static [&'static str]),
    Str,
    /// An octal number (`unixsocketperm`).
    Octal,
    Save,
    Bind,
    /// `client-output-buffer-limit <class> <hard> <soft> <seconds>`.
    Cobl,
    Notify,
    Percentiles,
    OomValues,
    Replicaof,
}

/// Cannot be changed by CONFIG SET.
pub const IMMUTABLE: u8 = 1;
/// Refused by CONFIG SET unless `enable-protected-configs` allows it.
pub const PROTECTED: u8 = 2;

#[derive(Debug)]
pub struct Directive {
    pub name: &'static str,
    /// The pre-7.0 name (`slave-*`, `*-ziplist-*`), accepted everywhere.
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub flags: u8,
    /// The default in redis.conf syntax (empty `dir` means the start-up
    /// working directory).
    pub default: &'static str,
}

impl Directive {
    pub fn immutable(&self) -> bool {
        self.flags & IMMUTABLE != 0
    }
    pub fn protected(&self) -> bool {
        self.flags & PROTECTED != 0
    }
}

const I32_MIN: i128 = i32::MIN as i128;
const I32_MAX: i128 = i32::MAX as i128;
const U32_MAX: i128 = u32::MAX as i128;
const I64_MAX: i128 = i64::MAX as i128;
const U64_MAX: i128 = u64::MAX as i128;

const fn d(name: &'static str, alias: Option<&'static str>, kind: Kind, flags: u8, default: &'static str) -> Directive {
    Directive { name, alias, kind, flags, default }
}

use Kind::*;

/// Sorted by name; [`find`] looks names and aliases up case-insensitively.
pub static DIRECTIVES: &[Directive] = &[
    d("acl-pubsub-default", None, Enum(&["allchannels", "resetchannels"]), 0, "resetchannels"),
    d("aclfile", None, Str, IMMUTABLE, ""),
    d("acllog-max-len", None, Int { min: 0, max: I64_MAX }, 0, "128"),
    d("active-defrag-cycle-max", None, Int { min: 1, max: 99 }, 0, "25"),
    d("active-defrag-cycle-min", None, Int { min: 1, max: 99 }, 0, "1"),
    d("active-defrag-ignore-bytes", None, Mem { min: 1, max: I64_MAX }, 0, "104857600"),
    d("active-defrag-max-scan-fields", None, Int { min: 1, max: I64_MAX }, 0, "1000"),
    d("active-defrag-threshold-lower", None, Int { min: 0, max: 1000 }, 0, "10"),
    d("active-defrag-threshold-upper", None, Int { min: 0, max: 1000 }, 0, "100"),
    d("active-expire-effort", None, Int { min: 1, max: 10 }, 0, "1"),
    d("activedefrag", None, Bool, 0, "no"),
    d("activerehashing", None, Bool, 0, "yes"),
    d("always-show-logo", None, Bool, IMMUTABLE, "no"),
    d("aof-disable-auto-gc", None, Bool, 0, "no"),
    d("aof-load-truncated", None, Bool, 0, "yes"),
    d("aof-rewrite-incremental-fsync", None, Bool, 0, "yes"),
    d("aof-timestamp-enabled", None, Bool, 0, "no"),
    d("aof-use-rdb-preamble", None, Bool, 0, "yes"),
    d("aof_rewrite_cpulist", None, Str, IMMUTABLE, ""),
    d("appenddirname", None, Str, IMMUTABLE, "appendonlydir"),
    d("appendfilename", None, Str, IMMUTABLE, "appendonly.aof"),
    d("appendfsync", None, Enum(&["everysec", "always", "no"]), 0, "everysec"),
    d("appendonly", None, Bool, 0, "no"),
    d("auto-aof-rewrite-min-size", None, Mem { min: 0, max: I64_MAX }, 0, "67108864"),
    d("auto-aof-rewrite-percentage", None, Int { min: 0, max: I32_MAX }, 0, "100"),
    d("bgsave_cpulist", None, Str, IMMUTABLE, ""),
    d("bind", None, Bind, 0, "* -::*"),
    d("bind-source-addr", None, Str, 0, ""),
    d("bio_cpulist", None, Str, IMMUTABLE, ""),
    d("busy-reply-threshold", None, Int { min: 0, max: I64_MAX }, 0, "5000"),
    d(
        "client-output-buffer-limit",
        None,
        Cobl,
        0,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    d("client-query-buffer-limit", None, Mem { min: 1048576, max: I64_MAX }, 0, "1073741824"),
    d("cluster-allow-pubsubshard-when-down", None, Bool, 0, "yes"),
    d("cluster-allow-reads-when-down", None, Bool, 0, "no"),
    d("cluster-allow-replica-migration", None, Bool, 0, "yes"),
    d("cluster-announce-bus-port", None, Int { min: 0, max: 65535 }, 0, "0"),
    d("cluster-announce-hostname", None, Str, 0, ""),
    d("cluster-announce-ip", None, Str, 0, ""),
    d("cluster-announce-port", None, Int { min: 0, max: 65535 }, 0, "0"),
    d("cluster-announce-tls-port", None, Int { min: 0, max: 65535 }, 0, "0"),
    d("cluster-config-file", None, Str, IMMUTABLE, "nodes.conf"),
    d("cluster-enabled", None, Bool, IMMUTABLE, "no"),
    d("cluster-link-sendbuf-limit", None, Mem { min: 0, max: U64_MAX }, 0, "0"),
    d("cluster-migration-barrier", None, Int { min: 0, max: I32_MAX }, 0, "1"),
    d("cluster-node-timeout", None, Int { min: 0, max: I64_MAX }, 0, "15000"),
    d("cluster-port", None, Int { min: 0, max: 65535 }, IMMUTABLE, "0"),
    d("cluster-preferred-endpoint-type", None, Enum(&["ip", "hostname", "unknown-endpoint"]), 0, "ip"),
    d("cluster-replica-no-failover", Some("cluster-slave-no-failover"), Bool, 0, "no"),
    d("cluster-replica-validity-factor", Some("cluster-slave-validity-factor"), Int { min: 0, max: I32_MAX }, 0, "10"),
    d("cluster-require-full-coverage", None, Bool, 0, "yes"),
    d("crash-log-enabled", None, Bool, 0, "yes"),
    d("crash-memcheck-enabled", None, Bool, 0, "yes"),
    d("daemonize", None, Bool, IMMUTABLE, "no"),
    d("databases", None, Int { min: 1, max: I32_MAX }, IMMUTABLE, "16"),
    d("dbfilename", None, Str, PROTECTED, "dump.rdb"),
    d("dir", None, Str, PROTECTED, ""),
    d("disable-thp", None, Bool, IMMUTABLE, "yes"),
    d("dynamic-hz", None, Bool, 0, "yes"),
    d("enable-debug-command", None, Enum(&["no", "yes", "local"]), IMMUTABLE, "no"),
    d("enable-module-command", None, Enum(&["no", "yes", "local"]), IMMUTABLE, "no"),
    d("enable-protected-configs", None, Enum(&["no", "yes", "local"]), IMMUTABLE, "no"),
    d("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), Int { min: 0, max: I64_MAX }, 0, "512"),
    d("hash-max-listpack-value", Some("hash-max-ziplist-value"), Mem { min: 0, max: I64_MAX }, 0, "64"),
    d("hll-sparse-max-bytes", None, Mem { min: 0, max: I64_MAX }, 0, "3000"),
    d("hz", None, Int { min: 0, max: I32_MAX }, 0, "10"),
    d("ignore-warnings", None, Str, 0, ""),
    d("io-threads", None, Int { min: 1, max: 128 }, IMMUTABLE, "1"),
    d("io-threads-do-reads", None, Bool, IMMUTABLE, "no"),
    d("jemalloc-bg-thread", None, Bool, 0, "yes"),
    d("latency-monitor-threshold", None, Int { min: 0, max: I64_MAX }, 0, "0"),
    d("latency-tracking", None, Bool, 0, "yes"),
    d("latency-tracking-info-percentiles", None, Percentiles, 0, "50 99 99.9"),
    d("lazyfree-lazy-eviction", None, Bool, 0, "no"),
    d("lazyfree-lazy-expire", None, Bool, 0, "no"),
    d("lazyfree-lazy-server-del", None, Bool, 0, "no"),
    d("lazyfree-lazy-user-del", None, Bool, 0, "no"),
    d("lazyfree-lazy-user-flush", None, Bool, 0, "no"),
    d("lfu-decay-time", None, Int { min: 0, max: I32_MAX }, 0, "1"),
    d("lfu-log-factor", None, Int { min: 0, max: I32_MAX }, 0, "10"),
    d("list-compress-depth", None, Int { min: 0, max: I32_MAX }, 0, "0"),
    d("list-max-listpack-size", Some("list-max-ziplist-size"), Int { min: I32_MIN, max: I32_MAX }, 0, "-2"),
    d("logfile", None, Str, IMMUTABLE, ""),
    d("loglevel", None, Enum(&["debug", "verbose", "notice", "warning"]), 0, "notice"),
    d("lua-time-limit", None, Int { min: 0, max: I64_MAX }, 0, "5000"),
    d("masterauth", None, Str, 0, ""),
    d("masteruser", None, Str, 0, ""),
    d("maxclients", None, Int { min: 1, max: U32_MAX }, 0, "10000"),
    d("maxmemory", None, Mem { min: 0, max: U64_MAX }, 0, "0"),
    d("maxmemory-clients", None, MemPct, 0, "0"),
    d("maxmemory-eviction-tenacity", None, Int { min: 0, max: 100 }, 0, "10"),
    d(
        "maxmemory-policy",
        None,
        Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        0,
        "noeviction",
    ),
    d("maxmemory-samples", None, Int { min: 1, max: I32_MAX }, 0, "5"),
    d("min-replicas-max-lag", Some("min-slaves-max-lag"), Int { min: 0, max: I32_MAX }, 0, "10"),
    d("min-replicas-to-write", Some("min-slaves-to-write"), Int { min: 0, max: I32_MAX }, 0, "0"),
    d("no-appendfsync-on-rewrite", None, Bool, 0, "no"),
    d("notify-keyspace-events", None, Notify, 0, ""),
    d("oom-score-adj", None, Enum(&["no", "yes", "relative", "absolute"]), 0, "no"),
    d("oom-score-adj-values", None, OomValues, 0, "0 200 800"),
    d("pidfile", None, Str, IMMUTABLE, ""),
    d("port", None, Int { min: 0, max: 65535 }, 0, "6379"),
    d("proc-title-template", None, Str, 0, "{title} {listen-addr} {server-mode}"),
    d("propagation-error-behavior", None, Enum(&["ignore", "panic", "panic-on-replicas"]), 0, "ignore"),
    d("protected-mode", None, Bool, 0, "yes"),
    d("proto-max-bulk-len", None, Mem { min: 1048576, max: I64_MAX }, 0, "536870912"),
    d("rdb-del-sync-files", None, Bool, 0, "no"),
    d("rdb-save-incremental-fsync", None, Bool, 0, "yes"),
    d("rdbchecksum", None, Bool, IMMUTABLE, "yes"),
    d("rdbcompression", None, Bool, 0, "yes"),
    d("repl-backlog-size", None, Mem { min: 1, max: I64_MAX }, 0, "1048576"),
    d("repl-backlog-ttl", None, Int { min: 0, max: I64_MAX }, 0, "3600"),
    d("repl-disable-tcp-nodelay", None, Bool, 0, "no"),
    d("repl-diskless-load", None, Enum(&["disabled", "on-empty-db", "swapdb"]), 0, "disabled"),
    d("repl-diskless-sync", None, Bool, 0, "yes"),
    d("repl-diskless-sync-delay", None, Int { min: 0, max: I32_MAX }, 0, "5"),
    d("repl-diskless-sync-max-replicas", None, Int { min: 0, max: I32_MAX }, 0, "0"),
    d("repl-ping-replica-period", Some("repl-ping-slave-period"), Int { min: 1, max: I32_MAX }, 0, "10"),
    d("repl-timeout", None, Int { min: 1, max: I32_MAX }, 0, "60"),
    d("replica-ack-timeout", None, Int { min: 1, max: I64_MAX }, 0, "5000"),
    d("replica-ack-writes", None, Bool, 0, "no"),
    d("replica-announce-ip", Some("slave-announce-ip"), Str, 0, ""),
    d("replica-announce-port", Some("slave-announce-port"), Int { min: 0, max: 65535 }, 0, "0"),
    d("replica-announced", None, Bool, 0, "yes"),
    d("replica-ignore-disk-write-errors", None, Bool, 0, "no"),
    d("replica-ignore-maxmemory", Some("slave-ignore-maxmemory"), Bool, 0, "yes"),
    d("replica-lazy-flush", Some("slave-lazy-flush"), Bool, 0, "no"),
    d("replica-priority", Some("slave-priority"), Int { min: 0, max: I32_MAX }, 0, "100"),
    d("replica-read-only", Some("slave-read-only"), Bool, 0, "yes"),
    d("replica-serve-stale-data", Some("slave-serve-stale-data"), Bool, 0, "yes"),
    d("replicaof", Some("slaveof"), Replicaof, IMMUTABLE, ""),
    d("requirepass", None, Str, 0, ""),
    d("sanitize-dump-payload", None, Enum(&["no", "yes", "clients"]), 0, "no"),
    d("save", None, Save, 0, "3600 1 300 100 60 10000"),
    d("server_cpulist", None, Str, IMMUTABLE, ""),
    d("set-max-intset-entries", None, Int { min: 0, max: I64_MAX }, 0, "512"),
    d("set-proc-title", None, Bool, IMMUTABLE, "yes"),
    d("shutdown-on-sigint", None, Enum(&["default", "save", "nosave", "now", "force"]), 0, "default"),
    d("shutdown-on-sigterm", None, Enum(&["default", "save", "nosave", "now", "force"]), 0, "default"),
    d("shutdown-timeout", None, Int { min: 0, max: I32_MAX }, 0, "10"),
    d("slowlog-log-slower-than", None, Int { min: -1, max: I64_MAX }, 0, "10000"),
    d("slowlog-max-len", None, Int { min: 0, max: I64_MAX }, 0, "128"),
    d("socket-mark-id", None, Int { min: 0, max: U32_MAX }, IMMUTABLE, "0"),
    d("stop-writes-on-bgsave-error", None, Bool, 0, "yes"),
    d("stream-node-max-bytes", None, Mem { min: 0, max: I64_MAX }, 0, "4096"),
    d("stream-node-max-entries", None, Int { min: 0, max: I64_MAX }, 0, "100"),
    d("supervised", None, Enum(&["upstart", "systemd", "auto", "no"]), IMMUTABLE, "no"),
    d("syslog-enabled", None, Bool, IMMUTABLE, "no"),
    d(
        "syslog-facility",
        None,
        Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]),
        IMMUTABLE,
        "local0",
    ),
    d("syslog-ident", None, Str, IMMUTABLE, "redis"),
    d("tcp-backlog", None, Int { min: 0, max: I32_MAX }, IMMUTABLE, "511"),
    d("tcp-keepalive", None, Int { min: 0, max: I32_MAX }, 0, "300"),
    d("timeout", None, Int { min: 0, max: I32_MAX }, 0, "0"),
    d("tls-auth-clients", None, Enum(&["no", "yes", "optional"]), 0, "yes"),
    d("tls-ca-cert-dir", None, Str, 0, ""),
    d("tls-ca-cert-file", None, Str, 0, ""),
    d("tls-cert-file", None, Str, 0, ""),
    d("tls-ciphers", None, Str, 0, ""),
    d("tls-ciphersuites", None, Str, 0, ""),
    d("tls-client-cert-file", None, Str, 0, ""),
    d("tls-client-key-file", None, Str, 0, ""),
    d("tls-client-key-file-pass", None, Str, 0, ""),
    d("tls-cluster", None, Bool, 0, "no"),
    d("tls-dh-params-file", None, Str, 0, ""),
    d("tls-key-file", None, Str, 0, ""),
    d("tls-key-file-pass", None, Str, 0, ""),
    d("tls-port", None, Int { min: 0, max: 65535 }, 0, "0"),
    d("tls-prefer-server-ciphers", None, Bool, 0, "no"),
    d("tls-protocols", None, Str, 0, ""),
    d("tls-replication", None, Bool, 0, "no"),
    d("tls-session-cache-size", None, Int { min: 0, max: I32_MAX }, 0, "20480"),
    d("tls-session-cache-timeout", None, Int { min: 0, max: I32_MAX }, 0, "300"),
    d("tls-session-caching", None, Bool, 0, "yes"),
    d("tracking-table-max-keys", None, Int { min: 0, max: I64_MAX }, 0, "1000000"),
    d("unixsocket", None, Str, IMMUTABLE, ""),
    d("unixsocketperm", None, Octal, IMMUTABLE, "0"),
    d("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), Int { min: 0, max: I64_MAX }, 0, "128"),
    d("zset-max-listpack-value", Some("zset-max-ziplist-value"), Mem { min: 0, max: I64_MAX }, 0, "64"),
];

/// The index of a directive by name or alias, case-insensitively.
pub fn find(name: &[u8]) -> Option<usize> {
    DIRECTIVES.iter().position(|d| {
        name.eq_ignore_ascii_case(d.name.as_bytes()) || d.alias.is_some_and(|a| name.eq_ignore_ascii_case(a.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, d) in DIRECTIVES.iter().enumerate() {
            assert_eq!(find(d.name.as_bytes()), Some(i), "{}", d.name);
            if let Some(a) = d.alias {
                assert_eq!(find(a.to_uppercase().as_bytes()), Some(i));
            }
        }
        assert_eq!(find(b"nope"), None);
        // Redis 7.0.15 lists 192 names in CONFIG GET *, aliases included;
        // ours are `replica-ack-writes` and `replica-ack-timeout` on top.
        let names = DIRECTIVES.len() + DIRECTIVES.iter().filter(|d| d.alias.is_some()).count();
        assert_eq!(names, 192 + 2);
    }
}
