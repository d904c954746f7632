//! The process_* series: this process's memory, CPU time, file
//! descriptors and start time, read from /proc.

use std::time::{SystemTime, UNIX_EPOCH};

/// When the registry was installed (Unix seconds): the process start time
/// where /proc/stat cannot be read.
pub(super) static REGISTRY_INSTALLED_S: once_cell::sync::Lazy<f64> = once_cell::sync::Lazy::new(|| {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
});

/// This process as /proc describes it.
pub struct Process {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_s: f64,
}

/// Linux fixes USER_HZ at 100 for userspace and x86_64 pages at 4 KiB;
/// reading them via sysconf would need libc and unsafe for nothing.
const TICKS_PER_S: f64 = 100.0;
const PAGE_BYTES: u64 = 4096;

impl Process {
    /// The standard process_* series in text format. Written here rather
    /// than through the registry because `metrics` counters are integers
    /// and CPU seconds are not.
    pub fn exposition(&self) -> String {
        let series = [
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                self.rss_bytes as f64,
            ),
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                self.cpu_seconds,
            ),
            (
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                self.open_fds as f64,
            ),
            (
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                self.max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                self.start_time_s,
            ),
        ];
        series
            .iter()
            .map(|(name, kind, help, v)| format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"))
            .collect()
    }

    pub fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name, which may hold spaces.
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu_seconds = (field(14)? + field(15)?) as f64 / TICKS_PER_S;
        let start_ticks = field(22)?;
        let rss_bytes = field(24)? * PAGE_BYTES;
        // /proc/stat is hidden under systemd's ProcSubset=pid; then the
        // moment the registry was installed stands in for the start time.
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
        });
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()?
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        Some(Process {
            rss_bytes,
            cpu_seconds,
            open_fds,
            max_fds,
            start_time_s: boot.map_or(*REGISTRY_INSTALLED_S, |b| b + start_ticks as f64 / TICKS_PER_S),
        })
    }
}
