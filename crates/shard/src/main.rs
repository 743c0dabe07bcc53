//! `slotway-shard [config-file] [--directive value ...]`, like redis-server.
//!
//! Start-up order follows redis-server: configuration (which `chdir`s into
//! `dir` as it is read), daemonizing, the log, the pidfile, then the
//! server. Forking happens before the tokio runtime exists, since a fork
//! keeps only the calling thread.

use std::fmt;
use std::fs::OpenOptions;
use std::process::ExitCode;

use slotway_shard::config::{Config, LoadError};
use slotway_shard::server;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// jemalloc, as redis-server uses: it keeps fragmentation low under churn,
/// and its statistics give INFO's `used_memory` and the `maxmemory` check.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Where Redis puts the pidfile of a daemon that names none.
const DEFAULT_PIDFILE: &str = "/var/run/redis.pid";

fn usage() -> String {
    let me = "./slotway-shard";
    format!(
        "Usage: {me} [/path/to/redis.conf] [options] [-]\n       \
         {me} - (read config from stdin)\n       \
         {me} -v or --version\n       \
         {me} -h or --help\n\n\
         Examples:\n       \
         {me} (run the server with default conf)\n       \
         echo 'maxmemory 128mb' | {me} -\n       \
         {me} /etc/redis/6379.conf\n       \
         {me} --port 7777\n       \
         {me} --port 7777 --replicaof 127.0.0.1 8888\n       \
         {me} /etc/myredis.conf --loglevel verbose -\n       \
         {me} /etc/myredis.conf --loglevel verbose\n"
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v" | "--version") => {
            println!(
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=slotway-shard-{}",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Some("-h" | "--help") => {
            eprint!("{}", usage());
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    if slotway_shard::config::reads_stdin(&args) {
        println!("{}:C {} # Reading config from stdin", std::process::id(), log_time());
    }
    let mut config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e @ (LoadError::Line(_) | LoadError::Check(_))) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Err(LoadError::Open(e)) => {
            println!("{}:C {} # {e}", std::process::id(), log_time());
            return ExitCode::FAILURE;
        }
    };
    if config.daemonize && config.pidfile.is_empty() {
        if let Some(i) = slotway_shard::config::find(b"pidfile") {
            let _ = config.set_value(i, DEFAULT_PIDFILE);
            config.refresh();
        }
    }
    if config.daemonize {
        // nochdir: `dir` has been entered already; stdio goes to /dev/null.
        if let Err(e) = nix::unistd::daemon(true, false) {
            eprintln!("daemonize failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = init_log(&config) {
        eprintln!("Can't open the log file: {}", slotway_shard::config::io_reason(&e));
        return ExitCode::FAILURE;
    }
    let pid = std::process::id();
    tracing::warn!("oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo");
    tracing::warn!("Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid={pid}, just started");
    if config.file.is_none() {
        tracing::warn!("Warning: no config file specified, using the default config.");
    } else {
        tracing::warn!("Configuration loaded");
    }
    let pidfile = (!config.pidfile.is_empty()).then(|| config.pidfile.clone());
    if let Some(path) = &pidfile {
        if let Err(e) = std::fs::write(path, format!("{pid}\n")) {
            tracing::warn!("Failed to write PID file: {e}");
        }
    }
    let code = serve(config);
    if let Some(path) = &pidfile {
        let _ = std::fs::remove_file(path);
    }
    code
}

fn serve(config: Config) -> ExitCode {
    // As Redis, one thread runs the event loop unless `io-threads` asks
    // for more: commands take the keyspace lock one at a time anyway, and
    // a second worker mostly adds cross-thread wake-ups (SET -P 16 on two
    // cores: ~570k/s with two workers, ~700k/s with one). That one thread
    // is this one, under the current-thread scheduler: no work-stealing
    // queues to synchronise (SET -P 16: 2.4 µs of CPU per request with the
    // multi-thread scheduler's single worker, 2.2 µs without).
    let workers = config.int("io-threads").clamp(1, 128) as usize;
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shared = server::Shared::new(config);
    // As Redis: the AOF, when on, is the source of truth at start;
    // otherwise the RDB file.
    if !shared.config.load().appendonly {
        if let Err(e) = slotway_shard::persist::snapshot::load_at_start(&shared) {
            tracing::warn!("Fatal error loading the DB: {e}. Exiting.");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = slotway_shard::aof::start(&shared) {
        tracing::warn!("{e}");
        return ExitCode::FAILURE;
    }
    let signals = shared.clone();
    let shared_run = shared.clone();
    let result = runtime.block_on(async move {
        tokio::spawn(async move {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("cannot handle SIGTERM: {e}");
                    return;
                }
            };
            // As Redis: each signal starts the same shutdown as SHUTDOWN
            // (which may wait for replicas, or fail to save and go on
            // serving); a second SIGINT while one is in progress exits.
            loop {
                let sigint = tokio::select! {
                    _ = term.recv() => false,
                    _ = tokio::signal::ctrl_c() => true,
                };
                if sigint && signals.shutdown_state.in_progress() {
                    tracing::warn!("You insist... exiting now.");
                    std::process::exit(1);
                }
                tracing::warn!("Received {} scheduling shutdown...", if sigint { "SIGINT" } else { "SIGTERM" });
                slotway_shard::shutdown::on_signal(&signals, sigint);
            }
        });
        server::run(shared_run).await
    });
    // A signal (or SHUTDOWN, which has saved already) ended the server:
    // the final save when save rules exist.
    {
        let cfg = shared.config.load();
        let mut store = shared.store.lock();
        if slotway_shard::persist::snapshot::final_save(&shared, &mut store, &cfg, None).is_err() {
            tracing::warn!("Error trying to save the DB. Exit anyway.");
        }
    }
    slotway_shard::aof::shutdown(&shared);
    match result {
        Ok(()) => {
            tracing::warn!("Redis is now ready to exit, bye bye...");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::warn!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `logfile` (appended to), stdout when empty, nowhere for a daemon
/// without one (its stdout is /dev/null), at the `loglevel` threshold.
fn init_log(config: &Config) -> std::io::Result<()> {
    let level = tracing_level(&config.loglevel);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => tracing_subscriber::EnvFilter::new(spec),
        _ => tracing_subscriber::EnvFilter::new(level.as_str().to_ascii_lowercase()),
    };
    let writer = if !config.logfile.is_empty() {
        let file = OpenOptions::new().create(true).append(true).open(&config.logfile)?;
        BoxMakeWriter::new(std::sync::Mutex::new(file))
    } else if config.daemonize {
        BoxMakeWriter::new(std::io::sink)
    } else {
        BoxMakeWriter::new(std::io::stdout)
    };
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(filter)
        .event_format(RedisFormat)
        .with_writer(writer)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder.init();
    // CONFIG SET loglevel reaches the running logger through this hook.
    let _ = slotway_shard::config::LOG_LEVEL_HOOK.set(Box::new(move |level: &str| {
        let _ = handle.reload(tracing_subscriber::EnvFilter::new(tracing_level(level).as_str().to_ascii_lowercase()));
    }));
    Ok(())
}

/// Redis's levels onto tracing's: debug is the chattiest, notice the
/// default.
fn tracing_level(loglevel: &str) -> Level {
    match loglevel {
        "debug" => Level::TRACE,
        "verbose" => Level::DEBUG,
        "warning" => Level::WARN,
        _ => Level::INFO,
    }
}

/// redis-server's log line: `pid:M 01 Dec 2026 21:35:17.419 * message`,
/// the mark being `.` debug, `-` verbose, `*` notice, `#` warning.
struct RedisFormat;

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mark = match *event.metadata().level() {
            Level::ERROR | Level::WARN => '#',
            Level::INFO => '*',
            Level::DEBUG => '-',
            Level::TRACE => '.',
        };
        write!(w, "{}:M {} {mark} ", std::process::id(), log_time())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// The current UTC time as `01 Dec 2026 21:35:17.419`.
fn log_time() -> String {
    let ms = slotway_shard::server::unix_ms();
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let name = MONTHS.get((month - 1) as usize).copied().unwrap_or("Jan");
    format!(
        "{day:02} {name} {year} {:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}
