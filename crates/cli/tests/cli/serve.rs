//! `pubsub serve` as a process: start-up line, signals, clean shutdown,
//! recovery after SIGKILL, settings from file, environment and flags.

use std::process::Command;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};

use crate::client::{s, Client};
use crate::daemon::{binary, Daemon, Options};
use crate::kafka::{fetch_all, produce_values};

fn partition_dirs(data: &std::path::Path, topic: &str) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(data)
        .expect("data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit_once('-'))
                .is_some_and(|(t, i)| t == topic && i.parse::<u32>().is_ok())
        })
        .collect();
    dirs.sort();
    dirs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_shut_down_cleanly_and_data_survives() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    for (round, sig) in [(0, libc::SIGTERM), (1, libc::SIGINT)] {
        let daemon = Daemon::start(&data);
        assert_eq!(daemon.addr.ip().to_string(), "127.0.0.1");
        assert_ne!(daemon.addr.port(), 0, "the real port is printed");
        let mut c = Client::connect(daemon.addr).await;
        let values: Vec<String> = (0..10).map(|i| format!("round{round}-{i}")).collect();
        let offsets = produce_values(&mut c, "survive", 0, -1, &values).await;
        assert_eq!(offsets[0], round * 10);
        drop(c);
        daemon.signal(sig);
        let (status, stdout, stderr) = daemon.wait();
        assert!(
            status.success(),
            "exit 0 after signal {sig}: {status:?}\n{stderr}"
        );
        assert!(
            stdout.is_empty(),
            "stdout holds only the listening line: {stdout:?}"
        );
        assert!(stderr.contains("stopped cleanly"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let dirs = partition_dirs(&data, "survive");
        assert!(!dirs.is_empty(), "partition directories of topic survive");
        for dir in dirs {
            assert!(
                dir.join("clean-shutdown.checkpoint").exists(),
                "clean marker in {dir:?}"
            );
        }
    }
    let daemon = Daemon::start(&data);
    assert!(
        !daemon.stderr().contains("recovered partition"),
        "a clean stop needs no recovery"
    );
    assert!(
        !daemon.stderr().contains("unknown file"),
        "the broker's own checkpoints are no unknown files: {}",
        daemon.stderr()
    );
    let mut c = Client::connect(daemon.addr).await;
    let got = fetch_all(&mut c, "survive", 0).await;
    assert_eq!(got.len(), 20);
    assert_eq!(got[19], (19, "round1-9".to_string()));
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_recovery_runs_reports_and_keeps_every_acknowledged_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    for chunk in values.chunks(10) {
        produce_values(&mut c, "crashy", 0, 1, chunk).await;
    }
    drop(c);
    daemon.kill9();
    // A torn write: garbage after the last acknowledged batch.
    let dir = &partition_dirs(&data, "crashy")[0];
    let log = std::fs::read_dir(dir)
        .expect("partition")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("segment");
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open segment")
        .write_all(&[0xAB; 100])
        .expect("garbage");

    let daemon = Daemon::start(&data);
    let mut c = Client::connect(daemon.addr).await;
    let got = fetch_all(&mut c, "crashy", 0).await;
    // Recovered (in the background or at this first use) before answering.
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("recovered partition"),
        "the recovery report is logged: {stderr}"
    );
    assert!(stderr.contains("crashy"), "{stderr}");
    assert!(
        !stderr.contains("unknown file"),
        "the broker's own checkpoints are no unknown files: {stderr}"
    );
    let want: Vec<(i64, String)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.clone()))
        .collect();
    assert_eq!(
        got, want,
        "every acknowledged message, once, in order; no garbage"
    );
    // And it takes new writes after the recovered tail.
    let next = produce_values(&mut c, "crashy", 0, -1, &["after".to_string()]).await;
    assert_eq!(next, vec![100]);
    let (status, _, _) = daemon.stop();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_file_then_environment_then_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let config = tmp.path().join("pubsub.toml");
    std::fs::write(
        &config,
        "advertised = \"127.0.0.1:1\"\n[topics]\ndefault_partitions = 2\nmax_message_bytes = \"2KiB\"\n",
    )
    .expect("config");
    let daemon = Daemon::start_with(
        &data,
        Options {
            args: vec![
                "--config".into(),
                config.display().to_string(),
                "--advertised".into(),
                "localhost.test:7777".into(),
            ],
            env: vec![("PUBSUB_TOPICS_DEFAULT_PARTITIONS".into(), "3".into())],
            ..Options::default()
        },
    );
    let mut c = Client::connect(daemon.addr).await;
    let r = c
        .call(
            12,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(s("auto"))))
                ])),
        )
        .await;
    assert_eq!(
        r.topics[0].partitions.len(),
        3,
        "the environment beats the file"
    );
    assert_eq!(
        (r.brokers[0].host.as_str(), r.brokers[0].port),
        ("localhost.test", 7777),
        "the flag beats the file"
    );
    // max_message_bytes from the file applies to auto-created topics.
    let big = vec!["z".repeat(4096)];
    let p = crate::kafka::produce_raw(&mut c, "auto", 0, -1, &big).await;
    assert_eq!(p.error_code, 10, "MESSAGE_TOO_LARGE");
    daemon.stop();
}

