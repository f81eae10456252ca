//! TLS listeners over real sockets with a rustls client: produce and fetch
//! through TLS 1.2 and 1.3 next to a plaintext listener of the same server,
//! Metadata naming the listener a client came in on, failed handshakes
//! (untrusted, expired, missing or foreign client certificates, plaintext
//! clients, silent clients) closing only their own connection and counted,
//! and a certificate reload that new connections see while open ones go on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::Request;
use pubsub_client::connection::decode_answer;
use pubsub_server::{Bound, Listener, Metrics, SecurityProtocol, ServerConfig, Tls, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::client::{create_topic, fetch_request, produce_request, Client, PRODUCE_V};
use crate::common::{batch_of, broker_config, bytes};

/// A batch of `n` records of `size` bytes each.
fn batch_of_sized(n: usize, size: usize) -> bytes::Bytes {
    let value = "x".repeat(size);
    bytes(batch_of(&vec![value.as_str(); n]))
}

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf certificate for `subject` (C, O, CN in that order) naming
    /// 127.0.0.1 and localhost, expired if `expired`: (cert PEM, key PEM).
    pub fn leaf(&self, cn: &str, expired: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "NL");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Pubsub");
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes a server certificate of `ca` (and the CA, for clients) into
/// `dir`: the files a listener reads.
pub fn server_files(dir: &Path, ca: &Ca, client_ca: Option<&Ca>, expired: bool) -> TlsFiles {
    let (cert, key) = ca.leaf("broker", expired);
    std::fs::write(dir.join("server.pem"), cert).expect("write");
    std::fs::write(dir.join("server.key"), key).expect("write");
    let client_ca = client_ca.map(|c| {
        let path = dir.join("client-ca.pem");
        std::fs::write(&path, c.pem()).expect("write");
        path
    });
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca,
    }
}

/// A server with a PLAINTEXT and an SSL listener.
struct TwoListeners {
    plain: SocketAddr,
    ssl: SocketAddr,
    tls: Arc<Tls>,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _data: TempDir,
}

impl TwoListeners {
    async fn start(files: TlsFiles, config: ServerConfig) -> TwoListeners {
        let data = tempfile::tempdir().expect("tempdir");
        let broker = pubsub_broker::Broker::open(data.path(), broker_config()).expect("broker");
        let plain_socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ssl_socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let plain = plain_socket.local_addr().expect("addr");
        let ssl = ssl_socket.local_addr().expect("addr");
        let tls = Arc::new(Tls::load(files).expect("TLS files"));
        let listeners = vec![
            Bound::plaintext(plain_socket).expect("plaintext"),
            Bound {
                socket: ssl_socket,
                listener: Arc::new(Listener {
                    name: "ssl".into(),
                    protocol: SecurityProtocol::Ssl,
                    advertised_host: "127.0.0.1".into(),
                    advertised_port: ssl.port(),
                    sasl_mechanisms: Vec::new(),
                    tls: Some(Arc::clone(&tls)),
                }),
            },
        ];
        let metrics = Arc::new(Metrics::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(pubsub_server::run_listeners(
            listeners,
            broker,
            config,
            Arc::clone(&metrics),
            async move {
                let _ = stopped.await;
            },
        ));
        TwoListeners {
            plain,
            ssl,
            tls,
            metrics,
            stop: Some(stop),
            task,
            _data: data,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("server task");
    }
}

/// A rustls client configuration trusting `ca`, with a client certificate
/// if given, limited to `versions`.
fn client_config(
    ca: &Ca,
    cert: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).expect("root");
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
    };
    Arc::new(config)
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A TLS connection; the error if the handshake fails.
async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(config).connect(name, tcp).await
}

/// A Kafka request over any stream, its answer decoded.
async fn call<R: Request>(
    stream: &mut TlsStream<TcpStream>,
    id: i32,
    version: i16,
    req: &R,
) -> std::io::Result<R::Response> {
    let mut frame = Client::frame(id, version, req);
    stream.write_all(&frame).await?;
    stream.flush().await?;
    let size = stream.read_i32().await?;
    frame = BytesMut::zeroed(usize::try_from(size).expect("size"));
    stream.read_exact(&mut frame).await?;
    let resp = decode_answer::<R>(&mut frame, id, version).expect("decodes");
    assert_eq!(frame.remaining(), 0, "trailing bytes");
    Ok(resp)
}

