//! Support for tests on a real ALSA sequencer with the real rtpmidid: finding what they need
//! (and saying why they skip when it is missing), running rtpmidid with the configuration the
//! product renders, and reading the kernel's subscriptions with `aconnect -l`, a tool
//! independent of the code under test.
// Test support: a set-up step that fails fails the test that asked for it.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use midihub_api::HubPort;
use midihub_api::rtpmidid_config::{self, RtpmididConfig};
use tokio::process::{Child, Command};

use crate::applemidi::{JoinOptions, Participant};

/// The rtpmidid binary, when this machine can run the real-ALSA tier: `RTPMIDID_BIN` names it
/// and `/dev/snd/seq` exists. Otherwise prints why the caller skips (visible in test output)
/// and returns `None` — except inside shared/alsa-vm (`ALSA_VM` set), where the tier is meant
/// to run and a missing piece is a failure, not a skip.
pub fn rtpmidid_or_skip(test: &str) -> Option<PathBuf> {
    let reason = match std::env::var_os("RTPMIDID_BIN") {
        None => "RTPMIDID_BIN is not set (the path printed by scripts/build-rtpmidid)".to_string(),
        Some(path) if !Path::new(&path).is_file() => {
            format!("RTPMIDID_BIN={} is not a file", Path::new(&path).display())
        }
        Some(_) if !Path::new("/dev/snd/seq").exists() => {
            "no ALSA sequencer here (/dev/snd/seq is missing); run the tier in shared/alsa-vm"
                .to_string()
        }
        Some(path) => return Some(PathBuf::from(path)),
    };
    skip(test, &reason);
    None
}

/// Prints why `test` skips — or fails it inside shared/alsa-vm (`ALSA_VM` set), where the
/// real-ALSA tier is meant to run and a missing piece is a failure, not a skip.
fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os("ALSA_VM").is_none(),
        "{test}: inside the ALSA VM but {reason}"
    );
    eprintln!("SKIP {test}: {reason}");
}

/// Whether this process may run a program in a mount namespace of its own (`unshare --mount`:
/// root, as in shared/alsa-vm), which [`Rtpmidid::start_with_hosts_file`] needs. Otherwise
/// prints why the caller skips and returns false — except inside the VM, where it is a failure.
pub fn mount_namespace_or_skip(test: &str) -> bool {
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if probe.is_ok_and(|status| status.success()) {
        return true;
    }
    skip(
        test,
        "cannot make a mount namespace here (`unshare --mount` needs root)",
    );
    false
}

/// Whether this machine has the real ALSA sequencer (`/dev/snd/seq`). Otherwise prints why
/// the caller skips and returns false — except inside shared/alsa-vm (`ALSA_VM` set), where a
/// missing sequencer is a failure.
pub fn sequencer_or_skip(test: &str) -> bool {
    if Path::new("/dev/snd/seq").exists() {
        return true;
    }
    skip(
        test,
        "no ALSA sequencer (/dev/snd/seq missing); run this test binary in the ALSA VM",
    );
    false
}

/// A room on `port` named `name`, as a MidiHub spec lists it.
pub fn room(port: u16, name: &str) -> HubPort {
    HubPort {
        port: i32::from(port),
        name: Some(name.to_string()),
        allow: Vec::new(),
    }
}

/// The hub's room on loopback port `port`.
pub fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// A test participant called `name` that joins the room on loopback port `port`.
pub async fn join(port: u16, name: &str) -> Participant {
    Participant::join(loopback(port), name, JoinOptions::default())
        .await
        .unwrap_or_else(|error| panic!("{name} cannot join room {port}: {error}"))
}