#[test]
fn bad_settings_and_a_busy_directory_fail_with_one_clear_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run")
    };
    let bad_file = tmp.path().join("bad.toml");
    std::fs::write(&bad_file, "[topics]\nsegment_bytes = \"lots\"\n").expect("write");
    for (args, env, needle) in [
        (
            vec!["--config", bad_file.to_str().expect("utf-8")],
            vec![],
            "segment_bytes",
        ),
        (vec![], vec![("PUBSUB_FLUSH", "sometimes")], "flush"),
        (
            vec![],
            vec![("PUBSUB_SERVER_MAX_CONNECTIONS", "lots")],
            "PUBSUB_SERVER_MAX_CONNECTIONS",
        ),
        (vec!["--advertised", "no-port"], vec![], "advertised"),
        (
            vec!["--config", "/no/such/file.toml"],
            vec![],
            "/no/such/file.toml",
        ),
    ] {
        let out = run(&args, &env);
        assert!(!out.status.success(), "{args:?} {env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    // A second broker on the same directory is refused while the first runs.
    let first = Daemon::start(&data);
    let out = run(&[], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("in use") || stderr.to_lowercase().contains("lock"),
        "{stderr}"
    );
    let (status, _, _) = first.stop();
    assert!(status.success());
}

#[test]
fn serve_help_lists_its_flags_and_examples() {
    let out = Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("--data-dir") && help.contains("--listen") && help.contains("--advertised")
    );
}

/// `PUBSUB_BOOTSTRAP_USER=name:password` creates the user (both SCRAM
/// mechanisms, 4096 iterations) on the first start, leaves it alone on the
/// next (another password changes nothing), and no log line or file holds
/// the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_user_is_created_once_and_its_password_never_written() {
    use kafka_protocol::messages::DescribeUserScramCredentialsRequest;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut logs = String::new();
    for (round, password) in [(0, "first-Passw0rd"), (1, "second-Passw0rd")] {
        let daemon = Daemon::start_with(
            &data,
            Options {
                env: vec![("PUBSUB_BOOTSTRAP_USER".into(), format!("root:{password}"))],
                ..Options::default()
            },
        );
        let mut c = Client::connect(daemon.addr).await;
        let d = c
            .call(
                0,
                &DescribeUserScramCredentialsRequest::default().with_users(None),
            )
            .await;
        let users: Vec<(String, Vec<(i8, i32)>)> = d
            .results
            .iter()
            .map(|r| {
                let infos = r
                    .credential_infos
                    .iter()
                    .map(|i| (i.mechanism, i.iterations))
                    .collect();
                (r.user.to_string(), infos)
            })
            .collect();
        assert_eq!(users, [("root".to_string(), vec![(1, 4096), (2, 4096)])]);
        drop(c);
        let (status, _, stderr) = daemon.stop();
        assert!(status.success(), "{stderr}");
        let expected = if round == 0 {
            "bootstrap user created"
        } else {
            "bootstrap user exists"
        };
        assert!(stderr.contains(expected), "{stderr}");
        logs.push_str(&stderr);
    }
    assert!(!logs.contains("Passw0rd"), "a password was logged:\n{logs}");
    let users_file = std::fs::read(data.join("users.checkpoint")).expect("users file");
    assert!(!String::from_utf8_lossy(&users_file).contains("Passw0rd"));

    // A malformed value is refused before anything opens, without echoing it.
    let out = Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(&data)
        .env("PUBSUB_BOOTSTRAP_USER", "no-colon-Passw0rd")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.bootstrap_user"), "{err}");
    assert!(!err.contains("Passw0rd"), "{err}");
}

/// `server.io_threads` sets the runtime's worker threads (logged from the
/// runtime once built); one thread serves two producers at once, then
/// their consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_io_thread_serves_producers_and_consumers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with(
        &tmp.path().join("data"),
        Options {
            env: vec![("PUBSUB_SERVER_IO_THREADS".into(), "1".into())],
            ..Options::default()
        },
    );
    let mut first = Client::connect(daemon.addr).await;
    let mut second = Client::connect(daemon.addr).await;
    let values: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let (a, b) = tokio::join!(
        produce_values(&mut first, "one-thread-a", 0, -1, &values),
        produce_values(&mut second, "one-thread-b", 0, 1, &values),
    );
    assert_eq!(a, (0..50).collect::<Vec<i64>>());
    assert_eq!(b, a);
    let (a, b) = tokio::join!(
        fetch_all(&mut first, "one-thread-a", 0),
        fetch_all(&mut second, "one-thread-b", 0),
    );
    for read in [a, b] {
        assert_eq!(read.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), values);
    }
    let (status, _, stderr) = daemon.stop();
    assert!(status.success());
    assert!(
        stderr.contains("io_threads=1"),
        "the runtime has one worker: {stderr}"
    );
}
