//! The hub-sidecar binary: `kubernetes` mode in a hub pod (publishes to the MidiHub), `local`
//! mode on a plain Linux host (starts rtpmidid or attaches to one, prints JSON lines).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hub_sidecar::allow::{AllowList, RoomRules};
use hub_sidecar::guard::{self, Guard};
use hub_sidecar::health::Health;
use hub_sidecar::http;
use hub_sidecar::hub_rules;
use hub_sidecar::local;
use hub_sidecar::publish::{KubernetesSink, Sink};
use hub_sidecar::roster::Roster;
use hub_sidecar::rtpmidid::control::ControlClient;
use hub_sidecar::sequencer::Sequencer;
use hub_sidecar::sidecar::{Pacing, Sidecar};
use midihub_api::contract::{self, env};
use midihub_runtime::{LogFormat, LogOutput, wait_for};

/// How long one request to rtpmidid's control socket may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

/// Wires every participant of a MIDI hub's rooms to every other through the ALSA sequencer,
/// and publishes who is connected and their round-trip times.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address of the /healthz, /readyz, /metrics and /status endpoint.
    #[arg(
        long,
        env = env::SIDECAR_LISTEN,
        global = true,
        default_value = "127.0.0.1:9180"
    )]
    listen: SocketAddr,

    /// How often to ask rtpmidid for fresh latency figures, in milliseconds. Wiring does not
    /// wait for it: joins and leaves are wired as the sequencer announces them.
    #[arg(
        long,
        env = "MIDIHUB_SIDECAR_REFRESH_MS",
        global = true,
        default_value_t = 2000
    )]
    refresh_ms: u64,

    /// Log format (logs go to stderr; local mode's reports go to stdout). Text is coloured only
    /// on a terminal, and never with NO_COLOR set.
    #[arg(
        long,
        env = "MIDIHUB_LOG_FORMAT",
        value_enum,
        global = true,
        default_value = "text"
    )]
    log_format: LogFormat,

    /// The stuck-note guard: when a participant leaves holding notes or pedals, release them
    /// for the rest of its room; it also sends the hub-wide panic. `off` only to compare (the
    /// wiring load benchmark) or should it misbehave.
    #[arg(
        long,
        env = "MIDIHUB_NOTE_GUARD",
        value_enum,
        global = true,
        default_value = "on"
    )]
    note_guard: Switch,

    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// In a hub pod: publish participants to the MidiHub's status and Events.
    #[command(name = contract::SIDECAR_KUBERNETES_MODE)]
    Kubernetes {
        /// The MidiHub this pod serves.
        #[arg(long, env = env::HUB_NAME)]
        hub: String,
        /// Its namespace.
        #[arg(long, env = env::POD_NAMESPACE)]
        namespace: String,
        /// This pod's name, named in Events.
        #[arg(long, env = env::POD_NAME)]
        pod: Option<String>,
        /// rtpmidid's control socket.
        #[arg(long, env = env::RTPMIDID_CONTROL_SOCKET, default_value = midihub_api::rtpmidid_config::CONTROL_SOCKET_PATH)]
        control: PathBuf,
    },
    /// On a plain Linux host: start rtpmidid for the given rooms (or attach to a running one)
    /// and print participants as JSON lines on stdout.
    Local {
        /// A room: PORT or PORT=NAME (e.g. 5004=jam-a); repeat for more rooms.
        #[arg(
            long = "room",
            value_name = "PORT[=NAME]",
            required_unless_present = "attach"
        )]
        rooms: Vec<String>,
        /// The rtpmidid binary to start and keep running.
        #[arg(long, default_value = "rtpmidid", conflicts_with = "attach")]
        rtpmidid: PathBuf,
        /// Directory for rtpmidid's configuration and control socket.
        #[arg(long, default_value = "/run/midihub", conflicts_with = "attach")]
        work_dir: PathBuf,
        /// Name that default session names start with (`<name>-<port>`).
        #[arg(long, default_value = "midihub", conflicts_with = "attach")]
        name: String,
        /// Attach to an rtpmidid that is already running, through its control socket,
        /// instead of starting one.
        #[arg(long, value_name = "SOCKET")]
        attach: Option<PathBuf>,
        /// Who may play in a room: its control port and CIDRs (e.g.
        /// 5004=203.0.113.0/24,2001:db8::/32); anyone else is never wired. Repeat for more
        /// rooms; a room without one admits everyone.
        #[arg(long = "allow", value_name = "PORT=CIDR[,CIDR...]", value_parser = local::parse_allow)]
        allow: Vec<(u16, AllowList)>,
    },
}

/// On or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

