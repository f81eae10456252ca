//! Security as a Kafka client: the `pubsub` client subcommands against a
//! broker with a SASL_SSL listener (TLS from a test CA, SCRAM-SHA-256/512
//! and PLAIN logins, ACLs enforced, `admin` the super user): logins with
//! each mechanism, refusals (wrong password, unknown user, a CA that did not
//! sign the broker), `pubsub user` and `pubsub acl` and what they change.
//!
//! Each test runs against Apache Kafka (`compat/kafka` with
//! `KAFKA_SASL_SSL=1`) and then against `pubsub serve` with the issue's
//! `[[listeners]]`, `[tls]` and `[auth]` configuration and
//! `PUBSUB_BOOTSTRAP_USER`; `PUBSUB_SECURITY_BROKER=kafka` or `=pubsub`
//! runs one of them. Without Java and Maven the Kafka half says so and is
//! left out, unless under CI (`COMPAT_REQUIRE_KAFKA=1` or `CI=true`); the
//! same for every other tool a test needs (openssl for the certificates,
//! kcat, node and npm, Python with confluent-kafka and kafka-python): a
//! test without one says so and passes, and fails under CI.
//!
//! Against pubsub alone, a matrix of real clients (confluent-kafka,
//! kafka-python, kcat, kafkajs, the Java client through Kafka's tools) over
//! SASL_PLAINTEXT and SASL_SSL: who gets in and who is refused (wrong
//! password, unknown user, no SASL, a foreign CA, an expired certificate),
//! what the broker's log says, ACLs that take effect, users and ACLs after
//! a restart, no password on disk nor on a client's command line.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{binary, Daemon, Options};
use crate::reference::{output_within, wait_output};

/// The super user's password on the broker under test.
const ADMIN_PASSWORD: &str = "admin-secret";

/// The launcher script at the repository's top.
fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/kafka")
}

/// Which broker the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Apache Kafka 4.1 from `compat/kafka`.
    Kafka,
    /// `pubsub serve`.
    Pubsub,
}

impl BrokerKind {
    /// `PUBSUB_SECURITY_BROKER` (`kafka` or `pubsub`) names one; unset,
    /// both run (Kafka first).
    pub fn under_test() -> Vec<BrokerKind> {
        match std::env::var("PUBSUB_SECURITY_BROKER").as_deref() {
            Ok("pubsub") => vec![BrokerKind::Pubsub],
            Ok("kafka") => vec![BrokerKind::Kafka],
            Err(_) => vec![BrokerKind::Kafka, BrokerKind::Pubsub],
            Ok(other) => panic!("PUBSUB_SECURITY_BROKER={other:?}: kafka or pubsub"),
        }
    }
}

/// Runs `test` against each broker under test; Kafka is left out, with a
/// message, where Java or Maven is missing (unless under CI); every one
/// left out without openssl.
fn each_broker(test: impl Fn(&SecureBroker)) {
    if !openssl_found("the security tests do not run") {
        return;
    }
    for kind in BrokerKind::under_test() {
        if let Some(b) = SecureBroker::start(kind) {
            eprintln!("against {kind:?}");
            test(&b);
        }
    }
}

/// Whether `openssl` runs here: it makes the test certificates
/// (`compat/kafka certs`). Without it a message saying that `without`
/// follows, or a failure under CI (`crate::reference::tools_found`).
fn openssl_found(without: &str) -> bool {
    crate::reference::tools_found(&[("openssl", "version")], without)
}

/// A broker with a SASL_SSL listener, stopped on drop.
pub struct SecureBroker {
    /// Which one.
    pub kind: BrokerKind,
    /// The SASL_SSL listener.
    pub bootstrap: String,
    /// An SSL listener that requires a client certificate (Kafka only: the
    /// pubsub configuration names one client CA for every TLS listener).
    pub ssl_bootstrap: Option<String>,
    /// pubsub's SASL_PLAINTEXT listener.
    pub sasl_plaintext: Option<String>,
    /// The CA that signed the broker's certificate (and the client's).
    pub ca: PathBuf,
    /// Scratch files (password files, properties, the Kafka or pubsub dir).
    pub dir: tempfile::TempDir,
    daemon: Option<Daemon>,
}

