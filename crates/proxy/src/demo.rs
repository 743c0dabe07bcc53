//! `slotway demo`: a whole cluster on one machine with one command.
//!
//! Six shard nodes start as child processes ([`nodes`]) on 127.0.0.1,
//! ports `--base-port`..+5 (bus ports 10000 higher); `slotway_ctl::create`
//! forms three masters with one replica each, exactly as `redis-cli
//! --cluster create --cluster-replicas 1` would; then the proxy runs in
//! this process in front of them, as `slotway --seeds <the six nodes>`
//! would, and the demo prints how to connect. SIGINT or SIGTERM (Ctrl-C)
//! drains the proxy, stops exactly the children started here and removes
//! the work directory. A node that exits, or a port already taken, stops
//! everything with a message saying which.
//!
//! The shard binary is `slotway-shard` next to this program (built on first
//! use under `cargo run`, which only builds this package's binary), or
//! `--shard-bin` (a `redis-server` works: the nodes get a redis.conf-syntax
//! file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use slotway_ctl::create::{CreateOptions, Layout, Role};
use slotway_proxy::config::{self, Flags, ProxyConfig};
use slotway_proxy::state::Proxy;
use tokio::time::Instant;

use crate::{finish, init_logging, serve, Listeners, Signals};

mod nodes;

use nodes::Nodes;

/// Three masters with one replica each.
const NODES: u16 = 6;
const REPLICAS: usize = 1;
/// How long the nodes get to answer PING after they start.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the proxy gets to see every slot served once the cluster is up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where clients connect.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6380")]
    listen: String,
    /// Where `/metrics`, `/healthz`, `/readyz` and `/topology` are served.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9180")]
    metrics_listen: String,
    /// The first of the six node ports; their cluster bus ports are 10000 higher.
    #[arg(long, value_name = "PORT", default_value_t = 7000)]
    base_port: u16,
    /// The node server to run (default: slotway-shard next to this program);
    /// `redis-server` works too.
    #[arg(long, value_name = "PATH")]
    shard_bin: Option<PathBuf>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    log_level: String,
}

