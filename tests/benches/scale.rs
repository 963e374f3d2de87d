//! Benchmark (it prints figures and asserts nothing): the operator with many hubs on the local
//! control plane of `scripts/control-plane` (a real kube-apiserver built from source, nodes and
//! pods simulated by kwok). For each hub count and each operator build it starts a fresh plane
//! with an audit log, runs the build as a process with the chart's ServiceAccount, creates all
//! hubs at once, and reports:
//!
//! - time from the apply of all hubs to the last Ready, and from the last pod Running to the
//!   last Ready;
//! - the operator's API requests per hub by verb while converging, read from the audit log (the
//!   one place that says who made a request), its Lease renewals apart;
//! - its requests during an idle period (the writes should be none);
//! - churn: each minute a tenth of the hubs change schedule or are suspended, while simulated
//!   sidecars write latency to every awake hub every 10 s as the real sidecar's throttle does;
//!   the operator's requests per change;
//! - the operator's memory (RSS) and CPU time, and the p99 reconcile time from its histogram.
//!
//! Timings on a shared machine are noisy: compare builds by their ratio within one run. Run it
//! with `./scripts/bench-scale`, which builds the operators (this checkout and a baseline
//! commit) and passes them here; see `--help`.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use midihub_api::contract::{self, HUB_LABEL, SIDECAR_FIELD_MANAGER, WIRING_CONDITION};
use midihub_api::{Latency, MidiHub, MidiHubStatus, Participant, Phase};
use midihub_tests::bench::{process_cpu_time, process_rss_kib};
use midihub_tests::cluster::ensure_namespace;
use midihub_tests::control_plane::{OPERATOR_USER, Plane, is_write};
use serde_json::json;
use tokio::time::Instant;

/// The namespace the hubs are made in.
const NAMESPACE: &str = "scale";
/// The first room's port; hub `i` listens on `FIRST_PORT + 2 i`, so every hub fits on any node.
const FIRST_PORT: usize = 10_000;
/// The regions of the plane's sound-ready nodes, and no region at all.
const REGIONS: [Option<&str>; 3] = [Some("eu-central-1"), Some("ap-southeast-2"), None];
/// How often the real sidecar writes latency-only changes (its publication throttle).
const SIDECAR_LATENCY_INTERVAL: Duration = Duration::from_secs(10);
/// How long all hubs may take to become Ready.
const READY_LIMIT: Duration = Duration::from_secs(900);

