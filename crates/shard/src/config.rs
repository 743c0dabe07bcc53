//! redis.conf: parsing the file and `--directive value` arguments into a
//! typed [`Config`].
//!
//! Every directive lives in the [`directives`] table with its type; its
//! value is kept typed in [`Config::values`] (what CONFIG GET shows and
//! REWRITE writes), and the fields the server reads on hot paths are
//! derived from those values by [`Config::refresh`] after every change.

pub mod directives;
mod fields;
pub mod rewrite;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use thiserror::Error;

pub use directives::{find, Directive, Kind, DIRECTIVES};
pub use value::Val;

/// Set by the binary: applies a new `loglevel` to the running logger
/// (CONFIG SET loglevel).
pub static LOG_LEVEL_HOOK: OnceLock<LogLevelHook> = OnceLock::new();

pub type LogLevelHook = Box<dyn Fn(&str) + Send + Sync>;

/// A line Redis would refuse, rendered as redis-server's fatal block, which
/// also names the file (Redis leaves that out; an operator with several
/// config files wants it).
#[derive(Debug, Error)]
#[error(
    "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file {file}, at line {line}\n>>> '{text}'\n{reason}"
)]
pub struct ConfigError {
    /// The file the line came from (`(command line)` for arguments).
    pub file: String,
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// A config file that cannot be read at all; Redis logs this as a line.
#[derive(Debug, Error)]
#[error("Fatal error, can't open config file '{path}': {reason}")]
pub struct OpenError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Line(#[from] ConfigError),
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A check after the whole configuration was read (the log file).
    #[error("\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n{0}")]
    Check(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: Option<PathBuf>,
    pub port: u16,
    pub bind: Vec<String>,
    pub requirepass: Option<Vec<u8>>,
    pub databases: usize,
    pub maxclients: usize,
    /// Idle client timeout in seconds; 0 = never.
    pub timeout: u64,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: usize,
    pub daemonize: bool,
    pub pidfile: String,
    pub logfile: String,
    pub dir: String,
    pub loglevel: String,
    /// `client-output-buffer-limit pubsub <hard> <soft> <seconds>`.
    pub pubsub_limit: (usize, usize, u64),
    /// Microseconds; negative disables the slow log.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
    /// Every directive's value, indexed like [`DIRECTIVES`].
    pub values: Vec<Val>,
    /// `rename-command old new` lines, in file order.
    pub renames: Vec<(String, String)>,
    pub protected_mode: bool,
    pub tcp_keepalive: u64,
    pub tcp_backlog: u32,
    pub hz: u32,
    pub maxmemory: u64,
    pub maxmemory_policy: &'static str,
    pub maxmemory_samples: u32,
    /// The eviction directives together, as the hot path reads them.
    pub eviction: crate::evict::Settings,
    pub cluster_enabled: bool,
    pub cluster_config_file: String,
    pub cluster_node_timeout: u64,
    pub cluster_port: u16,
    pub dbfilename: String,
    pub appendonly: bool,
    /// `save` rules: (seconds, changes).
    pub save: Vec<(i64, i64)>,
    /// Canonical class letters, as CONFIG GET shows them.
    pub notify_keyspace_events: String,
    /// `client-output-buffer-limit normal|replica ...`.
    pub normal_limit: (usize, usize, u64),
    pub replica_limit: (usize, usize, u64),
    pub latency_monitor_threshold: u64,
    pub enable_debug_command: &'static str,
    pub enable_module_command: &'static str,
    pub io_threads: u32,
    pub supervised: &'static str,
    pub always_show_logo: bool,
    pub unixsocket: String,
    pub replica_read_only: bool,
    pub min_replicas_to_write: usize,
    pub min_replicas_max_lag: u64,
    /// Beyond Redis: a write is acknowledged to its client once a replica
    /// has it (`replica-ack-writes`), waiting at most this long
    /// (`replica-ack-timeout`, ms).
    pub replica_ack_writes: bool,
    pub replica_ack_timeout: u64,
}

impl Default for Config {
    fn default() -> Self {
        let values = DIRECTIVES
            .iter()
            .map(|d| {
                let args = value::split_set_value(d.kind, d.default);
                value::parse(d.kind, d.name, &args, &Val::Cobl([(0, 0, 0); 3]))
                    .unwrap_or_else(|e| panic!("default of {}: {e}", d.name))
            })
            .collect();
        let mut cfg = Config {
            file: None,
            port: 6379,
            bind: Vec::new(),
            requirepass: None,
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            daemonize: false,
            pidfile: String::new(),
            logfile: String::new(),
            dir: ".".into(),
            loglevel: String::new(),
            pubsub_limit: (0, 0, 0),
            slowlog_log_slower_than: 0,
            slowlog_max_len: 0,
            values,
            renames: Vec::new(),
            protected_mode: true,
            tcp_keepalive: 0,
            tcp_backlog: 0,
            hz: 0,
            maxmemory: 0,
            maxmemory_policy: "noeviction",
            maxmemory_samples: 0,
            eviction: Default::default(),
            cluster_enabled: false,
            cluster_config_file: String::new(),
            cluster_node_timeout: 0,
            cluster_port: 0,
            dbfilename: String::new(),
            appendonly: false,
            save: Vec::new(),
            notify_keyspace_events: String::new(),
            normal_limit: (0, 0, 0),
            replica_limit: (0, 0, 0),
            latency_monitor_threshold: 0,
            enable_debug_command: "no",
            enable_module_command: "no",
            io_threads: 1,
            supervised: "no",
            always_show_logo: false,
            unixsocket: String::new(),
            replica_read_only: true,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 0,
            replica_ack_writes: false,
            replica_ack_timeout: 0,
        };
        cfg.refresh();
        cfg
    }
}

/// Per-load state: the first `save` line of a load replaces the default
/// rules, later ones add to them.
#[derive(Default)]
struct Loader {
    save_seen: bool,
    /// Start-up only: `dir` changes the working directory as it is read.
    chdir: bool,
}

impl Config {
    /// `slotway-shard [config-file] [--directive value ...]`, like
    /// redis-server: the file first, then the arguments.
    pub fn from_args(args: &[String]) -> Result<Config, LoadError> {
        let mut cfg = Config::default();
        let mut rest = args;
        let mut text = String::new();
        let stdin = reads_stdin(args);
        if let Some(first) = args.first() {
            if !first.starts_with('-') {
                let path = Path::new(first);
                text = read(path)?;
                cfg.file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
                rest = &args[1..];
            } else if first == "-" {
                rest = &args[1..];
            }
        }
        if stdin {
            rest = rest.strip_suffix(&["-".to_string()]).unwrap_or(rest);
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                .map_err(|e| OpenError { path: "-".into(), reason: io_reason(&e) })?;
            text.push_str(&input);
        }
        // As redis-server: the arguments become config lines appended to
        // the file's text, so line numbers in errors continue the file's.
        text.push('\n');
        let mut first = true;
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                if !first {
                    text.push('\n');
                }
                first = false;
                text.push_str(name);
            } else {
                text.push(' ');
                text.push_str(&value::quote(a));
            }
        }
        let label = cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(command line)".into());
        let mut loader = Loader { save_seen: false, chdir: true };
        cfg.apply_text(&text, &label, &mut loader)?;
        if !cfg.logfile.is_empty() {
            // As Redis: an unwritable log file is a configuration error.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&cfg.logfile)
                .map_err(|e| LoadError::Check(format!("Can't open the log file: {}", io_reason(&e))))?;
        }
        Ok(cfg)
    }