/// Whether a handshake-completed TLS connection is usable (an ApiVersions
/// round trip); false if the server closed it (a client whose certificate
/// the server refused learns so on its first read under TLS 1.3).
async fn usable(stream: &mut TlsStream<TcpStream>) -> bool {
    call(stream, 1, 3, &ApiVersionsRequest::default())
        .await
        .is_ok_and(|r| r.error_code == 0)
}

/// Waits until the server has counted `n` failed handshakes (it counts
/// just after closing, which the client may see first).
async fn failures_reach(metrics: &Metrics, n: u64) {
    for _ in 0..2000 {
        if metrics.tls_handshake_failures() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.tls_handshake_failures(), n);
}

fn tmp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_over_tls_1_2_and_1_3_match_plaintext_and_metadata_names_the_listener() {
    let (_dir, path) = tmp();
    let ca = Ca::new("test CA");
    let server = TwoListeners::start(
        server_files(&path, &ca, None, false),
        ServerConfig::default(),
    )
    .await;

    // Records large enough to be file ranges (sendfile on plaintext,
    // copied into the TLS session).
    let mut plain = Client::connect(server.plain).await;
    create_topic(&mut plain, "t", 1, &[]).await;
    let records = batch_of_sized(40, 1500);
    let r = plain
        .call(PRODUCE_V, &produce_request("t", 0, -1, records))
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let over_plaintext = plain.call(12, &fetch_request("t", 0, 0, 0, 1 << 20)).await;
    let plain_records = over_plaintext.responses[0].partitions[0]
        .records
        .clone()
        .expect("records");
    assert!(plain_records.len() > 40 * 1500, "{}", plain_records.len());
    let md = plain.call(12, &MetadataRequest::default()).await;
    assert_eq!(md.brokers[0].port, i32::from(server.plain.port()));

    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let mut s = tls_connect(server.ssl, client_config(&ca, None, versions))
            .await
            .expect("handshake");
        let (_, conn) = s.get_ref();
        assert_eq!(conn.protocol_version(), Some(versions[0].version));
        assert!(usable(&mut s).await);
        // Metadata over TLS names the TLS listener.
        let md = call(&mut s, 2, 12, &MetadataRequest::default())
            .await
            .expect("metadata");
        assert_eq!(md.brokers[0].port, i32::from(server.ssl.port()));
        // Produce over TLS, then fetch everything: byte-identical to what
        // the plaintext listener sends for the same offsets.
        let more = batch_of_sized(5, 3000);
        let r = call(&mut s, 3, PRODUCE_V, &produce_request("t", 0, -1, more))
            .await
            .expect("produce");
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        let over_tls = call(&mut s, 4, 12, &fetch_request("t", 0, 0, 0, 16 << 20))
            .await
            .expect("fetch");
        let over_plaintext = plain.call(12, &fetch_request("t", 0, 0, 0, 16 << 20)).await;
        assert_eq!(
            over_tls.responses[0].partitions[0].records,
            over_plaintext.responses[0].partitions[0].records
        );
        assert!(over_tls.responses[0].partitions[0]
            .records
            .as_ref()
            .is_some_and(|r| r.starts_with(&plain_records)));
    }
    assert_eq!(server.metrics.tls_handshake_failures(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_close_only_their_connection_and_are_counted() {
    let (_dir, path) = tmp();
    let ca = Ca::new("test CA");
    let config = ServerConfig {
        tls_handshake_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = TwoListeners::start(server_files(&path, &ca, None, false), config).await;
    // A connection that stays open through all the failures.
    let mut good = tls_connect(server.ssl, client_config(&ca, None, BOTH))
        .await
        .expect("handshake");
    assert!(usable(&mut good).await);

    // A client that trusts another CA refuses the certificate.
    let other = Ca::new("other CA");
    let e = tls_connect(server.ssl, client_config(&other, None, BOTH))
        .await
        .expect_err("untrusted");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    failures_reach(&server.metrics, 1).await;

    // A Kafka client speaking plaintext to the TLS port is closed.
    let mut plain = TcpStream::connect(server.ssl).await.expect("connect");
    plain
        .write_all(&Client::frame(1, 3, &ApiVersionsRequest::default()))
        .await
        .expect("send");
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    failures_reach(&server.metrics, 2).await;

    // A client that connects and says nothing is closed after the timeout.
    let mut silent = TcpStream::connect(server.ssl).await.expect("connect");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed: {read:?}");
    failures_reach(&server.metrics, 3).await;

    assert!(usable(&mut good).await, "the open connection is untouched");
    let mut c = Client::connect(server.plain).await;
    assert_eq!(
        c.call(3, &ApiVersionsRequest::default()).await.error_code,
        0
    );
    server.stop().await;

    // An expired server certificate: the client refuses it.
    let (_dir, path) = tmp();
    let server = TwoListeners::start(
        server_files(&path, &ca, None, true),
        ServerConfig::default(),
    )
    .await;
    let e = tls_connect(server.ssl, client_config(&ca, None, BOTH))
        .await
        .expect_err("expired");
    assert!(e.to_string().contains("expired"), "{e}");
    failures_reach(&server.metrics, 1).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_takes_only_certificates_of_the_client_ca() {
    let (_dir, path) = tmp();
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let server = TwoListeners::start(
        server_files(&path, &ca, Some(&clients), false),
        ServerConfig::default(),
    )
    .await;
    assert!(server.tls.requires_client_certificate());

    let (cert, key) = clients.leaf("alice", false);
    let mut s = tls_connect(server.ssl, client_config(&ca, Some((&cert, &key)), BOTH))
        .await
        .expect("handshake");
    assert!(
        usable(&mut s).await,
        "a client certificate of the client CA"
    );

    // No certificate, one of another CA, an expired one: refused (under
    // TLS 1.3 the client learns at its first read).
    let stranger = Ca::new("stranger CA");
    let (other_cert, other_key) = stranger.leaf("mallory", false);
    let (old_cert, old_key) = clients.leaf("alice", true);
    let refused: [Option<(&str, &str)>; 3] = [
        None,
        Some((&other_cert, &other_key)),
        Some((&old_cert, &old_key)),
    ];
    for (i, cert) in refused.into_iter().enumerate() {
        if let Ok(mut s) = tls_connect(server.ssl, client_config(&ca, cert, BOTH)).await {
            assert!(!usable(&mut s).await, "case {i} refused");
        }
        failures_reach(&server.metrics, i as u64 + 1).await;
    }
    assert!(usable(&mut s).await, "the accepted client goes on");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_serves_new_connections_the_new_certificate_and_keeps_open_ones() {
    let (_dir, path) = tmp();
    let ca = Ca::new("test CA");
    let files = server_files(&path, &ca, None, false);
    let server = TwoListeners::start(files.clone(), ServerConfig::default()).await;
    let peer_cert = |s: &TlsStream<TcpStream>| {
        s.get_ref().1.peer_certificates().expect("certificates")[0].clone()
    };
    let mut before = tls_connect(server.ssl, client_config(&ca, None, BOTH))
        .await
        .expect("handshake");
    let old = peer_cert(&before);

    // New files (a new CA too: a client trusting only the old one fails).
    let new_ca = Ca::new("new CA");
    server_files(&path, &new_ca, None, false);
    server.tls.reload().expect("reload");
    let after = tls_connect(server.ssl, client_config(&new_ca, None, BOTH))
        .await
        .expect("handshake with the new certificate");
    let new = peer_cert(&after);
    assert_ne!(old, new);
    assert!(tls_connect(server.ssl, client_config(&ca, None, BOTH))
        .await
        .is_err());
    assert!(usable(&mut before).await, "the open connection goes on");

    // A broken file is refused and the current certificate kept.
    std::fs::write(&files.key, "not a key").expect("write");
    let e = server.tls.reload().expect_err("a bad key");
    assert!(e.to_string().contains("server.key"), "{e}");
    let still = tls_connect(server.ssl, client_config(&new_ca, None, BOTH))
        .await
        .expect("the kept certificate");
    assert_eq!(peer_cert(&still), new);
    server.stop().await;
}
