//! What both midihub binaries, the operator and the hub sidecar, need to run as a process: logs
//! in the format asked for, a stop on SIGTERM or Ctrl-C, waiting for that stop where work must
//! end, an HTTP endpoint with `/healthz` and `/metrics`, and an exit that logs the error that
//! ended the process with its causes. The mechanics only: each binary
//! keeps its own behaviour (where its logs go, what its `/healthz` means, which metrics and
//! further routes it serves).

pub mod endpoint;
mod exit;
mod process;

pub use exit::{Chain, exit_code};
pub use process::{LogFormat, LogOutput, init_logs, shutdown_signal, stop_on_signal, wait_for};