impl SecureBroker {
    /// Starts the broker under test, or `None` (with a message) where Kafka
    /// is wanted but Java or Maven is missing.
    pub fn start(kind: BrokerKind) -> Option<SecureBroker> {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            BrokerKind::Kafka => {
                if !crate::reference::java_and_maven("the security tests do not run") {
                    return None;
                }
                let kafka = dir.path().join("kafka");
                let out = Command::new(launcher())
                    .arg("start")
                    .arg(&kafka)
                    .env("KAFKA_SASL_SSL", "1")
                    .env("KAFKA_ADMIN_PASSWORD", ADMIN_PASSWORD)
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                let bootstrap = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("sasl_ssl on "))
                    .map(str::to_string);
                let ssl_bootstrap = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("ssl on "))
                    .map(str::to_string);
                let broker = SecureBroker {
                    kind: BrokerKind::Kafka,
                    bootstrap: bootstrap.unwrap_or_default(),
                    ssl_bootstrap,
                    sasl_plaintext: None,
                    ca: kafka.join("tls/ca.pem"),
                    dir,
                    daemon: None,
                };
                assert!(
                    out.status.success() && !broker.bootstrap.is_empty(),
                    "compat/kafka start failed: {stdout} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(broker)
            }
            BrokerKind::Pubsub => Some(SecureBroker::start_pubsub(dir)),
        }
    }

    /// `pubsub serve` with the issue's configuration: a SASL_SSL listener
    /// (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), a SASL_PLAINTEXT one and the
    /// PLAINTEXT `--listen` one, the authorizer on with `User:admin` the
    /// super user, `admin` made by `PUBSUB_BOOTSTRAP_USER`.
    pub fn start_pubsub(dir: tempfile::TempDir) -> SecureBroker {
        let tls = dir.path().join("certs");
        let out = Command::new(launcher())
            .arg("certs")
            .arg(&tls)
            .output()
            .unwrap();
        assert!(out.status.success(), "compat/kafka certs failed");
        let config = dir.path().join("pubsub.toml");
        std::fs::write(
            &config,
            format!(
                "[[listeners]]\nname = \"sasl\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SASL_SSL\"\nsasl_mechanisms = [\"SCRAM-SHA-512\", \"SCRAM-SHA-256\", \"PLAIN\"]\n\n[[listeners]]\nname = \"sasl_plain\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"SASL_PLAINTEXT\"\nsasl_mechanisms = [\"SCRAM-SHA-512\", \"SCRAM-SHA-256\", \"PLAIN\"]\n\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\n[auth]\nauthorizer = true\nsuper_users = [\"User:admin\"]\nallow_if_no_acl = false\n",
                cert = tls.join("tls/server.pem").display(),
                key = tls.join("tls/server.key").display(),
            ),
        )
        .unwrap();
        let mut broker = SecureBroker {
            kind: BrokerKind::Pubsub,
            bootstrap: String::new(),
            ssl_bootstrap: None,
            sasl_plaintext: None,
            ca: tls.join("tls/ca.pem"),
            dir,
            daemon: None,
        };
        broker.serve();
        broker
    }

    /// (Re)starts `pubsub serve` on the data directory; new ports.
    fn serve(&mut self) {
        let config = self.dir.path().join("pubsub.toml");
        let daemon = Daemon::start_with(
            &self.data_dir(),
            Options {
                args: vec!["--config".into(), config.display().to_string()],
                env: vec![(
                    "PUBSUB_BOOTSTRAP_USER".into(),
                    format!("admin:{ADMIN_PASSWORD}"),
                )],
                listeners: 2,
                ..Options::default()
            },
        );
        self.bootstrap = daemon.listeners[0].to_string();
        self.sasl_plaintext = Some(daemon.listeners[1].to_string());
        self.daemon = Some(daemon);
    }

    /// Stops `pubsub serve` (cleanly) and starts it again on the same data.
    pub fn restart(&mut self) {
        let daemon = self.daemon.take().expect("a pubsub broker");
        let (status, _, log) = daemon.stop();
        assert!(status.success(), "{log}");
        self.serve();
    }

    /// The pubsub broker's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The pubsub broker's log so far.
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::stderr).unwrap_or_default()
    }

    /// Writes `text` to a scratch file; its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The flags of a SASL_SSL login as `user` with `mechanism`, the
    /// password in a file.
    pub fn login(&self, user: &str, password: &str, mechanism: &str) -> Vec<String> {
        let file = self.file(&format!("{user}-{mechanism}.pw"), &format!("{password}\n"));
        vec![
            "--bootstrap".into(),
            self.bootstrap.clone(),
            "--security-protocol".into(),
            "SASL_SSL".into(),
            "--sasl-mechanism".into(),
            mechanism.into(),
            "--user".into(),
            user.into(),
            "--password-file".into(),
            file.display().to_string(),
            "--tls-ca".into(),
            self.ca.display().to_string(),
        ]
    }

    /// The super user's login.
    pub fn admin(&self) -> Vec<String> {
        self.login("admin", ADMIN_PASSWORD, "SCRAM-SHA-512")
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        if self.kind == BrokerKind::Kafka {
            let _ = Command::new(launcher())
                .arg("stop")
                .arg(self.dir.path().join("kafka"))
                .status();
        }
        drop(self.daemon.take());
    }
}

/// Runs `pubsub ARGS LOGIN` with `stdin` and no `PUBSUB_*` from the test's
/// own environment; killed (and failed) after 120 s.
pub fn pubsub(args: &[&str], login: &[String], stdin: &str) -> Output {
    pubsub_env(args, login, &[], stdin)
}

fn pubsub_env(args: &[&str], login: &[String], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .args(login)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("PUBSUB_") {
            command.env_remove(k);
        }
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    wait(child, args)
}

fn wait(child: Child, args: &[&str]) -> Output {
    wait_output(child, &format!("pubsub {args:?}"), Duration::from_secs(120))
}

/// Runs a command that must succeed; its stdout.
pub fn ok(args: &[&str], login: &[String], stdin: &str) -> String {
    succeeded(args, pubsub(args, login, stdin))
}

fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "pubsub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with one `error:` line and exit code 1;
/// that line.
pub fn fails(args: &[&str], login: &[String], stdin: &str) -> String {
    failed(args, pubsub(args, login, stdin))
}

fn failed(args: &[&str], out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "pubsub {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    stderr
}

