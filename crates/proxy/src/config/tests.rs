//! Loading, overriding, validating and reloading configurations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use parking_lot::Mutex;

use super::*;
use crate::state::Proxy;

/// A file of its own under the temp dir, removed on drop.
pub(crate) struct TempFile(pub PathBuf);

impl TempFile {
    pub(crate) fn new(tag: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("slotway-config-{}-{tag}.yaml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    pub(crate) fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn flags(args: &[&str]) -> Flags {
    Flags::try_parse_from(std::iter::once("slotway").chain(args.iter().copied())).unwrap()
}

fn load_text(tag: &str, text: &str, args: &[&str]) -> Result<ProxyConfig, ConfigError> {
    let file = TempFile::new(tag, text);
    load(Some(&file.0), &flags(args))
}

fn err(tag: &str, text: &str, args: &[&str]) -> String {
    load_text(tag, text, args).unwrap_err().to_string()
}

const SEEDS: &str = "seeds: [127.0.0.1:7000]\n";

#[test]
fn example_file_is_the_defaults_plus_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/slotway.yaml");
    let loaded = load(Some(&path), &Flags::default()).unwrap();
    let seeds = vec!["127.0.0.1:7000".into(), "127.0.0.1:7001".into(), "127.0.0.1:7002".into()];
    let want = ProxyConfig { seeds, ..ProxyConfig::default() };
    assert_eq!(loaded, want);
    // Every setting is written out, so the example documents all of them.
    let text = std::fs::read_to_string(&path).unwrap();
    let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let defaults = serde_yaml::to_value(ProxyConfig::default()).unwrap();
    let keys = |v: &serde_yaml::Value| -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in v.as_mapping().unwrap() {
            let k = k.as_str().unwrap().to_string();
            match v.as_mapping() {
                Some(m) => out.extend(m.keys().map(|s| format!("{k}.{}", s.as_str().unwrap()))),
                None => out.push(k),
            }
        }
        out.sort();
        out
    };
    assert_eq!(keys(&value), keys(&defaults));
}

#[test]
fn defaults_need_only_seeds() {
    let e = load(None, &Flags::default()).unwrap_err();
    assert_eq!(e.to_string(), "seeds: at least one seed is required");
    let c = load(None, &flags(&["--seeds", "127.0.0.1:7000"])).unwrap();
    assert_eq!(c, ProxyConfig { seeds: vec!["127.0.0.1:7000".into()], ..ProxyConfig::default() });
}

#[test]
fn empty_and_comment_only_files_are_the_defaults() {
    for (i, text) in ["", "\n", "# nothing\n\n  # here\n", "---\n"].into_iter().enumerate() {
        let c = load_text(&format!("empty{i}"), text, &["--seeds", "h:1"]).unwrap();
        assert_eq!(c.timeouts, Timeouts::default(), "{text:?}");
    }
}

#[test]
fn file_values_and_partial_sections() {
    let c = load_text(
        "partial",
        "seeds: [a:1, 'b:2']\ntimeouts:\n  request_ms: 250\nupstream_auth:\n  password: pw\nlog_level: debug\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.seeds, ["a:1", "b:2"]);
    assert_eq!(c.timeouts.request_ms, 250);
    // The rest of a section keeps its defaults.
    assert_eq!(c.timeouts.connect_ms, Timeouts::default().connect_ms);
    assert_eq!(c.upstream_auth, Some(Auth { user: None, password: "pw".into() }));
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.listen, ProxyConfig::default().listen);
}

#[test]
fn flags_override_the_file() {
    let text = "listen: 127.0.0.1:1111\nseeds: [a:1]\nmetrics_listen: 127.0.0.1:2222\nlog_level: warn\n";
    let c = load_text("override", text, &[]).unwrap();
    assert_eq!((c.listen.as_str(), c.log_level.as_str()), ("127.0.0.1:1111", "warn"));
    let args = [
        "--listen",
        "127.0.0.1:6380",
        "--seeds",
        "127.0.0.1:7000, 127.0.0.1:7001",
        "--metrics-listen",
        "127.0.0.1:9180",
        "--log-level",
        "debug",
    ];
    let c = load_text("override2", text, &args).unwrap();
    assert_eq!(c.listen, "127.0.0.1:6380");
    assert_eq!(c.seeds, ["127.0.0.1:7000", "127.0.0.1:7001"]);
    assert_eq!(c.metrics_listen, "127.0.0.1:9180");
    assert_eq!(c.log_level, "debug");
    // A flag's value is validated like the file's.
    assert_eq!(err("override3", text, &["--listen", "x"]), "listen: invalid socket address 'x'");
}

