//! What the benchmarks share: the host they ran on (printed with every run, since figures from
//! the emulated test VM only compare with each other), a process's memory and CPU over a
//! window, percentiles, and the kernel's loss counters — drops per UDP socket and the ALSA
//! sequencer clients' event pools — that say where a lost message was lost.
// Benchmark support: a set-up step that fails fails the benchmark that asked for it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
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

/// Packets missing between the RTP sequence numbers a receiver saw: packets the hub sent
/// that never arrived (lost at the receiver's socket or in the hub's send).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceGaps {
    last: Option<u16>,
    pub missing: u64,
}

impl SequenceGaps {
    /// Counts the packets skipped before `sequence`. A number at or behind the newest one (a
    /// duplicate, or a packet that came late: counted missing already, loopback does not
    /// reorder) changes nothing.
    pub fn observe(&mut self, sequence: u16) {
        let step = self.last.map_or(1, |last| sequence.wrapping_sub(last));
        if (1..0x8000).contains(&step) {
            self.missing += u64::from(step - 1);
            self.last = Some(sequence);
        }
    }
}

/// Datagrams the kernel dropped per local UDP port, IPv4 and IPv6 sockets together, from
/// /proc/net/udp and /proc/net/udp6: a socket drops what arrives while its receive buffer is
/// full, i.e. what its reader was too slow to take.
pub fn udp_drops_by_port() -> BTreeMap<u16, u64> {
    let mut drops = BTreeMap::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for (port, dropped) in parse_udp_drops(&text) {
            *drops.entry(port).or_insert(0) += dropped;
        }
    }
    drops
}

/// (local port, drops) of each socket in a /proc/net/udp or udp6 table.
pub fn parse_udp_drops(table: &str) -> Vec<(u16, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, port) = fields.get(1)?.rsplit_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let drops = fields.last()?.parse().ok()?;
            Some((port, drops))
        })
        .collect()
}

/// One event pool of a sequencer client, as /proc/asound/seq/clients shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqPool {
    pub size: u64,
    pub peak_in_use: u64,
    /// Events the kernel could not queue because the pool was full: lost. An input pool that
    /// overflows also makes the kernel clear the client's whole input queue at its next read.
    pub alloc_failures: u64,
}

/// The pools of one user client of the sequencer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqClientPools {
    pub output: SeqPool,
    pub input: SeqPool,
}

/// Every user client's pools by client name, from /proc/asound/seq/clients (empty without it).
pub fn seq_client_pools() -> BTreeMap<String, SeqClientPools> {
    parse_seq_clients(&std::fs::read_to_string("/proc/asound/seq/clients").unwrap_or_default())
}

/// Parses /proc/asound/seq/clients: `Client  N : "name" [User ...]`, then `  Output pool :`
/// and `  Input pool :`, each followed by `Pool size`, `Peak cells in use` and `Alloc failures`
/// lines (among others). Two clients with one name are added up.
pub fn parse_seq_clients(text: &str) -> BTreeMap<String, SeqClientPools> {
    #[derive(Clone, Copy)]
    enum Section {
        Output,
        Input,
        Other,
    }
    let mut clients: BTreeMap<String, SeqClientPools> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut section = Section::Other;
    for line in text.lines() {
        if line.starts_with("Client ") {
            current = line
                .split_once('"')
                .and_then(|(_, rest)| rest.rsplit_once('"'))
                .map(|(name, _)| name.to_string());
            section = Section::Other;
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("Output pool") {
            section = Section::Output;
            continue;
        }
        if trimmed.starts_with("Input pool") {
            section = Section::Input;
            continue;
        }
        let (Some(name), Some((key, value))) = (current.as_ref(), trimmed.split_once(':')) else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        let pools = clients.entry(name.clone()).or_default();
        let pool = match section {
            Section::Output => &mut pools.output,
            Section::Input => &mut pools.input,
            Section::Other => continue,
        };
        match key.trim() {
            "Pool size" => pool.size += value,
            "Peak cells in use" => pool.peak_in_use += value,
            "Alloc failures" => pool.alloc_failures += value,
            _ => {}
        }
    }
    clients
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_count_skipped_packets_across_the_wrap_and_not_reordered_ones() {
        let mut gaps = SequenceGaps::default();
        for sequence in [65_533, 65_534, 1, 2, 2, 1, 5] {
            gaps.observe(sequence);
        }
        // 65535 and 0 skipped at the wrap, 3 and 4 before 5; the repeated 2 and the late 1
        // change nothing.
        assert_eq!(gaps.missing, 4);
    }

    #[test]
    fn udp_tables_give_each_sockets_local_port_and_drops() {
        let udp = "\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:14B8 00000000:0000 07 00000000 00000000 00 00000000:00000000 00000000     0        0 1001 2 0000000000000000 0
  124: 0100007F:14B9 00000000:0000 07 00000000 00030000 00 00000000:00000000 00000000     0        0 1002 2 0000000000000000 17
";
        assert_eq!(parse_udp_drops(udp), [(5304, 0), (5305, 17)]);
        let udp6 = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  7: 00000000000000000000000000000000:14B9 00000000000000000000000000000000:0000 07 00000000 00000000 00 00000000:00000000 00000000     0        0 2001 2 0000000000000000 5
";
        assert_eq!(parse_udp_drops(udp6), [(5305, 5)]);
    }

    #[test]
    fn sequencer_clients_give_their_input_and_output_pools_by_name() {
        let clients = "\
Client info
  cur  clients : 4
  peak clients : 4
  max  clients : 192

Client   0 : \"System\" [Kernel Legacy]
  Port   0 : \"Timer\" (Rwe-)
Client 128 : \"rtpmidid-5304\" [User Legacy]
  Port   0 : \"Network\" (RWe-)
  Output pool :
    Pool size          : 2000
    Cells in use       : 0
    Peak cells in use  : 3
    Alloc success      : 900
    Alloc failures     : 0
  Input pool :
    Pool size          : 2000
    Cells in use       : 12
    Peak cells in use  : 2000
    Alloc success      : 123456
    Alloc failures     : 42
Client 129 : \"midihub-sidecar\" [User Legacy]
  Port   0 : \"announce\" (-We-)
  Output pool :
    Pool size          : 500
    Cells in use       : 0
    Peak cells in use  : 0
    Alloc success      : 0
    Alloc failures     : 0
  Input pool :
    Pool size          : 200
    Cells in use       : 0
    Peak cells in use  : 4
    Alloc success      : 10
    Alloc failures     : 0
";
        let pools = parse_seq_clients(clients);
        assert_eq!(
            pools.keys().collect::<Vec<_>>(),
            ["midihub-sidecar", "rtpmidid-5304"]
        );
        assert_eq!(
            pools["rtpmidid-5304"].input,
            SeqPool {
                size: 2000,
                peak_in_use: 2000,
                alloc_failures: 42
            }
        );
        assert_eq!(pools["rtpmidid-5304"].output.peak_in_use, 3);
        assert_eq!(pools["midihub-sidecar"].input.size, 200);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