/// A fresh directory under /tmp for one test's files.
pub fn scratch_dir(label: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("midihub-{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    dir
}

/// The real rtpmidid, configured by the product's own rendering for `ports`; killed on drop.
pub struct Rtpmidid {
    child: Child,
    pub control_socket: PathBuf,
    pub log: PathBuf,
}

impl Rtpmidid {
    /// Writes the configuration for `ports` (hub name `hub_name`) into `dir` and starts the
    /// daemon; returns once it listens on every room's port.
    pub async fn start(binary: &Path, dir: &Path, hub_name: &str, ports: &[HubPort]) -> Rtpmidid {
        Self::start_rooms(binary, dir, hub_name, ports, None).await
    }

    /// As [`Rtpmidid::start`], with `hosts` as the daemon's /etc/hosts: in a mount namespace of
    /// its own, which needs root (the test VM has it).
    pub async fn start_with_hosts_file(
        binary: &Path,
        dir: &Path,
        hub_name: &str,
        ports: &[HubPort],
        hosts: &str,
    ) -> Rtpmidid {
        let hosts_file = dir.join("hosts");
        std::fs::write(&hosts_file, hosts).expect("writable scratch dir");
        Self::start_rooms(binary, dir, hub_name, ports, Some(&hosts_file)).await
    }

    async fn start_rooms(
        binary: &Path,
        dir: &Path,
        hub_name: &str,
        ports: &[HubPort],
        hosts_file: Option<&Path>,
    ) -> Rtpmidid {
        let control_socket = dir.join("control.sock");
        let config = RtpmididConfig {
            alsa_name: rtpmidid_config::alsa_client_name(ports),
            control_socket: control_socket.to_string_lossy().into_owned(),
            rooms: rtpmidid_config::rooms(hub_name, ports).expect("valid rooms"),
        };
        let ini = dir.join("rtpmidid.ini");
        std::fs::write(&ini, rtpmidid_config::render(&config).expect("renderable"))
            .expect("writable scratch dir");
        let daemon = Self::spawn(command(binary, &ini, hosts_file), &ini, control_socket).await;
        let wanted: Vec<u16> = config.rooms.iter().map(|room| room.port).collect();
        let mut listening = Vec::new();
        for _ in 0..500 {
            listening = listening_ports(&daemon.control_socket).await;
            if wanted.iter().all(|port| listening.contains(port)) {
                return daemon;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "rtpmidid listens on {listening:?}, not on every room of {wanted:?}; its log:\n{}",
            daemon.log_text()
        );
    }

    /// Starts the daemon on an existing configuration file whose control socket is
    /// `control_socket`.
    pub async fn start_with_ini(binary: &Path, ini: &Path, control_socket: PathBuf) -> Rtpmidid {
        Self::spawn(command(binary, ini, None), ini, control_socket).await
    }

    async fn spawn(mut command: Command, ini: &Path, control_socket: PathBuf) -> Rtpmidid {
        let _ = std::fs::remove_file(&control_socket);
        let log = ini.with_extension("log");
        let log_file = std::fs::File::create(&log).expect("writable scratch dir");
        let child = command
            .stdout(Stdio::from(log_file.try_clone().expect("log file")))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start rtpmidid ({command:?}): {error}"));
        let daemon = Rtpmidid {
            child,
            control_socket,
            log,
        };
        let ready = wait_until(Duration::from_secs(10), || daemon.control_socket.exists()).await;
        assert!(
            ready,
            "rtpmidid made no control socket; its log:\n{}",
            daemon.log_text()
        );
        daemon
    }

    /// The daemon's process id, while it has not been waited for.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// How the daemon exited, if it has (without waiting).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// rtpmidid's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the daemon and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The command that runs rtpmidid on `ini`; with `hosts_file`, in a mount namespace of its own
/// where that file is /etc/hosts.
fn command(binary: &Path, ini: &Path, hosts_file: Option<&Path>) -> Command {
    let Some(hosts_file) = hosts_file else {
        let mut command = Command::new(binary);
        command.arg("--ini").arg(ini);
        return command;
    };
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && exec "$2" --ini "$3""#)
        .arg("sh")
        .arg(hosts_file)
        .arg(binary)
        .arg(ini);
    command
}

/// The `result` of rtpmidid's `status` through its control socket, as raw JSON (`None` while
/// it does not answer). Tests read it raw, independently of the sidecar's parser.
pub async fn status_json(control_socket: &Path) -> Option<serde_json::Value> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut stream = tokio::net::UnixStream::connect(control_socket).await.ok()?;
    stream
        .write_all(br#"{"method":"status","params":{},"id":1}"#)
        .await
        .ok()?;
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    // Patiently: rtpmidid does not ignore SIGPIPE, and a reply it writes to a connection
    // closed by an impatient reader kills it (a 2 s limit did, in the VM under load).
    tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    let mut reply: serde_json::Value = serde_json::from_str(&line).ok()?;
    Some(reply["result"].take())
}

/// The control ports of the rooms rtpmidid's `status` shows as listening (empty while it
/// does not answer).
pub async fn listening_ports(control_socket: &Path) -> Vec<u16> {
    let Some(status) = status_json(control_socket).await else {
        return Vec::new();
    };
    status["router"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["listening"]["control_port"].as_u64())
        .filter_map(|port| u16::try_from(port).ok())
        .collect()
}

/// A sequencer address: (client, port).
pub type SeqAddr = (i32, i32);

/// A hub's sequencer clients as `aconnect -l` shows them: rtpmidid's own, named `alsa_name`,
/// and those of its rooms, named `<alsa_name> <room name>` (midihub's rtpmidid gives each room
/// a client of its own, holding its participants' ports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubView {
    /// Port → port name, for every port of those clients.
    pub ports: BTreeMap<SeqAddr, String>,
    /// (from, to) for every subscription between two of those ports.
    pub internal_links: BTreeSet<(SeqAddr, SeqAddr)>,
    /// (from, to) for every subscription from one of those ports to another client's port.
    pub external_links: BTreeSet<(SeqAddr, SeqAddr)>,
}

impl HubView {
    /// The first port named `name`.
    pub fn port_named(&self, name: &str) -> Option<SeqAddr> {
        self.ports
            .iter()
            .find(|(_, port_name)| *port_name == name)
            .map(|(addr, _)| *addr)
    }
}

/// The clients of the hub whose rtpmidid is named `alsa_name`, as `aconnect -l` reports them;
/// `None` when it lists none of them (it leaves out a client without a port to subscribe to,
/// as a room's is while nobody is in it).
pub fn aconnect_view(alsa_name: &str) -> Option<HubView> {
    let output = std::process::Command::new("aconnect")
        .arg("-l")
        .output()
        .expect("aconnect (alsa-utils) is installed");
    parse_aconnect(&String::from_utf8_lossy(&output.stdout), alsa_name)
}

/// `aconnect from to`: subscribes `to` to `from`, as a test or the 5 s poller does by hand.
pub fn aconnect(
    (from_client, from_port): SeqAddr,
    (to_client, to_port): SeqAddr,
) -> std::io::Result<std::process::Output> {
    std::process::Command::new("aconnect")
        .arg(format!("{from_client}:{from_port}"))
        .arg(format!("{to_client}:{to_port}"))
        .output()
}

/// The ids of every client named `name` in the kernel's list of sequencer clients
/// (`/proc/asound/seq/clients`: `Client 130 : "midihub-guard" [User ...]`). `aconnect -l`
/// leaves out clients whose ports are all unexported, as the stuck-note guard's are.
pub fn client_ids(text: &str, name: &str) -> BTreeSet<i32> {
    let quoted = format!("\"{name}\"");
    text.lines()
        .filter_map(|line| line.strip_prefix("Client"))
        .filter_map(|rest| rest.split_once(':'))
        .filter(|(_, rest)| rest.trim_start().starts_with(&quoted))
        .filter_map(|(id, _)| id.trim().parse().ok())
        .collect()
}

/// The ids of the sequencer clients named `name` now.
pub fn sequencer_client_ids(name: &str) -> BTreeSet<i32> {
    let text = std::fs::read_to_string("/proc/asound/seq/clients")
        .expect("the kernel lists its sequencer clients in /proc/asound/seq/clients");
    client_ids(&text, name)
}

/// Parses `aconnect -l` output for the clients of the hub whose rtpmidid is named
/// `alsa_name`.
pub fn parse_aconnect(text: &str, alsa_name: &str) -> Option<HubView> {
    let room_prefix = format!("{alsa_name} ");
    let mut view: Option<HubView> = None;
    let mut client: Option<i32> = None;
    let mut port: Option<SeqAddr> = None;
    let mut links = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("client ") {
            let (id, rest) = rest.split_once(": '")?;
            let client_name = rest.split('\'').next().unwrap_or_default();
            client = (client_name == alsa_name || client_name.starts_with(&room_prefix))
                .then(|| id.trim().parse().ok())
                .flatten();
            if client.is_some() {
                view.get_or_insert_default();
            }
            port = None;
            continue;
        }
        let (Some(client), Some(view)) = (client, view.as_mut()) else {
            continue;
        };
        let trimmed = line.trim();
        if let Some(targets) = trimmed.strip_prefix("Connecting To:") {
            let Some(from) = port else { continue };
            for target in targets.split(',') {
                let address = target.trim().split('[').next().unwrap_or_default().trim();
                let Some((to_client, to_port)) = address.split_once(':') else {
                    continue;
                };
                if let (Ok(to_client), Ok(to_port)) = (to_client.parse(), to_port.parse()) {
                    links.push((from, (to_client, to_port)));
                }
            }
        } else if trimmed.starts_with("Connected From:") {
            continue;
        } else if let Some((number, rest)) = trimmed.split_once(" '")
            && let Ok(number) = number.parse::<i32>()
        {
            port = Some((client, number));
            let port_name = rest.trim_end_matches('\'').trim_end().to_string();
            view.ports.insert((client, number), port_name);
        }
    }
    // Whether a link stays inside the hub is known once every client has been read.
    let mut view = view?;
    for (from, to) in links {
        if view.ports.contains_key(&to) {
            view.internal_links.insert((from, to));
        } else {
            view.external_links.insert((from, to));
        }
    }
    Some(view)
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
client 0: 'System' [type=kernel]
    0 'Timer           '
\tConnecting To: 15:0
    1 'Announce        '
\tConnecting To: 15:0, 128:0
client 14: 'Midi Through' [type=kernel]
    0 'Midi Through Port-0'
client 129: 'rtpmidid room-a' [type=user,pid=231]
    0 'Alice MacBook'
\tConnecting To: 129:1, 130:0, 131:0[real:0], 14:0
\tConnected From: 129:1
    1 'bob-linux'
\tConnecting To: 129:0
\tConnected From: 129:0
client 130: 'rtpmidid room-b' [type=user,pid=231]
    0 'Alice MacBook'
\tConnected From: 129:0
client 131: 'midihub-sidecar' [type=user,pid=232]
    0 'announce'
client 132: 'rtpmidid-other' [type=user,pid=233]
    0 'Dave'
";

    #[test]
    fn aconnect_listing_gives_ports_and_links_of_the_hubs_clients() {
        let view = parse_aconnect(LISTING, "rtpmidid").unwrap();
        assert_eq!(
            view.ports,
            BTreeMap::from([
                ((129, 0), "Alice MacBook".to_string()),
                ((129, 1), "bob-linux".to_string()),
                ((130, 0), "Alice MacBook".to_string()),
            ])
        );
        assert_eq!(
            view.internal_links,
            BTreeSet::from([
                ((129, 0), (129, 1)),
                ((129, 0), (130, 0)),
                ((129, 1), (129, 0))
            ])
        );
        assert_eq!(
            view.external_links,
            BTreeSet::from([((129, 0), (131, 0)), ((129, 0), (14, 0))])
        );
        assert_eq!(view.port_named("bob-linux"), Some((129, 1)));
    }

    #[test]
    fn client_ids_come_from_the_kernels_list_by_exact_name() {
        let text = "Client info\n  cur  clients : 3\n\nClient   0 : \"System\" [Kernel Legacy]\n  Port   0 : \"Timer\" (Rwe-)\nClient 130 : \"midihub-guard\" [User UMP MIDI1]\n  Output pool :\nClient 131 : \"midihub-guard-2\" [User]\nClient 132 : \"midihub-guard\" [User]\n";
        assert_eq!(
            client_ids(text, "midihub-guard"),
            BTreeSet::from([130, 132])
        );
    }

    #[test]
    fn a_missing_client_is_none() {
        assert_eq!(parse_aconnect(LISTING, "nobody"), None);
    }
}