#[derive(Parser, Debug)]
#[command(about = "The operator with many hubs on the local control plane (see the file's doc)")]
struct Args {
    /// Hub counts, one fresh plane each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    hubs: Vec<usize>,
    /// An operator build as NAME=SOURCE:BINARY: SOURCE is the checkout whose chart (its RBAC,
    /// its CRD) goes with the binary; the plane is this checkout's. Give several to compare
    /// them in one run.
    #[arg(long = "variant", required = true)]
    variants: Vec<Variant>,
    /// The API server's port (the plane uses the next six too).
    #[arg(long, default_value_t = 20443)]
    port: u16,
    /// How long the idle period lasts.
    #[arg(long, default_value_t = 120)]
    idle_seconds: u64,
    /// How many minutes of churn.
    #[arg(long, default_value_t = 3)]
    churn_minutes: usize,
    /// Arguments for every operator build (e.g. `--concurrency=8` for one that has it).
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// Passed by `cargo bench` to every benchmark; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Debug)]
struct Variant {
    name: String,
    source: PathBuf,
    binary: PathBuf,
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (name, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: write NAME=SOURCE:BINARY"))?;
        let (source, binary) = rest
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: write NAME=SOURCE:BINARY"))?;
        Ok(Self {
            name: name.to_owned(),
            source: source.into(),
            binary: binary.into(),
        })
    }
}

/// What one run measured.
#[derive(Debug, Default)]
struct Figures {
    apply_to_last_ready: Duration,
    last_running_to_last_ready: Duration,
    converging: Requests,
    idle: Requests,
    churn: Requests,
    changes: usize,
    sidecar_writes: usize,
    rss_converged_mib: f64,
    rss_end_mib: f64,
    cpu_converging: Duration,
    cpu_idle: Duration,
    cpu_churn: Duration,
    reconciles: Option<f64>,
    reconcile_p99: Option<String>,
}

/// The operator's requests in a period, by verb.
#[derive(Debug, Default, Clone)]
struct Requests(BTreeMap<String, u64>);

impl Requests {
    fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(verb, _)| is_write(verb))
            .map(|(_, count)| count)
            .sum()
    }

    /// "get 2.00, list 0.01, …" per `per`.
    fn per(&self, per: usize) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        let per = per.max(1) as f64;
        let verbs: Vec<String> = self
            .0
            .iter()
            .map(|(verb, count)| format!("{verb} {:.2}", *count as f64 / per))
            .collect();
        format!("{:.2} ({})", self.total() as f64 / per, verbs.join(", "))
    }
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let started = std::time::Instant::now();
    let mut results: BTreeMap<usize, Vec<(String, Figures)>> = BTreeMap::new();
    for &hubs in &args.hubs {
        for variant in &args.variants {
            say(&format!("── {hubs} hubs, operator {}", variant.name));
            let figures = run_one(&args, variant, hubs).await;
            print_figures(hubs, &variant.name, &figures);
            results
                .entry(hubs)
                .or_default()
                .push((variant.name.clone(), figures));
        }
    }
    print_comparison(&results);
    say(&format!(
        "whole run: {:.0} s",
        started.elapsed().as_secs_f64()
    ));
}

fn say(line: &str) {
    println!("{line}");
}

