//! INFO memory, persistence and stats: the counters and figures that
//! change while the server runs.

use std::sync::atomic::Ordering;
use std::time::Instant;

use parking_lot::Mutex;

use super::{human, system, Section};
use crate::command::Ctx;

/// Memory figures remembered between INFO calls: the peak, and the usage
/// seen first, which stands in for Redis's `used_memory_startup`.
static PEAK: Mutex<(u64, u64)> = Mutex::new((0, 0));

pub fn memory(ctx: &Ctx<'_>, s: &mut Section<'_>) {
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
    // Our backlog is one ring of its full size; each replica's pending
    // output is its own copy, which eviction does not count.
    let replicas = ctx.shared.repl.pending_output_bytes();
    let backlog = ctx.shared.repl.state.lock().backlog.as_ref().map_or(0, |b| b.size() as u64);
    s.f("mem_not_counted_for_evict", replicas);
    s.f("mem_replication_backlog", backlog);
    s.f("mem_total_replication_buffers", backlog + replicas);
    s.f("mem_clients_slaves", replicas);
    for k in ["mem_clients_normal", "mem_cluster_links", "mem_aof_buffer"] {
        s.f(k, 0);
    }
    s.f("mem_allocator", "jemalloc-5.3.0");
    s.f("active_defrag_running", 0);
    s.f("lazyfree_pending_objects", 0);
    s.f("lazyfreed_objects", 0);
}

pub fn persistence(ctx: &Ctx<'_>, s: &mut Section<'_>) {
    for k in ["loading", "async_loading", "current_cow_peak", "current_cow_size", "current_cow_size_age"] {
        s.f(k, 0);
    }
    s.f("current_fork_perc", "0.00");
    let st = ctx.shared.persist.status();
    s.f("current_save_keys_processed", 0);
    s.f("current_save_keys_total", 0);
    s.f("rdb_changes_since_last_save", ctx.store.dirty);
    s.f("rdb_bgsave_in_progress", u8::from(st.child.is_some()));
    s.f("rdb_last_save_time", st.lastsave);
    s.f("rdb_last_bgsave_status", if st.last_bgsave_ok { "ok" } else { "err" });
    s.f("rdb_last_bgsave_time_sec", st.last_bgsave_secs);
    s.f("rdb_current_bgsave_time_sec", st.child.map_or(-1, |c| c.started.elapsed().as_secs() as i64));
    s.f("rdb_saves", st.saves);
    s.f("rdb_last_cow_size", 0);
    s.f("rdb_last_load_keys_expired", st.last_load_expired);
    s.f("rdb_last_load_keys_loaded", st.last_load_keys);
    for (k, v) in crate::aof::info_fields(ctx.shared) {
        s.f(k, v);
    }
}

/// The previous sample of (time, commands, input bytes, output bytes), for
/// the instantaneous rates.
static SAMPLE: Mutex<Option<(Instant, u64, u64, u64)>> = Mutex::new(None);

pub fn stats(ctx: &Ctx<'_>, s: &mut Section<'_>) {
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
    let sync = &ctx.shared.repl.stats;
    s.f("sync_full", sync.full.load(Ordering::Relaxed));
    s.f("sync_partial_ok", sync.partial_ok.load(Ordering::Relaxed));
    s.f("sync_partial_err", sync.partial_err.load(Ordering::Relaxed));
    s.f("expired_keys", ctx.store.stats.expired_keys);
    s.f("expired_stale_perc", "0.00");
    s.f("expired_time_cap_reached_count", 0);
    s.f("expire_cycle_cpu_milliseconds", 0);
    s.f("evicted_keys", ctx.store.stats.evicted_keys);
    s.f("evicted_clients", 0);
    let (total, current) = ctx.store.evict.exceeded_ms();
    s.f("total_eviction_exceeded_time", total);
    s.f("current_eviction_exceeded_time", current);
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
    // Socket reads and writes are not counted separately; one of each per
    // command is the figure a non-pipelining client would see.
    s.f("total_reads_processed", cmds);
    s.f("total_writes_processed", cmds);
    for k in
        ["io_threaded_reads_processed", "io_threaded_writes_processed", "reply_buffer_shrinks", "reply_buffer_expands"]
    {
        s.f(k, 0);
    }
}