#[test]
fn flag_parsing() {
    let f = flags(&["--config", "/etc/slotway.yaml", "--seeds", "a:1,b:2"]);
    assert_eq!(f.config.as_deref(), Some(Path::new("/etc/slotway.yaml")));
    assert_eq!(f.seeds, Some(vec!["a:1".to_string(), "b:2".to_string()]));
    assert_eq!(f.listen, None);
    assert!(Flags::try_parse_from(["slotway", "--bogus"]).is_err());
}

#[test]
fn yaml_errors_name_the_field_and_line() {
    let e = err("unknown", "seeds: [a:1]\ntimeouts:\n  request_ms: 5\n  requets_ms: 5\n", &[]);
    assert!(e.contains("unknown field `requets_ms`"), "{e}");
    assert!(e.contains("line 4"), "{e}");
    assert!(e.contains("slotway-config-"), "the file is named: {e}");
    let e = err("unknown-top", "seeds: [a:1]\nlisten_addr: x\n", &[]);
    assert!(e.contains("unknown field `listen_addr`") && e.contains("line 2"), "{e}");
    let e = err("type", "seeds: [a:1]\ntimeouts:\n  request_ms: soon\n", &[]);
    assert!(e.contains("timeouts.request_ms") && e.contains("line 3"), "{e}");
    let e = err("syntax", "seeds: [a:1\n", &[]);
    assert!(e.contains("line"), "{e}");
    let e = err("auth", "seeds: [a:1]\nupstream_auth:\n  user: u\n", &[]);
    assert!(e.contains("missing field `password`"), "{e}");
}

#[test]
fn missing_file_is_named() {
    let e = load(Some(Path::new("/nonexistent/slotway.yaml")), &Flags::default()).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().starts_with("cannot read config file '/nonexistent/slotway.yaml': "), "{e}");
}

