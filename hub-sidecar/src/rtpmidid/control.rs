//! The client of rtpmidid's control socket: asks for `status` and reads the one-line reply.
//!
//! Every request uses a fresh connection, so the client does not care that rtpmidid, when it
//! restarts, unlinks its socket file and binds a new one. rtpmidid reads each `recv` (up to
//! 1023 bytes) as one whole request, so a request goes out in a single write.
//!
//! A connection is never closed before rtpmidid has written its whole reply: rtpmidid does not
//! ignore SIGPIPE, so a reply written to a connection its client has closed kills the daemon
//! (seen in the test VM when a `status` took longer than the client waited). A request that
//! times out therefore goes on in the background, reading the late reply to its end (for at
//! most [`LATE_REPLY_LIMIT`]), and so does one whose reply is too long.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use midihub_api::contract::reasons::wiring as reasons;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::status::{RtpmididStatus, StatusError, parse_status_reply};

/// Longest reply line read. A busy hub's `status` is a few KiB per participant; anything this
/// long without a line end is not a reply worth waiting for.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// How long a request that timed out, or whose reply is too long, keeps reading in the
/// background before it closes its connection anyway.
pub const LATE_REPLY_LIMIT: Duration = Duration::from_secs(120);

/// Asks rtpmidid for its status over its control socket.
#[derive(Debug)]
pub struct ControlClient {
    path: PathBuf,
    timeout: Duration,
    next_request_id: AtomicU64,
}

/// Why rtpmidid's status could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "cannot reach rtpmidid's control socket at {path}: {error}: is rtpmidid running, and does it share the socket's directory?"
    )]
    Connect { path: PathBuf, error: io::Error },
    #[error(
        "rtpmidid's control socket at {path} did not answer `status` within {after:?}: is rtpmidid overloaded or stuck?"
    )]
    Timeout { path: PathBuf, after: Duration },
    #[error(
        "rtpmidid closed the control connection at {path} before sending a whole reply line: did it restart?"
    )]
    Closed { path: PathBuf },
    #[error(
        "the reply on rtpmidid's control socket at {path} has no line end within {limit} bytes: is the program behind that socket rtpmidid?"
    )]
    TooLong { path: PathBuf, limit: usize },
    #[error("talking to rtpmidid's control socket at {path} failed: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error(transparent)]
    Status(#[from] StatusError),
}

impl ControlError {
    /// A CamelCase reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ControlError::Connect { .. } => reasons::CONTROL_SOCKET_UNREACHABLE,
            ControlError::Timeout { .. } => reasons::CONTROL_SOCKET_TIMEOUT,
            ControlError::Closed { .. } => reasons::CONTROL_SOCKET_CLOSED,
            ControlError::TooLong { .. } => reasons::STATUS_REPLY_TOO_LONG,
            ControlError::Io { .. } => reasons::CONTROL_SOCKET_ERROR,
            ControlError::Status(error) => error.reason(),
        }
    }
}

impl ControlClient {
    /// A client of the socket at `path`; each request, from connecting to the last byte of
    /// the reply, must be done within `timeout`.
    pub fn new(path: impl Into<PathBuf>, timeout: Duration) -> Self {
        ControlClient {
            path: path.into(),
            timeout,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// One `status` request on a fresh connection: connect, send
    /// `{"method":"status","params":{},"id":N}`, read one line, parse it.
    pub async fn status(&self) -> Result<RtpmididStatus, ControlError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let request = serde_json::json!({"method": "status", "params": {}, "id": id}).to_string();
        // A task of its own, which a timeout here does not cancel (see the module's doc).
        let mut exchange = tokio::spawn(tokio::time::timeout(
            LATE_REPLY_LIMIT,
            exchange(self.path.clone(), request),
        ));
        let line = match tokio::time::timeout(self.timeout, &mut exchange).await {
            Err(_elapsed) => {
                return Err(ControlError::Timeout {
                    path: self.path.clone(),
                    after: self.timeout,
                });
            }
            Ok(Ok(Ok(result))) => result?,
            // The inner limit is far longer than the outer one: only a panic gets here.
            Ok(Ok(Err(_)) | Err(_)) => {
                return Err(ControlError::Io {
                    path: self.path.clone(),
                    error: io::Error::other("the request's task ended without an answer"),
                });
            }
        };
        Ok(parse_status_reply(&line, id)?)
    }
}

/// Sends `request` to the socket at `path` and returns the reply line (without its line end).
async fn exchange(path: PathBuf, request: String) -> Result<String, ControlError> {
    let io_error = |error| ControlError::Io {
        path: path.clone(),
        error,
    };
    let mut stream = UnixStream::connect(&path)
        .await
        .map_err(|error| ControlError::Connect {
            path: path.clone(),
            error,
        })?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;

    let limit_with_line_end = u64::try_from(MAX_REPLY_BYTES).unwrap_or(u64::MAX) + 1;
    let mut reader = BufReader::new(stream).take(limit_with_line_end);
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .await
        .map_err(io_error)?;
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_REPLY_BYTES {
        // The rest is read before the connection closes, for the daemon's sake.
        let mut rest = reader.into_inner();
        tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            let drain = tokio::io::copy(&mut rest, &mut sink);
            let _ = tokio::time::timeout(LATE_REPLY_LIMIT, drain).await;
        });
        return Err(ControlError::TooLong {
            path: path.clone(),
            limit: MAX_REPLY_BYTES,
        });
    } else {
        return Err(ControlError::Closed { path: path.clone() });
    }
    // Session names come from the network; a stray byte in one must not cost the whole
    // status, so invalid UTF-8 is replaced rather than refused.
    Ok(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests;
