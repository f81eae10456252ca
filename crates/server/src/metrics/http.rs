//! The monitoring listener, on axum and hyper: `GET /metrics` (the
//! Prometheus text page), `GET /health` (200 `ok`, or 503 and the reason),
//! 404 for any other path, 405 for methods other than GET and HEAD. hyper
//! answers what is not an HTTP/1.x request with 400 and a request head over
//! [`MAX_HEAD_BYTES`] with 431. One request per connection: keep-alive is
//! off, so the answer carries `Connection: close` and the connection is
//! closed after it.
//!
//! It protects itself the way the Kafka listener does, on a smaller scale:
//! at most [`MAX_CONNECTIONS`] connections at once (more are closed on
//! accept), and each must send its request and take the answer within
//! [`TIMEOUT`]. The accept loop is ours (`axum::serve` has neither a
//! connection limit nor a timeout); each accepted connection is served by
//! hyper's HTTP/1 connection server with the axum router as its service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use pubsub_broker::Broker;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::exposition::CONTENT_TYPE;
use super::{scrape, Metrics};

/// Largest request head (request line and headers) read: hyper's read
/// buffer, whose smallest allowed size this is.
pub const MAX_HEAD_BYTES: usize = 8 << 10;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a connection has to send its request and read the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers read.
#[derive(Debug)]
struct Pages {
    broker: Broker,
    registry: Registry,
}

