//! Benchmark (it prints figures and asserts nothing): how long after a participant has joined a
//! room it first hears the room, with the hub-sidecar wiring the room and with the original
//! single-VM approach (poll `aconnect -l` every 5 s), on the real rtpmidid and a real kernel
//! sequencer; and the hub-sidecar process's memory and CPU while idle and under join/leave
//! churn. Both approaches run in one process on one machine, so their ratio is what counts:
//! inside the ALSA VM (software emulation) absolute figures are several times too slow.
//!
//! Beside each join→wired figure it prints the sidecar's own share of it: from the moment its
//! sequencer thread read the announcement of the joiner's port to the moment the join's last
//! subscription was made, exact per join, from the `join wired` lines of the sidecar's log
//! (`hub_sidecar::reaction` at debug; the same figure as `midihub_sidecar_wiring_reaction_seconds`).
//!
//! Needs `RTPMIDID_BIN` and `/dev/snd/seq` (run inside shared/alsa-vm, as the real-ALSA tier
//! does); prints why and exits 0 otherwise. `JOIN_TO_WIRED_SIDECAR_BIN` measures another build of
//! the sidecar (a baseline) in place of this checkout's. While iterating,
//! `JOIN_TO_WIRED_POLLER_SECONDS` shortens the poller's window, `JOIN_TO_WIRED_SIDECAR_LOG` sets
//! the sidecar's `RUST_LOG` (its phases are logged at `hub_sidecar::sidecar=debug`) and
//! `JOIN_TO_WIRED_SAVE_LOG` names a file to keep its log in; the figures to quote come from a
//! run without the first two.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use midihub_api::rtpmidid_config::alsa_client_name;
use midihub_tests::applemidi::{JoinOptions, Participant};
use midihub_tests::bench::{self, Footprint, children_cpu_ticks, cpu_percent, percentile};
use midihub_tests::real_alsa::{
    Rtpmidid, SeqAddr, aconnect, aconnect_view, join, loopback, room, rtpmidid_or_skip,
    scratch_dir, wait_until,
};
use midihub_tests::sidecar::SidecarProcess;
use tokio::sync::watch;

const ROOM_A: u16 = 5304;
const ROOM_B: u16 = 5306;
/// How often the resident sender plays a note while joins are measured.
const NOTE_INTERVAL: Duration = Duration::from_millis(5);
/// The poll period of the original approach.
const POLL_PERIOD: Duration = Duration::from_secs(5);
/// A joiner that hears nothing for this long counts as "never wired".
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);
const IDLE_WINDOW: Duration = Duration::from_secs(20);
const SIDECAR_JOINS: usize = 200;
/// Concurrent joiners while the poller wires, and how long they keep joining. Few at once, as
/// in a real room: the poller runs one `aconnect` per missing pair, one after another, so a
/// crowd of joiners would make each poll take far longer than its period.
const POLLER_JOINERS: usize = 2;
const POLLER_WINDOW: Duration = Duration::from_secs(150);
/// The sidecar's log filter: info, and the line of each wired join.
const SIDECAR_LOG: &str = "info,hub_sidecar::reaction=debug";
/// Distinct (note, velocity) pairs the sender cycles through; velocity 0 would be a note-off.
const NOTE_CODES: usize = 128 * 127;

fn main() {
    let Some(rtpmidid) = rtpmidid_or_skip("join_to_wired") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(rtpmidid));
}