/// Kafka answers CreateAcls and AlterUserScramCredentials once its
/// controller has them; its broker applies them a moment later. So the
/// first command that checks a change runs again (for up to a minute)
/// while it still meets the state before the change: until it succeeds.
pub fn eventually_ok(args: &[&str], login: &[String], stdin: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = pubsub(args, login, stdin);
        if out.status.success() || Instant::now() > deadline {
            return succeeded(args, out);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// [`eventually_ok`]'s opposite: until it fails (then checked as [`fails`]
/// checks).
pub fn eventually_fails(args: &[&str], login: &[String], stdin: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = pubsub(args, login, stdin);
        if !out.status.success() || Instant::now() > deadline {
            return failed(args, out);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The rows of a printed table, split on whitespace, without the heading.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// A CA of its own (not the broker's): its certificate's path.
fn foreign_ca(dir: &Path) -> PathBuf {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=another CA",
        ])
        .arg("-keyout")
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(dir.join("other-ca.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {out:?}");
    dir.join("other-ca.pem")
}

/// Topics, produce, consume (alone and in a group) over SASL_SSL with each
/// mechanism; the same login from a Kafka properties file and from
/// `PUBSUB_*` variables; the bench over SASL_SSL.
#[test]
fn sasl_ssl_clients_with_each_mechanism() {
    each_broker(sasl_ssl_clients_with_each_mechanism_on);
}

fn sasl_ssl_clients_with_each_mechanism_on(b: &SecureBroker) {
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let login = b.login("admin", ADMIN_PASSWORD, mechanism);
        let topic = format!("t-{}", mechanism.to_lowercase());
        ok(
            &["topic", "create", &topic, "--partitions", "2"],
            &login,
            "",
        );
        ok(&["produce", &topic], &login, "one\ntwo\nthree\n");
        let mut got: Vec<String> = ok(
            &["consume", &topic, "--from-beginning", "--count", "3"],
            &login,
            "",
        )
        .lines()
        .map(str::to_string)
        .collect();
        got.sort();
        assert_eq!(got, ["one", "three", "two"], "{mechanism}");
        let group = format!("g-{}", mechanism.to_lowercase());
        let read = ok(
            &[
                "consume",
                &topic,
                "--group",
                &group,
                "--from-beginning",
                "--count",
                "3",
            ],
            &login,
            "",
        );
        assert_eq!(read.lines().count(), 3, "{mechanism}: {read}");
        let groups = ok(&["group", "list"], &login, "");
        assert!(
            rows(&groups).iter().any(|r| r.first() == Some(&group)),
            "{mechanism}: {groups}"
        );
    }

    // A Kafka client properties file (the Java client's keys), relative
    // paths from the file's directory.
    std::fs::copy(&b.ca, b.dir.path().join("ca.pem")).unwrap();
    let properties = b.file(
        "admin.properties",
        &format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  username=\"admin\" password=\"{ADMIN_PASSWORD}\";\nssl.truststore.type=PEM\nssl.truststore.location=ca.pem\n"
        ),
    );
    let by_file = [
        "--bootstrap".to_string(),
        b.bootstrap.clone(),
        "--command-config".into(),
        properties.display().to_string(),
    ];
    let topics = ok(&["topic", "list"], &by_file, "");
    assert!(topics.contains("t-scram-sha-512"), "{topics}");

    // The same login from the environment.
    let ca = b.ca.display().to_string();
    let out = pubsub_env(
        &["topic", "list", "--bootstrap", &b.bootstrap],
        &[],
        &[
            ("PUBSUB_SECURITY_PROTOCOL", "SASL_SSL"),
            ("PUBSUB_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("PUBSUB_USER", "admin"),
            ("PUBSUB_PASSWORD", ADMIN_PASSWORD),
            ("PUBSUB_CLIENT_TLS_CA", &ca),
            // serve's names: not the client's, so without effect here.
            ("PUBSUB_TLS_CERT", "/nonexistent/server.pem"),
            ("PUBSUB_TLS_KEY", "/nonexistent/server.key"),
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("t-plain"));

    // The bench connects alike.
    let admin = b.admin();
    let produced = ok(
        &[
            "bench",
            "produce",
            "--topic",
            "bench-tls",
            "--messages",
            "2000",
            "--size",
            "100",
            "--json",
        ],
        &admin,
        "",
    );
    let produced: serde_json::Value = serde_json::from_str(&produced).unwrap();
    assert_eq!(produced["messages"], 2000, "{produced}");
    let consumed = ok(
        &["bench", "consume", "--topic", "bench-tls", "--json"],
        &admin,
        "",
    );
    let consumed: serde_json::Value = serde_json::from_str(&consumed).unwrap();
    assert_eq!(consumed["messages"], 2000, "{consumed}");
}

/// A wrong password, an unknown user, a CA that did not sign the broker's
/// certificate and a SASL login without a password each fail with one
/// clear line and exit code 1; no password is ever printed.
#[test]
fn refused_logins_say_why_in_one_line() {
    each_broker(refused_logins_say_why_in_one_line_on);
}

fn refused_logins_say_why_in_one_line_on(b: &SecureBroker) {
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let wrong = fails(
            &["topic", "list"],
            &b.login("admin", "not-the-password", mechanism),
            "",
        );
        assert!(
            wrong.contains("SASL_AUTHENTICATION_FAILED")
                && wrong.contains("admin")
                && wrong.contains(mechanism),
            "{wrong}"
        );
        assert!(!wrong.contains("not-the-password"), "{wrong}");
        let unknown = fails(
            &["topic", "list"],
            &b.login("nobody", "whatever-pw", mechanism),
            "",
        );
        assert!(
            unknown.contains("SASL_AUTHENTICATION_FAILED") && unknown.contains("nobody"),
            "{unknown}"
        );
        assert!(!unknown.contains("whatever-pw"), "{unknown}");
    }

    let mut login = b.admin();
    let ca = login.iter().position(|a| a == "--tls-ca").unwrap() + 1;
    login[ca] = foreign_ca(b.dir.path()).display().to_string();
    let untrusted = fails(&["topic", "list"], &login, "");
    assert!(
        untrusted.contains("TLS handshake") && untrusted.contains(&b.bootstrap),
        "{untrusted}"
    );
    assert!(
        untrusted.contains("UnknownIssuer") || untrusted.contains("invalid peer certificate"),
        "{untrusted}"
    );

    let no_password = fails(
        &[
            "topic",
            "list",
            "--bootstrap",
            &b.bootstrap,
            "--security-protocol",
            "SASL_SSL",
            "--user",
            "admin",
        ],
        &[],
        "",
    );
    assert!(no_password.contains("password"), "{no_password}");
}

/// `pubsub user` creates a user (salted here, both mechanisms) that then
/// logs in; ACLs made with `pubsub acl` decide what it may do (nothing
/// without one, Write once allowed, not once denied, prefixed patterns);
/// `acl delete` and `user delete` undo both; a user that is not a super
/// user cannot manage either.
#[test]
fn users_and_acls_made_with_the_cli_take_effect() {
    each_broker(users_and_acls_made_with_the_cli_take_effect_on);
}

fn users_and_acls_made_with_the_cli_take_effect_on(b: &SecureBroker) {
    let admin = b.admin();
    let pw = b.file("alice.new", "alice-pw-1\n");
    ok(
        &[
            "user",
            "create",
            "alice",
            "--new-password-file",
            &pw.display().to_string(),
        ],
        &admin,
        "",
    );
    let users = ok(&["user", "list"], &admin, "");
    let alice: Vec<Vec<String>> = rows(&users)
        .into_iter()
        .filter(|r| r[0] == "alice")
        .collect();
    assert_eq!(
        alice,
        [
            ["alice", "SCRAM-SHA-256", "8192"],
            ["alice", "SCRAM-SHA-512", "8192"]
        ],
        "{users}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["user", "list", "--json"], &admin, "")).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|u| u["user"] == "alice" && u["mechanisms"].as_array().unwrap().len() == 2),
        "{json}"
    );
    // The password from stdin, as a second way in.
    ok(
        &[
            "user",
            "create",
            "bob",
            "--new-password-file",
            "-",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
        &admin,
        "bob-pw\n",
    );

    let alice512 = b.login("alice", "alice-pw-1", "SCRAM-SHA-512");
    let alice256 = b.login("alice", "alice-pw-1", "SCRAM-SHA-256");
    eventually_ok(&["topic", "list"], &alice256, "");
    eventually_ok(
        &["topic", "list"],
        &b.login("bob", "bob-pw", "SCRAM-SHA-256"),
        "",
    );
    let bob512 = fails(
        &["topic", "list"],
        &b.login("bob", "bob-pw", "SCRAM-SHA-512"),
        "",
    );
    assert!(bob512.contains("SASL_AUTHENTICATION_FAILED"), "{bob512}");

    // Managing users and ACLs is the super user's.
    let denied = fails(&["user", "list"], &alice512, "");
    assert!(denied.contains("CLUSTER_AUTHORIZATION_FAILED"), "{denied}");
    let denied = fails(&["acl", "list"], &alice512, "");
    assert!(denied.contains("CLUSTER_AUTHORIZATION_FAILED"), "{denied}");

    ok(&["topic", "create", "orders"], &admin, "");
    let refused = fails(&["produce", "orders"], &alice512, "a\n");
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");

    ok(
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "write",
            "--operation",
            "describe",
            "--topic",
            "orders",
        ],
        &admin,
        "",
    );
    let listed = ok(&["acl", "list", "--topic", "orders"], &admin, "");
    assert_eq!(
        rows(&listed),
        [
            [
                "TOPIC",
                "orders",
                "LITERAL",
                "User:alice",
                "*",
                "WRITE",
                "ALLOW"
            ],
            [
                "TOPIC",
                "orders",
                "LITERAL",
                "User:alice",
                "*",
                "DESCRIBE",
                "ALLOW"
            ]
        ],
        "{listed}"
    );
    kafka_acls_print_the_same_words(b, &listed);
    eventually_ok(&["produce", "orders"], &alice512, "from-alice\n");
    let read = ok(
        &["consume", "orders", "--from-beginning", "--count", "1"],
        &admin,
        "",
    );
    assert_eq!(read, "from-alice\n");

    // Alice may write but not read, until a prefixed ACL allows it.
    let refused = fails(
        &["consume", "orders", "--from-beginning", "--count", "1"],
        &alice512,
        "",
    );
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");
    ok(
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "read",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
        ],
        &admin,
        "",
    );
    let read = eventually_ok(
        &["consume", "orders", "--from-beginning", "--count", "1"],
        &alice512,
        "",
    );
    assert_eq!(read, "from-alice\n");
    let matching = ok(
        &[
            "acl",
            "list",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "match",
            "--json",
        ],
        &admin,
        "",
    );
    let matching: serde_json::Value = serde_json::from_str(&matching).unwrap();
    assert_eq!(matching.as_array().unwrap().len(), 3, "{matching}");
    assert!(
        matching
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["pattern_type"] == "PREFIXED" && a["operation"] == "READ"),
        "{matching}"
    );

    // Deny wins over allow.
    ok(
        &[
            "acl",
            "create",
            "--deny-principal",
            "User:alice",
            "--operation",
            "write",
            "--topic",
            "orders",
        ],
        &admin,
        "",
    );
    let refused = eventually_fails(&["produce", "orders"], &alice512, "b\n");
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");

    // Deleting the literal ACLs of orders leaves the prefixed one.
    let deleted = ok(&["acl", "delete", "--topic", "orders"], &admin, "");
    assert_eq!(rows(&deleted).len(), 3, "{deleted}");
    let left = ok(&["acl", "list"], &admin, "");
    assert_eq!(
        rows(&left),
        [[
            "TOPIC",
            "ord",
            "PREFIXED",
            "User:alice",
            "*",
            "READ",
            "ALLOW"
        ]],
        "{left}"
    );
    let refused = eventually_fails(&["produce", "orders"], &alice512, "c\n");
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");

    // A deleted user cannot log in.
    ok(&["user", "delete", "alice"], &admin, "");
    let gone = eventually_fails(&["topic", "list"], &alice256, "");
    assert!(gone.contains("SASL_AUTHENTICATION_FAILED"), "{gone}");
    let users = ok(&["user", "list"], &admin, "");
    assert!(!rows(&users).iter().any(|r| r[0] == "alice"), "{users}");
}