    /// Applies config text without side effects on the process (tests,
    /// tools).
    pub fn apply_str(&mut self, text: &str) -> Result<(), ConfigError> {
        self.apply_text(text, "(string)", &mut Loader::default()).map_err(|e| match e {
            LoadError::Line(e) => e,
            LoadError::Open(e) => ConfigError { file: e.path, line: 0, text: String::new(), reason: e.reason },
            LoadError::Check(reason) => ConfigError { file: String::new(), line: 0, text: String::new(), reason },
        })
    }

    fn apply_text(&mut self, text: &str, file: &str, loader: &mut Loader) -> Result<(), LoadError> {
        for (i, line) in text.split('\n').enumerate() {
            let trimmed = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |reason: String| ConfigError { file: file.into(), line: i + 1, text: trimmed.into(), reason };
            let args = slotway_resp::split_args(trimmed.as_bytes())
                .ok_or_else(|| err("Unbalanced quotes in configuration line".into()))?;
            let args: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let Some((name, rest)) = args.split_first() else { continue };
            if name.eq_ignore_ascii_case("include") && rest.len() == 1 {
                let path = Path::new(&rest[0]);
                let text = read(path)?;
                self.apply_text(&text, &path.display().to_string(), loader)?;
                continue;
            }
            self.apply_line(name, rest, loader).map_err(err)?;
        }
        self.refresh();
        Ok(())
    }