async fn run(rtpmidid: PathBuf) {
    let started = Instant::now();
    print_host_facts();
    let dir = scratch_dir("bench-join-to-wired");
    let ports = [room(ROOM_A, "bench-a"), room(ROOM_B, "bench-b")];
    let client = alsa_client_name(&ports);
    let daemon = Rtpmidid::start(&rtpmidid, &dir, "bench", &ports).await;

    // Part 1 and 3: the hub-sidecar.
    // Another build of the sidecar (a baseline) may be measured instead of this checkout's.
    let sidecar_binary = std::env::var_os("JOIN_TO_WIRED_SIDECAR_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_hub-sidecar")),
        PathBuf::from,
    );
    println!("hub-sidecar: {}", sidecar_binary.display());
    let sidecar = SidecarProcess::attach(
        &sidecar_binary,
        &daemon.control_socket,
        "127.0.0.1:9183",
        dir.join("sidecar.log"),
    )
    .env(
        "RUST_LOG",
        std::env::var("JOIN_TO_WIRED_SIDECAR_LOG").unwrap_or_else(|_| SIDECAR_LOG.to_string()),
    )
    .spawn();
    let sender = join(ROOM_A, "sender").await;
    let listener = join(ROOM_A, "listener").await;
    let wired = wait_until(Duration::from_secs(10), || {
        aconnect_view(&client).is_some_and(|view| view.internal_links.len() == 2)
    })
    .await;
    assert!(
        wired,
        "the sidecar did not wire the two residents; its log:\n{}",
        sidecar.log_text()
    );
    eprintln!("measuring the idle sidecar for {} s", IDLE_WINDOW.as_secs());
    let ((), idle) = Footprint::measure(sidecar.pid(), tokio::time::sleep(IDLE_WINDOW)).await;

    let residents = Residents::start(sender, listener);
    eprintln!("measuring {SIDECAR_JOINS} joins wired by the sidecar");
    // The residents' joins are not measured: only what the log says from here on counts.
    let log_before_joins = sidecar.log_text().len();
    let (sidecar_samples, churn) = Footprint::measure(
        sidecar.pid(),
        measure_joins(JoinPlan {
            workers: 1,
            per_worker: Some(SIDECAR_JOINS),
            until: None,
            pause_before_join: Duration::ZERO,
            sent_at: residents.sent_at.clone(),
        }),
    )
    .await;
    // In attach mode the sidecar leaves rtpmidid running.
    let (_, sidecar_log) = sidecar.terminate().await;
    let reactions = reactions_in(sidecar_log.get(log_before_joins..).unwrap_or_default());
    if let Some(path) = std::env::var_os("JOIN_TO_WIRED_SAVE_LOG") {
        std::fs::write(&path, &sidecar_log).unwrap();
    }

    // Part 2: the original approach, on the same daemon, the sidecar gone.
    let poll_joins_for = std::env::var("JOIN_TO_WIRED_POLLER_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .map_or(POLLER_WINDOW, Duration::from_secs);
    eprintln!(
        "measuring joins wired by the AconnectPoller for {} s",
        poll_joins_for.as_secs()
    );
    let poller = AconnectPoller::start(client.clone(), POLL_PERIOD);
    let children_before = children_cpu_ticks();
    let poller_started = Instant::now();
    let poller_samples = measure_joins(JoinPlan {
        workers: POLLER_JOINERS,
        per_worker: None,
        until: Some(Instant::now() + poll_joins_for),
        // A random pause puts each join at a random phase of the poll period, as real
        // participants arrive; without it the joiners would fall into step with the polls.
        pause_before_join: POLL_PERIOD,
        sent_at: residents.sent_at.clone(),
    })
    .await;
    let poller_window = poller_started.elapsed();
    let aconnect_ticks = children_cpu_ticks() - children_before;
    let poller_stats = poller.stop().await;

    let (sender, listener) = residents.stop().await;
    let _ = sender.leave().await;
    let _ = listener.leave().await;
    daemon.stop().await;

    println!();
    println!("join -> wired: from the joiner's handshake (IN/OK on both ports + first clock sync)");
    println!(
        "to the first note it hears from a resident who plays one every {} ms",
        NOTE_INTERVAL.as_millis()
    );
    println!();
    println!(
        "{:<44} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "wiring", "count", "missed", "p50 ms", "p90 ms", "p99 ms", "max ms", "transit p50"
    );
    sidecar_samples.print_row("hub-sidecar (sequential joins)");
    reactions
        .total
        .print_row("  of which the sidecar's share (its log)");
    reactions
        .before_pass
        .print_row("    announcement -> its pass starts, but for:");
    reactions
        .status
        .print_row("    waiting for rtpmidid's status");
    reactions
        .own_work
        .print_row("    the wiring: the thread's, or a pass's");
    poller_samples.print_row(&format!(
        "AconnectPoller, {} s poll ({} joiners at once)",
        POLL_PERIOD.as_secs(),
        POLLER_JOINERS
    ));
    if let (Some(sidecar_p50), Some(poller_p50)) = (
        sidecar_samples.percentile(0.50),
        poller_samples.percentile(0.50),
    ) {
        println!(
            "p50 ratio (AconnectPoller / hub-sidecar): {:.0}x",
            poller_p50.as_secs_f64() / sidecar_p50.as_secs_f64().max(1e-6)
        );
    }
    println!(
        "missed: heard nothing within {} s (+Nj: N joins failed); transit p50: from the send \
         of the first note heard to its arrival, part of each sample",
        GIVE_UP_AFTER.as_secs()
    );
    println!(
        "the sidecar's share: from its sequencer thread reading the joiner's port announcement \
         to the join's last subscription, exact per join (count: joins it wired); waiting for \
         rtpmidid's status: the part of a status call after the announcement that the pass \
         waited for; {} of {} joins were wired by the sequencer thread as it read the \
         announcement (no pass: all of it is the last row)",
        reactions.by_thread,
        reactions.total.latencies.len()
    );
    println!();
    println!("hub-sidecar process footprint");
    println!(
        "{:<44} {:>10} {:>12} {:>12} {:>12}",
        "window", "seconds", "RSS end MiB", "RSS max MiB", "CPU % 1 core"
    );
    idle.print_row("idle (2 participants wired, no MIDI)");
    churn.print_row(&format!(
        "churn ({} joins/leaves, notes every {} ms)",
        sidecar_samples.latencies.len() + sidecar_samples.missed,
        NOTE_INTERVAL.as_millis()
    ));
    println!();
    println!(
        "AconnectPoller cost over {:.0} s: {} polls, {} aconnect connects ({} failed, e.g. \
         the joiner had left meanwhile), aconnect processes' CPU {:.1} % of one core",
        poller_window.as_secs_f64(),
        poller_stats.polls,
        poller_stats.connects,
        poller_stats.failed_connects,
        cpu_percent(aconnect_ticks, poller_window)
    );
    if sidecar_samples.missed > 0 || sidecar_samples.join_failures > 0 {
        println!("hub-sidecar log (missed or failed joins):\n{sidecar_log}");
    }
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}