#[test]
fn validation_names_the_field_and_the_reason() {
    let cases: &[(&str, &str)] = &[
        ("seeds: []\n", "seeds: at least one seed is required"),
        ("seeds: [nocolon]\n", "seeds[0]: 'nocolon' is not host:port"),
        ("seeds: [a:1, 'b:0']\n", "seeds[1]: 'b:0' has no valid port (1-65535)"),
        ("seeds: [a:1, 'b:x']\n", "seeds[1]: 'b:x' has no valid port (1-65535)"),
        ("listen: x\n", "listen: invalid socket address 'x'"),
        ("listen: localhost:6380\n", "listen: invalid socket address 'localhost:6380'"),
        ("metrics_listen: ':9'\n", "metrics_listen: invalid socket address ':9'"),
        ("metrics_listen: 127.0.0.1:6380\n", "metrics_listen: must differ from listen (127.0.0.1:6380)"),
        ("timeouts: {request_ms: 0}\n", "timeouts.request_ms: must be between 1 and 600000"),
        ("timeouts: {request_ms: 600001}\n", "timeouts.request_ms: must be between 1 and 600000"),
        ("timeouts: {connect_ms: 0}\n", "timeouts.connect_ms: must be between 1 and 600000"),
        ("timeouts: {shutdown_ms: 700000}\n", "timeouts.shutdown_ms: must be between 0 and 600000"),
        ("pool: {connections_per_node: 0}\n", "pool.connections_per_node: must be between 1 and 64"),
        ("pool: {queue_depth: 0}\n", "pool.queue_depth: must be between 1 and 1048576"),
        ("limits: {max_clients: 0}\n", "limits.max_clients: must be between 1 and 1048576"),
        ("workers: 0\n", "workers: must be between 1 and 256"),
        ("workers: 257\n", "workers: must be between 1 and 256"),
        ("limits: {max_pipeline: 0}\n", "limits.max_pipeline: must be between 1 and 1048576"),
        ("limits: {max_bulk_len: 10}\n", "limits.max_bulk_len: must be at least 1048576 (1 MiB)"),
        ("topology: {interval_ms: 5}\n", "topology.interval_ms: must be between 100 and 3600000"),
        (
            "topology: {interval_ms: 1000, min_interval_ms: 2000}\n",
            "topology.min_interval_ms: must not exceed topology.interval_ms",
        ),
        ("log_level: loud\n", "log_level: 'loud' is not one of error, warn, info, debug, trace"),
        ("upstream_auth: {password: ''}\n", "upstream_auth.password: must not be empty"),
        ("client_password: ''\n", "client_password: must not be empty (leave it out for no AUTH)"),
    ];
    let mut wrong = Vec::new();
    for (i, (text, want)) in cases.iter().enumerate() {
        // Seeds first so a case's own field is the one at fault (a case
        // that sets seeds replaces these).
        let full = if text.starts_with("seeds") { text.to_string() } else { format!("{SEEDS}{text}") };
        match load_text(&format!("v{i}"), &full, &[]) {
            Err(e) if e.to_string() == *want => {}
            other => wrong.push(format!("{text:?}: want {want:?}, got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Edge values that are fine.
    let ok = "seeds: ['[::1]:7000', redis-0.redis:6379]\ntimeouts: {request_ms: 600000, retry_ms: 0, shutdown_ms: 0}\nlisten: '[::1]:0'\nmetrics_listen: '[::1]:0'\n";
    load_text("edge", ok, &[]).unwrap();
}

/// A proxy whose config came from `file`, and a reloader over the same
/// file that records log level changes.
pub(crate) fn reloader(file: &TempFile, args: &[&str]) -> (Arc<Proxy>, Arc<Reloader>, Arc<Mutex<Vec<String>>>) {
    let mut f = flags(args);
    f.config = Some(file.0.clone());
    let proxy = Proxy::new(load(f.config.as_deref(), &f).unwrap());
    let levels = Arc::new(Mutex::new(Vec::new()));
    let seen = levels.clone();
    let setter: LogLevelSetter = Box::new(move |l| {
        seen.lock().push(l.to_string());
        Ok(())
    });
    (proxy.clone(), Arc::new(Reloader::new(f, proxy, setter)), levels)
}

#[test]
fn reload_refuses_a_bad_file_and_keeps_the_running_config() {
    let file = TempFile::new("reload-bad", &format!("{SEEDS}timeouts: {{request_ms: 100}}\n"));
    let (proxy, reloader, levels) = reloader(&file, &[]);
    let before = proxy.config.load_full();
    for bad in ["timeouts: {request_ms: 0}\nseeds: [a:1]\n", "seeds: [a:1\n", "nonsense: 1\n"] {
        file.write(bad);
        assert!(reloader.reload().is_err(), "{bad:?}");
        assert_eq!(proxy.config.load_full(), before);
    }
    file.write(&format!("{SEEDS}timeouts: {{request_ms: 0}}\n"));
    assert_eq!(reloader.reload().unwrap_err().to_string(), "timeouts.request_ms: must be between 1 and 600000");
    std::fs::remove_file(&file.0).unwrap();
    assert!(matches!(reloader.reload(), Err(ConfigError::Read { .. })));
    assert_eq!(proxy.config.load_full(), before);
    assert!(levels.lock().is_empty());
    assert_eq!(proxy.metrics.config_reloads.with_label_values(&["refused"]).get(), 5);
    assert_eq!(proxy.metrics.config_reloads.with_label_values(&["applied"]).get(), 0);
}

#[test]
fn reload_applies_a_good_file_and_keeps_the_listeners() {
    let file = TempFile::new("reload-good", &format!("{SEEDS}listen: 127.0.0.1:1111\n"));
    let (proxy, reloader, levels) = reloader(&file, &["--seeds", "127.0.0.1:7005"]);
    let report = reloader.reload().unwrap();
    assert_eq!(report, ReloadReport { changed: false, needs_restart: vec![] });
    assert_eq!(report.to_string(), "configuration reloaded, nothing changed");

    file.write(&format!(
        "{SEEDS}listen: 127.0.0.1:2222\nmetrics_listen: 127.0.0.1:3333\ntimeouts: {{request_ms: 42}}\nlog_level: debug\nworkers: 4\n"
    ));
    let report = reloader.reload().unwrap();
    assert!(report.changed);
    assert_eq!(
        report.needs_restart,
        [
            "listen: '127.0.0.1:2222' needs a restart to take effect; still '127.0.0.1:1111'",
            "metrics_listen: '127.0.0.1:3333' needs a restart to take effect; still '127.0.0.1:9180'",
            "workers: 4 needs a restart to take effect; still 1",
        ]
    );
    let now = proxy.config.load_full();
    assert_eq!(now.timeouts.request_ms, 42);
    assert_eq!(now.log_level, "debug");
    assert_eq!((now.listen.as_str(), now.metrics_listen.as_str()), ("127.0.0.1:1111", "127.0.0.1:9180"));
    assert_eq!(now.workers, 1);
    // The start-up flags still win over the file.
    assert_eq!(now.seeds, ["127.0.0.1:7005"]);
    assert_eq!(*levels.lock(), ["debug"]);
    assert_eq!(proxy.metrics.config_reloads.with_label_values(&["applied"]).get(), 2);
}
