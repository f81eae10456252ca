//! `pubsub serve` with a PLAINTEXT and an SSL listener from a config file,
//! driven by real clients over TLS: kcat, confluent-kafka, kafka-python
//! and Kafka's own console producer and consumer (the Java client) produce
//! and consume; a client that does not trust the certificate and one facing
//! an expired certificate fail, and the broker says why in its log; with
//! `tls.client_ca` (mutual TLS) the client certificate's subject is the
//! principal the log names, and a client without one is refused; SIGHUP
//! puts a new certificate in front of new connections while an open one
//! goes on.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::daemon::{Daemon, Options};
use crate::reference::output_of;

/// A certificate authority in a directory: `NAME.pem`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    path: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, issuer.pem()).unwrap();
        Ca { issuer, path }
    }

    /// A certificate for 127.0.0.1 with subject C=NL, O=Pubsub, CN=`cn`,
    /// written to `NAME.pem` and `NAME.key`; with `expired`, valid only in
    /// 2000.
    fn leaf(&self, dir: &Path, name: &str, cn: &str, expired: bool) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
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
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// Starts `pubsub serve` with the PLAINTEXT `--listen` listener and an SSL
/// one named `ssl`, with `tls` lines in `[tls]`.
fn start(dir: &Path, tls: &str, log: &str) -> Daemon {
    let config = dir.join("pubsub.toml");
    std::fs::write(
        &config,
        format!(
            "[[listeners]]\nname = \"ssl\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SSL\"\n\n[tls]\n{tls}"
        ),
    )
    .unwrap();
    let data = dir.join("data");
    Daemon::start_with(
        &data,
        Options {
            args: vec!["--config".into(), config.display().to_string()],
            env: vec![("PUBSUB_LOG".into(), log.into())],
            listeners: 1,
            ..Options::default()
        },
    )
}

/// `[tls]` lines for a certificate, key and optional client CA.
fn tls_lines(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut s = format!(
        "cert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    if let Some(ca) = client_ca {
        s.push_str(&format!("client_ca = {:?}\n", ca.display().to_string()));
    }
    s
}

/// kcat over SSL trusting `ca`, with a client certificate if given.
fn kcat(addr: &str, ca: &Path, cert: Option<(&Path, &Path)>, args: &[&str]) -> Command {
    let mut c = Command::new("kcat");
    c.args(["-b", addr, "-X", "security.protocol=SSL", "-X"])
        .arg(format!("ssl.ca.location={}", ca.display()))
        .args(["-m", "10"]);
    if let Some((cert, key)) = cert {
        c.arg("-X")
            .arg(format!("ssl.certificate.location={}", cert.display()))
            .arg("-X")
            .arg(format!("ssl.key.location={}", key.display()));
    }
    c.args(args);
    c
}

/// Produces `lines` with kcat and reads the topic back: what it printed.
fn kcat_round_trip(
    addr: &str,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
    topic: &str,
    lines: &[&str],
) -> Vec<String> {
    let (ok, _, err) = output_of(
        kcat(addr, ca, cert, &["-P", "-t", topic]),
        &lines.join("\n"),
    );
    assert!(ok, "kcat produce over SSL: {err}");
    let (ok, out, err) = output_of(
        kcat(
            addr,
            ca,
            cert,
            &["-C", "-t", topic, "-o", "beginning", "-e", "-q"],
        ),
        "",
    );
    assert!(ok, "kcat consume over SSL: {err}");
    out.lines().map(str::to_string).collect()
}