pub fn main(args: DemoArgs) -> ExitCode {
    let ports = match node_ports(args.base_port) {
        Ok(ports) => ports,
        Err(e) => {
            eprintln!("slotway demo: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // The proxy's own configuration, as if started with these flags; a
    // reload (SIGHUP) re-applies them.
    let flags = Flags {
        listen: Some(args.listen.clone()),
        metrics_listen: Some(args.metrics_listen.clone()),
        seeds: Some(ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()),
        log_level: Some(args.log_level.clone()),
        ..Flags::default()
    };
    let config = match config::load(None, &flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("slotway demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let set_log_level = init_logging(&config.log_level);
    let bin = match shard_bin(args.shard_bin.as_deref()) {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("slotway demo: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slotway demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&bin, &ports, config, flags, set_log_level));
    finish(runtime, outcome)
}

async fn run(
    bin: &Path,
    ports: &[u16],
    config: ProxyConfig,
    flags: Flags,
    set_log_level: config::LogLevelSetter,
) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    // Every port is claimed or checked before any process starts, so a
    // taken one costs nothing to clean up.
    let listeners = Listeners::bind(&config).await?;
    let client_addr = listeners.clients.local_addr().context("the client listener's address")?;
    let admin_addr = listeners.admin.local_addr().context("the admin listener's address")?;
    check_ports_free(ports)?;

    let mut nodes = Nodes::new(std::env::temp_dir().join(format!("slotway-demo-{}", std::process::id())))?;
    let started = tokio::select! {
        r = start_cluster(&mut nodes, bin, ports) => Some(r),
        _ = signals.stop() => None,
    };
    let outcome = match started {
        None => {
            println!("interrupted while starting");
            Ok(())
        }
        Some(Err(e)) => Err(e),
        Some(Ok(layout)) => {
            let watch = |proxy| announce_and_watch(proxy, &mut nodes, layout, client_addr, admin_addr);
            let served = serve(config, flags, set_log_level, listeners, &mut signals, watch).await;
            println!("the proxy has stopped");
            served
        }
    };
    println!("stopping the {} nodes", nodes.list.len());
    nodes.stop().await;
    println!("stopped");
    outcome
}

/// Starts the nodes and forms the cluster.
async fn start_cluster(nodes: &mut Nodes, bin: &Path, ports: &[u16]) -> anyhow::Result<Layout> {
    println!(
        "starting {} nodes ({}) on 127.0.0.1:{}-{}, work directory {}",
        ports.len(),
        bin.display(),
        ports[0],
        ports[ports.len() - 1],
        nodes.root.display()
    );
    for &port in ports {
        nodes.spawn(bin, port)?;
    }
    nodes.wait_ready(START_TIMEOUT).await?;
    println!("forming the cluster: {} masters with {REPLICAS} replica each", ports.len() / (REPLICAS + 1));
    let addrs = nodes.addrs();
    let opts = CreateOptions { replicas: REPLICAS, ..CreateOptions::default() };
    tokio::select! {
        r = slotway_ctl::create(&addrs, &opts) => r.context("cannot form the cluster"),
        e = nodes.watch() => Err(e),
    }
}

/// Waits for the proxy to see every slot served, prints how to use the
/// demo, then watches the nodes: ends (with the error) only if one exits.
async fn announce_and_watch(
    proxy: Arc<Proxy>,
    nodes: &mut Nodes,
    layout: Layout,
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
) -> anyhow::Error {
    let deadline = Instant::now() + READY_TIMEOUT;
    let every = Duration::from_millis(50);
    let mut ready = false;
    for _ in 0..READY_TIMEOUT.as_millis() / every.as_millis() + 2 {
        if proxy.ready() {
            ready = true;
            break;
        }
        if let Err(e) = nodes.check() {
            return e;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(every).await;
    }
    if !ready {
        return anyhow::anyhow!(
            "the proxy did not see all 16384 slots served within {} s (see /topology on {admin_addr})",
            READY_TIMEOUT.as_secs()
        );
    }
    println!("{}", banner(&layout, nodes, client_addr, admin_addr));
    nodes.watch().await
}

fn banner(layout: &Layout, nodes: &Nodes, client_addr: SocketAddr, admin_addr: SocketAddr) -> String {
    let mut out = String::from("\nThe cluster is up:\n");
    for placed in &layout.nodes {
        let pid = nodes.list.iter().find(|n| n.addr() == placed.addr).map(|n| n.pid).unwrap_or_default();
        let role = match &placed.role {
            Role::Master { first, last } => format!("master   slots {first}-{last}"),
            Role::Replica { master } => format!("replica  of {master}"),
        };
        out.push_str(&format!("  {:<16} {:<28} pid {pid}\n", placed.addr, role));
    }
    let cli = if client_addr.ip().is_loopback() && client_addr.is_ipv4() {
        format!("redis-cli -p {}", client_addr.port())
    } else {
        format!("redis-cli -h {} -p {}", client_addr.ip(), client_addr.port())
    };
    out.push_str(&format!(
        "\nslotway serves it on {client_addr}. Connect with a plain client (no -c):\n    {cli}\n\
         Metrics:\n    curl -s http://{admin_addr}/metrics\n\
         Ctrl-C stops the proxy and the {} nodes.",
        layout.nodes.len()
    ));
    out
}

/// The six node ports from `base`; their bus ports must exist too.
fn node_ports(base: u16) -> anyhow::Result<Vec<u16>> {
    let last = u32::from(base) + u32::from(NODES) - 1;
    if base == 0 || last + 10000 > u32::from(u16::MAX) {
        anyhow::bail!(
            "--base-port {base}: the nodes need ports {base}-{last} and cluster bus ports {}-{}, \
             all between 1 and 65535",
            u32::from(base) + 10000,
            last + 10000
        );
    }
    Ok((base..base + NODES).collect())
}

/// Fails, naming the port, if a node port or its bus port is taken.
fn check_ports_free(ports: &[u16]) -> anyhow::Result<()> {
    for &port in ports {
        for p in [port, port + 10000] {
            if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", p)) {
                anyhow::bail!("port 127.0.0.1:{p} is taken ({e}); choose other node ports with --base-port");
            }
        }
    }
    Ok(())
}

/// `--shard-bin`, else `slotway-shard` next to this program. Under `cargo
/// run` (which builds only the `slotway` binary) a missing one is built
/// with the same cargo and profile.
fn shard_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if path.components().count() == 1 {
            // A bare name (`redis-server`): found on PATH when started.
            return Ok(path.to_path_buf());
        }
        // The nodes start in their own folders, where a relative path
        // would name something else. Symlinks stay as they are:
        // redis-server is a link to redis-check-rdb and picks its mode by
        // the name it was started with.
        let absolute = std::path::absolute(path).with_context(|| format!("--shard-bin {}", path.display()))?;
        if !absolute.is_file() {
            anyhow::bail!("--shard-bin {}: no such file", path.display());
        }
        return Ok(absolute);
    }
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe.parent().context("this program's path has no folder")?;
    let path = dir.join("slotway-shard");
    if path.exists() {
        return Ok(path);
    }
    let missing = || {
        anyhow::anyhow!(
            "slotway-shard not found next to {}; build it (cargo build --release --bin slotway-shard) \
             or name a server with --shard-bin",
            exe.display()
        )
    };
    let (Some(cargo), Some(manifest)) = (std::env::var_os("CARGO"), std::env::var_os("CARGO_MANIFEST_DIR")) else {
        return Err(missing());
    };
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", "slotway-shard", "--bin", "slotway-shard", "--manifest-path"]);
    build.arg(Path::new(&manifest).join("Cargo.toml"));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
        None => return Err(missing()),
    }
    println!("building slotway-shard (first run under cargo run)");
    let status = build.status().context("cannot run cargo to build slotway-shard")?;
    if !status.success() || !path.exists() {
        anyhow::bail!("building slotway-shard failed ({status})");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_bin_paths_are_made_absolute_keeping_links() {
        assert_eq!(shard_bin(Some(Path::new("redis-server"))).unwrap(), PathBuf::from("redis-server"));
        let here = std::env::current_dir().unwrap();
        let relative = Path::new(".").join("Cargo.toml");
        assert_eq!(shard_bin(Some(&relative)).unwrap(), here.join("Cargo.toml"));
        assert!(shard_bin(Some(Path::new("./no-such-server"))).is_err());
        // A link keeps its own name (redis-server -> redis-check-rdb).
        let dir = std::env::temp_dir().join(format!("slotway-demo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("server-link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(here.join("Cargo.toml"), &link).unwrap();
        let got = shard_bin(Some(&link));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.unwrap(), link);
    }

    #[test]
    fn node_ports_leave_room_for_bus_ports() {
        assert_eq!(node_ports(7000).unwrap(), vec![7000, 7001, 7002, 7003, 7004, 7005]);
        assert!(node_ports(55530).is_ok());
        assert!(node_ports(55531).is_err());
        assert!(node_ports(0).is_err());
    }
}
