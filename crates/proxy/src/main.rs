//! `slotway [--config slotway.yaml] [--listen ..] [--seeds ..] [--metrics-listen ..] [--log-level ..]`.
//!
//! Start-up: flags → configuration (exit 1 naming the bad field) → logging →
//! both listeners bound (exit 1 naming the address) → the admin server and
//! the proxy run. SIGHUP reloads the configuration; SIGTERM or SIGINT
//! cancels `proxy.shutdown`, waits up to `timeouts.shutdown_ms` for the
//! sessions to drain, then exits 0.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use slotway_proxy::config::{self, Flags, ProxyConfig, Reloader};
use slotway_proxy::state::Proxy;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

/// jemalloc, as the shard uses: low fragmentation under connection churn.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let flags = Flags::parse();
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
    EnvFilter::new(format!("warn,slotway={level},slotway_proxy={level}"))
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

async fn run(config: ProxyConfig, flags: Flags, set_log_level: config::LogLevelSetter) -> anyhow::Result<()> {
    // Installed before anything can send them: SIGHUP's default would
    // kill the process.
    let mut hangup = signal(SignalKind::hangup()).context("install the SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;

    let listener =
        TcpListener::bind(&config.listen).await.with_context(|| format!("listen: cannot bind {}", config.listen))?;
    let admin_listener = TcpListener::bind(&config.metrics_listen)
        .await
        .with_context(|| format!("metrics_listen: cannot bind {}", config.metrics_listen))?;
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

    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                let reloader = reloader.clone();
                // Outcome already logged by the reloader.
                let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            }
            _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            done = &mut serving => {
                proxy.shutdown.cancel();
                return match done {
                    Ok(()) => Err(anyhow::anyhow!("the client listener stopped unexpectedly")),
                    Err(e) => Err(anyhow::anyhow!("the proxy task failed: {e}")),
                };
            }
        }
    }

    proxy.shutdown.cancel();
    let grace = Duration::from_millis(proxy.config.load().timeouts.shutdown_ms);
    tokio::select! {
        drained = tokio::time::timeout(grace, &mut serving) => match drained {
            Ok(_) => tracing::info!("all sessions drained"),
            Err(_) => tracing::warn!("sessions still open after {} ms; closing them", grace.as_millis()),
        },
        // An operator who asks twice does not want to wait.
        _ = terminate.recv() => tracing::warn!("second SIGTERM: closing open sessions now"),
        _ = interrupt.recv() => tracing::warn!("second SIGINT: closing open sessions now"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), admin).await;
    tracing::info!("slotway stopped");
    Ok(())
}

/// The bound address (the port the OS chose for `:0`), else as configured.
fn local(listener: &TcpListener, configured: &str) -> String {
    listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| configured.to_string())
}