/// Waits until the daemon's log contains `text`.
fn log_shows(daemon: &Daemon, text: &str) -> String {
    for _ in 0..600 {
        let log = daemon.stderr();
        if log.contains(text) {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the log never showed {text:?}:\n{}", daemon.stderr());
}

const CONFLUENT: &str = r#"
import sys, time
from confluent_kafka import Consumer, Producer
addr, ca, topic = sys.argv[1:4]
conf = {"bootstrap.servers": addr, "security.protocol": "SSL", "ssl.ca.location": ca}
p = Producer(conf)
for i in range(5):
    p.produce(topic, f"ck-{i}".encode())
assert p.flush(60) == 0, "unsent messages"
c = Consumer({**conf, "group.id": "g-" + topic, "auto.offset.reset": "earliest"})
c.subscribe([topic])
got, deadline = [], time.time() + 120
while len(got) < 5 and time.time() < deadline:
    m = c.poll(1.0)
    if m is not None and not m.error():
        got.append(m.value().decode())
c.close()
print(",".join(got))
"#;

const KAFKA_PYTHON: &str = r#"
import sys
from kafka import KafkaConsumer, KafkaProducer
addr, ca, topic = sys.argv[1:4]
p = KafkaProducer(bootstrap_servers=addr, security_protocol="SSL", ssl_cafile=ca)
for i in range(5):
    p.send(topic, f"kp-{i}".encode()).get(timeout=60)
p.close()
c = KafkaConsumer(topic, bootstrap_servers=addr, security_protocol="SSL", ssl_cafile=ca,
                  auto_offset_reset="earliest", consumer_timeout_ms=20000)
got = []
for m in c:
    got.append(m.value.decode())
    if len(got) == 5:
        break
c.close()
print(",".join(got))
"#;

/// A TLS connection with a client certificate that sends ApiVersions, says
/// `first`, waits for a line on stdin, sends it again and says `second`.
const OPEN_CONNECTION: &str = r#"
import socket, ssl, struct, sys
addr, ca, cert, key = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
def read(n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        assert chunk, "closed"
        b += chunk
    return b
def api_versions(cid):
    body = struct.pack(">hhih", 18, 0, cid, -1)
    s.sendall(struct.pack(">i", len(body)) + body)
    resp = read(struct.unpack(">i", read(4))[0])
    assert struct.unpack(">ih", resp[:6]) == (cid, 0), resp[:6]
api_versions(1)
print("first", flush=True)
sys.stdin.readline()
api_versions(2)
print("second", flush=True)
"#;

fn python(script: &str, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).args(args);
    output_of(c, "")
}

/// Kafka's console producer and consumer (the Java client) over SSL with
/// a PEM truststore, and a PEM keystore (key, then certificate) if
/// `client` is given; skipped without Java and Kafka's jars.
fn java_console_round_trip(
    dir: &Path,
    addr: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    topic: &str,
) {
    if !crate::reference::java_and_maven("the Java console tools do not run over TLS") {
        return;
    }
    let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/kafka");
    let setup = Command::new(&launcher).arg("setup").output().unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let props = dir.join(format!("{topic}.properties"));
    let mut text = format!(
        "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
        ca.display()
    );
    if let Some((cert, key)) = client {
        let keystore = dir.join(format!("{topic}-keystore.pem"));
        let pem = std::fs::read_to_string(key).unwrap() + &std::fs::read_to_string(cert).unwrap();
        std::fs::write(&keystore, pem).unwrap();
        text.push_str(&format!(
            "ssl.keystore.type=PEM\nssl.keystore.location={}\n",
            keystore.display()
        ));
    }
    std::fs::write(&props, text).unwrap();
    let tool = |class: &str, args: &[&str], stdin: &str| {
        let mut c = Command::new(&launcher);
        c.arg("run")
            .arg(dir.join("java-tools"))
            .arg(class)
            .args(args);
        output_of(c, stdin)
    };
    let props = props.display().to_string();
    let (ok, out, err) = tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--bootstrap-server",
            addr,
            "--topic",
            topic,
            "--producer.config",
            &props,
        ],
        "java-0\njava-1\njava-2\n",
    );
    assert!(ok, "Java console producer over SSL:\n{out}\n{err}");
    let (ok, out, err) = tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            addr,
            "--topic",
            topic,
            "--consumer.config",
            &props,
            "--from-beginning",
            "--max-messages",
            "3",
            "--timeout-ms",
            "60000",
        ],
        "",
    );
    assert!(ok, "Java console consumer over SSL:\n{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["java-0", "java-1", "java-2"],
        "{err}"
    );
}

#[test]
fn kafka_clients_produce_and_consume_over_ssl_and_bad_certificates_fail() {
    let without = "the TLS client tests do not run";
    if !crate::reference::tools_found(&[("kcat", "-V")], without)
        || !crate::reference::python_modules_found(&["confluent_kafka", "kafka"], without)
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = Ca::new(dir, "ca");
    let (cert, key) = ca.leaf(dir, "server", "broker", false);
    let daemon = start(dir, &tls_lines(&cert, &key, None), "info");
    let ssl = daemon.listeners[0].to_string();
    assert_ne!(daemon.addr, daemon.listeners[0]);

    let got = kcat_round_trip(&ssl, &ca.path, None, "tls-kcat", &["a", "b", "c"]);
    assert_eq!(got, ["a", "b", "c"]);
    // Metadata over the SSL listener names the SSL listener's address.
    let (ok, out, err) = output_of(kcat(&ssl, &ca.path, None, &["-L", "-t", "tls-kcat"]), "");
    assert!(ok, "{err}");
    assert!(out.contains(&format!("at {ssl}")), "{out}");
    // The plaintext listener serves the same topic.
    let (ok, out, err) = output_of(
        {
            let mut c = Command::new("kcat");
            c.args([
                "-b",
                &daemon.addr.to_string(),
                "-C",
                "-t",
                "tls-kcat",
                "-o",
                "beginning",
                "-e",
                "-q",
            ]);
            c
        },
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3);

    let (ok, out, err) = python(CONFLUENT, &[&ssl, &ca.path.display().to_string(), "tls-ck"]);
    assert!(ok, "confluent-kafka over SSL: {out}\n{err}");
    assert_eq!(out.trim(), "ck-0,ck-1,ck-2,ck-3,ck-4");
    let (ok, out, err) = python(
        KAFKA_PYTHON,
        &[&ssl, &ca.path.display().to_string(), "tls-kp"],
    );
    assert!(ok, "kafka-python over SSL: {out}\n{err}");
    assert_eq!(out.trim(), "kp-0,kp-1,kp-2,kp-3,kp-4");
    java_console_round_trip(dir, &ssl, &ca.path, None, "tls-java");

    // A client that trusts another CA fails, and the broker says why.
    let other = Ca::new(dir, "other");
    let (ok, _, err) = output_of(kcat(&ssl, &other.path, None, &["-L"]), "");
    assert!(!ok, "a client that does not trust the certificate fails");
    assert!(err.contains("certificate verify failed"), "{err}");
    // The client's alert, in the broker's log line.
    log_shows(&daemon, "TLS handshake failed");
    log_shows(&daemon, "UnknownCA");
    // A plaintext client on the TLS port fails too.
    let mut plain = Command::new("kcat");
    plain.args(["-b", &ssl, "-L", "-m", "5"]);
    let (ok, _, _) = output_of(plain, "");
    assert!(!ok, "plaintext on the TLS port");
    let (status, _, _) = daemon.stop();
    assert!(status.success());

    // An expired server certificate: refused by the client.
    let expired_dir = dir.join("expired");
    std::fs::create_dir_all(&expired_dir).unwrap();
    let (cert, key) = ca.leaf(&expired_dir, "server", "broker", true);
    let daemon = start(&expired_dir, &tls_lines(&cert, &key, None), "info");
    let ssl = daemon.listeners[0].to_string();
    let (ok, _, err) = output_of(kcat(&ssl, &ca.path, None, &["-L"]), "");
    assert!(!ok, "an expired certificate fails");
    assert!(err.contains("certificate verify failed"), "{err}");
    log_shows(&daemon, "CertificateExpired");
    let (status, _, _) = daemon.stop();
    assert!(status.success());
}

