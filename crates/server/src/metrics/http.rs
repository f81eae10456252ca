//! A tiny HTTP/1.1 responder for monitoring: `GET /metrics` (the
//! Prometheus text page), `GET /health` (200 `ok`, or 503 and the reason),
//! 404 for any other path, 405 for methods other than GET and HEAD, 400 for
//! anything that is not an HTTP/1.x request, 431 for a request head over
//! [`MAX_HEAD_BYTES`]. One request per connection: the answer carries
//! `Connection: close` and the connection is closed after it.
//!
//! It protects itself the way the Kafka listener does, on a smaller scale:
//! at most [`MAX_CONNECTIONS`] connections at once (more are closed on
//! accept), and each must send its request and take the answer within
//! [`TIMEOUT`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pubsub_broker::Broker;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::exposition::CONTENT_TYPE;
use super::{scrape, Metrics};

/// Largest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 8 << 10;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a connection has to send its request and read the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/metrics` and `/health` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    broker: Broker,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (stream, peer) = crate::accept(&listener, "metrics") => {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::debug!(%peer, "metrics: too many connections: closing the new one");
                    continue;
                };
                let broker = broker.clone();
                let metrics = Arc::clone(&metrics);
                tasks.spawn(async move {
                    let mut stream = stream;
                    let answered = tokio::time::timeout(TIMEOUT, answer(&mut stream, broker, metrics)).await;
                    if !matches!(answered, Ok(Ok(()))) {
                        tracing::debug!(%peer, "metrics: connection dropped or timed out");
                    }
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/metrics`.
    Metrics,
    /// `/health`.
    Health,
    /// Another path.
    NotFound,
    /// Not GET or HEAD.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line.
    BadRequest,
    /// The head went past [`MAX_HEAD_BYTES`].
    TooLarge,
}

/// Routes a request head (the bytes up to the blank line); also says
/// whether only the headers are wanted (HEAD).
pub fn route(head: &[u8]) -> (Route, bool) {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return (Route::BadRequest, false);
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (Route::BadRequest, false);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return (Route::BadRequest, false);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (Route::MethodNotAllowed, false);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let route = match path {
        "/metrics" => Route::Metrics,
        "/health" => Route::Health,
        _ => Route::NotFound,
    };
    (route, head_only)
}

/// Reads a request head: up to and including the blank line after the
/// headers. `Ok(None)`: the peer sent nothing; `Err(Route)`: what to answer
/// instead (400 if the peer stopped mid-head, 431 if it is too long).
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<Result<Option<Vec<u8>>, Route>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                Ok(None)
            } else {
                Err(Route::BadRequest)
            });
        }
        let scanned_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        let end = head_end(&buf[scanned_from..]).map(|e| scanned_from + e);
        if end.unwrap_or(buf.len()) > MAX_HEAD_BYTES {
            return Ok(Err(Route::TooLarge));
        }
        if let Some(end) = end {
            buf.truncate(end);
            return Ok(Ok(Some(buf)));
        }
    }
}

/// The end (exclusive) of the blank line ending a head, `\r\n\r\n` or `\n\n`.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads one request and answers it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    broker: Broker,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let (route, head_only) = match read_head(stream).await? {
        Ok(None) => return Ok(()),
        Ok(Some(head)) => route(&head),
        Err(route) => (route, false),
    };
    let response = match route {
        Route::Metrics | Route::Health => {
            // Broker locks may wait on an fsync: not on a runtime thread.
            let page = tokio::task::spawn_blocking(move || match route {
                Route::Metrics => Ok(scrape::render(&broker, &metrics)),
                _ => scrape::health(&broker).map(|()| "ok\n".to_string()),
            })
            .await;
            match (route, page) {
                (Route::Metrics, Ok(Ok(page))) => {
                    response(200, "OK", CONTENT_TYPE, &page, head_only)
                }
                (_, Ok(Ok(ok))) => response(200, "OK", TEXT, &ok, head_only),
                (_, Ok(Err(why))) => response(
                    503,
                    "Service Unavailable",
                    TEXT,
                    &format!("unhealthy: {why}\n"),
                    head_only,
                ),
                (_, Err(e)) => response(
                    500,
                    "Internal Server Error",
                    TEXT,
                    &format!("{e}\n"),
                    head_only,
                ),
            }
        }
        Route::NotFound => response(
            404,
            "Not Found",
            TEXT,
            "not found: try /metrics or /health\n",
            head_only,
        ),
        Route::MethodNotAllowed => response(405, "Method Not Allowed", TEXT, "use GET\n", false),
        Route::BadRequest => response(400, "Bad Request", TEXT, "bad request\n", false),
        Route::TooLarge => response(
            431,
            "Request Header Fields Too Large",
            TEXT,
            "request head too large\n",
            false,
        ),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

const TEXT: &str = "text/plain; charset=utf-8";

/// A whole response: status line, headers, and the body unless `head_only`.
fn response(status: u16, reason: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status == 405 { "Allow: GET, HEAD\r\n" } else { "" },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |s: &str| route(s.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            (Route::Metrics, false)
        );
        assert_eq!(
            r("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            (Route::Metrics, false)
        );
        assert_eq!(r("HEAD /health HTTP/1.1\r\n\r\n"), (Route::Health, true));
        assert_eq!(r("GET /health HTTP/1.1\n\n"), (Route::Health, false));
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), (Route::NotFound, false));
        assert_eq!(
            r("GET /metricsx HTTP/1.1\r\n\r\n"),
            (Route::NotFound, false)
        );
        assert_eq!(
            r("POST /metrics HTTP/1.1\r\n\r\n"),
            (Route::MethodNotAllowed, false)
        );
        assert_eq!(r("GET /metrics HTTP/2\r\n\r\n"), (Route::BadRequest, false));
        assert_eq!(r("GET /metrics\r\n\r\n"), (Route::BadRequest, false));
        assert_eq!(
            r("GET  /metrics HTTP/1.1\r\n\r\n"),
            (Route::BadRequest, false)
        );
        assert_eq!(
            r("GET metrics HTTP/1.1\r\n\r\n"),
            (Route::BadRequest, false)
        );
        assert_eq!(r("\r\n\r\n"), (Route::BadRequest, false));
        assert_eq!(
            route(b"GET /\xff HTTP/1.1\r\n\r\n"),
            (Route::BadRequest, false)
        );
        assert_eq!(route(&[0u8; 100]), (Route::BadRequest, false));
    }

    #[tokio::test]
    async fn heads_are_read_to_the_blank_line_and_limited() {
        let (mut client, mut server) = tokio::io::duplex(64 << 10);
        // Split across writes, with a body after the head that is not read.
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHo")
            .await
            .expect("write");
        client.write_all(b"st: x\r\n\r\nBODY").await.expect("write");
        let head = read_head(&mut server).await.expect("io");
        assert_eq!(
            head,
            Ok(Some(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()))
        );

        let (mut client, mut server) = tokio::io::duplex(64 << 10);
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost")
            .await
            .expect("write");
        drop(client);
        assert_eq!(
            read_head(&mut server).await.expect("io"),
            Err(Route::BadRequest)
        );

        let (client, mut server) = tokio::io::duplex(64 << 10);
        drop(client);
        assert_eq!(read_head(&mut server).await.expect("io"), Ok(None));

        // Exactly the limit is read; one byte more is refused.
        for (len, ok) in [(MAX_HEAD_BYTES, true), (MAX_HEAD_BYTES + 1, false)] {
            let (mut client, mut server) = tokio::io::duplex(64 << 10);
            let start = "GET /metrics HTTP/1.1\r\nX: ";
            let pad = "a".repeat(len - start.len() - 4);
            client
                .write_all(format!("{start}{pad}\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let got = read_head(&mut server).await.expect("io");
            let got = got.map(|h| h.map(|h| h.len()));
            let want = if ok {
                Ok(Some(len))
            } else {
                Err(Route::TooLarge)
            };
            assert_eq!(got, want, "a head of {len} bytes");
        }

        let (mut client, mut server) = tokio::io::duplex(64 << 10);
        let long = format!(
            "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        client.write_all(long.as_bytes()).await.expect("write");
        assert_eq!(
            read_head(&mut server)
                .await
                .expect("io")
                .map(|h| h.map(|h| h.len())),
            Err(Route::TooLarge)
        );
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(404, "Not Found", TEXT, "nope\n", false)).expect("utf8");
        assert_eq!(
            r,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n"
        );
        let r = String::from_utf8(response(200, "OK", TEXT, "ok\n", true)).expect("utf8");
        assert!(
            r.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"),
            "{r}"
        );
        let r =
            String::from_utf8(response(405, "Method Not Allowed", TEXT, "", false)).expect("utf8");
        assert!(r.contains("Allow: GET, HEAD\r\n"), "{r}");
    }
}
