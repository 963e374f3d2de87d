//! Running as a process: logs, stopping on a signal, waiting for a stop, the exit code.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::Arc;

use tokio::sync::watch;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object a line, for log collectors.
    Json,
    /// Plain text for people (coloured only on a terminal).
    Text,
}

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    /// For a process whose standard output carries data (the sidecar's local mode).
    Stderr,
}

/// Sets up `tracing` logs: the level from `RUST_LOG` (default `info`), in `format`, to
/// `output`.
pub fn init_logs(format: LogFormat, output: LogOutput) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = match output {
        LogOutput::Stdout => std::io::stdout().is_terminal(),
        LogOutput::Stderr => std::io::stderr().is_terminal(),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_logs(terminal, std::env::var_os("NO_COLOR")));
    match (output, format) {
        (LogOutput::Stdout, LogFormat::Json) => logs.json().init(),
        (LogOutput::Stdout, LogFormat::Text) => logs.init(),
        (LogOutput::Stderr, LogFormat::Json) => logs.with_writer(std::io::stderr).json().init(),
        (LogOutput::Stderr, LogFormat::Text) => logs.with_writer(std::io::stderr).init(),
    }
}

/// Colour is for a person at a terminal: logs written to a file or collected from a container
/// stay plain text, and `NO_COLOR` (https://no-color.org) turns colour off everywhere.
fn colour_logs(output_is_terminal: bool, no_color: Option<OsString>) -> bool {
    output_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The process's stop: the receiver turns true on SIGTERM or Ctrl-C, or when the process sends
/// `true` itself (when one part ends and the rest should follow). Spawns the signal watcher, so
/// call it inside the runtime.
pub fn stop_on_signal() -> (Arc<watch::Sender<bool>>, watch::Receiver<bool>) {
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = on_signal.send(true);
    });
    (stop, stopped)
}

/// Completes when the watched value becomes `wanted` (or its sender is gone): e.g. a stop
/// requested, or leadership gained or lost.
pub async fn wait_for(mut value: watch::Receiver<bool>, wanted: bool) {
    let _ = value.wait_for(|current| *current == wanted).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        assert!(
            colour_logs(true, Some("".into())),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour_logs(true, Some("1".into())));
        assert!(!colour_logs(false, None));
    }

    #[tokio::test]
    async fn the_process_may_stop_itself_before_any_signal() {
        let (stop, stopped) = stop_on_signal();
        assert!(!*stopped.borrow());
        stop.send_replace(true);
        wait_for(stopped, true).await;
    }

    #[tokio::test]
    async fn waiting_for_a_value_ends_when_it_is_set_or_its_sender_is_gone() {
        let (set, value) = watch::channel(false);
        let waiting = tokio::spawn(wait_for(value.clone(), true));
        set.send_replace(true);
        waiting.await.unwrap_or_default();
        let waiting = tokio::spawn(wait_for(value, false));
        drop(set);
        waiting.await.unwrap_or_default();
    }
}