/// Mutual TLS: on a listener that requires client certificates, the client
/// certificate (`--tls-cert`, `--tls-key`) gets in and is the principal
/// (`User:CN=pubsub-client`) that ACLs name; without it the broker refuses
/// the connection.
#[test]
fn mutual_tls_identifies_the_client_by_its_certificate() {
    each_broker(mutual_tls_identifies_the_client_by_its_certificate_on);
}

fn mutual_tls_identifies_the_client_by_its_certificate_on(b: &SecureBroker) {
    let Some(ssl) = b.ssl_bootstrap.clone() else {
        eprintln!(
            "skipped: {:?} has no client-certificate listener here",
            b.kind
        );
        return;
    };
    let tls = b.ca.parent().unwrap();
    let path = |f: &str| tls.join(f).display().to_string();
    let with_cert = [
        "--bootstrap".to_string(),
        ssl.clone(),
        "--tls-ca".into(),
        path("ca.pem"),
        "--tls-cert".into(),
        path("client.pem"),
        "--tls-key".into(),
        path("client.key"),
    ];
    ok(&["topic", "list"], &with_cert, "");
    // The same certificate from the client's variables.
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let out = pubsub_env(
        &["topic", "list", "--bootstrap", &ssl, "--tls-ca", &ca],
        &[],
        &[
            ("PUBSUB_CLIENT_TLS_CERT", &cert),
            ("PUBSUB_CLIENT_TLS_KEY", &key),
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let refused = fails(&["topic", "create", "mtls"], &with_cert, "");
    assert!(refused.contains("TOPIC_AUTHORIZATION_FAILED"), "{refused}");
    ok(
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:CN=pubsub-client",
            "--operation",
            "create",
            "--cluster",
        ],
        &b.admin(),
        "",
    );
    eventually_ok(&["topic", "create", "mtls"], &with_cert, "");

    let without = [
        "--bootstrap".to_string(),
        ssl,
        "--tls-ca".into(),
        path("ca.pem"),
    ];
    let refused = fails(&["topic", "list"], &without, "");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}

/// Runs a client process with `stdin`: (success, stdout, stderr); killed
/// (and failed) after 300 s, so a hung client fails the test instead of
/// hanging it.
fn run_client(command: Command, stdin: &str) -> (bool, String, String) {
    output_within(command, stdin, Duration::from_secs(300))
}

/// One attempt of `compat/sasl/clients.py`.
#[derive(Debug)]
struct Attempt {
    client: String,
    mechanism: String,
    ok: bool,
    error: String,
}

/// Runs `compat/sasl/clients.py` (confluent-kafka and kafka-python with
/// each of `mechanisms`, kcat with PLAIN among them) as `user` over
/// SASL_SSL (`tls`) or SASL_PLAINTEXT, trusting `ca` (default: the
/// broker's CA); `refused`: a refusal is expected, so each client gives up
/// at its first error. Every attempt.
fn python_clients(
    b: &SecureBroker,
    tls: bool,
    (user, password): (&str, &str),
    mechanisms: &[&str],
    refused: bool,
    ca: Option<&Path>,
) -> Vec<Attempt> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compat/sasl/clients.py");
    let mut c = Command::new("python3");
    c.arg(script).args(["--user", user, "--password", password]);
    for m in mechanisms {
        c.args(["--mechanism", m]);
    }
    if refused {
        c.arg("--refused");
    }
    if tls {
        c.args(["--bootstrap", &b.bootstrap, "--ca"])
            .arg(ca.unwrap_or(&b.ca));
    } else {
        c.args(["--bootstrap", b.sasl_plaintext.as_deref().unwrap()]);
    }
    let (ok, out, err) = run_client(c, "");
    assert!(ok, "clients.py: {out}\n{err}");
    let attempts: Vec<Attempt> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Attempt {
                client: v["client"].as_str().unwrap().into(),
                mechanism: v["mechanism"].as_str().unwrap().into(),
                ok: v["ok"].as_bool().unwrap(),
                error: v["error"].as_str().unwrap_or_default().into(),
            }
        })
        .collect();
    let asked: Vec<&str> = if mechanisms.is_empty() {
        vec!["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
    } else {
        mechanisms.to_vec()
    };
    for client in ["confluent", "kafka-python"] {
        let ran: Vec<&str> = attempts
            .iter()
            .filter(|a| a.client == client)
            .map(|a| a.mechanism.as_str())
            .collect();
        assert_eq!(ran, asked, "{client}: {out}");
    }
    let kcat: Vec<&str> = attempts
        .iter()
        .filter(|a| a.client == "kcat")
        .map(|a| a.mechanism.as_str())
        .collect();
    let plain: &[&str] = if asked.contains(&"PLAIN") {
        &["PLAIN"]
    } else {
        &[]
    };
    assert_eq!(kcat, plain, "kcat: {out}");
    attempts
}