fn print_host_facts() {
    bench::print_host_facts("join_to_wired");
    println!(
        "rooms {ROOM_A} and {ROOM_B} on the real rtpmidid; joiners join room {ROOM_A}, \
         where a sender and a listener stay"
    );
}

/// The two participants who stay in room A: the sender plays a note every [`NOTE_INTERVAL`]
/// (a counter coded in note and velocity, its send time kept in `sent_at`), both drain what
/// they hear.
struct Residents {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Participant>>,
    sent_at: Arc<Mutex<Vec<Option<Instant>>>>,
}

impl Residents {
    fn start(sender: Participant, listener: Participant) -> Residents {
        let (stop, stopped) = watch::channel(false);
        let sent_at = Arc::new(Mutex::new(vec![None; NOTE_CODES]));
        let send_times = sent_at.clone();
        let mut sender_stopped = stopped.clone();
        let playing = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(NOTE_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut counter = 0;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = sender_stopped.changed() => return sender,
                }
                counter = (counter + 1) % NOTE_CODES;
                send_times.lock().unwrap()[counter] = Some(Instant::now());
                let _ = sender.send_midi(&note_for(counter)).await;
                while let Ok(Some(_)) = sender.recv_midi(Duration::ZERO).await {}
            }
        });
        let mut listener_stopped = stopped;
        let listening = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = listener.recv_midi(Duration::from_secs(3600)) => {}
                    _ = listener_stopped.changed() => return listener,
                }
            }
        });
        Residents {
            stop,
            tasks: vec![playing, listening],
            sent_at,
        }
    }

    async fn stop(self) -> (Participant, Participant) {
        let _ = self.stop.send(true);
        let [playing, listening]: [_; 2] = self.tasks.try_into().ok().unwrap();
        (playing.await.unwrap(), listening.await.unwrap())
    }
}