#[test]
fn mutual_tls_names_the_principal_and_sighup_swaps_the_certificate_for_new_connections() {
    let without = "the mutual TLS tests do not run";
    if !crate::reference::tools_found(&[("kcat", "-V"), ("python3", "--version")], without) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = Ca::new(dir, "ca");
    let clients = Ca::new(dir, "clients");
    let (cert, key) = ca.leaf(dir, "server", "broker", false);
    let (client_cert, client_key) = clients.leaf(dir, "client", "client", false);
    let daemon = start(
        dir,
        &tls_lines(&cert, &key, Some(&clients.path)),
        "info,pubsub_server::connection=debug",
    );
    let ssl = daemon.listeners[0].to_string();
    let with_cert = Some((client_cert.as_path(), client_key.as_path()));

    let got = kcat_round_trip(&ssl, &ca.path, with_cert, "mtls", &["x", "y"]);
    assert_eq!(got, ["x", "y"]);
    // Kafka's DefaultKafkaPrincipalBuilder: User: + X500Principal.getName().
    log_shows(&daemon, "principal=User:CN=client,O=Pubsub,C=NL");
    // The Java client with a PEM keystore.
    java_console_round_trip(dir, &ssl, &ca.path, with_cert, "mtls-java");
    // Without a client certificate: refused.
    let (ok, _, _) = output_of(kcat(&ssl, &ca.path, None, &["-L"]), "");
    assert!(!ok, "a client without a certificate is refused");

    // An open connection, then new files and SIGHUP.
    let mut open = Command::new("python3")
        .arg("-c")
        .arg(OPEN_CONNECTION)
        .args([
            &ssl,
            &ca.path.display().to_string(),
            &client_cert.display().to_string(),
            &client_key.display().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(open.stdout.take().unwrap()).lines();
    assert_eq!(said.next().unwrap().unwrap(), "first");
    let new_ca = Ca::new(dir, "new-ca");
    new_ca.leaf(dir, "server", "broker", false);
    daemon.signal(libc::SIGHUP);
    log_shows(&daemon, "reloaded the TLS certificate");
    writeln!(open.stdin.take().unwrap()).unwrap();
    assert_eq!(
        said.next().unwrap().unwrap(),
        "second",
        "the open connection goes on"
    );
    assert!(open.wait().unwrap().success());
    // New connections get the new certificate: only the new CA trusts it.
    let (ok, _, _) = output_of(kcat(&ssl, &ca.path, with_cert, &["-L"]), "");
    assert!(!ok, "the old CA no longer verifies the server");
    let (ok, out, err) = output_of(kcat(&ssl, &new_ca.path, with_cert, &["-L"]), "");
    assert!(ok, "the new certificate: {err}");
    assert!(out.contains("mtls"), "{out}");

    // A broken key on SIGHUP: logged, the current certificate kept.
    std::fs::write(&key, "not a key").unwrap();
    daemon.signal(libc::SIGHUP);
    log_shows(
        &daemon,
        "TLS reload failed, keeping the current certificate",
    );
    let (ok, _, err) = output_of(kcat(&ssl, &new_ca.path, with_cert, &["-L"]), "");
    assert!(ok, "still served: {err}");
    let (status, _, _) = daemon.stop();
    assert!(status.success());
}
