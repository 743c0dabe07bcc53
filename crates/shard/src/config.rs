//! redis.conf: parsing the file and `--directive value` arguments into a
//! typed [`Config`].
//!
//! (First cut: the typed fields the server core reads. The full directive
//! table, CONFIG SET/REWRITE and validation replace the internals, keeping
//! these fields.)

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
#[error(
    "*** FATAL CONFIG FILE ERROR ***\nReading the configuration file{file}, at line {line}\n>>> '{text}'\n{reason}"
)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub reason: String,
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
    /// `client-output-buffer-limit normal <hard> <soft> <seconds>`.
    pub normal_limit: (usize, usize, u64),
    /// Microseconds; negative disables the slow log.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            file: None,
            port: 6379,
            bind: vec!["*".into(), "-::*".into()],
            requirepass: None,
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            daemonize: false,
            pidfile: String::new(),
            logfile: String::new(),
            dir: ".".into(),
            loglevel: "notice".into(),
            pubsub_limit: (32 * 1024 * 1024, 8 * 1024 * 1024, 60),
            normal_limit: (0, 0, 0),
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
        }
    }
}

impl Config {
    /// `slotway-shard [config-file] [--directive value ...]`, like
    /// redis-server.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let path = Path::new(first);
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    file: format!(" {}", path.display()),
                    line: 0,
                    text: String::new(),
                    reason: format!("Fatal error, can't open config file '{}': {}", path.display(), e),
                })?;
                cfg.file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
                cfg.apply_text(&text, &format!(" {}", path.display()))?;
                rest = &args[1..];
            }
        }
        let mut text = String::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                text.push('\n');
                text.push_str(name);
            } else {
                text.push_str(" \"");
                text.push_str(&a.replace('\\', "\\\\").replace('"', "\\\""));
                text.push('"');
            }
        }
        cfg.apply_text(&text, " (command line)")?;
        Ok(cfg)
    }

    fn apply_text(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |reason: String| ConfigError { file: file.into(), line: i + 1, text: trimmed.into(), reason };
            let args = slotway_resp::split_args(trimmed.as_bytes())
                .ok_or_else(|| err("Unbalanced quotes in configuration line".into()))?;
            let args: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            self.apply(&args).map_err(err)?;
        }
        Ok(())
    }

    fn apply(&mut self, args: &[String]) -> Result<(), String> {
        let name = args[0].to_ascii_lowercase();
        let one = || -> Result<&str, String> {
            if args.len() == 2 {
                Ok(&args[1])
            } else {
                Err("wrong number of arguments".into())
            }
        };
        match name.as_str() {
            "port" => self.port = one()?.parse().map_err(|_| "argument couldn't be parsed into an integer")?,
            "bind" => self.bind = args[1..].to_vec(),
            "requirepass" => {
                let v = one()?;
                self.requirepass = (!v.is_empty()).then(|| v.as_bytes().to_vec());
            }
            "databases" => {
                self.databases = one()?.parse().map_err(|_| "argument couldn't be parsed into an integer")?
            }
            "daemonize" => self.daemonize = one()? == "yes",
            "pidfile" => self.pidfile = one()?.into(),
            "logfile" => self.logfile = one()?.into(),
            "dir" => self.dir = one()?.into(),
            "maxclients" => {
                self.maxclients = one()?.parse().map_err(|_| "argument couldn't be parsed into an integer")?
            }
            "timeout" => self.timeout = one()?.parse().map_err(|_| "argument couldn't be parsed into an integer")?,
            "client-query-buffer-limit" => {
                self.client_query_buffer_limit = memory(one()?).ok_or("argument must be a memory value")?
            }
            "client-output-buffer-limit" => self.apply_output_limits(&args[1..])?,
            _ => {}
        }
        Ok(())
    }

    /// `client-output-buffer-limit <class> <hard> <soft> <seconds> ...`.
    fn apply_output_limits(&mut self, args: &[String]) -> Result<(), String> {
        // `--client-output-buffer-limit "pubsub 1mb 512kb 60"` arrives as one
        // argument; Redis splits it, as CONFIG SET does.
        let split: Vec<String>;
        let args = if args.len() == 1 {
            split = args[0].split_whitespace().map(str::to_string).collect();
            &split[..]
        } else {
            args
        };
        if args.is_empty() || args.len() % 4 != 0 {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        for group in args.chunks(4) {
            let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
            let hard = memory(&group[1]).ok_or_else(bad)?;
            let soft = memory(&group[2]).ok_or_else(bad)?;
            let secs = group[3].parse().map_err(|_| bad())?;
            match group[0].to_ascii_lowercase().as_str() {
                "normal" => self.normal_limit = (hard, soft, secs),
                "pubsub" => self.pubsub_limit = (hard, soft, secs),
                "replica" | "slave" => {}
                _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
            }
        }
        Ok(())
    }
}

/// A memory amount as redis.conf writes it: `1k` = 1000, `1kb` = 1024, and
/// likewise `m`/`mb`, `g`/`gb`.
fn memory(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, usize); 7] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
        ("b", 1),
    ];
    let (digits, mul) =
        units.iter().find_map(|(u, m)| lower.strip_suffix(u).map(|d| (d, *m))).unwrap_or((lower.as_str(), 1));
    digits.parse::<usize>().ok()?.checked_mul(mul)
}
