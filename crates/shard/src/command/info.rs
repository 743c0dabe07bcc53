//! INFO: the sections and fields of Redis 7.0.15, in its order, with this
//! server's real figures where it has them and Redis's idle values for the
//! subsystems that are not built yet (persistence, replication, modules).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Cmd, Ctx};
use crate::error::CmdResult;
use crate::server::unix_ms;

mod system;

pub const COMMANDS: &[Cmd] = &[Cmd { name: "info", run: info }];

/// Every section in output order, and whether plain `INFO` includes it.
pub const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut wanted = [false; SECTIONS.len()];
    if args.len() == 1 {
        wanted.iter_mut().zip(SECTIONS).for_each(|(w, s)| *w = s.1);
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "all" | "everything" => wanted = [true; SECTIONS.len()],
            "default" => wanted.iter_mut().zip(SECTIONS).for_each(|(w, s)| *w |= s.1),
            name => {
                if let Some(i) = SECTIONS.iter().position(|s| s.0 == name) {
                    wanted[i] = true;
                }
            }
        }
    }
    let text = render(ctx, &wanted);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// The INFO text for the chosen sections (indexed like [`SECTIONS`]).
pub fn render(ctx: &Ctx<'_>, wanted: &[bool]) -> String {
    let mut out = String::with_capacity(4096);
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !wanted.get(i).copied().unwrap_or(false) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = name.to_string();
        title[..1].make_ascii_uppercase();
        if *name == "cpu" {
            title = "CPU".into();
        }
        let _ = write!(out, "# {title}\r\n");
        let mut s = Section(&mut out);
        match *name {
            "server" => server(ctx, &mut s),
            "clients" => clients(ctx, &mut s),
            "memory" => memory(ctx, &mut s),
            "persistence" => persistence(ctx, &mut s),
            "stats" => stats(ctx, &mut s),
            "replication" => replication(ctx, &mut s),
            "cpu" => system::cpu(&mut s),
            "commandstats" => commandstats(ctx, &mut s),
            "cluster" => s.f("cluster_enabled", ctx.config.cluster_enabled as u8),
            "keyspace" => keyspace(ctx, &mut s),
            // Modules, errorstats (not counted per error code yet) and
            // latencystats (no histograms yet) are printed empty.
            _ => {}
        }
    }
    out
}

pub struct Section<'a>(&'a mut String);

impl Section<'_> {
    pub fn f(&mut self, name: &str, v: impl std::fmt::Display) {
        let _ = write!(self.0, "{name}:{v}\r\n");
    }
}

/// Redis's `bytesToHuman`.
pub fn human(n: u64) -> String {
    let n = n as f64;
    const K: f64 = 1024.0;
    match n {
        n if n < K => format!("{n}B"),
        n if n < K * K => format!("{:.2}K", n / K),
        n if n < K * K * K => format!("{:.2}M", n / (K * K)),
        n if n < K * K * K * K => format!("{:.2}G", n / (K * K * K)),
        n if n < K * K * K * K * K => format!("{:.2}T", n / (K * K * K * K)),
        n => format!("{:.2}P", n / (K * K * K * K * K)),
    }
}

/// 40 hex characters, fixed for the life of the process.
fn replid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect())
}

