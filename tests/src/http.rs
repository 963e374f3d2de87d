//! A plain HTTP GET for tests that read a process's `/healthz` or `/metrics` on loopback: no
//! client library, as the endpoints answer small bodies at once. It blocks (for at most a few
//! seconds), so it can be called from the synchronous conditions of a poll too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read may wait for the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP answer: the status code and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// GETs `url` (`http://127.0.0.1:PORT/path`); an error when nothing listens there (yet) or the
/// answer is not HTTP.
pub fn http_get(url: &str) -> std::io::Result<HttpResponse> {
    http_request("GET", url)
}

/// POSTs an empty body to `url`, as [`http_get`] GETs.
pub fn http_post(url: &str) -> std::io::Result<HttpResponse> {
    http_request("POST", url)
}

fn http_request(method: &str, url: &str) -> std::io::Result<HttpResponse> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("{url} is not an http:// URL")))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let request = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    parse_response(&response).ok_or_else(|| invalid(format!("not an HTTP answer: {response:?}")))
}

/// The status code and body of a whole HTTP/1.x answer (a body sent with chunked transfer
/// encoding is not decoded; these endpoints send it whole).
fn parse_response(response: &str) -> Option<HttpResponse> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head
        .strip_prefix("HTTP/1.")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(HttpResponse {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_gives_its_status_and_body() {
        let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nstuck";
        assert_eq!(
            parse_response(answer),
            Some(HttpResponse {
                status: 503,
                body: "stuck".to_string()
            })
        );
        assert_eq!(parse_response("garbage"), None);
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        assert!(http_get(&format!("http://127.0.0.1:{port}/healthz")).is_err());
    }
}
