//! Security as a Kafka client: the `pubsub` client subcommands against a
//! broker with a SASL_SSL listener (TLS from a test CA, SCRAM-SHA-256/512
//! and PLAIN logins, ACLs enforced, `admin` the super user): logins with
//! each mechanism, refusals (wrong password, unknown user, a CA that did not
//! sign the broker), `pubsub user` and `pubsub acl` and what they change.
//!
//! The broker under test is Apache Kafka (`compat/kafka` with
//! `KAFKA_SASL_SSL=1`) unless `PUBSUB_SECURITY_BROKER=pubsub`, which starts
//! `pubsub serve` with the issue's `[[listeners]]`, `[tls]` and `[auth]`
//! configuration and `PUBSUB_BOOTSTRAP_USER` instead. Without Java and
//! Maven the Kafka tests say so and pass, unless `COMPAT_REQUIRE_KAFKA=1`.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{binary, Daemon, Options};

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
    /// `PUBSUB_SECURITY_BROKER` (`kafka`, the default, or `pubsub`).
    pub fn under_test() -> BrokerKind {
        match std::env::var("PUBSUB_SECURITY_BROKER").as_deref() {
            Ok("pubsub") => BrokerKind::Pubsub,
            Ok("kafka") | Err(_) => BrokerKind::Kafka,
            Ok(other) => panic!("PUBSUB_SECURITY_BROKER={other:?}: kafka or pubsub"),
        }
    }
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
    /// The CA that signed the broker's certificate (and the client's).
    pub ca: PathBuf,
    /// Scratch files (password files, properties, the Kafka or pubsub dir).
    pub dir: tempfile::TempDir,
    daemon: Option<Daemon>,
}

impl SecureBroker {
    /// Starts the broker under test, or `None` (with a message) where Kafka
    /// is wanted but Java or Maven is missing.
    pub fn start() -> Option<SecureBroker> {
        let dir = tempfile::tempdir().unwrap();
        match BrokerKind::under_test() {
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
            BrokerKind::Pubsub => {
                let tls = dir.path().join("certs");
                let out = Command::new(launcher())
                    .arg("certs")
                    .arg(&tls)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "compat/kafka certs failed");
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                let bootstrap = format!("127.0.0.1:{port}");
                let config = dir.path().join("pubsub.toml");
                std::fs::write(
                    &config,
                    format!(
                        "[[listeners]]\nname = \"sasl\"\nlisten = \"{bootstrap}\"\nprotocol = \"SASL_SSL\"\nsasl_mechanisms = [\"SCRAM-SHA-512\", \"SCRAM-SHA-256\", \"PLAIN\"]\n\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\n[auth]\nauthorizer = true\nsuper_users = [\"User:admin\"]\nallow_if_no_acl = false\n",
                        cert = tls.join("tls/server.pem").display(),
                        key = tls.join("tls/server.key").display(),
                    ),
                )
                .unwrap();
                let daemon = Daemon::start_with(
                    &dir.path().join("data"),
                    Options {
                        args: vec!["--config".into(), config.display().to_string()],
                        env: vec![(
                            "PUBSUB_BOOTSTRAP_USER".into(),
                            format!("admin:{ADMIN_PASSWORD}"),
                        )],
                        ..Options::default()
                    },
                );
                Some(SecureBroker {
                    kind: BrokerKind::Pubsub,
                    bootstrap,
                    ssl_bootstrap: None,
                    ca: tls.join("tls/ca.pem"),
                    dir,
                    daemon: Some(daemon),
                })
            }
        }
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

fn wait(mut child: Child, args: &[&str]) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "pubsub {args:?} did not finish: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
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
    let Some(b) = SecureBroker::start() else {
        return;
    };
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
            ("PUBSUB_TLS_CA", &ca),
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
    let Some(b) = SecureBroker::start() else {
        return;
    };
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
    let Some(b) = SecureBroker::start() else {
        return;
    };
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
                "Topic",
                "orders",
                "LITERAL",
                "User:alice",
                "*",
                "Write",
                "Allow"
            ],
            [
                "Topic",
                "orders",
                "LITERAL",
                "User:alice",
                "*",
                "Describe",
                "Allow"
            ]
        ],
        "{listed}"
    );
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
            .any(|a| a["pattern_type"] == "PREFIXED" && a["operation"] == "Read"),
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
            "Topic",
            "ord",
            "PREFIXED",
            "User:alice",
            "*",
            "Read",
            "Allow"
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
    let Some(b) = SecureBroker::start() else {
        return;
    };
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
