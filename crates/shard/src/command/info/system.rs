//! Facts about the host and the process for INFO: the OS line, memory
//! totals and CPU time (getrusage).

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;

use super::Section;

/// `Linux <release> <machine>`, as `uname -srm`.
pub fn os() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    let name = match read("/proc/sys/kernel/ostype") {
        s if s.is_empty() => "Linux".to_string(),
        s => s,
    };
    format!("{name} {} {}", read("/proc/sys/kernel/osrelease"), std::env::consts::ARCH)
}

/// `MemTotal` of /proc/meminfo in bytes.
pub fn total_memory() -> u64 {
    meminfo_kb("/proc/meminfo", "MemTotal:") * 1024
}

/// The resident set of the process in bytes (`VmRSS`), which also counts
/// memory jemalloc does not see.
pub fn rss_bytes() -> u64 {
    meminfo_kb("/proc/self/status", "VmRSS:") * 1024
}

fn meminfo_kb(path: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn secs(t: TimeVal) -> String {
    format!("{}.{:06}", t.tv_sec(), t.tv_usec())
}

pub fn cpu(s: &mut Section<'_>) {
    let zero = TimeVal::new(0, 0);
    let usage = |who| getrusage(who).map(|u| (u.system_time(), u.user_time())).unwrap_or((zero, zero));
    let (sys, user) = usage(UsageWho::RUSAGE_SELF);
    let (csys, cuser) = usage(UsageWho::RUSAGE_CHILDREN);
    let (tsys, tuser) = usage(UsageWho::RUSAGE_THREAD);
    s.f("used_cpu_sys", secs(sys));
    s.f("used_cpu_user", secs(user));
    s.f("used_cpu_sys_children", secs(csys));
    s.f("used_cpu_user_children", secs(cuser));
    s.f("used_cpu_sys_main_thread", secs(tsys));
    s.f("used_cpu_user_main_thread", secs(tuser));
}