/// An error, lower-cased without `_` and spaces, names `what` (so
/// `TOPIC_AUTHORIZATION_FAILED`, `TopicAuthorizationFailedError` and
/// "Topic authorization failed" all name `topicauthorizationfailed`).
fn names(error: &str, what: &str) -> bool {
    error.to_lowercase().replace(['_', ' '], "").contains(what)
}

/// Each client of `attempts` was refused a login: confluent-kafka says
/// SASL authentication failed; kafka-python 3.x retries a refused bootstrap
/// until its deadline and then says "Unable to bootstrap", with the first
/// and last failures it logged (the broker's SASL_AUTHENTICATION_FAILED
/// answer, or a closed socket where it read that answer and the close at
/// once and dropped the answer); kcat gives up with every broker down.
fn assert_login_refused(attempts: &[Attempt], what: &str) {
    for a in attempts {
        assert!(!a.ok, "{what}: {a:?}");
        let why = match a.client.as_str() {
            "confluent" => names(&a.error, "saslauthenticationerror"),
            "kafka-python" => {
                a.error.contains("Unable to bootstrap")
                    && (names(&a.error, "saslauthenticationfailed")
                        || a.error.contains("socket disconnected"))
            }
            _ => a.error.contains("brokers are down"),
        };
        assert!(why, "{what}: {a:?}");
    }
}

/// Each client of `attempts` failed the TLS handshake because it does not
/// accept the broker's certificate (`reason`, lower-case, as OpenSSL
/// words it; kcat says only that every broker is down).
fn assert_certificate_refused(attempts: &[Attempt], reason: &str, what: &str) {
    for a in attempts {
        assert!(!a.ok, "{what}: {a:?}");
        let error = a.error.to_lowercase();
        let why = match a.client.as_str() {
            "confluent" => error.contains("certificate verify failed"),
            "kafka-python" => error.contains("unable to bootstrap") && error.contains(reason),
            _ => error.contains("brokers are down"),
        };
        assert!(why, "{what}: {a:?}");
    }
}

/// How many `SASL authentication failed` lines of `log` name `user` and
/// `mechanism`.
fn auth_failures(log: &str, user: &str, mechanism: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("SASL authentication failed")
                && l.contains(&format!("user=\"{user}\""))
                && l.contains(&format!("mechanism=\"{mechanism}\""))
        })
        .count()
}

/// kafkajs produces one record and reads it back in a group: prints the
/// value, or `ERROR name: message` and exits 1. An empty mechanism: no
/// SASL; an empty CA: no TLS.
const KAFKAJS: &str = r#"
const { Kafka, logLevel } = require("kafkajs");
const fs = require("fs");
const [broker, ca, mechanism, username, password, topic] = process.argv.slice(1);
const kafka = new Kafka({
  clientId: "e2e", brokers: [broker], logLevel: logLevel.NOTHING,
  ssl: ca ? { ca: [fs.readFileSync(ca)] } : false,
  sasl: mechanism ? { mechanism, username, password } : undefined,
  connectionTimeout: 10000, retry: { retries: 2, initialRetryTime: 100 },
});
(async () => {
  const p = kafka.producer();
  await p.connect();
  await p.send({ topic, messages: [{ value: "js " + mechanism }] });
  await p.disconnect();
  const c = kafka.consumer({ groupId: "sasl-js-" + topic });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  const got = await new Promise((resolve) =>
    c.run({ eachMessage: async ({ message }) => resolve(message.value.toString()) }));
  await c.disconnect();
  console.log(got);
})().catch((e) => { console.log("ERROR " + e.name + ": " + e.message); process.exit(1); });
"#;

/// kafkajs from npm, installed once under the target directory (kept
/// between runs): its directory.
pub fn kafkajs_dir() -> PathBuf {
    let js = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("security-kafkajs");
    if !js.join("node_modules/kafkajs/package.json").exists() {
        std::fs::create_dir_all(&js).unwrap();
        let mut npm = Command::new("npm");
        npm.args([
            "install",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "kafkajs@2",
        ])
        .current_dir(&js);
        let (ok, out, err) = run_client(npm, "");
        assert!(ok, "npm install kafkajs: {out}\n{err}");
    }
    js
}

/// kafkajs as `user` with `mechanism` (kafkajs's lower-case name; empty:
/// no SASL) over SASL_SSL trusting `ca` (`tls`; default the broker's CA)
/// or SASL_PLAINTEXT: (success, what it printed).
fn kafkajs(
    b: &SecureBroker,
    tls: bool,
    (mechanism, user, password): (&str, &str, &str),
    topic: &str,
    ca: Option<&Path>,
) -> (bool, String) {
    let js = kafkajs_dir();
    let (addr, ca) = if tls {
        (
            b.bootstrap.clone(),
            ca.unwrap_or(&b.ca).display().to_string(),
        )
    } else {
        (b.sasl_plaintext.clone().unwrap(), String::new())
    };
    let mut node = Command::new("node");
    node.arg("-e")
        .arg(KAFKAJS)
        .args([&addr, &ca, mechanism, user, password, topic])
        .current_dir(&js);
    let (ok, out, err) = run_client(node, "");
    (ok, format!("{}{err}", out.trim()))
}