/// Serves `/metrics` and `/health` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    broker: Broker,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let app = router(broker, metrics);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .keep_alive(false)
        .title_case_headers(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .timer(TokioTimer::new())
        .header_read_timeout(TIMEOUT);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    let mut accepts = crate::Accepts::new("metrics");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (stream, peer) = accepts.next(&listener) => {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::debug!(%peer, "metrics: too many connections: closing the new one");
                    continue;
                };
                let connection = http1.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(app.clone()),
                );
                tasks.spawn(async move {
                    let served = tokio::time::timeout(TIMEOUT, connection).await;
                    if !matches!(served, Ok(Ok(()))) {
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

/// The routes. GET also answers HEAD (axum runs the GET handler and drops
/// the body, keeping its length).
fn router(broker: Broker, metrics: Arc<Metrics>) -> Router {
    let pages = Arc::new(Pages {
        registry: scrape::registry(broker.clone(), metrics),
        broker,
    });
    Router::new()
        .route("/metrics", get(metrics_page).fallback(refuse))
        .route("/health", get(health_page).fallback(refuse))
        .fallback(refuse)
        .with_state(pages)
}

async fn metrics_page(State(pages): State<Arc<Pages>>) -> Response {
    // Broker locks may wait on an fsync: not on a runtime thread.
    match tokio::task::spawn_blocking(move || scrape::render(&pages.registry)).await {
        Ok(Ok(page)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], page).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

async fn health_page(State(pages): State<Arc<Pages>>) -> Response {
    match tokio::task::spawn_blocking(move || scrape::health(&pages.broker)).await {
        Ok(Ok(())) => "ok\n".into_response(),
        Ok(Err(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {why}\n"),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

/// 500 and why: the page could not be built.
fn failed(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}

/// Anything but GET or HEAD of `/metrics` or `/health`.
async fn refuse(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        (
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /health\n",
        )
            .into_response()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "use GET\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    // The monitoring listener over real sockets: routes and statuses, hostile
    // clients (silent, slow, garbage, oversized heads) that must neither stall
    // nor crash it, and the connection limit.

    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use pubsub_broker::{Broker, BrokerConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    use super::*;

    /// A listener on a fresh broker; stops when dropped.
    struct Listener {
        addr: SocketAddr,
        _stop: oneshot::Sender<()>,
        _dir: tempfile::TempDir,
    }

    async fn start() -> Listener {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(dir.path(), BrokerConfig::default()).expect("open broker");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            broker,
            Arc::new(Metrics::new()),
            async move {
                let _ = stopped.await;
            },
        ));
        Listener {
            addr,
            _stop: stop,
            _dir: dir,
        }
    }

    /// Reads until the server closes (at most 30 s); what arrived.
    async fn read_all(stream: &mut TcpStream) -> String {
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
            .await
            .expect("the server answers and closes")
            .expect("read");
        String::from_utf8_lossy(&raw).into_owned()
    }

    /// Sends `request` as is; (status, head, body).
    async fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let text = read_all(&mut stream).await;
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("status line in {head:?}"));
        (status, head.to_string(), body.to_string())
    }

    async fn status(addr: SocketAddr, request: &str) -> u16 {
        http(addr, request.as_bytes()).await.0
    }

    /// A scrape that must answer within `within`.
    async fn scrape_within(addr: SocketAddr, within: Duration) {
        let started = Instant::now();
        let (code, head, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(code, 200, "{head}");
        assert!(
            body.contains("# TYPE pubsub_requests_total counter\n"),
            "{body}"
        );
        assert!(
            started.elapsed() < within,
            "the scrape took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn routes_methods_and_malformed_requests_get_their_status() {
        let l = start().await;
        let a = l.addr;
        let (code, head, body) = http(a, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(code, 200);
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("Connection: close"), "{head}");
        assert!(body.contains("pubsub_connections_open 0\n"), "{body}");
        assert_eq!(status(a, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").await, 200);
        let (code, head, body) = http(a, b"HEAD /health HTTP/1.1\r\n\r\n").await;
        assert_eq!((code, body.as_str()), (200, ""));
        assert!(head.contains("Content-Length: 3"), "{head}");
        let (code, _, body) = http(a, b"GET /health HTTP/1.1\n\n").await;
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        assert_eq!(status(a, "GET / HTTP/1.1\r\n\r\n").await, 404);
        assert_eq!(status(a, "GET /metricsx HTTP/1.1\r\n\r\n").await, 404);
        let (code, head, _) = http(a, b"POST /metrics HTTP/1.1\r\n\r\n").await;
        assert_eq!(code, 405);
        assert!(head.contains("Allow: GET, HEAD"), "{head}");
        assert_eq!(status(a, "DELETE /elsewhere HTTP/1.1\r\n\r\n").await, 405);
        assert_eq!(status(a, "GET /metrics HTTP/2\r\n\r\n").await, 400);
        assert_eq!(status(a, "GET /metrics\r\n\r\n").await, 400);
        assert_eq!(status(a, "GET  /metrics HTTP/1.1\r\n\r\n").await, 400);
        assert_eq!(http(a, b"GET /\xff HTTP/1.1\r\n\r\n").await.0, 400);
        let mut zeros = vec![0u8; 100];
        zeros.extend_from_slice(b"\r\n\r\n");
        assert_eq!(http(a, &zeros).await.0, 400);
        assert_eq!(http(a, b"\x00\x01\x02garbage\xff\r\n\r\n").await.0, 400);

        // Heads: well under the limit is read, over it is refused.
        let head = |len: usize| {
            let start = "GET /health HTTP/1.1\r\nX: ";
            format!("{start}{}\r\n\r\n", "a".repeat(len - start.len() - 4))
        };
        assert_eq!(status(a, &head(MAX_HEAD_BYTES / 2)).await, 200);
        assert_eq!(status(a, &head(MAX_HEAD_BYTES)).await, 200);
        assert_eq!(status(a, &head(MAX_HEAD_BYTES + 1)).await, 431);
        assert_eq!(status(a, &head(64 << 10)).await, 431);
    }

    #[tokio::test]
    async fn slow_and_malformed_clients_neither_stall_nor_crash_the_listener() {
        let l = start().await;
        // Connects and sends nothing.
        let mut silent = TcpStream::connect(l.addr).await.expect("connect");
        // Stops mid-head.
        let mut partial = TcpStream::connect(l.addr).await.expect("connect");
        partial.write_all(b"GET /met").await.expect("send");
        // Garbage that never ends a line.
        let mut garbage = TcpStream::connect(l.addr).await.expect("connect");
        garbage
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0xff, 0xfe])
            .await
            .expect("send");
        // A header that never ends, past the limit.
        let mut endless = TcpStream::connect(l.addr).await.expect("connect");
        endless
            .write_all(format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(16 << 10)).as_bytes())
            .await
            .expect("send");

        // With all of them open, a good scrape answers at once.
        scrape_within(l.addr, Duration::from_secs(5)).await;
        // The oversized head is refused, not waited on.
        let answer = read_all(&mut endless).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
        // Garbage is refused once it can be told from a request.
        let answer = read_all(&mut garbage).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400 "),
            "{answer:?}"
        );

        // The silent and the slow ones are closed after TIMEOUT, without an answer.
        let started = Instant::now();
        for stream in [&mut silent, &mut partial] {
            let mut buf = Vec::new();
            let read = tokio::time::timeout(
                TIMEOUT + Duration::from_secs(5),
                stream.read_to_end(&mut buf),
            )
            .await
            .expect("closed by the server within its timeout");
            assert!(
                read.is_err() || buf.is_empty(),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(5));
        // And the listener still serves.
        scrape_within(l.addr, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_closed_and_slots_come_back() {
        let l = start().await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(TcpStream::connect(l.addr).await.expect("connect"));
        }
        // Once the listener has taken them all, one more is closed on accept.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut extra = TcpStream::connect(l.addr).await.expect("connect");
            let _ = extra.write_all(b"GET /health HTTP/1.1\r\n\r\n").await;
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf))
                .await
                .expect("closed at once");
            if read.is_err() || buf.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "a 17th connection was served");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The held ones leave: their slots come back.
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(l.addr).await.expect("connect");
            let _ = s.write_all(b"GET /health HTTP/1.1\r\n\r\n").await;
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
            if buf.starts_with(b"HTTP/1.1 200 ") {
                break;
            }
            assert!(Instant::now() < deadline, "the slots never came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