fn server(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let cfg = ctx.config;
    let up = ctx.shared.uptime().as_secs();
    s.f("redis_version", "7.0.15");
    s.f("redis_git_sha1", "00000000");
    s.f("redis_git_dirty", 0);
    s.f("redis_build_id", "5107e2a4f3d8c6b1");
    s.f("redis_mode", if cfg.cluster_enabled { "cluster" } else { "standalone" });
    s.f("os", system::os());
    s.f("arch_bits", usize::BITS);
    s.f("monotonic_clock", "POSIX clock_gettime");
    s.f("multiplexing_api", "epoll");
    s.f("atomicvar_api", "c11-builtin");
    s.f("gcc_version", "0.0.0");
    s.f("process_id", std::process::id());
    s.f("process_supervised", "no");
    s.f("run_id", &ctx.shared.run_id);
    s.f("tcp_port", ctx.shared.port.load(Ordering::Relaxed));
    s.f("server_time_usec", ctx.now * 1000);
    s.f("uptime_in_seconds", up);
    s.f("uptime_in_days", up / 86400);
    s.f("hz", cfg.hz);
    s.f("configured_hz", cfg.hz);
    s.f("lru_clock", (ctx.now / 1000) & ((1 << 24) - 1));
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    s.f("executable", exe);
    s.f("config_file", cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
    s.f("io_threads_active", 0);
}

fn clients(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    s.f("connected_clients", ctx.shared.clients.lock().len());
    s.f("cluster_connections", 0);
    s.f("maxclients", ctx.config.maxclients);
    s.f("client_recent_max_input_buffer", 0);
    s.f("client_recent_max_output_buffer", 0);
    s.f("blocked_clients", ctx.store.blocked_clients());
    s.f("tracking_clients", 0);
    s.f("clients_in_timeout_table", 0);
}

/// Memory figures remembered between INFO calls: the peak, and the usage
/// seen first, which stands in for Redis's `used_memory_startup`.
static PEAK: Mutex<(u64, u64)> = Mutex::new((0, 0));

fn memory(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let used = crate::memory::used_bytes();
    let rss = crate::memory::resident_bytes().max(system::rss_bytes());
    let (peak, startup) = {
        let mut p = PEAK.lock();
        if p.1 == 0 {
            p.1 = used;
        }
        p.0 = p.0.max(used);
        *p
    };
    let pct = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 * 100.0 / b as f64 };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let total = system::total_memory();
    let maxmemory = ctx.config.maxmemory;
    let dataset = used.saturating_sub(startup);
    s.f("used_memory", used);
    s.f("used_memory_human", human(used));
    s.f("used_memory_rss", rss);
    s.f("used_memory_rss_human", human(rss));
    s.f("used_memory_peak", peak);
    s.f("used_memory_peak_human", human(peak));
    s.f("used_memory_peak_perc", format!("{:.2}%", pct(used, peak)));
    s.f("used_memory_overhead", startup);
    s.f("used_memory_startup", startup);
    s.f("used_memory_dataset", dataset);
    s.f("used_memory_dataset_perc", format!("{:.2}%", pct(dataset, used)));
    s.f("allocator_allocated", used);
    s.f("allocator_active", used);
    s.f("allocator_resident", crate::memory::resident_bytes());
    s.f("total_system_memory", total);
    s.f("total_system_memory_human", human(total));
    for (k, v) in [
        ("used_memory_lua", "32768"),
        ("used_memory_vm_eval", "32768"),
        ("used_memory_lua_human", "32.00K"),
        ("used_memory_scripts_eval", "0"),
        ("number_of_cached_scripts", "0"),
        ("number_of_functions", "0"),
        ("number_of_libraries", "0"),
        ("used_memory_vm_functions", "32768"),
        ("used_memory_vm_total", "65536"),
        ("used_memory_vm_total_human", "64.00K"),
        ("used_memory_functions", "0"),
        ("used_memory_scripts", "0"),
        ("used_memory_scripts_human", "0B"),
    ] {
        s.f(k, v);
    }
    s.f("maxmemory", maxmemory);
    s.f("maxmemory_human", human(maxmemory));
    s.f("maxmemory_policy", ctx.config.maxmemory_policy);
    s.f("allocator_frag_ratio", "1.00");
    s.f("allocator_frag_bytes", 0);
    s.f("allocator_rss_ratio", format!("{:.2}", ratio(rss, used)));
    s.f("allocator_rss_bytes", rss.saturating_sub(used));
    s.f("rss_overhead_ratio", "1.00");
    s.f("rss_overhead_bytes", 0);
    s.f("mem_fragmentation_ratio", format!("{:.2}", ratio(rss, used)));
    s.f("mem_fragmentation_bytes", rss as i64 - used as i64);
    for k in [
        "mem_not_counted_for_evict",
        "mem_replication_backlog",
        "mem_total_replication_buffers",
        "mem_clients_slaves",
        "mem_clients_normal",
        "mem_cluster_links",
        "mem_aof_buffer",
    ] {
        s.f(k, 0);
    }
    s.f("mem_allocator", "jemalloc-5.3.0");
    s.f("active_defrag_running", 0);
    s.f("lazyfree_pending_objects", 0);
    s.f("lazyfreed_objects", 0);
}

