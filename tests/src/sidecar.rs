//! The hub-sidecar binary as a child process, as the real-ALSA tier, the full chain and the
//! join→wired benchmark run it: started with the arguments and environment a test gives, its log
//! in a file that failures show, the JSON lines of local mode read from its standard output, and
//! stopped with SIGTERM (as Kubernetes stops it) or killed.
//!
//! The binary is the caller's: cargo names it to the hub-sidecar crate's own tests and benches
//! only (`CARGO_BIN_EXE_hub-sidecar`).
// Test support: a set-up step that fails fails the test that asked for it.
#![allow(clippy::expect_used)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::real_alsa::scratch_dir;

/// The sidecar's log level unless a test sets `RUST_LOG` itself: its own debug lines explain a
/// failure.
const RUST_LOG: &str = "info,hub_sidecar=debug";
/// How long a sidecar may take to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// How long a dropped sidecar is given to stop after SIGTERM before it is killed.
const DROP_WITHIN: Duration = Duration::from_secs(5);

/// A copy of `binary` in a fresh scratch folder. Inside the test VM the build's files are read
/// from the host, slowly, at every start; a copy in the VM's memory starts at once, so that
/// restarts measure the sidecar and not the VM's file sharing.
pub fn local_copy(binary: &Path) -> PathBuf {
    let copy = scratch_dir("sidecar-binary").join("hub-sidecar");
    std::fs::copy(binary, &copy).unwrap_or_else(|error| {
        panic!(
            "cannot copy {} to {}: {error}",
            binary.display(),
            copy.display()
        )
    });
    copy
}

/// How to start the sidecar, from [`SidecarProcess::command`] or [`SidecarProcess::attach`].
pub struct SidecarCommand {
    command: Command,
    log: PathBuf,
    json_lines: bool,
}

impl SidecarCommand {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.command.args(args);
        self
    }

    /// Sets an environment variable (`RUST_LOG` included, which is `info,hub_sidecar=debug`
    /// otherwise).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Keeps the sidecar's standard output for [`SidecarProcess::next_json_line`]; without it
    /// the output is discarded (a pipe nobody reads would stall the sidecar once full).
    pub fn json_lines(mut self) -> Self {
        self.json_lines = true;
        self
    }

    /// Starts the sidecar; it is killed if the test drops it without stopping it (after a
    /// SIGTERM, see [`SidecarProcess`]).
    pub fn spawn(mut self) -> SidecarProcess {
        let log_file = std::fs::File::create(&self.log)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", self.log.display()));
        let stdout = if self.json_lines {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self
            .command
            .stdout(stdout)
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the hub-sidecar: {error}"));
        let pid = child.id().expect("a child that just started has a pid");
        let stdout = child
            .stdout
            .take()
            .map(|stdout| BufReader::new(stdout).lines());
        SidecarProcess {
            child,
            pid,
            log: self.log,
            stdout,
        }
    }
}

/// The hub-sidecar binary, running. A test that fails midway still stops it with SIGTERM when
/// it is dropped, so that in local mode it stops its rtpmidid too (a killed sidecar would leave
/// the daemon behind); one that does not stop in time is killed.
pub struct SidecarProcess {
    child: Child,
    pid: u32,
    log: PathBuf,
    stdout: Option<Lines<BufReader<ChildStdout>>>,
}

impl SidecarProcess {
    /// The sidecar `binary` (`env!("CARGO_BIN_EXE_hub-sidecar")`, or a [`local_copy`]),
    /// logging to the file `log`.
    pub fn command(binary: &Path, log: PathBuf) -> SidecarCommand {
        let mut command = Command::new(binary);
        command.env("RUST_LOG", RUST_LOG);
        SidecarCommand {
            command,
            log,
            json_lines: false,
        }
    }

    /// The sidecar in `local --attach` mode, wiring the rtpmidid whose control socket is
    /// `socket`, with its HTTP endpoint on `listen`.
    pub fn attach(binary: &Path, socket: &Path, listen: &str, log: PathBuf) -> SidecarCommand {
        Self::command(binary, log)
            .args(["--listen", listen, "local", "--attach"])
            .arg(socket)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The sidecar's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The next line of the sidecar's standard output, as JSON; `None` once the output ends.
    ///
    /// # Panics
    ///
    /// When the sidecar was not started with [`SidecarCommand::json_lines`], or the line is
    /// not JSON.
    pub async fn next_json_line(&mut self) -> Option<serde_json::Value> {
        let lines = self
            .stdout
            .as_mut()
            .expect("the sidecar was started with json_lines()");
        let line = lines.next_line().await.ok()??;
        Some(serde_json::from_str(&line).unwrap_or_else(|error| {
            panic!("the sidecar writes JSON lines on stdout, not {line:?}: {error}")
        }))
    }

    /// Sends SIGTERM, as Kubernetes and Ctrl-C stop the sidecar.
    fn send_terminate(&self) {
        // No pid once the child has been waited for: nothing to signal.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Stops the sidecar with SIGTERM and waits for it; returns how it exited (`None` when it
    /// had not within 10 s) and its log. In attach mode rtpmidid keeps running.
    pub async fn terminate(mut self) -> (Option<ExitStatus>, String) {
        self.send_terminate();
        let exit = tokio::time::timeout(STOP_WITHIN, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        (exit, self.log_text())
    }

    /// Stops the sidecar with SIGTERM and asserts that it exits cleanly (status 0) within 10 s.
    pub async fn stop(self) {
        let (exit, log) = self.terminate().await;
        assert!(
            exit.is_some_and(|status| status.success()),
            "the sidecar stops cleanly on SIGTERM: {exit:?}\n{log}"
        );
    }

    /// Kills the sidecar (SIGKILL: no farewell) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        self.send_terminate();
        let deadline = std::time::Instant::now() + DROP_WITHIN;
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Still running: `kill_on_drop` kills it.
    }
}