fn note_for(counter: usize) -> [u8; 3] {
    [0x90, (counter / 127) as u8, (counter % 127 + 1) as u8]
}

fn counter_of(midi: &[u8]) -> Option<usize> {
    match midi {
        [0x90, note, velocity, ..] if *velocity > 0 => {
            Some(usize::from(*note) * 127 + usize::from(*velocity) - 1)
        }
        _ => None,
    }
}

/// How joins are measured: each worker joins, waits for its first note, leaves, repeats.
struct JoinPlan {
    workers: usize,
    /// Joins per worker, or none to keep joining `until`.
    per_worker: Option<usize>,
    until: Option<Instant>,
    /// Each join waits a uniformly random time up to this first.
    pause_before_join: Duration,
    sent_at: Arc<Mutex<Vec<Option<Instant>>>>,
}

/// join → wired samples of one approach.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    /// The transit of the first note each joiner heard (from its send to its arrival).
    transits: Vec<Duration>,
    /// Joiners that heard nothing within [`GIVE_UP_AFTER`].
    missed: usize,
    join_failures: usize,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.transits.extend(other.transits);
        self.missed += other.missed;
        self.join_failures += other.join_failures;
    }

    /// Nearest-rank percentile.
    fn percentile(&self, fraction: f64) -> Option<Duration> {
        percentile(&self.latencies, fraction)
    }

    fn print_row(&self, label: &str) {
        let ms = |value: Option<Duration>| {
            value.map_or("-".to_string(), |value| {
                format!("{:.1}", value.as_secs_f64() * 1000.0)
            })
        };
        let missed = if self.join_failures > 0 {
            format!("{}+{}j", self.missed, self.join_failures)
        } else {
            self.missed.to_string()
        };
        println!(
            "{:<44} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11}",
            label,
            self.latencies.len(),
            missed,
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(self.percentile(0.99)),
            ms(self.latencies.iter().max().copied()),
            ms(percentile(&self.transits, 0.50)),
        );
    }
}

async fn measure_joins(plan: JoinPlan) -> Samples {
    let plan = Arc::new(plan);
    let workers: Vec<_> = (0..plan.workers)
        .map(|worker| tokio::spawn(join_repeatedly(plan.clone(), worker)))
        .collect();
    let mut samples = Samples::default();
    for worker in workers {
        samples.merge(worker.await.unwrap());
    }
    samples
}

async fn join_repeatedly(plan: Arc<JoinPlan>, worker: usize) -> Samples {
    let mut samples = Samples::default();
    for iteration in 0.. {
        if plan.per_worker.is_some_and(|joins| iteration >= joins)
            || plan.until.is_some_and(|until| Instant::now() >= until)
        {
            break;
        }
        tokio::time::sleep(uniform_up_to(plan.pause_before_join)).await;
        let name = format!("joiner-{worker}-{iteration}");
        let Ok(joiner) = Participant::join(loopback(ROOM_A), &name, JoinOptions::default()).await
        else {
            samples.join_failures += 1;
            continue;
        };
        let joined = Instant::now();
        let heard = joiner.recv_midi(GIVE_UP_AFTER).await;
        let arrived = Instant::now();
        match heard {
            Ok(Some(midi)) => {
                samples.latencies.push(arrived - joined);
                let sent =
                    counter_of(&midi).and_then(|counter| plan.sent_at.lock().unwrap()[counter]);
                if let Some(sent) = sent {
                    samples
                        .transits
                        .push(arrived.saturating_duration_since(sent));
                }
            }
            _ => samples.missed += 1,
        }
        let _ = joiner.leave().await;
    }
    samples
}

