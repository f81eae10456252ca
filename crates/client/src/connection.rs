//! One TCP connection to a broker: length-prefixed frames, correlation ids,
//! the API versions the broker advertises, and an optional split into a
//! sending and a receiving half so requests can be pipelined.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::error::{ClientError, Result};

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
#[derive(Debug)]
pub struct Sender {
    write: OwnedWriteHalf,
    next_id: i32,
    client_id: StrBytes,
    buf: BytesMut,
}

/// The receiving half: reads answers, in the order requests were sent.
#[derive(Debug)]
pub struct Receiver {
    read: BufReader<OwnedReadHalf>,
}

impl Connection {
    /// Connects to `addr` (HOST:PORT) and asks for the broker's API versions.
    pub async fn connect(addr: &str, client_id: &str) -> Result<Connection> {
        let connect_err = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_err)?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut conn = Connection {
            sender: Sender {
                write,
                next_id: 1,
                client_id: StrBytes::from_string(client_id.to_string()),
                buf: BytesMut::new(),
            },
            receiver: Receiver {
                read: BufReader::with_capacity(256 << 10, read),
            },
            versions: Versions::default(),
            timed_out: false,
        };
        conn.versions = conn.api_versions().await?;
        Ok(conn)
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
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(self.client_id.clone()));
        let hv = R::header_version(version);
        let protocol = |e| protocol_error("encoding a request", e);
        let size = header.compute_size(hv).map_err(protocol)?
            + req.compute_size(version).map_err(protocol)?;
        self.buf.clear();
        self.buf.reserve(4 + size);
        self.buf.put_i32(i32::try_from(size).map_err(|_| {
            ClientError::Protocol(format!("a request of {size} bytes is too large"))
        })?);
        header.encode(&mut self.buf, hv).map_err(protocol)?;
        req.encode(&mut self.buf, version).map_err(protocol)?;
        self.write.write_all(&self.buf).await?;
        Ok(id)
    }
}

impl Receiver {
    /// Reads the answer to request `id` (sent at `version`).
    pub async fn receive<R: Request>(&mut self, id: i32, version: i16) -> Result<R::Response> {
        let mut size = [0u8; 4];
        self.read.read_exact(&mut size).await?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .ok()
            .filter(|&n| n <= MAX_RESPONSE)
            .ok_or_else(|| ClientError::Protocol("the broker sent an invalid frame size".into()))?;
        let mut frame = BytesMut::zeroed(size);
        self.read.read_exact(&mut frame).await?;
        let decode = |e| protocol_error("decoding an answer", e);
        let hv = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut frame, hv).map_err(decode)?;
        if header.correlation_id != id {
            return Err(ClientError::Protocol(format!(
                "answer {} arrived where {id} was expected",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut frame, version).map_err(decode)
    }
}

fn protocol_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("{what}: {e}"))
}