/// What can stop the sidecar.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Sequencer(#[from] hub_sidecar::sequencer::SequencerError),
    #[error(transparent)]
    Sidecar(#[from] hub_sidecar::sidecar::SidecarError),
    #[error(transparent)]
    Local(#[from] local::LocalError),
    #[error("cannot reach the MidiHub: {0}")]
    Kubernetes(kube::Error),
    #[error(transparent)]
    Listen(#[from] midihub_runtime::endpoint::ListenError),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    midihub_runtime::init_logs(args.log_format, LogOutput::Stderr);
    midihub_runtime::exit_code(run(args).await, "hub-sidecar")
}

async fn run(args: Args) -> Result<(), Error> {
    let (stop_tx, stop) = midihub_runtime::stop_on_signal();

    // Panic requests: from the hub's annotation in a hub pod, from `POST /panic` locally.
    let (local_requests, local_panics) = tokio::sync::mpsc::unbounded_channel();
    let (sink, roster, control, daemon, rules, panics) = match args.mode {
        Mode::Kubernetes {
            hub,
            namespace,
            pod,
            control,
        } => {
            let client = kube::Client::try_default()
                .await
                .map_err(Error::Kubernetes)?;
            let (followed, follow) =
                hub_rules::follow(kube::Api::namespaced(client.clone(), &namespace), &hub)
                    .await
                    .map_err(Error::Kubernetes)?;
            // Ends with the loop, which holds the rules.
            tokio::spawn(follow);
            let (sink, previous) = KubernetesSink::connect(client, &namespace, &hub, pod)
                .await
                .map_err(Error::Kubernetes)?;
            (
                Sink::Kubernetes(Box::new(sink)),
                Roster::inherit(previous),
                control,
                None,
                followed.rules,
                followed.panics,
            )
        }
        Mode::Local {
            attach: Some(socket),
            allow,
            ..
        } => (
            Sink::Local,
            Roster::default(),
            socket,
            None,
            fixed(local::room_rules(allow)?),
            local_panics,
        ),
        Mode::Local {
            rooms,
            rtpmidid,
            work_dir,
            name,
            attach: None,
            allow,
        } => {
            let rules = local::room_rules(allow)?;
            let ports = rooms
                .iter()
                .map(|room| local::parse_room(room))
                .collect::<Result<Vec<_>, _>>()?;
            let (ini, socket) = local::write_config(&work_dir, &name, &ports)?;
            let daemon = tokio::spawn(local::supervise(rtpmidid, ini, stop.clone()));
            (
                Sink::Local,
                Roster::default(),
                socket,
                Some(daemon),
                fixed(rules),
                local_panics,
            )
        }
    };

    let health = Arc::new(Health::new(std::time::Instant::now()));
    let listener = midihub_runtime::endpoint::bind(args.listen).await?;
    // Only a local hub's endpoint takes requests: a hub pod's is on the node's network.
    let local_requests = matches!(sink, Sink::Local).then_some(local_requests);
    let server = tokio::spawn(midihub_runtime::endpoint::serve(
        listener,
        http::router(health.clone(), local_requests),
        "sidecar's HTTP endpoint",
        wait_for(stop.clone(), true),
    ));

    let (sequencer, events) = Sequencer::start("midihub-sidecar")?;
    let sidecar = Sidecar::new(
        sequencer,
        ControlClient::new(control, CONTROL_TIMEOUT),
        sink,
        roster,
        health,
        Pacing {
            refresh: Duration::from_millis(args.refresh_ms.max(100)),
            ..Pacing::default()
        },
        rules,
    )
    .with_panics(panics);
    let sidecar = match args.note_guard {
        Switch::On => {
            let (guard, guard_events) = Guard::start(guard::CLIENT_NAME)?;
            sidecar.with_guard(guard, guard_events)
        }
        Switch::Off => {
            tracing::warn!(
                "the stuck-note guard is off (--note-guard off): notes of participants who leave are not released, and a panic sends nothing"
            );
            sidecar
        }
    };
    let result = sidecar.run(events, wait_for(stop.clone(), true)).await;
    // Whatever ended the loop ends the rest too.
    let _ = stop_tx.send(true);
    if let Some(daemon) = daemon {
        let _ = daemon.await;
    }
    let _ = server.await;
    Ok(result?)
}

/// Rules that never change (local mode's, from the command line).
fn fixed(rules: RoomRules) -> tokio::sync::watch::Receiver<RoomRules> {
    tokio::sync::watch::channel(rules).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_are_given_per_room_with_a_repeated_flag() {
        let args = Args::try_parse_from([
            "hub-sidecar",
            "local",
            "--room",
            "5004",
            "--allow",
            "5004=203.0.113.0/24,2001:db8::/32",
            "--allow",
            "5006=198.51.100.7/32",
        ])
        .unwrap();
        let Mode::Local { allow, .. } = args.mode else {
            panic!("local mode");
        };
        let ports: Vec<u16> = allow.iter().map(|(port, _)| *port).collect();
        assert_eq!(ports, [5004, 5006]);
    }

    #[test]
    fn a_malformed_allow_list_names_the_flag_and_gives_an_example() {
        let error = Args::try_parse_from([
            "hub-sidecar",
            "local",
            "--room",
            "5004",
            "--allow",
            "5004:203.0.113.0/24",
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("--allow"), "{error}");
        assert!(error.contains("\"5004:203.0.113.0/24\""), "{error}");
        assert!(
            error.contains("e.g. --allow 5004=203.0.113.0/24"),
            "{error}"
        );
    }
}
