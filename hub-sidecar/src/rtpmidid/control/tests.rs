use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use super::*;

/// Captured from rtpmidid v26.01 as the answer to request id 7.
const CAPTURED_STATUS: &str = include_str!("../../../tests/fixtures/rtpmidid-status.json");
const TIMEOUT: Duration = Duration::from_secs(5);

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempSocketDir(PathBuf);

impl TempSocketDir {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hub-sidecar-control-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempSocketDir(dir)
    }

    fn socket_path(&self) -> PathBuf {
        self.0.join("control.sock")
    }
}

impl Drop for TempSocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the fake daemon answers each connection.
#[derive(Clone)]
enum FakeAnswer {
    /// The captured status reply with the request's id, written `chunk` bytes at a time.
    CapturedStatus { chunk: usize },
    /// These bytes as they are, then the connection is closed.
    BytesThenClose(Vec<u8>),
    /// Nothing; the connection stays open.
    Nothing,
}

/// Test double of rtpmidid's control socket: a Unix listener that, like rtpmidid, takes
/// one `recv` of up to 1023 bytes as the whole request, records it, and answers as told.
struct FakeRtpmidid {
    socket_path: PathBuf,
    requests: Arc<Mutex<Vec<Value>>>,
    server: JoinHandle<()>,
}

