//! Helpers shared by the broker tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pubsub_broker::{Broker, BrokerConfig, GroupConfig};

/// A broker config for tests: few offsets partitions, fast timers.
pub fn test_config() -> BrokerConfig {
    BrokerConfig {
        group: GroupConfig {
            min_session_timeout: Duration::from_millis(100),
            initial_rebalance_delay: Duration::from_millis(0),
            offsets_topic_partitions: 4,
            ..GroupConfig::default()
        },
        tick_interval: Duration::from_millis(20),
        ..BrokerConfig::default()
    }
}

pub fn open(dir: &Path) -> Broker {
    Broker::open(dir, test_config()).expect("open broker")
}

pub fn no_configs() -> BTreeMap<String, String> {
    BTreeMap::new()
}

pub fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Reruns this test binary as the child process of test `name` (its
/// stdout piped, stderr dropped), with `envs` telling it what to do: how
/// the SIGKILL tests run the broker they kill.
pub fn spawn_child(name: &str, envs: &[(&str, &OsStr)]) -> Child {
    let exe = std::env::current_exe().expect("exe");
    Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Runs the child of test `name` on `dir` (the environment variable
/// `dir_var`), lets it run until it prints a line ending in `ready`, then
/// kills it with SIGKILL: whether it got ready.
pub fn kill_when_ready(name: &str, dir_var: &str, dir: &Path) -> bool {
    use std::io::{BufRead, BufReader};
    let mut child = spawn_child(name, &[(dir_var, dir.as_os_str())]);
    let stdout = child.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.ends_with("ready"));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    ready
}
