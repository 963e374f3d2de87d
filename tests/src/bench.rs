//! What the benchmarks share: the host they ran on (printed with every run, since figures from
//! the emulated test VM only compare with each other), a process's memory and CPU over a
//! window, and percentiles.
// Benchmark support: a set-up step that fails fails the benchmark that asked for it.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Prints the benchmark's name, the host's cores, CPU and kernel, and whether this is the test
/// VM's software emulation.
pub fn print_host_facts(benchmark: &str) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let emulation = if std::env::var_os("ALSA_VM").is_some() {
        "yes: shared/alsa-vm (qemu TCG software emulation); compare figures with each other only"
    } else {
        "not the ALSA VM (figures are this host's)"
    };
    println!("{benchmark} benchmark");
    println!("host: {cores} cores, {cpu_model}, kernel {}", kernel.trim());
    println!("emulated: {emulation}");
}

/// Memory and CPU of one process over a window.
#[derive(Clone, Debug)]
pub struct Footprint {
    pub window: Duration,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
    pub cpu_ticks: u64,
}

impl Footprint {
    /// Runs `work` while sampling process `pid` (RSS every 250 ms, CPU at both ends).
    pub async fn measure<T>(pid: u32, work: impl Future<Output = T>) -> (T, Footprint) {
        let start = Instant::now();
        let ticks_before = process_cpu_ticks(pid);
        let rss_max = Arc::new(Mutex::new(process_rss_kib(pid)));
        let (stop, mut stopped) = watch::channel(false);
        let sampled_max = rss_max.clone();
        let sampler = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stopped.changed() => return,
                }
                let rss = process_rss_kib(pid);
                let mut max = sampled_max.lock().unwrap();
                *max = (*max).max(rss);
            }
        });
        let output = work.await;
        let _ = stop.send(true);
        let _ = sampler.await;
        let rss_end_kib = process_rss_kib(pid);
        let footprint = Footprint {
            window: start.elapsed(),
            rss_end_kib,
            rss_max_kib: (*rss_max.lock().unwrap()).max(rss_end_kib),
            cpu_ticks: process_cpu_ticks(pid).saturating_sub(ticks_before),
        };
        (output, footprint)
    }

    /// CPU used in the window, in percent of one core.
    pub fn cpu_percent(&self) -> f64 {
        cpu_percent(self.cpu_ticks, self.window)
    }

    pub fn print_row(&self, label: &str) {
        println!(
            "{:<44} {:>10.1} {:>12.1} {:>12.1} {:>12.2}",
            label,
            self.window.as_secs_f64(),
            self.rss_end_kib as f64 / 1024.0,
            self.rss_max_kib as f64 / 1024.0,
            self.cpu_percent()
        );
    }
}

/// `ticks` of CPU time (as /proc counts them) over `window`, in percent of one core.
pub fn cpu_percent(ticks: u64, window: Duration) -> f64 {
    ticks as f64 / clock_ticks_per_second() as f64 / window.as_secs_f64().max(1e-9) * 100.0
}

/// The kernel's clock tick (USER_HZ) that /proc times are counted in.
fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// Fields of /proc/<pid>/stat after the command name (the first is field 3, `state`).
fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect()
}

/// utime + stime (fields 14 and 15) of process `pid`, in clock ticks.
pub fn process_cpu_ticks(pid: u32) -> u64 {
    let fields = stat_fields(&pid.to_string());
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// utime + stime of process `pid`.
pub fn process_cpu_time(pid: u32) -> Duration {
    Duration::from_secs_f64(process_cpu_ticks(pid) as f64 / clock_ticks_per_second() as f64)
}

/// cutime + cstime (fields 16 and 17) of this process: the CPU of the children it has
/// waited for.
pub fn children_cpu_ticks() -> u64 {
    let fields = stat_fields("self");
    fields.get(13).copied().unwrap_or(0) + fields.get(14).copied().unwrap_or(0)
}

/// VmRSS of process `pid` in KiB.
pub fn process_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Nearest-rank percentile (`fraction` 0.5 for the median); `None` for no values.
pub fn percentile(values: &[Duration], fraction: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