/// The sidecar's share of each join, and its parts, from the sidecar's `join wired` lines.
#[derive(Default)]
struct Reactions {
    /// From the announcement of the joiner's port to the join's last subscription.
    total: Samples,
    /// From the announcement to the start of the pass that wired the join, without the part
    /// below.
    before_pass: Samples,
    /// Of that, the wait for a call for rtpmidid's `status` that ended after the announcement
    /// (0: the pass went by a status read before it).
    status: Samples,
    /// The pass: what the sidecar took once it started.
    own_work: Samples,
    /// Joins the sequencer thread wired as it read the announcement (all their reaction is
    /// `own_work`).
    by_thread: usize,
}

fn reactions_in(log: &str) -> Reactions {
    let field = |line: &str, name: &str| -> Option<Duration> {
        let value = line
            .split_once(&format!(" {name}="))?
            .1
            .split_whitespace()
            .next()?;
        let milliseconds: f64 = value.parse().ok()?;
        Some(Duration::from_secs_f64(milliseconds / 1000.0))
    };
    let mut reactions = Reactions::default();
    for line in log.lines().filter(|line| line.contains("join wired")) {
        let Some(total) = field(line, "reaction_ms") else {
            continue;
        };
        reactions.total.latencies.push(total);
        reactions.by_thread += usize::from(line.contains("by=\"sequencer thread\""));
        // The parts, from a sidecar that logs them.
        if let (Some(before_pass), Some(status)) =
            (field(line, "before_pass_ms"), field(line, "status_ms"))
        {
            reactions
                .before_pass
                .latencies
                .push(before_pass.saturating_sub(status));
            reactions.status.latencies.push(status);
            reactions
                .own_work
                .latencies
                .push(total.saturating_sub(before_pass));
        }
    }
    reactions
}

/// A uniformly random duration in [0, `max`).
fn uniform_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    max.mul_f64(fraction)
}

/// The original single-VM approach: poll `aconnect -l` every 5 s and connect every pair of the
/// room's ports (here: every ordered pair of distinct ports of the rtpmidid client; the
/// joiners all use one room, so that is the room's pairs).
struct AconnectPoller {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<PollerStats>,
}

#[derive(Debug, Default)]
struct PollerStats {
    polls: usize,
    connects: usize,
    failed_connects: usize,
}

impl AconnectPoller {
    fn start(client: String, period: Duration) -> AconnectPoller {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut stats = PollerStats::default();
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.changed() => return stats,
                }
                let client = client.clone();
                let (connects, failed) = tokio::task::spawn_blocking(move || poll_once(&client))
                    .await
                    .unwrap();
                stats.polls += 1;
                stats.connects += connects;
                stats.failed_connects += failed;
            }
        });
        AconnectPoller { stop, task }
    }

    async fn stop(self) -> PollerStats {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// One poll: list, then `aconnect A B` for every missing pair; returns (connects, failures).
fn poll_once(client: &str) -> (usize, usize) {
    let Some(view) = aconnect_view(client) else {
        return (0, 0);
    };
    // Each room's participants are the ports of its own client.
    let missing: BTreeSet<(SeqAddr, SeqAddr)> = view
        .ports
        .keys()
        .flat_map(|from| view.ports.keys().map(move |to| (*from, *to)))
        .filter(|(from, to)| from != to && from.0 == to.0)
        .filter(|link| !view.internal_links.contains(link))
        .collect();
    let mut failed = 0;
    for (from, to) in &missing {
        let connected = aconnect(*from, *to).is_ok_and(|output| output.status.success());
        if !connected {
            failed += 1;
        }
    }
    (missing.len() - failed, failed)
}
