//! One connection to a broker (TCP, or TLS over TCP, authenticated with
//! SASL when the [`Security`] says so): length-prefixed frames, correlation
//! ids, the API versions the broker advertises, and an optional split into
//! a sending and a receiving half so requests can be pipelined.
//!
//! Two layers: typed calls ([`Connection::call`], [`Sender::send`],
//! [`Receiver::receive`]) at any version the caller names, built on frames
//! ([`encode_request`], [`Sender::send_bytes`], [`Receiver::read_frame`],
//! [`decode_answer`]) for callers that replay captured requests or inspect
//! an answer byte by byte.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::error::{check, ClientError, Result};
use crate::low_water::LowWater;
use crate::scram::{ScramClient, ScramHash};
use crate::security::{SaslLogin, SaslMechanism, Security, Stream};

/// The write side of a connection, plain or TLS.
type WriteHalf = Box<dyn AsyncWrite + Send + Sync + Unpin>;
/// The read side of a connection, plain or TLS.
type ReadHalf = Box<dyn AsyncRead + Send + Sync + Unpin>;

/// Answers larger than this are refused (a broker speaking something else).
const MAX_RESPONSE: usize = 512 << 20;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `call` waits for an answer (Kafka clients' `request.timeout.ms`
/// is 30 s; admin requests carry a 30 s broker-side timeout of their own).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

/// Version ranges the broker advertised, by API key.
#[derive(Debug, Default)]
pub struct Versions(HashMap<i16, (i16, i16)>);

impl Versions {
    /// The highest version both sides speak, within `ours`.
    pub fn pick<R: Request>(&self, ours: RangeInclusive<i16>) -> Result<i16> {
        let unsupported = || ClientError::Unsupported {
            api: format!(
                "{:?}",
                ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
            ),
            min: *ours.start(),
            max: *ours.end(),
        };
        let &(min, max) = self.0.get(&R::KEY).ok_or_else(unsupported)?;
        let v = max.min(*ours.end());
        if v < min || v < *ours.start() {
            return Err(unsupported());
        }
        Ok(v)
    }
}

/// A connection used one request at a time, or split for pipelining.
#[derive(Debug)]
pub struct Connection {
    sender: Sender,
    receiver: Receiver,
    versions: Versions,
    /// A call timed out: the stream may still deliver its answer.
    timed_out: bool,
}

/// The sending half: encodes requests with fresh correlation ids.
pub struct Sender {
    write: WriteHalf,
    next_id: i32,
    client_id: StrBytes,
    buf: BytesMut,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("next_id", &self.next_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The receiving half: reads answers, in the order requests were sent.
pub struct Receiver {
    read: BufReader<ReadHalf>,
    /// The socket's low-water mark, on plain TCP to a loopback peer (Linux).
    low_water: Option<Marked>,
}

/// The low-water mark of the socket a [`Receiver`] reads
/// ([`crate::low_water`]).
struct Marked {
    /// A duplicate of the socket's descriptor: the same socket, open for
    /// as long as this value, whatever happens to the read half.
    fd: OwnedFd,
    mark: LowWater,
}

impl Marked {
    /// For `s` if it is plain TCP to a loopback peer, on Linux (and the
    /// descriptor could be duplicated).
    fn of(s: &TcpStream) -> Option<Marked> {
        let loopback = s.peer_addr().is_ok_and(|a| a.ip().is_loopback());
        if !(cfg!(target_os = "linux") && loopback) {
            return None;
        }
        let fd = s.as_fd().try_clone_to_owned().ok()?;
        Some(Marked {
            fd,
            mark: LowWater::new(),
        })
    }

    /// The socket, and its mark to set.
    fn parts(&mut self) -> (BorrowedFd<'_>, &mut LowWater) {
        (self.fd.as_fd(), &mut self.mark)
    }

    fn before_read(&mut self, total: usize, left: usize) {
        let (fd, mark) = self.parts();
        mark.before_read(fd, total, left);
    }

    fn reset(&mut self) {
        let (fd, mark) = self.parts();
        mark.reset(fd);
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` (HOST:PORT) over plain TCP and asks for the
    /// broker's API versions.
    pub async fn connect(addr: &str, client_id: &str) -> Result<Connection> {
        Self::connect_secure(addr, client_id, &Security::plaintext()).await
    }

    /// Connects to `addr` as `security` says (TLS handshake first if the
    /// protocol uses TLS), asks for the broker's API versions, then logs in
    /// with SASL if the protocol uses SASL (SaslHandshake, then
    /// SaslAuthenticate until the mechanism is done), as Kafka's clients do.
    pub async fn connect_secure(
        addr: &str,
        client_id: &str,
        security: &Security,
    ) -> Result<Connection> {
        let stream = tcp(addr).await?;
        let mut conn = Self::over(security.wrap(addr, stream).await?, client_id);
        conn.versions = conn.api_versions().await?;
        if let Some(login) = security.sasl() {
            conn.authenticate(login).await?;
        }
        Ok(conn)
    }

    /// Connects to `addr` (HOST:PORT) without asking for API versions
    /// (librdkafka's `api.version.request=false`): nothing is sent until the
    /// caller sends, [`Connection::versions`] is empty, and every request's
    /// version is the caller's choice.
    pub async fn connect_unversioned(addr: &str, client_id: &str) -> Result<Connection> {
        Ok(Self::over(Stream::Plain(tcp(addr).await?), client_id))
    }

    fn over(stream: Stream, client_id: &str) -> Connection {
        let low_water = match &stream {
            Stream::Plain(s) => Marked::of(s),
            Stream::Tls(_) => None,
        };
        let (read, write): (ReadHalf, WriteHalf) = match stream {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        };
        Connection {
            sender: Sender {
                write,
                next_id: 1,
                client_id: StrBytes::from_string(client_id.to_string()),
                buf: BytesMut::new(),
            },
            receiver: Receiver {
                read: BufReader::with_capacity(256 << 10, read),
                low_water,
            },
            versions: Versions::default(),
            timed_out: false,
        }
    }

    /// The SASL login: SaslHandshake (v1: the exchange then goes in
    /// SaslAuthenticate requests) and the mechanism's rounds. A refusal is
    /// the broker's error (SASL_AUTHENTICATION_FAILED for a wrong password
    /// or an unknown user), naming the user and mechanism, never the
    /// password.
    async fn authenticate(&mut self, login: &SaslLogin) -> Result<()> {
        let mechanism = login.mechanism.name();
        let context = format!("logging in as {} with {mechanism}", login.user);
        let v = self.versions.pick::<SaslHandshakeRequest>(1..=1)?;
        let req =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let resp = self.call(v, &req).await?;
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            let offered = format!("the broker offers {}", offered.join(", "));
            check(resp.error_code, || context.clone(), Some(&offered))?;
        }
        match ScramHash::of(login.mechanism) {
            None => {
                debug_assert_eq!(login.mechanism, SaslMechanism::Plain);
                let mut token = Vec::with_capacity(login.user.len() + 2 + 64);
                token.push(0);
                token.extend_from_slice(login.user.as_bytes());
                token.push(0);
                token.extend_from_slice(login.password.expose().as_bytes());
                self.sasl_round(token, &context).await?;
            }
            Some(hash) => {
                let mut scram = ScramClient::new(hash, &login.user)?;
                let server_first = self.sasl_round(scram.first(), &context).await?;
                let last = scram.answer(&server_first, login.password.expose())?;
                let server_final = self.sasl_round(last, &context).await?;
                scram.verify(&server_final)?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate request; the broker's bytes, or its refusal.
    async fn sasl_round(&mut self, token: Vec<u8>, context: &str) -> Result<Bytes> {
        let v = self.versions.pick::<SaslAuthenticateRequest>(0..=2)?;
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let resp = self.call(v, &req).await?;
        check(
            resp.error_code,
            || context.to_string(),
            resp.error_message.as_deref(),
        )?;
        Ok(resp.auth_bytes)
    }

    async fn api_versions(&mut self) -> Result<Versions> {
        // v3 first; a broker that only speaks older versions answers with
        // UNSUPPORTED_VERSION (35) in a v0 body, then v0 is used.
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("pubsub"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = match self.call(3, &req).await {
            Ok(r) if r.error_code == 0 => r,
            Ok(_) | Err(ClientError::Protocol(_)) => {
                self.call(0, &ApiVersionsRequest::default()).await?
            }
            Err(e) => return Err(e),
        };
        crate::error::check(resp.error_code, || "ApiVersions".into(), None)?;
        Ok(Versions(
            resp.api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        ))
    }

    /// What the broker speaks.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Sends a request and reads its answer, giving up after
    /// [`REQUEST_TIMEOUT`]; after a timeout the connection is unusable (a
    /// late answer would be taken for the next one), so it is closed.
    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> Result<R::Response> {
        if self.timed_out {
            return Err(ClientError::TimedOut(REQUEST_TIMEOUT));
        }
        let exchange = async {
            let id = self.sender.send(version, req).await?;
            self.receiver.receive::<R>(id, version).await
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(answer) => answer,
            Err(_) => {
                self.timed_out = true;
                let _ = self.sender.write.shutdown().await;
                Err(ClientError::TimedOut(REQUEST_TIMEOUT))
            }
        }
    }

    /// Sends a request that gets no answer (Produce with acks=0).
    pub async fn send_only<R: Request>(&mut self, version: i16, req: &R) -> Result<()> {
        self.sender.send(version, req).await.map(|_| ())
    }

    /// Splits for pipelining: send from one task, receive from another.
    pub fn into_split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }
}

impl Sender {
    /// Encodes and sends a request; returns its correlation id.
    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> Result<i32> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.buf.clear();
        encode_request(&mut self.buf, id, version, &self.client_id, req)?;
        self.write.write_all(&self.buf).await?;
        // TLS may hold the last record until flushed (a no-op on TCP).
        self.write.flush().await?;
        Ok(id)
    }

    /// Sends a request whose frame is a head, `payload`, then a tail, in one
    /// vectored write: a large payload (a Produce request's record batch)
    /// goes from the caller's buffer to the socket without being copied
    /// into the frame. `encode` appends the head to the connection's reused
    /// buffer, given the request's correlation id and the client id, and
    /// returns the tail. Returns the correlation id.
    pub async fn send_around<F>(&mut self, payload: &[u8], encode: F) -> Result<i32>
    where
        F: FnOnce(&mut BytesMut, i32, &StrBytes) -> Result<&'static [u8]>,
    {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.buf.clear();
        let tail = encode(&mut self.buf, id, &self.client_id)?;
        let mut frame = Buf::chain(&self.buf[..], payload).chain(tail);
        self.write.write_all_buf(&mut frame).await?;
        self.write.flush().await?;
        Ok(id)
    }

    /// Writes `bytes` as they are: frames encoded elsewhere (by
    /// [`encode_request`], or captured from another client). Their
    /// correlation ids are the caller's to match.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.write.write_all(bytes).await?;
        self.write.flush().await?;
        Ok(())
    }
}

impl Receiver {
    /// Reads the answer to request `id` (sent at `version`).
    pub async fn receive<R: Request>(&mut self, id: i32, version: i16) -> Result<R::Response> {
        let mut frame = self.read_frame().await?;
        decode_answer::<R>(&mut frame, id, version)
    }

    /// Reads one answer frame, undecoded: the bytes after its size prefix.
    /// The frame is read into uninitialised capacity: a fetch answer of
    /// many MiB is not zeroed first only to be overwritten. A large frame
    /// from a loopback peer is read with the socket's low-water mark raised
    /// ([`crate::low_water`]), put back to 1 once the frame is in.
    pub async fn read_frame(&mut self) -> Result<BytesMut> {
        if let Some(lw) = &mut self.low_water {
            lw.reset();
        }
        let mut size = [0u8; 4];
        self.read.read_exact(&mut size).await?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .ok()
            .filter(|&n| n <= MAX_RESPONSE)
            .ok_or_else(|| ClientError::Protocol("the broker sent an invalid frame size".into()))?;
        let mut frame = BytesMut::with_capacity(size);
        while frame.len() < size {
            let left = (size - frame.len()) as u64;
            if let Some(lw) = &mut self.low_water {
                let in_socket = (size - frame.len()).saturating_sub(self.read.buffer().len());
                lw.before_read(size, in_socket);
            }
            if (&mut self.read).take(left).read_buf(&mut frame).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
        if let Some(lw) = &mut self.low_water {
            lw.reset();
        }
        Ok(frame)
    }
}

/// A TCP connection to `addr`, Nagle off.
async fn tcp(addr: &str) -> Result<TcpStream> {
    let connect_err = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
        .map_err(connect_err)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Appends to `buf` the frame of request `id` at `version`: size prefix,
/// request header (with `client_id`), body.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    id: i32,
    version: i16,
    client_id: &StrBytes,
    req: &R,
) -> Result<()> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(id)
        .with_client_id(Some(client_id.clone()));
    let hv = R::header_version(version);
    let protocol = |e| protocol_error("encoding a request", e);
    let size =
        header.compute_size(hv).map_err(protocol)? + req.compute_size(version).map_err(protocol)?;
    buf.reserve(4 + size);
    buf.put_i32(
        i32::try_from(size).map_err(|_| {
            ClientError::Protocol(format!("a request of {size} bytes is too large"))
        })?,
    );
    header.encode(buf, hv).map_err(protocol)?;
    req.encode(buf, version).map_err(protocol)
}

/// Decodes `frame` (read by [`Receiver::read_frame`]) as the answer to
/// request `id` sent at `version`: the response header, whose correlation
/// id must be `id`, then the body. Bytes the body did not use stay in
/// `frame`.
pub fn decode_answer<R: Request>(
    frame: &mut BytesMut,
    id: i32,
    version: i16,
) -> Result<R::Response> {
    let decode = |e| protocol_error("decoding an answer", e);
    let hv = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(frame, hv).map_err(decode)?;
    if header.correlation_id != id {
        return Err(ClientError::Protocol(format!(
            "answer {} arrived where {id} was expected",
            header.correlation_id
        )));
    }
    R::Response::decode(frame, version).map_err(decode)
}

fn protocol_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use bytes::Buf;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{MetadataRequest, ResponseHeader};
    use tokio::net::TcpListener;

    use super::*;

    /// An ApiVersions v0 answer frame (no size prefix) to `id`, with
    /// `extra` bytes after its body.
    fn api_versions_answer(id: i32, extra: &[u8]) -> BytesMut {
        let mut frame = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(id)
            .encode(&mut frame, 0)
            .expect("header");
        ApiVersionsResponse::default()
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(3)
                .with_min_version(0)
                .with_max_version(12)])
            .encode(&mut frame, 0)
            .expect("body");
        frame.extend_from_slice(extra);
        frame
    }

    #[test]
    fn a_request_frame_is_its_size_then_header_then_body() {
        let mut buf = BytesMut::from(&b"kept"[..]);
        let client_id = StrBytes::from_static_str("me");
        encode_request(&mut buf, 42, 4, &client_id, &MetadataRequest::default()).expect("encode");
        assert_eq!(&buf[..4], b"kept", "appended");
        let mut frame = buf.split_off(4).freeze();
        let size = frame.get_i32() as usize;
        assert_eq!(size, frame.len());
        let header =
            RequestHeader::decode(&mut frame, MetadataRequest::header_version(4)).expect("header");
        assert_eq!(
            (
                header.request_api_key,
                header.request_api_version,
                header.correlation_id
            ),
            (3, 4, 42)
        );
        assert_eq!(header.client_id.as_deref(), Some("me"));
        let body = MetadataRequest::decode(&mut frame, 4).expect("body");
        assert_eq!(body, MetadataRequest::default());
        assert!(!frame.has_remaining());
    }

    #[test]
    fn an_answer_is_matched_by_id_and_leaves_what_it_did_not_use() {
        let mut frame = api_versions_answer(9, &[1, 2, 3]);
        let resp = decode_answer::<ApiVersionsRequest>(&mut frame, 9, 0).expect("decode");
        assert_eq!(resp.api_keys[0].max_version, 12);
        assert_eq!(&frame[..], &[1, 2, 3]);

        let mut frame = api_versions_answer(8, &[]);
        let answer = decode_answer::<ApiVersionsRequest>(&mut frame, 9, 0);
        assert!(
            matches!(answer, Err(ClientError::Protocol(_))),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn an_unversioned_connection_sends_only_what_it_is_given() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut got = [0u8; 5];
            stream.read_exact(&mut got).await.expect("read");
            let answer = api_versions_answer(1, &[]);
            stream
                .write_all(&(answer.len() as i32).to_be_bytes())
                .await
                .expect("size");
            stream.write_all(&answer).await.expect("answer");
            got
        });
        let conn = Connection::connect_unversioned(&addr, "me")
            .await
            .expect("connect");
        assert!(conn.versions().0.is_empty(), "nothing was asked");
        let (mut sender, mut receiver) = conn.into_split();
        sender.send_bytes(b"hello").await.expect("send");
        let mut frame = receiver.read_frame().await.expect("frame");
        assert_eq!(broker.await.expect("broker"), *b"hello", "sent as they are");
        let resp = decode_answer::<ApiVersionsRequest>(&mut frame, 1, 0).expect("decode");
        assert_eq!(resp.api_keys.len(), 1);
        assert!(matches!(
            receiver.read_frame().await,
            Err(ClientError::Io(_))
        ));
    }

    /// A large answer whose tail comes late, then a small one after it: the
    /// low-water mark never asks for more than is still to come, so both
    /// are read (a mark left at 256 KiB for the tail, or at the tail's size
    /// for the next frame's size, would wait for ever).
    #[tokio::test]
    async fn a_large_answer_with_a_late_tail_then_a_small_one_are_both_read() {
        const BIG: usize = 3 << 20;
        const TAIL: usize = 10_000;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let body: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let pause = || tokio::time::sleep(Duration::from_millis(100));
            stream
                .write_all(&(BIG as i32).to_be_bytes())
                .await
                .expect("size");
            stream.write_all(&sent[..BIG - TAIL]).await.expect("body");
            pause().await;
            stream.write_all(&sent[BIG - TAIL..]).await.expect("tail");
            pause().await;
            stream.write_all(&5i32.to_be_bytes()).await.expect("size");
            stream.write_all(b"small").await.expect("small");
            stream
        });
        let conn = Connection::connect_unversioned(&addr, "me")
            .await
            .expect("connect");
        let (_sender, mut receiver) = conn.into_split();
        let both = async {
            let big = receiver.read_frame().await.expect("big frame");
            let small = receiver.read_frame().await.expect("small frame");
            (big, small)
        };
        let (big, small) = tokio::time::timeout(Duration::from_secs(30), both)
            .await
            .expect("both frames read, none waited for bytes that were not coming");
        assert!(
            big[..] == body[..],
            "the large frame arrives whole and in order"
        );
        assert_eq!(&small[..], b"small");
        drop(broker.await.expect("broker"));
    }

    /// Toward a loopback peer the client does raise the mark: a read of a
    /// large frame whose rest never comes is left waiting with the mark
    /// raised, no higher than 256 KiB, as the kernel reports it.
    #[tokio::test]
    async fn a_large_frame_from_a_loopback_peer_is_read_with_the_mark_raised() {
        const SIZE: usize = 1 << 20;
        const SENT: usize = SIZE - 100_000;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            stream
                .write_all(&(SIZE as i32).to_be_bytes())
                .await
                .expect("size");
            stream.write_all(&vec![1u8; SENT]).await.expect("part");
            stream
        });
        let conn = Connection::connect_unversioned(&addr, "me")
            .await
            .expect("connect");
        let (_sender, mut receiver) = conn.into_split();
        let waited = tokio::time::timeout(Duration::from_millis(500), receiver.read_frame()).await;
        assert!(waited.is_err(), "the frame's rest never comes");
        let marked = receiver.low_water.as_mut().expect("marked toward loopback");
        let (fd, _) = marked.parts();
        let value = crate::low_water::mark_of(fd);
        // At least the part that never comes (bytes that came may wait,
        // queued under the mark), at most the largest mark.
        assert!(
            (SIZE - SENT..=crate::low_water::MAX_MARK).contains(&value),
            "mark {value}"
        );
        drop(broker.await.expect("broker"));
    }
}
