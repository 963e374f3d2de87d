//! Local mode's rtpmidid: the configuration written from the rooms given on the command line
//! (the same rendering as the operator's), and the daemon started and kept running; and the
//! rooms' allow-lists given on the command line.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::allow::{AllowList, RoomRules};
use midihub_api::rtpmidid_config::{self, ConfigError, Room, RtpmididConfig};
use midihub_runtime::wait_for;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// A restart waits this long at first, doubling up to [`MAX_RESTART_DELAY`] while the daemon
/// keeps failing quickly.
const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A daemon that ran this long was healthy: its next failure restarts it at once.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long rtpmidid may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Local mode could not set rtpmidid up.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("invalid room {0:?}: write PORT or PORT=NAME, e.g. 5004 or 5004=jam-a")]
    Room(String),
    #[error(
        "invalid allow-list {argument:?}: {reason}; write --allow PORT=CIDR[,CIDR...], e.g. --allow 5004=203.0.113.0/24,2001:db8::/32"
    )]
    Allow { argument: String, reason: String },
    #[error(
        "--allow names room {0} twice: give all its CIDRs in one, e.g. --allow {0}=203.0.113.0/24,198.51.100.7/32"
    )]
    AllowTwice(u16),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Parses a `PORT` or `PORT=NAME` room argument.
pub fn parse_room(argument: &str) -> Result<midihub_api::HubPort, LocalError> {
    let (port, name) = match argument.split_once('=') {
        Some((port, name)) => (port, Some(name.to_string())),
        None => (argument, None),
    };
    let port = port
        .trim()
        .parse()
        .map_err(|_| LocalError::Room(argument.to_string()))?;
    Ok(midihub_api::HubPort {
        port,
        name,
        allow: Vec::new(),
    })
}

/// Parses a `PORT=CIDR[,CIDR...]` allow-list argument: the room's control port and its list.
pub fn parse_allow(argument: &str) -> Result<(u16, AllowList), LocalError> {
    let invalid = |reason: String| LocalError::Allow {
        argument: argument.to_owned(),
        reason,
    };
    let (port, cidrs) = argument
        .split_once('=')
        .ok_or_else(|| invalid("no '=' between the room's port and its CIDRs".to_owned()))?;
    let port = port
        .trim()
        .parse()
        .map_err(|_| invalid(format!("{:?} is not a room's control port", port.trim())))?;
    let entries: Vec<&str> = cidrs.split(',').collect();
    let list = AllowList::parse(&entries).map_err(|error| invalid(error.to_string()))?;
    Ok((port, list))
}

/// The rooms' allow-lists from the `--allow` arguments, one per room.
pub fn room_rules(lists: Vec<(u16, AllowList)>) -> Result<RoomRules, LocalError> {
    let mut ports = std::collections::BTreeSet::new();
    if let Some((port, _)) = lists.iter().find(|(port, _)| !ports.insert(*port)) {
        return Err(LocalError::AllowTwice(*port));
    }
    Ok(lists.into_iter().collect())
}

/// Writes rtpmidid's configuration for `rooms` into `directory` (which also gets the control
/// socket) and returns the INI file's path and the socket's.
pub fn write_config(
    directory: &Path,
    hub_name: &str,
    ports: &[midihub_api::HubPort],
) -> Result<(PathBuf, PathBuf), LocalError> {
    let rooms: Vec<Room> = rtpmidid_config::rooms(hub_name, ports)?;
    let socket = directory.join("control.sock");
    let config = RtpmididConfig {
        alsa_name: rtpmidid_config::alsa_client_name(ports),
        control_socket: socket.to_string_lossy().into_owned(),
        rooms,
    };
    let ini = rtpmidid_config::render(&config)?;
    let path = directory.join("rtpmidid.ini");
    std::fs::create_dir_all(directory)
        .and_then(|()| std::fs::write(&path, ini))
        .map_err(|error| LocalError::Write {
            path: path.clone(),
            error,
        })?;
    Ok((path, socket))
}

/// Runs `rtpmidid --ini <ini>` until `stop` becomes true, restarting it when it exits.
pub async fn supervise(rtpmidid: PathBuf, ini: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut delay = FIRST_RESTART_DELAY;
    loop {
        let started = tokio::time::Instant::now();
        let mut child = match Command::new(&rtpmidid)
            .arg("--ini")
            .arg(&ini)
            // stdout carries the sidecar's JSON lines: the daemon's log goes to stderr.
            .stdout(std::io::stderr())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(%error, rtpmidid = %rtpmidid.display(), "cannot start rtpmidid");
                if wait_or_stop(&mut stop, delay).await {
                    return;
                }
                delay = (delay * 2).min(MAX_RESTART_DELAY);
                continue;
            }
        };
        tracing::info!(pid = child.id(), "rtpmidid started");
        let exit = tokio::select! {
            exit = child.wait() => exit,
            () = wait_for(stop.clone(), true) => {
                terminate(child).await;
                return;
            }
        };
        log_exit(exit);
        if started.elapsed() >= HEALTHY_RUN {
            delay = FIRST_RESTART_DELAY;
        }
        if wait_or_stop(&mut stop, delay).await {
            return;
        }
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
}

