//! The `slotway` binary as an operator runs it: a bad configuration is
//! refused at start-up with the field named; a good one serves the admin
//! endpoints (with no cluster behind the seeds: alive but not ready),
//! survives a SIGHUP with a broken file, reloads a fixed one, and exits 0
//! on SIGTERM or SIGINT within its shutdown deadline. In front of a real
//! one-node `redis-server` cluster it turns ready and shows the slot table.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use slotway_testkit::{free_port, require_tool, scratch_dir, workspace_bin, Server};

/// A `slotway` child, killed (by its own pid) if a test leaves it running.
struct Slotway {
    child: Child,
    log: PathBuf,
}

impl Slotway {
    fn start(args: &[&str], dir: &Path) -> Slotway {
        let log = dir.join("slotway.log");
        let child = Command::new(workspace_bin("slotway"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start slotway");
        Slotway { child, log }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Slotway {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// One HTTP/1.1 request; `None` when nothing listens or the answer is cut.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: slotway\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Runs `slotway` expecting it to refuse to start; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(workspace_bin("slotway")).args(args).output().expect("run slotway");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    err
}

#[test]
fn bad_configuration_refuses_to_start() {
    let dir = scratch_dir("proxy-ops-bad");
    let conf = dir.join("slotway.yaml");
    let conf_s = conf.to_str().unwrap();
    let write = |text: &str| std::fs::write(&conf, text).unwrap();

    write("seeds: [127.0.0.1:7000]\ntimeouts:\n  request_ms: 0\n");
    assert_eq!(refused(&["--config", conf_s]), "slotway: timeouts.request_ms: must be between 1 and 600000\n");

    write("listen: 127.0.0.1:6380\n");
    assert_eq!(refused(&["--config", conf_s]), "slotway: seeds: at least one seed is required\n");
    // ... which a flag can supply, and a flag's own value is checked too.
    assert_eq!(
        refused(&["--config", conf_s, "--seeds", "127.0.0.1:7000", "--listen", "x"]),
        "slotway: listen: invalid socket address 'x'\n"
    );

    write("seeds: [127.0.0.1:7000]\ntimeouts:\n  request_ms: 5\n  bogus: 1\n");
    let err = refused(&["--config", conf_s]);
    assert!(err.contains("unknown field `bogus`") && err.contains("line 4"), "{err}");

    let missing = dir.join("missing.yaml");
    let err = refused(&["--config", missing.to_str().unwrap()]);
    assert!(err.contains(&format!("cannot read config file '{}'", missing.display())), "{err}");

    // A listener that cannot be bound is named.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let metrics = format!("127.0.0.1:{}", free_port());
    let err = refused(&["--seeds", "127.0.0.1:7000", "--listen", &addr, "--metrics-listen", &metrics]);
    assert!(err.starts_with(&format!("slotway: listen: cannot bind {addr}")), "{err}");
    let listen = format!("127.0.0.1:{}", free_port());
    let err = refused(&["--seeds", "127.0.0.1:7000", "--listen", &listen, "--metrics-listen", &addr]);
    assert!(err.starts_with(&format!("slotway: metrics_listen: cannot bind {addr}")), "{err}");

    // Flags clap does not know: usage error, non-zero.
    let out = Command::new(workspace_bin("slotway")).arg("--bogus").output().unwrap();
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serves_admin_survives_bad_reload_and_stops_on_sigterm() {
    let dir = scratch_dir("proxy-ops-good");
    let conf = dir.join("slotway.yaml");
    let (listen, admin, seed) = (free_port(), free_port(), free_port());
    let good = format!(
        "listen: 127.0.0.1:{listen}\nmetrics_listen: 127.0.0.1:{admin}\nseeds: [127.0.0.1:{seed}]\ntimeouts:\n  shutdown_ms: 2000\n"
    );
    std::fs::write(&conf, &good).unwrap();
    let mut p = Slotway::start(&["--config", conf.to_str().unwrap()], &dir);

    wait_for("/healthz", || http(admin, "GET", "/healthz").is_some_and(|(s, _)| s == 200));
    assert_eq!(http(admin, "GET", "/healthz"), Some((200, "ok".into())));
    let (status, why) = http(admin, "GET", "/readyz").unwrap();
    assert_eq!(status, 503, "{why}");
    assert!(why.starts_with("not ready: "), "{why}");
    let (status, metrics) = http(admin, "GET", "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE slotway_"), "{metrics}");
    let (status, topology) = http(admin, "GET", "/topology").unwrap();
    assert_eq!(status, 200);
    assert!(topology.contains("\"version\":0"), "{topology}");
    assert_eq!(http(admin, "GET", "/nope").map(|(s, _)| s), Some(404));
    assert!(TcpStream::connect(("127.0.0.1", listen)).is_ok(), "the client listener is bound");

    // SIGHUP with a broken file: refused, logged, still serving.
    std::fs::write(&conf, format!("{good}  request_ms: 0\n")).unwrap();
    p.signal("HUP");
    wait_for("the refusal in the log", || p.log().contains("reload refused"));
    assert!(p.log().contains("timeouts.request_ms: must be between 1 and 600000"), "{}", p.log());
    assert!(p.running());
    assert_eq!(http(admin, "GET", "/healthz").map(|(s, _)| s), Some(200));
    std::fs::write(&conf, "seeds: [127.0.0.1:1\n").unwrap();
    p.signal("HUP");
    wait_for("the second refusal", || p.log().matches("reload refused").count() == 2);
    assert!(p.running());

    // POST /reload: 400 with the reason, then 200 once the file is fixed.
    let (status, body) = http(admin, "POST", "/reload").unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("line"), "{body}");
    std::fs::write(&conf, format!("{good}  request_ms: 250\n")).unwrap();
    assert_eq!(http(admin, "POST", "/reload"), Some((200, "configuration reloaded".into())));
    let (_, metrics) = http(admin, "GET", "/metrics").unwrap();
    assert!(metrics.contains("slotway_config_reloads_total{result=\"refused\"} 3"), "{metrics}");
    assert!(metrics.contains("slotway_config_reloads_total{result=\"applied\"} 1"), "{metrics}");

    // SIGTERM: exit 0 well within shutdown_ms (2 s) plus start-up slack.
    let asked = Instant::now();
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(4)).expect("exits within the shutdown deadline");
    assert!(status.success(), "{status:?}\n{}", p.log());
    assert!(asked.elapsed() < Duration::from_secs(4));
    let log = p.log();
    assert!(log.contains("SIGTERM: shutting down") && log.contains("slotway stopped"), "{log}");
    // Quiet by default: nothing about the admin requests at info.
    assert!(!log.contains("/healthz"), "{log}");
    assert_eq!(http(admin, "GET", "/healthz"), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flags_alone_and_sigint() {
    let dir = scratch_dir("proxy-ops-flags");
    let (listen, admin, seed) = (free_port(), free_port(), free_port());
    let (listen, admin_s, seed) =
        (format!("127.0.0.1:{listen}"), format!("127.0.0.1:{admin}"), format!("127.0.0.1:{seed}"));
    let mut p = Slotway::start(
        &["--listen", &listen, "--metrics-listen", &admin_s, "--seeds", &seed, "--log-level", "warn"],
        &dir,
    );
    wait_for("/healthz", || http(admin, "GET", "/healthz").is_some_and(|(s, _)| s == 200));
    // No file: a reload re-applies the flags and succeeds.
    assert_eq!(http(admin, "POST", "/reload").map(|(s, _)| s), Some(200));
    p.signal("INT");
    let status = p.wait_exit(Duration::from_secs(8)).expect("exits on SIGINT");
    assert!(status.success(), "{status:?}");
    // `warn` keeps even the start-up line out.
    assert!(!p.log().contains("serving clients"), "{}", p.log());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ready_in_front_of_a_real_cluster() {
    require_tool!("redis-server");
    let node = Server::redis(&["--cluster-enabled", "yes"]);
    let mut c = node.client();
    assert_eq!(c.cmd_str(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "+OK\r\n");
    let dir = scratch_dir("proxy-ops-ready");
    let (listen, admin) = (free_port(), free_port());
    let seed = format!("127.0.0.1:{}", node.port);
    let conf = dir.join("slotway.yaml");
    std::fs::write(&conf, format!("listen: 127.0.0.1:{listen}\nmetrics_listen: 127.0.0.1:{admin}\nseeds: [{seed}]\n"))
        .unwrap();
    let mut p = Slotway::start(&["--config", conf.to_str().unwrap()], &dir);
    wait_for("/readyz 200", || http(admin, "GET", "/readyz").is_some_and(|(s, _)| s == 200));
    assert_eq!(http(admin, "GET", "/readyz"), Some((200, "ready".into())));
    let (status, topology) = http(admin, "GET", "/topology").unwrap();
    assert_eq!(status, 200);
    let want = format!("\"master\":\"{seed}\"");
    assert!(topology.contains(&want) && topology.contains("\"slots\":[[0,16383]]"), "{topology}");
    assert!(topology.contains("\"unassigned_slots\":0") && topology.contains("\"version\":1"), "{topology}");
    let (_, metrics) = http(admin, "GET", "/metrics").unwrap();
    assert!(metrics.contains("slotway_slot_table_version 1"), "{metrics}");

    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(5)).expect("exits on SIGTERM").success(), "{}", p.log());
    let _ = std::fs::remove_dir_all(&dir);
}