/// Kafka's console producer and consumer (the Java client) as `user` over
/// SASL_SSL with SCRAM-SHA-512 (`tls`) or SASL_PLAINTEXT with PLAIN, the
/// settings in a `--producer.config`/`--consumer.config` file: two records
/// out and back. Left out, with a message, without Java and Maven (unless
/// `COMPAT_REQUIRE_KAFKA`).
fn java_round_trip(b: &SecureBroker, tls: bool, user: &str, password: &str, topic: &str) {
    if !crate::reference::java_and_maven("the Java client does not run over SASL") {
        return;
    }
    let props = java_properties(b, tls, user, password, topic);
    let (addr, props) = (java_addr(b, tls), props.display().to_string());
    let (ok, out, err) = java_tool(
        b,
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--bootstrap-server",
            &addr,
            "--topic",
            topic,
            "--producer.config",
            &props,
        ],
        "java-0\njava-1\n",
    );
    assert!(ok, "Java console producer as {user}:\n{out}\n{err}");
    let (ok, out, err) = java_tool(
        b,
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            &addr,
            "--topic",
            topic,
            "--consumer.config",
            &props,
            "--group",
            &format!("sasl-java-{topic}"),
            "--from-beginning",
            "--max-messages",
            "2",
        ],
        "",
    );
    assert!(ok, "Java console consumer as {user}:\n{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["java-0", "java-1"],
        "{err}"
    );
}

/// Kafka's own `kafka-acls.sh` (AclCommand) lists the ACLs of `orders` on
/// the same broker with the words `pubsub acl list` printed in `listed`:
/// the resource type, pattern type, operation and permission of each row
/// are Kafka's names.
fn kafka_acls_print_the_same_words(b: &SecureBroker, listed: &str) {
    if !crate::reference::java_and_maven("kafka-acls does not run") {
        return;
    }
    let props = java_properties(b, true, "admin", ADMIN_PASSWORD, "kafka-acls");
    let (ok, out, err) = java_tool(
        b,
        "org.apache.kafka.tools.AclCommand",
        &[
            "--bootstrap-server",
            &b.bootstrap,
            "--command-config",
            &props.display().to_string(),
            "--list",
            "--topic",
            "orders",
        ],
        "",
    );
    assert!(ok, "kafka-acls --list:\n{out}\n{err}");
    let rows = rows(listed);
    assert!(!rows.is_empty(), "{listed}");
    for row in rows {
        let (resource, name, pattern, principal, host, operation, permission) = (
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6],
        );
        let pattern_line = format!("resourceType={resource}, name={name}, patternType={pattern})");
        let entry = format!(
            "(principal={principal}, host={host}, operation={operation}, permissionType={permission})"
        );
        assert!(out.contains(&pattern_line), "{pattern_line} in:\n{out}");
        assert!(out.contains(&entry), "{entry} in:\n{out}");
    }
}

/// Kafka's `kafka-topics --list` (an AdminClient) as `user`, refused: it
/// says the authentication failed (SCRAM: a SaslAuthenticationException on
/// stderr; PLAIN: "Authentication failed: Invalid username or password" on
/// stdout). Left out without Java.
fn java_refused(b: &SecureBroker, tls: bool, user: &str, password: &str) {
    if !crate::reference::java_and_maven("the Java client does not run over SASL") {
        return;
    }
    let props = java_properties(b, tls, user, password, "refused");
    let (done, out, err) = java_tool(
        b,
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            &java_addr(b, tls),
            "--command-config",
            &props.display().to_string(),
            "--list",
        ],
        "",
    );
    assert!(!done, "kafka-topics as {user}, tls={tls}: {out}");
    assert!(
        err.contains("SaslAuthenticationException") || out.contains("Authentication failed"),
        "{out}\n{err}"
    );
}

fn java_addr(b: &SecureBroker, tls: bool) -> String {
    if tls {
        b.bootstrap.clone()
    } else {
        b.sasl_plaintext.clone().unwrap()
    }
}

/// A Java client properties file for `user`.
fn java_properties(b: &SecureBroker, tls: bool, user: &str, password: &str, name: &str) -> PathBuf {
    let text = if tls {
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            b.ca.display()
        )
    } else {
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{user}\" password=\"{password}\";\n"
        )
    };
    b.file(&format!("{name}-{user}-{tls}.properties"), &text)
}

/// Runs one of Kafka's tools (a class of the Java client's distribution).
fn java_tool(b: &SecureBroker, class: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut c = Command::new(launcher());
    c.arg("run")
        .arg(b.dir.path().join("java-tools"))
        .arg(class)
        .args(args);
    run_client(c, stdin)
}

/// kcat listing metadata with `settings`: (success, stderr).
fn kcat_list(addr: &str, settings: &[String]) -> (bool, String) {
    let mut c = Command::new("kcat");
    c.args(["-b", addr, "-L", "-m", "5"]);
    for s in settings {
        c.arg("-X").arg(s);
    }
    let (ok, _, err) = run_client(c, "");
    (ok, err)
}

/// kcat's settings for a PLAIN login over SASL_SSL trusting `ca`.
fn kcat_sasl_ssl(user: &str, password: &str, ca: &Path) -> Vec<String> {
    vec![
        "security.protocol=SASL_SSL".into(),
        "sasl.mechanisms=PLAIN".into(),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
        format!("ssl.ca.location={}", ca.display()),
    ]
}