impl FakeRtpmidid {
    /// Binds at `socket_path` the way rtpmidid does: a stale socket file is unlinked first.
    fn start(socket_path: PathBuf, answer: FakeAnswer) -> Self {
        let _ = std::fs::remove_file(&socket_path);
        let listener = UnixListener::bind(&socket_path).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let server = tokio::spawn(async move {
            loop {
                let (connection, _) = listener.accept().await.unwrap();
                tokio::spawn(answer_one(
                    connection,
                    answer.clone(),
                    Arc::clone(&recorded),
                ));
            }
        });
        FakeRtpmidid {
            socket_path,
            requests,
            server,
        }
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeRtpmidid {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer_one(
    mut connection: UnixStream,
    answer: FakeAnswer,
    requests: Arc<Mutex<Vec<Value>>>,
) {
    let mut buffer = [0_u8; 1024];
    let received = connection.read(&mut buffer).await.unwrap();
    let request: Value = match serde_json::from_slice(&buffer[..received]) {
        Ok(request) => request,
        Err(error) => {
            let reply = serde_json::json!({"error": error.to_string()}).to_string() + "\n";
            let _ = connection.write_all(reply.as_bytes()).await;
            return;
        }
    };
    requests.lock().unwrap().push(request.clone());
    match answer {
        FakeAnswer::CapturedStatus { chunk } => {
            let reply = CAPTURED_STATUS.replacen(
                r#"{"id":7,"#,
                &format!(r#"{{"id":{},"#, request["id"]),
                1,
            );
            for piece in reply.as_bytes().chunks(chunk) {
                connection.write_all(piece).await.unwrap();
                connection.flush().await.unwrap();
                if chunk < reply.len() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        FakeAnswer::BytesThenClose(bytes) => {
            // The client may hang up before reading it all (too long a reply).
            let _ = connection.write_all(&bytes).await;
        }
        FakeAnswer::Nothing => {
            std::future::pending::<()>().await;
        }
    }
}

fn captured_names() -> Vec<String> {
    vec![
        "Alice MacBook".to_owned(),
        "bob-linux".to_owned(),
        "Carol iPad".to_owned(),
    ]
}

fn names(status: &RtpmididStatus) -> Vec<String> {
    status
        .participants
        .iter()
        .map(|participant| participant.name.clone())
        .collect()
}

#[tokio::test]
async fn status_is_asked_for_in_one_request_and_parsed() {
    let dir = TempSocketDir::new();
    let daemon = FakeRtpmidid::start(
        dir.socket_path(),
        FakeAnswer::CapturedStatus { chunk: usize::MAX },
    );
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let first = client.status().await.unwrap();
    let second = client.status().await.unwrap();

    assert_eq!(first, parse_status_reply(CAPTURED_STATUS, 7).unwrap());
    assert_eq!(names(&first), captured_names());
    assert_eq!(second, first);
    assert_eq!(
        daemon.requests(),
        [
            serde_json::json!({"method": "status", "params": {}, "id": 1}),
            serde_json::json!({"method": "status", "params": {}, "id": 2}),
        ]
    );
}

#[tokio::test]
async fn reply_in_many_small_pieces_is_read_whole() {
    let dir = TempSocketDir::new();
    let _daemon = FakeRtpmidid::start(dir.socket_path(), FakeAnswer::CapturedStatus { chunk: 50 });
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let status = client.status().await.unwrap();

    assert_eq!(names(&status), captured_names());
    assert_eq!(status.participants[2].alsa_port, Some(3));
}

#[tokio::test]
async fn a_reply_that_comes_after_the_timeout_finds_the_connection_still_open() {
    // rtpmidid does not ignore SIGPIPE: a reply written to a closed connection kills it.
    let dir = TempSocketDir::new();
    let listener = UnixListener::bind(dir.socket_path()).unwrap();
    let (written, write_result) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut connection, _) = listener.accept().await.unwrap();
        let mut buffer = [0_u8; 1024];
        let _ = connection.read(&mut buffer).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Long enough that a closed peer would be noticed by the first write.
        let reply = format!(
            "{{\"id\":1,\"result\":{{}},\"padding\":\"{}\"}}\n",
            "x".repeat(300_000)
        );
        let _ = written.send(connection.write_all(reply.as_bytes()).await);
    });
    let client = ControlClient::new(dir.socket_path(), Duration::from_millis(100));
    let error = client.status().await.unwrap_err();
    assert!(matches!(error, ControlError::Timeout { .. }), "{error:?}");
    let written = write_result.await.unwrap();
    assert!(
        written.is_ok(),
        "the late reply must be read, not refused: {written:?}"
    );
}

#[tokio::test]
async fn daemon_that_never_answers_times_out_within_the_bound() {
    let dir = TempSocketDir::new();
    let daemon = FakeRtpmidid::start(dir.socket_path(), FakeAnswer::Nothing);
    let timeout = Duration::from_millis(300);
    let client = ControlClient::new(dir.socket_path(), timeout);

    let started = Instant::now();
    let error = client.status().await.unwrap_err();
    let waited = started.elapsed();

    assert!(
        matches!(&error, ControlError::Timeout { after, .. } if *after == timeout),
        "{error:?}"
    );
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(
        waited < Duration::from_secs(2),
        "gave up only after {waited:?}"
    );
    assert_eq!(
        daemon.requests().len(),
        1,
        "the request should have arrived"
    );
    assert_eq!(error.reason(), "ControlSocketTimeout");
}

#[tokio::test]
async fn connection_closed_in_the_middle_of_the_line_is_reported_as_closed() {
    let dir = TempSocketDir::new();
    let half_a_reply = CAPTURED_STATUS.as_bytes()[..1000].to_vec();
    let _daemon = FakeRtpmidid::start(dir.socket_path(), FakeAnswer::BytesThenClose(half_a_reply));
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let error = client.status().await.unwrap_err();

    assert!(matches!(error, ControlError::Closed { .. }), "{error:?}");
    assert_eq!(error.reason(), "ControlSocketClosed");
}

#[tokio::test]
async fn garbage_reply_is_not_json() {
    let dir = TempSocketDir::new();
    let _daemon = FakeRtpmidid::start(
        dir.socket_path(),
        FakeAnswer::BytesThenClose(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
    );
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let error = client.status().await.unwrap_err();

    assert!(
        matches!(error, ControlError::Status(StatusError::NotJson { .. })),
        "{error:?}"
    );
    assert_eq!(error.reason(), "MalformedStatus");
}

#[tokio::test]
async fn reply_for_another_request_is_refused() {
    let dir = TempSocketDir::new();
    // Always id 7, whatever was asked.
    let _daemon = FakeRtpmidid::start(
        dir.socket_path(),
        FakeAnswer::BytesThenClose(CAPTURED_STATUS.as_bytes().to_vec()),
    );
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let error = client.status().await.unwrap_err();

    assert!(
        matches!(
            error,
            ControlError::Status(StatusError::WrongId {
                expected: 1,
                got: 7
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn endless_line_is_cut_off_at_the_limit() {
    let dir = TempSocketDir::new();
    let endless = vec![b'x'; MAX_REPLY_BYTES + 4096];
    let _daemon = FakeRtpmidid::start(dir.socket_path(), FakeAnswer::BytesThenClose(endless));
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let error = client.status().await.unwrap_err();

    assert!(
        matches!(error, ControlError::TooLong { limit, .. } if limit == MAX_REPLY_BYTES),
        "{error:?}"
    );
    assert_eq!(error.reason(), "StatusReplyTooLong");
}

#[tokio::test]
async fn missing_socket_names_the_path() {
    let dir = TempSocketDir::new();
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let error = client.status().await.unwrap_err();

    assert!(matches!(error, ControlError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&dir.socket_path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("is rtpmidid running"), "{message}");
    assert_eq!(error.reason(), "ControlSocketUnreachable");
}

#[tokio::test]
async fn socket_file_left_by_a_dead_daemon_is_unreachable() {
    let dir = TempSocketDir::new();
    drop(std::os::unix::net::UnixListener::bind(dir.socket_path()).unwrap());
    assert!(dir.socket_path().exists());
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);

    let error = client.status().await.unwrap_err();

    assert!(matches!(error, ControlError::Connect { .. }), "{error:?}");
}

#[tokio::test]
async fn restarted_daemon_is_reached_at_the_same_path() {
    let dir = TempSocketDir::new();
    let answer = FakeAnswer::CapturedStatus { chunk: usize::MAX };
    let before = FakeRtpmidid::start(dir.socket_path(), answer.clone());
    let client = ControlClient::new(dir.socket_path(), TIMEOUT);
    client.status().await.unwrap();

    drop(before);
    let after = FakeRtpmidid::start(dir.socket_path(), answer);
    let status = client.status().await.unwrap();

    assert_eq!(names(&status), captured_names());
    assert_eq!(
        after.requests(),
        [serde_json::json!({"method": "status", "params": {}, "id": 2})]
    );
    assert_eq!(after.socket_path, dir.socket_path());
}