async fn run_one(args: &Args, variant: &Variant, count: usize) -> Figures {
    let dir = std::env::temp_dir().join(format!("midihub-bench-scale-{}", args.port));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf();
    let plane = Plane::at(dir, args.port, repo);
    // A fresh plane: `down` also removes etcd's data and the audit log.
    let _ = plane.script(&["down"]);
    plane
        .script(&["--audit", "up"])
        .unwrap_or_else(|error| panic!("cannot start the control plane: {error}"));
    let binary = variant.binary.to_string_lossy().into_owned();
    let chart = variant
        .source
        .join("charts/midihub")
        .to_string_lossy()
        .into_owned();
    let mut operator = vec!["--chart", chart.as_str(), "operator", binary.as_str()];
    operator.extend(args.operator_args.iter().map(String::as_str));
    plane
        .script(&operator)
        .unwrap_or_else(|error| panic!("cannot start the operator {binary}: {error}"));
    let pid = plane.operator_pid().expect("the operator's pid");
    let client = plane.admin().await.expect("an admin client");
    ensure_namespace(&client, NAMESPACE, json!({})).await;
    let seen = Seen::watch(&client);
    let hubs: Api<MidiHub> = Api::namespaced(client.clone(), NAMESPACE);

    // Converging: all hubs at once.
    let cpu_before = process_cpu_time(pid);
    let apply_started = jiff::Timestamp::now();
    let applied = Instant::now();
    futures::stream::iter((0..count).map(|index| {
        let hubs = hubs.clone();
        async move {
            hubs.create(&PostParams::default(), &hub(index))
                .await
                .unwrap_or_else(|error| panic!("cannot create hub {index}: {error}"));
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<()>>()
    .await;
    say(&format!(
        "  {count} hubs applied in {:.1} s",
        applied.elapsed().as_secs_f64()
    ));
    let (last_ready, last_running) = seen.wait_all_ready(count, applied).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let converged = jiff::Timestamp::now();
    let cpu_converging = process_cpu_time(pid).saturating_sub(cpu_before);
    let rss_converged_mib = process_rss_kib(pid) as f64 / 1024.0;

    // Idle.
    say(&format!("  idle for {} s", args.idle_seconds));
    let idle_started = jiff::Timestamp::now();
    let cpu_before = process_cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let idle_ended = jiff::Timestamp::now();
    let cpu_idle = process_cpu_time(pid).saturating_sub(cpu_before);

    // Churn, with simulated sidecars writing latency.
    say(&format!(
        "  churn for {} min: a tenth of the hubs change each minute; simulated sidecars write latency",
        args.churn_minutes
    ));
    let suspended = Arc::new(Mutex::new(BTreeSet::new()));
    let sidecars = tokio::spawn(simulated_sidecars(
        hubs.clone(),
        seen.clone(),
        suspended.clone(),
    ));
    let churn_started = jiff::Timestamp::now();
    let cpu_before = process_cpu_time(pid);
    let mut changes = 0;
    for minute in 0..args.churn_minutes {
        let minute_started = Instant::now();
        let chosen: Vec<usize> = (0..count)
            .filter(|index| index % 10 == minute % 10)
            .collect();
        changes += chosen.len();
        futures::stream::iter(chosen.into_iter().map(|index| {
            let hubs = hubs.clone();
            let suspended = suspended.clone();
            async move { change(&hubs, index, &suspended).await }
        }))
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
        tokio::time::sleep_until(minute_started + Duration::from_secs(60)).await;
    }
    sidecars.abort();
    let sidecar_writes = seen.sidecar_writes();
    let churn_ended = jiff::Timestamp::now();
    let cpu_churn = process_cpu_time(pid).saturating_sub(cpu_before);
    let rss_end_mib = process_rss_kib(pid) as f64 / 1024.0;
    let (reconciles, reconcile_p99) = reconcile_figures(&plane.operator_endpoint()).await;

    let requests = operator_requests(&plane.file("audit.log"));
    let figures = Figures {
        apply_to_last_ready: last_ready,
        last_running_to_last_ready: last_ready.saturating_sub(last_running),
        converging: requests.between(apply_started, converged),
        idle: requests.between(idle_started, idle_ended),
        churn: requests.between(churn_started, churn_ended),
        changes,
        sidecar_writes,
        rss_converged_mib,
        rss_end_mib,
        cpu_converging,
        cpu_idle,
        cpu_churn,
        reconciles,
        reconcile_p99,
    };
    seen.stop();
    if let Err(error) = plane.script(&["down"]) {
        say(&format!("  cannot stop the plane: {error}"));
    }
    figures
}

/// Hub `index`: one room on its own port, in one of the regions (or none).
fn hub(index: usize) -> MidiHub {
    let mut spec = json!({"ports": [{"port": FIRST_PORT + 2 * index}]});
    if let Some(region) = REGIONS[index % REGIONS.len()] {
        spec["region"] = json!(region);
    }
    serde_json::from_value(json!({
        "apiVersion": "midihub.io/v1alpha1",
        "kind": "MidiHub",
        "metadata": {"name": hub_name(index), "namespace": NAMESPACE},
        "spec": spec,
    }))
    .expect("a MidiHub")
}

fn hub_name(index: usize) -> String {
    format!("hub-{index:04}")
}

/// Half of the changed hubs are suspended; the others get a schedule whose window holds now
/// (they stay awake, and their next transition changes).
async fn change(hubs: &Api<MidiHub>, index: usize, suspended: &Mutex<BTreeSet<String>>) {
    let name = hub_name(index);
    let patch = if index % 20 < 10 {
        suspended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.clone());
        json!({"spec": {"suspend": true}})
    } else {
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let start = now.saturating_sub(jiff::SignedDuration::from_hours(1));
        let end = now.saturating_add(jiff::SignedDuration::from_hours(2));
        json!({"spec": {"schedule": {"timeZone": "UTC", "windows": [{
            "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            "start": start.strftime("%H:%M").to_string(),
            "end": end.strftime("%H:%M").to_string(),
        }]}}})
    };
    hubs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|error| panic!("cannot change hub {name}: {error}"));
}

/// Writes latency to every awake hub with a running pod every 10 s, spread over the period, as
/// the hubs' sidecars would.
async fn simulated_sidecars(
    hubs: Api<MidiHub>,
    seen: Seen,
    suspended: Arc<Mutex<BTreeSet<String>>>,
) {
    let slices = 10u32;
    let mut tick = tokio::time::interval(SIDECAR_LATENCY_INTERVAL / slices);
    for round in 0u64.. {
        tick.tick().await;
        let slice = (round % u64::from(slices)) as usize;
        let running = seen.running_hubs();
        let awake: Vec<String> = {
            let suspended = suspended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            running
                .into_iter()
                .filter(|name| !suspended.contains(name))
                .filter(|name| {
                    name.rsplit('-')
                        .next()
                        .and_then(|index| index.parse::<usize>().ok())
                        .is_some_and(|index| index % slices as usize == slice)
                })
                .collect()
        };
        let sample = 4.0 + (round % 7) as f64 * 0.1;
        futures::stream::iter(awake.into_iter().map(|name| {
            let hubs = hubs.clone();
            let seen = seen.clone();
            async move {
                let status = sidecar_status(&name, sample);
                if hubs
                    .patch_status(
                        &name,
                        &PatchParams::apply(SIDECAR_FIELD_MANAGER).force(),
                        &contract::status_patch(&status),
                    )
                    .await
                    .is_ok()
                {
                    seen.sidecar_wrote();
                }
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    }
}

/// What a hub's sidecar would publish with one participant whose round trip is `sample_ms`.
fn sidecar_status(hub: &str, sample_ms: f64) -> MidiHubStatus {
    let now = jiff::Timestamp::now();
    MidiHubStatus {
        participants: Some(vec![Participant {
            port: 0,
            room: format!("{hub}-room"),
            name: "bench".to_owned(),
            remote_address: "192.0.2.1:5004".to_owned(),
            joined_at: None,
            latency: Some(Latency {
                last_ms: sample_ms,
                average_ms: sample_ms,
                jitter_ms: 0.1,
            }),
        }]),
        participant_count: Some(1),
        latency: Some(format!("avg {sample_ms:.1}ms max {sample_ms:.1}ms")),
        conditions: vec![contract::condition(
            WIRING_CONDITION,
            true,
            contract::reasons::wiring::WIRED,
            "1 participant wired",
            None,
            &[],
            now,
        )],
        ..MidiHubStatus::default()
    }
}

/// When each hub first turned Ready and each hub's pod first ran, from watches.
#[derive(Clone, Default)]
struct Seen {
    inner: Arc<Mutex<SeenInner>>,
}

#[derive(Default)]
struct SeenInner {
    ready: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
    /// Hubs whose pod runs now.
    running_now: BTreeSet<String>,
    sidecar_writes: usize,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Seen {
    fn watch(client: &Client) -> Self {
        let seen = Self::default();
        let hubs: Api<MidiHub> = Api::namespaced(client.clone(), NAMESPACE);
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        let on_hubs = seen.clone();
        let hubs_task = tokio::spawn(async move {
            let stream = watcher(hubs, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            let _ = stream
                .try_for_each(|hub| {
                    let ready =
                        hub.status.as_ref().and_then(|status| status.phase) == Some(Phase::Ready);
                    if ready {
                        on_hubs
                            .lock()
                            .ready
                            .entry(hub.name_any())
                            .or_insert_with(Instant::now);
                    }
                    futures::future::ready(Ok(()))
                })
                .await;
        });
        let on_pods = seen.clone();
        let pods_task = tokio::spawn(async move {
            let stream = watcher(pods, watcher::Config::default()).default_backoff();
            let _ = stream
                .try_for_each(|event| {
                    let mut inner = on_pods.lock();
                    match event {
                        watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                            if let Some(hub) = pod.labels().get(HUB_LABEL) {
                                let running = pod.status.as_ref().and_then(|s| s.phase.as_deref())
                                    == Some("Running")
                                    && pod.metadata.deletion_timestamp.is_none();
                                if running {
                                    inner
                                        .running
                                        .entry(hub.clone())
                                        .or_insert_with(Instant::now);
                                    inner.running_now.insert(hub.clone());
                                } else {
                                    inner.running_now.remove(hub);
                                }
                            }
                        }
                        watcher::Event::Delete(pod) => {
                            if let Some(hub) = pod.labels().get(HUB_LABEL) {
                                inner.running_now.remove(hub);
                            }
                        }
                        watcher::Event::Init | watcher::Event::InitDone => {}
                    }
                    futures::future::ready(Ok(()))
                })
                .await;
        });
        seen.lock().tasks = vec![hubs_task, pods_task];
        seen
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SeenInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `count` hubs have been Ready; returns when the last turned Ready and when
    /// the last pod ran, both counted from `applied`.
    async fn wait_all_ready(&self, count: usize, applied: Instant) -> (Duration, Duration) {
        let mut report = tokio::time::interval(Duration::from_secs(10));
        loop {
            let (ready, running) = {
                let inner = self.lock();
                (inner.ready.len(), inner.running.len())
            };
            if ready >= count {
                break;
            }
            if applied.elapsed() > READY_LIMIT {
                panic!(
                    "only {ready} of {count} hubs Ready ({running} pods running) after {READY_LIMIT:?}"
                );
            }
            tokio::select! {
                _ = report.tick() => say(&format!(
                    "  … {:.0} s: {ready}/{count} Ready, {running} pods running",
                    applied.elapsed().as_secs_f64()
                )),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        let inner = self.lock();
        let last = |times: &HashMap<String, Instant>| {
            times
                .values()
                .max()
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(applied))
        };
        (last(&inner.ready), last(&inner.running))
    }

    fn running_hubs(&self) -> BTreeSet<String> {
        self.lock().running_now.clone()
    }

    fn sidecar_wrote(&self) {
        self.lock().sidecar_writes += 1;
    }

    fn sidecar_writes(&self) -> usize {
        self.lock().sidecar_writes
    }

    fn stop(&self) {
        for task in self.lock().tasks.drain(..) {
            task.abort();
        }
    }
}

/// The operator's requests: when each was received, and its verb.
struct AuditedRequests(Vec<(jiff::Timestamp, String)>);

/// The operator's requests from the audit log: each request once (a watch is logged when it
/// starts and when it ends), Leases apart. The plane writes one file and never rotates it.
fn operator_requests(path: &std::path::Path) -> AuditedRequests {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read the audit log {}: {error}", path.display()));
    let mut seen_ids = BTreeSet::new();
    let mut requests = Vec::new();
    for line in text.lines().filter(|line| line.contains(OPERATOR_USER)) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["user"]["username"] != OPERATOR_USER || event["objectRef"]["resource"] == "leases"
        {
            continue;
        }
        let (Some(id), Some(verb), Some(received)) = (
            event["auditID"].as_str(),
            event["verb"].as_str(),
            event["requestReceivedTimestamp"]
                .as_str()
                .and_then(|at| at.parse::<jiff::Timestamp>().ok()),
        ) else {
            continue;
        };
        if seen_ids.insert(id.to_owned()) {
            requests.push((received, verb.to_owned()));
        }
    }
    AuditedRequests(requests)
}

impl AuditedRequests {
    fn between(&self, from: jiff::Timestamp, to: jiff::Timestamp) -> Requests {
        let mut by_verb = BTreeMap::new();
        for (at, verb) in &self.0 {
            if *at >= from && *at < to {
                *by_verb.entry(verb.clone()).or_insert(0) += 1;
            }
        }
        Requests(by_verb)
    }
}

/// Reconciles so far and the p99 reconcile time (the upper bound of the histogram's bucket
/// that holds it) from the operator's /metrics.
async fn reconcile_figures(endpoint: &str) -> (Option<f64>, Option<String>) {
    let url = format!("{endpoint}/metrics");
    let Ok(Ok(response)) =
        tokio::task::spawn_blocking(move || midihub_tests::http::http_get(&url)).await
    else {
        return (None, None);
    };
    let text = response.body;
    let mut buckets = Vec::new();
    let mut count = None;
    for line in text.lines() {
        if let Some(rest) =
            line.strip_prefix("midihub_operator_reconcile_duration_seconds_bucket{le=\"")
        {
            if let Some((le, value)) = rest.split_once("\"} ")
                && let Ok(value) = value.trim().parse::<f64>()
            {
                buckets.push((le.to_owned(), value));
            }
        } else if let Some(value) =
            line.strip_prefix("midihub_operator_reconcile_duration_seconds_count ")
        {
            count = value.trim().parse::<f64>().ok();
        }
    }
    let p99 = count.and_then(|count| {
        buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= 0.99 * count)
            .map(|(le, _)| format!("≤ {le} s"))
    });
    (count, p99)
}

fn print_figures(hubs: usize, name: &str, figures: &Figures) {
    say(&format!("  {name}, {hubs} hubs:"));
    say(&format!(
        "    apply → last Ready {:.1} s; last pod Running → last Ready {:.1} s",
        figures.apply_to_last_ready.as_secs_f64(),
        figures.last_running_to_last_ready.as_secs_f64()
    ));
    say(&format!(
        "    requests per hub while converging: {}",
        figures.converging.per(hubs)
    ));
    say(&format!(
        "    requests while idle: {} in all, {} writes",
        figures.idle.per(1),
        figures.idle.writes()
    ));
    say(&format!(
        "    churn: {} changes, {} simulated sidecar writes; requests per change: {}",
        figures.changes,
        figures.sidecar_writes,
        figures.churn.per(figures.changes)
    ));
    say(&format!(
        "    RSS {:.1} MiB converged, {:.1} MiB at the end; CPU {:.1} s converging, {:.1} s idle, {:.1} s churn",
        figures.rss_converged_mib,
        figures.rss_end_mib,
        figures.cpu_converging.as_secs_f64(),
        figures.cpu_idle.as_secs_f64(),
        figures.cpu_churn.as_secs_f64()
    ));
    say(&format!(
        "    reconciles {}; p99 reconcile time {}",
        figures
            .reconciles
            .map_or("?".to_owned(), |count| format!("{count:.0}")),
        figures.reconcile_p99.as_deref().unwrap_or("?")
    ));
}

fn print_comparison(results: &BTreeMap<usize, Vec<(String, Figures)>>) {
    say("── summary (ratios are the last build over the first)");
    for (hubs, runs) in results {
        let (Some((first_name, first)), Some((last_name, last))) = (runs.first(), runs.last())
        else {
            continue;
        };
        let rows: [(&str, f64, f64); 7] = [
            (
                "last pod Running → last Ready (s)",
                first.last_running_to_last_ready.as_secs_f64(),
                last.last_running_to_last_ready.as_secs_f64(),
            ),
            (
                "requests per hub, converging",
                first.converging.total() as f64 / *hubs as f64,
                last.converging.total() as f64 / *hubs as f64,
            ),
            (
                "requests, idle",
                first.idle.total() as f64,
                last.idle.total() as f64,
            ),
            (
                "writes, idle",
                first.idle.writes() as f64,
                last.idle.writes() as f64,
            ),
            (
                "requests per change, churn",
                first.churn.total() as f64 / first.changes.max(1) as f64,
                last.churn.total() as f64 / last.changes.max(1) as f64,
            ),
            ("RSS at the end (MiB)", first.rss_end_mib, last.rss_end_mib),
            (
                "CPU, converging + churn (s)",
                (first.cpu_converging + first.cpu_churn).as_secs_f64(),
                (last.cpu_converging + last.cpu_churn).as_secs_f64(),
            ),
        ];
        say(&format!("  {hubs} hubs: {first_name} → {last_name}"));
        for (what, before, after) in rows {
            let ratio = if before > 0.0 {
                format!("×{:.2}", after / before)
            } else {
                "–".to_owned()
            };
            say(&format!(
                "    {what:<36} {before:>10.2} {after:>10.2}  {ratio}"
            ));
        }
    }
}