fn log_exit(exit: std::io::Result<ExitStatus>) {
    match exit {
        Ok(status) => tracing::warn!(%status, "rtpmidid exited; restarting it"),
        Err(error) => tracing::warn!(%error, "lost track of rtpmidid; restarting it"),
    }
}

/// Waits `delay`; true when asked to stop meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::time::timeout(delay, wait_for(stop.clone(), true))
        .await
        .is_ok()
}

/// SIGTERM, then SIGKILL if the daemon does not stop in time.
async fn terminate(mut child: Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    tracing::info!("rtpmidid stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_written_as_port_or_port_and_name() {
        let plain = parse_room("5004").unwrap();
        assert_eq!((plain.port, plain.name), (5004, None));
        let named = parse_room("5006=Jam Room B").unwrap();
        assert_eq!(
            (named.port, named.name.as_deref()),
            (5006, Some("Jam Room B"))
        );
        assert!(matches!(parse_room("jam"), Err(LocalError::Room(_))));
        assert!(matches!(parse_room("=jam"), Err(LocalError::Room(_))));
    }

    #[test]
    fn an_allow_list_is_a_port_and_cidrs() {
        let (port, list) = parse_allow("5004=203.0.113.0/24, 2001:db8::/32").unwrap();
        assert_eq!(port, 5004);
        assert_eq!(
            list,
            AllowList::parse(&["203.0.113.0/24", "2001:db8::/32"]).unwrap()
        );
    }

    #[test]
    fn a_malformed_allow_list_is_refused_with_the_form_and_an_example() {
        let example =
            "write --allow PORT=CIDR[,CIDR...], e.g. --allow 5004=203.0.113.0/24,2001:db8::/32";
        for (argument, reason) in [
            (
                "203.0.113.0/24",
                "no '=' between the room's port and its CIDRs",
            ),
            ("jam=203.0.113.0/24", "\"jam\" is not a room's control port"),
            ("5004=", "\"\" is not a CIDR"),
            (
                "5004=203.0.113.0/24,203.0.113.7",
                "\"203.0.113.7\" is not a CIDR",
            ),
        ] {
            let message = parse_allow(argument).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("invalid allow-list {argument:?}: {reason}")),
                "{message}"
            );
            assert!(message.ends_with(example), "{message}");
        }
    }

    #[test]
    fn each_room_has_one_allow_list() {
        let lists = ["5004=203.0.113.0/24", "5006=198.51.100.0/24"]
            .map(|argument| parse_allow(argument).unwrap());
        let rules = room_rules(lists.to_vec()).unwrap();
        assert!(rules.admits(5004, "203.0.113.9".parse().ok()));
        assert!(!rules.admits(5004, "198.51.100.9".parse().ok()));
        assert!(rules.admits(5008, "198.51.100.9".parse().ok()), "no list");

        let twice = ["5004=203.0.113.0/24", "5004=198.51.100.0/24"]
            .map(|argument| parse_allow(argument).unwrap());
        assert_eq!(
            room_rules(twice.to_vec()).unwrap_err().to_string(),
            "--allow names room 5004 twice: give all its CIDRs in one, e.g. --allow 5004=203.0.113.0/24,198.51.100.7/32"
        );
    }

    #[test]
    fn the_configuration_is_the_operators_rendering_with_a_local_socket() {
        let directory = std::env::temp_dir().join(format!("midihub-local-{}", std::process::id()));
        let ports = [
            parse_room("5004=jam-a").unwrap(),
            parse_room("5006").unwrap(),
        ];
        let (ini, socket) = write_config(&directory, "studio", &ports).unwrap();
        let text = std::fs::read_to_string(&ini).unwrap();
        assert!(
            text.contains(&format!("control={}\n", socket.display())),
            "{text}"
        );
        assert!(text.contains("name=jam-a\nport=5004\n"), "{text}");
        assert!(text.contains("name=studio-5006\nport=5006\n"), "{text}");
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_bad_session_name_is_refused_before_anything_is_written() {
        let directory =
            std::env::temp_dir().join(format!("midihub-local-bad-{}", std::process::id()));
        let ports = [parse_room("5004=jam\n[alsa_announce]").unwrap()];
        assert!(matches!(
            write_config(&directory, "studio", &ports),
            Err(LocalError::Config(_))
        ));
        assert!(!directory.exists());
    }
}