fn persistence(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    for k in ["loading", "async_loading", "current_cow_peak", "current_cow_size", "current_cow_size_age"] {
        s.f(k, 0);
    }
    s.f("current_fork_perc", "0.00");
    s.f("current_save_keys_processed", 0);
    s.f("current_save_keys_total", 0);
    s.f("rdb_changes_since_last_save", ctx.store.dirty);
    s.f("rdb_bgsave_in_progress", 0);
    s.f("rdb_last_save_time", ctx.shared.started_ms / 1000);
    s.f("rdb_last_bgsave_status", "ok");
    s.f("rdb_last_bgsave_time_sec", -1);
    s.f("rdb_current_bgsave_time_sec", -1);
    s.f("rdb_saves", 0);
    s.f("rdb_last_cow_size", 0);
    s.f("rdb_last_load_keys_expired", 0);
    s.f("rdb_last_load_keys_loaded", 0);
    s.f("aof_enabled", ctx.config.appendonly as u8);
    s.f("aof_rewrite_in_progress", 0);
    s.f("aof_rewrite_scheduled", 0);
    s.f("aof_last_rewrite_time_sec", -1);
    s.f("aof_current_rewrite_time_sec", -1);
    s.f("aof_last_bgrewrite_status", "ok");
    s.f("aof_rewrites", 0);
    s.f("aof_rewrites_consecutive_failures", 0);
    s.f("aof_last_write_status", "ok");
    s.f("aof_last_cow_size", 0);
    s.f("module_fork_in_progress", 0);
    s.f("module_fork_last_cow_size", 0);
}

/// The previous sample of (time, commands, input bytes, output bytes), for
/// the instantaneous rates.
static SAMPLE: Mutex<Option<(Instant, u64, u64, u64)>> = Mutex::new(None);

