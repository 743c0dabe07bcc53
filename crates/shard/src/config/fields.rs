//! Reading typed values back out of a [`Config`]: by directive name for
//! anything, and as the plain fields the hot paths read.

use super::{find, value, Config, Val};

impl Config {
    /// A directive's value by name or alias.
    pub fn get(&self, name: &str) -> Option<&Val> {
        find(name.as_bytes()).map(|i| &self.values[i])
    }

    fn val(&self, name: &str) -> &Val {
        match find(name.as_bytes()) {
            Some(i) => &self.values[i],
            None => panic!("directive {name} missing from the table"),
        }
    }

    pub fn int(&self, name: &str) -> i128 {
        match self.val(name) {
            Val::Int(i) => *i,
            _ => 0,
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.val(name), Val::Bool(true))
    }

    pub fn string(&self, name: &str) -> String {
        value::show(self.val(name))
    }

    /// Whether an enum directive currently has the value `w`.
    pub fn word_is(&self, name: &str, w: &str) -> bool {
        self.word(name) == w
    }

    fn word(&self, name: &str) -> &'static str {
        match self.val(name) {
            Val::Enum(e) => e,
            _ => "",
        }
    }

    /// Re-derives the typed fields from [`Config::values`].
    pub fn refresh(&mut self) {
        let int = |c: &Config, n: &str| c.int(n).clamp(0, u64::MAX as i128) as u64;
        self.port = int(self, "port") as u16;
        self.bind = match self.val("bind") {
            Val::List(l) => l.clone(),
            _ => Vec::new(),
        };
        let pass = self.string("requirepass");
        self.requirepass = (!pass.is_empty()).then(|| pass.into_bytes());
        self.databases = int(self, "databases") as usize;
        self.maxclients = int(self, "maxclients") as usize;
        self.timeout = int(self, "timeout");
        self.proto_max_bulk_len = int(self, "proto-max-bulk-len").min(i64::MAX as u64) as i64;
        self.client_query_buffer_limit = int(self, "client-query-buffer-limit") as usize;
        self.daemonize = self.flag("daemonize");
        self.pidfile = self.string("pidfile");
        self.logfile = self.string("logfile");
        let dir = self.string("dir");
        self.dir = if dir.is_empty() { ".".into() } else { dir };
        self.loglevel = self.word("loglevel").into();
        if let Val::Cobl(l) = *self.val("client-output-buffer-limit") {
            let as_limit = |(h, s, t): (u64, u64, u64)| (h as usize, s as usize, t);
            self.normal_limit = as_limit(l[0]);
            self.replica_limit = as_limit(l[1]);
            self.pubsub_limit = as_limit(l[2]);
        }
        self.slowlog_log_slower_than = self.int("slowlog-log-slower-than") as i64;
        self.slowlog_max_len = int(self, "slowlog-max-len") as usize;
        self.protected_mode = self.flag("protected-mode");
        self.tcp_keepalive = int(self, "tcp-keepalive");
        self.tcp_backlog = int(self, "tcp-backlog") as u32;
        self.hz = int(self, "hz") as u32;
        self.maxmemory = int(self, "maxmemory");
        self.maxmemory_policy = self.word("maxmemory-policy");
        self.maxmemory_samples = int(self, "maxmemory-samples") as u32;
        self.cluster_enabled = self.flag("cluster-enabled");
        self.cluster_config_file = self.string("cluster-config-file");
        self.cluster_node_timeout = int(self, "cluster-node-timeout");
        self.cluster_port = int(self, "cluster-port") as u16;
        self.dbfilename = self.string("dbfilename");
        self.appendonly = self.flag("appendonly");
        self.save = match self.val("save") {
            Val::Save(s) => s.clone(),
            _ => Vec::new(),
        };
        self.notify_keyspace_events = self.string("notify-keyspace-events");
        self.latency_monitor_threshold = int(self, "latency-monitor-threshold");
        self.enable_debug_command = self.word("enable-debug-command");
        self.enable_module_command = self.word("enable-module-command");
        self.io_threads = int(self, "io-threads") as u32;
        self.supervised = self.word("supervised");
        self.always_show_logo = self.flag("always-show-logo");
        self.unixsocket = self.string("unixsocket");
        self.replica_read_only = self.flag("replica-read-only");
        self.min_replicas_to_write = int(self, "min-replicas-to-write") as usize;
        self.min_replicas_max_lag = int(self, "min-replicas-max-lag");
        self.replica_ack_writes = self.flag("replica-ack-writes");
        self.replica_ack_timeout = int(self, "replica-ack-timeout");
        self.eviction = crate::evict::Settings::from_config(self);
    }
}