impl SecureBroker {
    /// Puts the certificate in `cert` in front of new connections (copied
    /// over the configured `[tls] cert`, then SIGHUP) and waits for the
    /// broker to say it reloaded.
    fn serve_certificate(&self, cert: &Path) {
        let daemon = self.daemon.as_ref().expect("a pubsub broker");
        let reloads = |log: &str| log.matches("reloaded the TLS certificate").count();
        let before = reloads(&self.log());
        std::fs::copy(cert, self.dir.path().join("certs/tls/server.pem")).unwrap();
        daemon.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(60);
        while reloads(&self.log()) == before {
            assert!(Instant::now() < deadline, "no reload: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A certificate for the broker's key, signed by the broker's CA and
    /// already expired (valid until yesterday): its path.
    fn expired_certificate(&self) -> PathBuf {
        let tls = self.dir.path().join("certs/tls");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&tls)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        std::fs::write(
            tls.join("expired.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "expired.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "expired.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "-1",
            "-extfile",
            "expired.ext",
            "-out",
            "expired.pem",
        ]);
        tls.join("expired.pem")
    }
}

/// The issue's broker (`pubsub serve` with a SASL_SSL and a SASL_PLAINTEXT
/// listener, the authorizer on, `admin` the bootstrap super user) and every
/// kind of client (confluent-kafka, kafka-python, kcat, kafkajs, the Java
/// client): the right login gets in with each mechanism over both
/// protocols; a wrong password, an unknown user, a client without SASL, a
/// client that does not trust the certificate and one facing an expired
/// certificate get nothing, and the log says why and whose login failed; a
/// user without ACLs is refused TOPIC_AUTHORIZATION_FAILED until `pubsub
/// acl create` allows it; users and ACLs survive a restart; no password is
/// found under the data directory, nor on the command line of a client
/// that read its password from a file.
#[test]
fn every_client_kind_against_the_issue_config() {
    let without = "the client matrix does not run";
    if !openssl_found(without)
        || !crate::reference::tools_found(
            &[("kcat", "-V"), ("node", "--version"), ("npm", "--version")],
            without,
        )
        || !crate::reference::python_modules_found(&["confluent_kafka", "kafka"], without)
    {
        return;
    }
    let start = Instant::now();
    let phase = |name: &str| eprintln!("{:>6.1} s: {name}", start.elapsed().as_secs_f64());
    let mut b = SecureBroker::start_pubsub(tempfile::tempdir().unwrap());
    let admin = b.admin();
    let admin_login = ("admin", ADMIN_PASSWORD);

    // The super user, over both protocols, with every client library and
    // each mechanism.
    for tls in [true, false] {
        for a in python_clients(&b, tls, admin_login, &[], false, None) {
            assert!(a.ok, "admin, tls={tls}: {a:?}");
        }
        for mechanism in ["scram-sha-512", "scram-sha-256", "plain"] {
            let topic = format!("sasl-admin-js-{mechanism}-{tls}");
            let login = (mechanism, "admin", ADMIN_PASSWORD);
            let (done, out) = kafkajs(&b, tls, login, &topic, None);
            assert!(done, "kafkajs admin {mechanism} tls={tls}: {out}");
            assert_eq!(out, format!("js {mechanism}"));
        }
        java_round_trip(
            &b,
            tls,
            "admin",
            ADMIN_PASSWORD,
            &format!("java-admin-{tls}"),
        );
    }

    phase("wrong passwords and unknown users");
    // Wrong passwords and unknown users: nothing, with any client; the log
    // names the user and the mechanism of each failure, never a password.
    let refusals = [
        (true, "admin", "not-the-password", "SCRAM-SHA-512"),
        (false, "admin", "not-the-password", "SCRAM-SHA-256"),
        (true, "nobody", "whatever-pw", "SCRAM-SHA-256"),
        (false, "nobody", "whatever-pw", "SCRAM-SHA-512"),
    ];
    for (tls, user, password, scram) in refusals {
        let what = format!("{user} with {scram} and PLAIN, tls={tls}");
        let before = (
            auth_failures(&b.log(), user, scram),
            auth_failures(&b.log(), user, "PLAIN"),
        );
        let attempts = python_clients(&b, tls, (user, password), &[scram, "PLAIN"], true, None);
        assert_login_refused(&attempts, &what);
        let login = (scram.to_lowercase(), user, password);
        let (done, out) = kafkajs(&b, tls, (&login.0, user, password), "sasl-nope", None);
        assert!(!done, "kafkajs {what}: {out}");
        assert!(out.contains("KafkaJSSASLAuthenticationError"), "{out}");
        let log = b.log();
        // confluent-kafka, kafka-python (at least once) and kafkajs with
        // SCRAM; confluent-kafka, kafka-python and kcat with PLAIN.
        assert!(
            auth_failures(&log, user, scram) >= before.0 + 3
                && auth_failures(&log, user, "PLAIN") >= before.1 + 3,
            "{what}: {log}"
        );
    }
    java_refused(&b, true, "admin", "not-the-password");
    java_refused(&b, false, "nobody", "whatever-pw");
    let log = b.log();
    assert!(
        !log.contains("not-the-password") && !log.contains("whatever-pw"),
        "{log}"
    );

    phase("clients without SASL");
    // A client without SASL, on either SASL listener: nothing.
    let ca = format!("ssl.ca.location={}", b.ca.display());
    let (done, _) = kcat_list(b.sasl_plaintext.as_deref().unwrap(), &[]);
    assert!(!done, "kcat without SASL on SASL_PLAINTEXT");
    let (done, _) = kcat_list(&b.bootstrap, &["security.protocol=SSL".into(), ca]);
    assert!(!done, "kcat without SASL on SASL_SSL");
    let (done, out) = kafkajs(&b, false, ("", "", ""), "sasl-nope", None);
    assert!(!done, "kafkajs without SASL: {out}");
    let log = b.log();
    assert!(
        log.contains("unexpected Metadata request during SASL handshake"),
        "{log}"
    );

    phase("a foreign CA");
    // A client that does not trust the broker's certificate: nothing.
    let other = foreign_ca(b.dir.path());
    let (done, err) = kcat_list(
        &b.bootstrap,
        &kcat_sasl_ssl("admin", ADMIN_PASSWORD, &other),
    );
    assert!(!done, "kcat not trusting the certificate");
    assert!(err.contains("certificate verify failed"), "{err}");
    let attempts = python_clients(&b, true, admin_login, &["PLAIN"], true, Some(&other));
    assert_certificate_refused(&attempts, "certificate_verify_failed", "foreign CA");
    let login = ("plain", "admin", ADMIN_PASSWORD);
    let (done, out) = kafkajs(&b, true, login, "sasl-nope", Some(&other));
    assert!(!done, "kafkajs not trusting the certificate: {out}");

    phase("an expired certificate");
    // An expired certificate (put in front of new connections with SIGHUP):
    // nothing, for any client; then the valid one again.
    let valid = b.dir.path().join("valid-server.pem");
    std::fs::copy(b.dir.path().join("certs/tls/server.pem"), &valid).unwrap();
    b.serve_certificate(&b.expired_certificate());
    let (done, err) = kcat_list(&b.bootstrap, &kcat_sasl_ssl("admin", ADMIN_PASSWORD, &b.ca));
    assert!(!done, "kcat facing an expired certificate");
    assert!(err.contains("certificate verify failed"), "{err}");
    let attempts = python_clients(&b, true, admin_login, &["PLAIN"], true, None);
    assert_certificate_refused(&attempts, "certificate has expired", "expired");
    let (done, out) = kafkajs(&b, true, login, "sasl-nope", None);
    assert!(!done, "kafkajs facing an expired certificate: {out}");
    assert!(out.contains("certificate has expired"), "{out}");
    let expired = fails(&["topic", "list"], &admin, "");
    assert!(expired.contains("Expired"), "{expired}");
    b.serve_certificate(&valid);
    let (done, err) = kcat_list(&b.bootstrap, &kcat_sasl_ssl("admin", ADMIN_PASSWORD, &b.ca));
    assert!(done, "{err}");

    phase("a user without ACLs");
    // A user without ACLs: authenticated, refused every topic.
    let pw = b.file("alice.new", "alice-pw-1\n");
    ok(
        &[
            "user",
            "create",
            "alice",
            "--new-password-file",
            &pw.display().to_string(),
        ],
        &admin,
        "",
    );
    let alice = ("alice", "alice-pw-1");
    for tls in [true, false] {
        for a in python_clients(&b, tls, alice, &[], false, None) {
            assert!(!a.ok, "alice without ACLs, tls={tls}: {a:?}");
            assert!(
                names(&a.error, "topicauthorizationfailed"),
                "alice, tls={tls}: {a:?}"
            );
        }
        let login = ("scram-sha-256", "alice", "alice-pw-1");
        let (done, out) = kafkajs(&b, tls, login, "sasl-a", None);
        assert!(!done, "kafkajs alice without ACLs: {out}");
        assert!(
            names(&out, "topicauthorizationfailed") || names(&out, "notauthorized"),
            "{out}"
        );
    }

    // ACLs for topics and groups named `sasl-...`, and the topic `java-alice`.
    for args in [
        &["--topic", "sasl-", "--resource-pattern-type", "prefixed"][..],
        &["--group", "sasl-", "--resource-pattern-type", "prefixed"][..],
        &["--topic", "java-alice"][..],
    ] {
        let mut create = vec!["acl", "create", "--allow-principal", "User:alice"];
        for op in ["read", "write", "describe", "create"] {
            if args[0] == "--group" && op != "read" {
                continue;
            }
            create.extend(["--operation", op]);
        }
        create.extend(args);
        ok(&create, &admin, "");
    }
    ok(&["topic", "create", "java-alice"], &admin, "");
    let alice_can = |b: &SecureBroker, mechanisms: &[&str]| {
        for tls in [true, false] {
            for a in python_clients(b, tls, alice, &[], false, None) {
                assert!(a.ok, "alice with ACLs, tls={tls}: {a:?}");
            }
            for mechanism in mechanisms {
                let topic = format!(
                    "sasl-alice-js-{mechanism}-{tls}-{}",
                    b.bootstrap.replace([':', '.'], "-")
                );
                let login = (*mechanism, "alice", "alice-pw-1");
                let (done, out) = kafkajs(b, tls, login, &topic, None);
                assert!(done, "kafkajs alice {mechanism} tls={tls}: {out}");
                assert_eq!(out, format!("js {mechanism}"));
            }
        }
    };
    alice_can(&b, &["scram-sha-512", "scram-sha-256", "plain"]);
    java_round_trip(&b, true, "alice", "alice-pw-1", "java-alice");

    phase("the password file and ps");
    // A password read from a file is not on the client's command line:
    // a consumer waiting for a record, as `ps` shows it, then given one.
    ok(&["topic", "create", "sasl-ps"], &admin, "");
    let login = b.login("alice", "alice-pw-1", "SCRAM-SHA-256");
    let mut consumer = Command::new(binary())
        .args(["consume", "sasl-ps", "--from-beginning", "--count", "1"])
        .args(&login)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cmdline = loop {
        let text = std::fs::read(format!("/proc/{}/cmdline", consumer.id())).unwrap_or_default();
        if !text.is_empty() {
            break String::from_utf8_lossy(&text).replace('\0', " ");
        }
        if consumer.try_wait().unwrap().is_some() {
            panic!("the consumer exited: {:?}", consumer.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(cmdline.contains("--password-file"), "{cmdline}");
    assert!(!cmdline.contains("alice-pw-1"), "{cmdline}");
    ok(&["produce", "sasl-ps"], &admin, "seen\n");
    let out = wait_output(
        consumer,
        "the --password-file consumer",
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "seen\n");

    phase("restart");
    // After a restart: the same users and ACLs.
    let acls = ok(&["acl", "list"], &admin, "");
    let users = ok(&["user", "list"], &admin, "");
    b.restart();
    let admin = b.admin();
    assert_eq!(ok(&["acl", "list"], &admin, ""), acls);
    assert_eq!(ok(&["user", "list"], &admin, ""), users);
    alice_can(&b, &["scram-sha-512"]);
    let attempts = python_clients(&b, true, ("alice", "not-her-password"), &[], true, None);
    assert_login_refused(&attempts, "alice after the restart");

    phase("the data directory");
    // No password under the data directory.
    for password in [ADMIN_PASSWORD, "alice-pw-1"] {
        let out = Command::new("grep")
            .args(["-r", "-a", "-F", "-l", password])
            .arg(b.data_dir())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{password} found: {out:?}");
    }
}

/// A failed SCRAM login is logged with the name the client gave (the
/// exchange fails at its second message, after the name was read), so the
/// log says whose login failed whatever the mechanism.
#[test]
fn a_failed_scram_login_names_the_user_in_the_log() {
    if !openssl_found("the SCRAM log test does not run") {
        return;
    }
    let b = SecureBroker::start_pubsub(tempfile::tempdir().unwrap());
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256"] {
        for user in ["admin", "nobody"] {
            let refused = fails(
                &["topic", "list"],
                &b.login(user, "not-the-password", mechanism),
                "",
            );
            assert!(refused.contains("SASL_AUTHENTICATION_FAILED"), "{refused}");
            let log = b.log();
            assert_eq!(auth_failures(&log, user, mechanism), 1, "{log}");
        }
    }
    assert!(!b.log().contains("not-the-password"));
}

/// A Python TLS client that tells a clean end (close_notify) from a
/// truncated one (`suppress_ragged_eofs=False`): a wrong PLAIN login on the
/// SASL_SSL listener, then what follows the answer.
const CLOSE_NOTIFY: &str = r#"
import socket, ssl, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host,
                    suppress_ragged_eofs=False)
def call(key, version, correlation, body):
    header = struct.pack(">hhih", key, version, correlation, 1) + b"t"
    s.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    size, answer = struct.unpack(">i", head)[0], b""
    while len(answer) < size:
        answer += s.recv(size - len(answer))
    return answer
call(17, 1, 1, struct.pack(">h", 5) + b"PLAIN")
token = b"\0admin\0not-the-password"
answer = call(36, 1, 2, struct.pack(">i", len(token)) + token)
code = struct.unpack(">h", answer[4:6])[0]
try:
    rest = s.recv(100)
    print("answer", code, "then", "close_notify" if rest == b"" else repr(rest))
except ssl.SSLEOFError as e:
    print("answer", code, "then truncated:", e)
"#;

/// The broker ends a TLS connection with a close_notify alert (RFC 8446
/// 6.1; Kafka's SSL transport sends one), so a client that checks sees a
/// clean end, not a truncation: here after a refused login, whose answer
/// (SASL_AUTHENTICATION_FAILED, 58) comes first.
#[test]
fn a_tls_connection_ends_with_close_notify() {
    let without = "the close_notify test does not run";
    if !openssl_found(without)
        || !crate::reference::tools_found(&[("python3", "--version")], without)
    {
        return;
    }
    let b = SecureBroker::start_pubsub(tempfile::tempdir().unwrap());
    let mut c = Command::new("python3");
    c.arg("-c").arg(CLOSE_NOTIFY).arg(&b.bootstrap).arg(&b.ca);
    let (ok, out, err) = run_client(c, "");
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.trim(), "answer 58 then close_notify", "{err}");
}
