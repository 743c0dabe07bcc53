//! `slotway [--config slotway.yaml] [--listen ..] [--seeds ..] [--metrics-listen ..] [--log-level ..]`,
//! or `slotway demo [..]` (see [`demo`]: six local nodes, a cluster, the
//! proxy in front).
//!
//! Start-up: flags → configuration (exit 1 naming the bad field) → logging →
//! both listeners bound (exit 1 naming the address) → the admin server and
//! the proxy run. SIGHUP reloads the configuration; SIGTERM or SIGINT
//! cancels `proxy.shutdown`, waits up to `timeouts.shutdown_ms` for the
//! sessions to drain, then exits 0.

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use slotway_proxy::config::{self, Flags, ProxyConfig, Reloader};
use slotway_proxy::state::Proxy;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

mod demo;

/// jemalloc, as the shard uses: low fragmentation under connection churn.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The proxy's flags, or a subcommand with its own (not both: a flag
/// before `demo` would be ambiguous).
#[derive(Debug, clap::Parser)]
#[command(
    name = "slotway",
    version,
    about = "Plain Redis clients on one address in front of a Redis Cluster",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Start six local shard nodes, form a cluster of three masters with one
    /// replica each, and run the proxy in front of it until Ctrl-C.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo(args)) => demo::main(args),
        None => proxy_main(cli.flags),
    }
}

fn proxy_main(flags: Flags) -> ExitCode {
    let config = match config::load(flags.config.as_deref(), &flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("slotway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let set_log_level = init_logging(&config.log_level);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slotway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(config, flags, set_log_level));
    finish(runtime, outcome)
}

/// Drops the runtime and turns the outcome into the exit code.
fn finish(runtime: tokio::runtime::Runtime, outcome: anyhow::Result<()>) -> ExitCode {
    // Sessions past the deadline are dropped with the runtime; do not wait
    // on a straggling blocking task either.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slotway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Our own crates log at `level`, everything else at `warn`: at `info` that
/// is start-up, shutdown, reloads and topology refreshes, nothing per
/// request.
fn filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("warn,slotway={level},slotway_proxy={level},slotway_ctl={level}"))
}

fn init_logging(level: &str) -> config::LogLevelSetter {
    let (layer, handle) = reload::Layer::new(filter(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    tracing_subscriber::registry().with(layer).with(fmt).init();
    Box::new(move |level| handle.reload(filter(level)).map_err(|e| e.to_string()))
}

/// The signals the process handles, installed before anything can send
/// them: SIGHUP's default action would kill the process.
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

/// Why the process is stopping.
enum Stop {
    Terminate,
    Interrupt,
}

/// A signal that arrived.
enum Got {
    Hangup,
    Stop(Stop),
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup()).context("install the SIGHUP handler")?,
            terminate: signal(SignalKind::terminate()).context("install the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("install the SIGINT handler")?,
        })
    }

    /// The next signal handled.
    async fn next(&mut self) -> Got {
        tokio::select! {
            _ = self.hangup.recv() => Got::Hangup,
            _ = self.terminate.recv() => Got::Stop(Stop::Terminate),
            _ = self.interrupt.recv() => Got::Stop(Stop::Interrupt),
        }
    }

    /// The next SIGTERM or SIGINT.
    async fn stop(&mut self) -> Stop {
        tokio::select! {
            _ = self.terminate.recv() => Stop::Terminate,
            _ = self.interrupt.recv() => Stop::Interrupt,
        }
    }
}

/// Both listeners of the proxy, bound.
struct Listeners {
    clients: TcpListener,
    admin: TcpListener,
}

impl Listeners {
    async fn bind(config: &ProxyConfig) -> anyhow::Result<Listeners> {
        let clients = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("listen: cannot bind {}", config.listen))?;
        let admin = TcpListener::bind(&config.metrics_listen)
            .await
            .with_context(|| format!("metrics_listen: cannot bind {}", config.metrics_listen))?;
        Ok(Listeners { clients, admin })
    }
}

async fn run(config: ProxyConfig, flags: Flags, set_log_level: config::LogLevelSetter) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    let listeners = Listeners::bind(&config).await?;
    serve(config, flags, set_log_level, listeners, &mut signals, |_| std::future::pending()).await
}

/// Runs the proxy until SIGTERM/SIGINT (then drains and returns `Ok`) or
/// until `watch`'s future ends (then drains and returns its error): the
/// demo watches its nodes with it.
async fn serve<W, F>(
    config: ProxyConfig,
    flags: Flags,
    set_log_level: config::LogLevelSetter,
    listeners: Listeners,
    signals: &mut Signals,
    watch: W,
) -> anyhow::Result<()>
where
    W: FnOnce(Arc<Proxy>) -> F,
    F: Future<Output = anyhow::Error>,
{
    let Listeners { clients: listener, admin: admin_listener } = listeners;
    tracing::info!(
        "slotway {} serving clients on {}, admin on {}, seeds {}",
        env!("CARGO_PKG_VERSION"),
        local(&listener, &config.listen),
        local(&admin_listener, &config.metrics_listen),
        config.seeds.join(",")
    );

    let proxy = Proxy::new(config);
    let reloader = Arc::new(Reloader::new(flags, proxy.clone(), set_log_level));
    let admin = tokio::spawn(slotway_proxy::admin::serve(admin_listener, proxy.clone(), reloader.clone()));
    let mut serving = tokio::spawn(proxy.clone().run(listener));
    let watched = watch(proxy.clone());
    tokio::pin!(watched);

    let failure = loop {
        tokio::select! {
            got = signals.next() => match got {
                Got::Hangup => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let reloader = reloader.clone();
                    // Outcome already logged by the reloader.
                    let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
                }
                Got::Stop(Stop::Terminate) => { tracing::info!("SIGTERM: shutting down"); break None; }
                Got::Stop(Stop::Interrupt) => { tracing::info!("SIGINT: shutting down"); break None; }
            },
            e = &mut watched => break Some(e),
            done = &mut serving => {
                proxy.shutdown.cancel();
                return match done {
                    Ok(()) => Err(anyhow::anyhow!("the client listener stopped unexpectedly")),
                    Err(e) => Err(anyhow::anyhow!("the proxy task failed: {e}")),
                };
            }
        }
    };

    proxy.shutdown.cancel();
    let grace = Duration::from_millis(proxy.config.load().timeouts.shutdown_ms);
    tokio::select! {
        drained = tokio::time::timeout(grace, &mut serving) => match drained {
            Ok(_) => tracing::info!("all sessions drained"),
            Err(_) => tracing::warn!("sessions still open after {} ms; closing them", grace.as_millis()),
        },
        // An operator who asks twice does not want to wait.
        stop = signals.stop() => match stop {
            Stop::Terminate => tracing::warn!("second SIGTERM: closing open sessions now"),
            Stop::Interrupt => tracing::warn!("second SIGINT: closing open sessions now"),
        },
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), admin).await;
    tracing::info!("slotway stopped");
    match failure {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// The bound address (the port the OS chose for `:0`), else as configured.
fn local(listener: &TcpListener, configured: &str) -> String {
    listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| configured.to_string())
}