    fn apply_line(&mut self, name: &str, args: &[String], loader: &mut Loader) -> Result<(), String> {
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), args.len()) {
            ("rename-command", 2) => {
                if slotway_slots::commands::lookup(args[0].as_bytes()).is_none() {
                    return Err("No such command in rename-command".into());
                }
                self.renames.push((args[0].clone(), args[1].clone()));
                return Ok(());
            }
            // ACL users beyond `default` belong to a later issue; the line
            // is accepted so that files CONFIG REWRITE wrote load again.
            ("user", n) if n >= 1 => return Ok(()),
            ("loadmodule", n) if n >= 1 => return Err("Modules are not supported by slotway-shard".into()),
            _ => {}
        }
        let idx = find(lower.as_bytes()).ok_or("Bad directive or wrong number of arguments")?;
        let d = &DIRECTIVES[idx];
        // A multi-word directive given as one quoted argument (typical of
        // `--client-output-buffer-limit "pubsub 1mb 512kb 60"`) is split,
        // as Redis does for its multi-argument configs.
        let split;
        let args = match args {
            [one] if !one.is_empty() => {
                split = value::split_set_value(d.kind, one);
                &split[..]
            }
            _ => args,
        };
        let mut v = value::parse(d.kind, d.name, args, &self.values[idx])?;
        if let (Val::Save(new), Val::Save(old)) = (&mut v, &self.values[idx]) {
            if loader.save_seen && !new.is_empty() {
                let mut all = old.clone();
                all.append(new);
                *new = all;
            }
            loader.save_seen = true;
        }
        if d.name == "dir" && loader.chdir {
            if let Val::Str(dir) = &v {
                std::env::set_current_dir(dir).map_err(|e| io_reason(&e))?;
            }
        }
        self.values[idx] = v;
        Ok(())
    }

    /// Replaces one directive's value after validation (CONFIG SET).
    pub fn set_value(&mut self, idx: usize, raw: &str) -> Result<(), String> {
        let d = &DIRECTIVES[idx];
        let args = value::split_set_value(d.kind, raw);
        let prev = match d.kind {
            // CONFIG SET replaces all classes it names and keeps the rest.
            Kind::Cobl => self.values[idx].clone(),
            _ => Val::Cobl([(0, 0, 0); 3]),
        };
        let v = value::parse(d.kind, d.name, &args, &prev)?;
        if d.kind == Kind::Bind {
            validate_bind(&v)?;
        }
        self.values[idx] = v;
        Ok(())
    }
}

/// `-` as the only or last argument: configuration also comes from stdin.
pub fn reads_stdin(args: &[String]) -> bool {
    args.first().is_some_and(|a| a == "-") || (args.len() > 1 && args.last().is_some_and(|a| a == "-"))
}

fn read(path: &Path) -> Result<String, OpenError> {
    std::fs::read_to_string(path).map_err(|e| OpenError { path: path.display().to_string(), reason: io_reason(&e) })
}

/// strerror-style text, without Rust's ` (os error N)` suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// CONFIG SET bind: only addresses this host could listen on.
fn validate_bind(v: &Val) -> Result<(), String> {
    let Val::List(addrs) = v else { return Ok(()) };
    for a in addrs {
        let a = a.strip_prefix('-').unwrap_or(a);
        if !(a == "*" || a == "::*" || a.parse::<std::net::IpAddr>().is_ok() || a == "localhost") {
            return Err("Failed to bind to specified addresses.".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