fn stats(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let st = &ctx.shared.stats;
    let (cmds, inb, outb) = (
        st.commands.load(Ordering::Relaxed),
        st.net_input_bytes.load(Ordering::Relaxed),
        st.net_output_bytes.load(Ordering::Relaxed),
    );
    let (ops, in_kbps, out_kbps) = {
        let mut sample = SAMPLE.lock();
        let now = Instant::now();
        let prev = sample.unwrap_or((ctx.shared.started, 0, 0, 0));
        let secs = now.duration_since(prev.0).as_secs_f64().max(0.001);
        let rates = (
            (cmds.saturating_sub(prev.1) as f64 / secs) as u64,
            inb.saturating_sub(prev.2) as f64 / secs / 1024.0,
            outb.saturating_sub(prev.3) as f64 / secs / 1024.0,
        );
        *sample = Some((now, cmds, inb, outb));
        rates
    };
    let (mut hits, mut misses) = (ctx.store.stats.keyspace_hits, ctx.store.stats.keyspace_misses);
    for db in &ctx.store.dbs {
        hits += db.hits.get();
        misses += db.misses.get();
    }
    let (channels, patterns) = {
        let ps = ctx.shared.pubsub.lock();
        (ps.channels.len(), ps.patterns.len())
    };
    s.f("total_connections_received", st.connections_received.load(Ordering::Relaxed));
    s.f("total_commands_processed", cmds);
    s.f("instantaneous_ops_per_sec", ops);
    s.f("total_net_input_bytes", inb);
    s.f("total_net_output_bytes", outb);
    s.f("total_net_repl_input_bytes", 0);
    s.f("total_net_repl_output_bytes", 0);
    s.f("instantaneous_input_kbps", format!("{in_kbps:.2}"));
    s.f("instantaneous_output_kbps", format!("{out_kbps:.2}"));
    s.f("instantaneous_input_repl_kbps", "0.00");
    s.f("instantaneous_output_repl_kbps", "0.00");
    s.f("rejected_connections", st.rejected_connections.load(Ordering::Relaxed));
    s.f("sync_full", 0);
    s.f("sync_partial_ok", 0);
    s.f("sync_partial_err", 0);
    s.f("expired_keys", ctx.store.stats.expired_keys);
    s.f("expired_stale_perc", "0.00");
    s.f("expired_time_cap_reached_count", 0);
    s.f("expire_cycle_cpu_milliseconds", 0);
    s.f("evicted_keys", ctx.store.stats.evicted_keys);
    for k in ["evicted_clients", "total_eviction_exceeded_time", "current_eviction_exceeded_time"] {
        s.f(k, 0);
    }
    s.f("keyspace_hits", hits);
    s.f("keyspace_misses", misses);
    s.f("pubsub_channels", channels);
    s.f("pubsub_patterns", patterns);
    for k in [
        "pubsubshard_channels",
        "latest_fork_usec",
        "total_forks",
        "migrate_cached_sockets",
        "slave_expires_tracked_keys",
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
        "tracking_total_keys",
        "tracking_total_items",
        "tracking_total_prefixes",
        "unexpected_error_replies",
    ] {
        s.f(k, 0);
    }
    s.f("total_error_replies", st.error_replies.load(Ordering::Relaxed));
    s.f("dump_payload_sanitizations", 0);
    s.f("total_reads_processed", cmds);
    s.f("total_writes_processed", cmds);
    for k in
        ["io_threaded_reads_processed", "io_threaded_writes_processed", "reply_buffer_shrinks", "reply_buffer_expands"]
    {
        s.f(k, 0);
    }
}

fn replication(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    s.f("role", "master");
    s.f("connected_slaves", 0);
    s.f("master_failover_state", "no-failover");
    s.f("master_replid", replid());
    s.f("master_replid2", "0000000000000000000000000000000000000000");
    s.f("master_repl_offset", 0);
    s.f("second_repl_offset", -1);
    s.f("repl_backlog_active", 0);
    s.f("repl_backlog_size", ctx.config.int("repl-backlog-size"));
    s.f("repl_backlog_first_byte_offset", 0);
    s.f("repl_backlog_histlen", 0);
}

fn commandstats(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let mut rows: Vec<_> = ctx
        .shared
        .commands
        .iter()
        .filter(|r| {
            r.calls.load(Ordering::Relaxed) + r.failed.load(Ordering::Relaxed) + r.rejected.load(Ordering::Relaxed) > 0
        })
        .collect();
    rows.sort_by_key(|r| r.spec.name);
    for r in rows {
        let calls = r.calls.load(Ordering::Relaxed);
        let usec = r.usec.load(Ordering::Relaxed);
        let per = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
        s.f(
            &format!("cmdstat_{}", r.spec.name),
            format!(
                "calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                r.rejected.load(Ordering::Relaxed),
                r.failed.load(Ordering::Relaxed)
            ),
        );
    }
}

/// Entries looked at per database for `avg_ttl`: Redis estimates it by
/// sampling too, and INFO must not scan a large keyspace.
const TTL_SAMPLE: usize = 10_000;

fn keyspace(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    let now = unix_ms();
    for (i, db) in ctx.store.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        let expires = db.volatile_len();
        let (mut sum, mut n) = (0u128, 0u128);
        if expires > 0 {
            for (_, e) in db.iter(now).take(TTL_SAMPLE).filter(|(_, e)| e.expire != 0) {
                sum += e.expire.saturating_sub(now) as u128;
                n += 1;
            }
        }
        let avg = sum.checked_div(n).unwrap_or(0);
        s.f(&format!("db{i}"), format!("keys={},expires={expires},avg_ttl={avg}", db.len()));
    }
}

#[cfg(test)]
mod tests;
