//! Running the real `pubsub serve` binary in a test: start it on a free
//! loopback port, wait for its `listening on` line (and `metrics on`, if
//! asked for), signal or kill it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pubsub")
}

/// A `pubsub serve` process.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The metrics listener, when started with [`Options::metrics`].
    pub metrics: Option<SocketAddr>,
    /// The listeners after the first, as printed ([`Options::listeners`]).
    pub listeners: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    stderr_path: PathBuf,
    stdout_rest: mpsc::Receiver<String>,
}

/// How to start one.
#[derive(Default, Clone)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Largest file the process may write (RLIMIT_FSIZE), to make the
    /// "disk" fill up.
    pub max_file_bytes: Option<u64>,
    /// The open-files limit (RLIMIT_NOFILE) as (soft, hard), as a shell's
    /// `ulimit -Sn`/`-Hn` would set it.
    pub open_files: Option<(u64, u64)>,
    /// Serve metrics on a free loopback port (`--metrics 127.0.0.1:0`).
    pub metrics: bool,
    /// The `--listen` address (default `127.0.0.1:0`, a free port); a
    /// restarted daemon takes its predecessor's `addr` here, so clients
    /// reconnect to the same place.
    pub listen: Option<SocketAddr>,
    /// How many listeners the config adds after the first: their
    /// `listening on ADDR (NAME, PROTOCOL)` lines are read too.
    pub listeners: usize,
}

impl Daemon {
    pub fn start(data_dir: &Path) -> Daemon {
        Self::start_with(data_dir, Options::default())
    }

    /// Started with `--metrics 127.0.0.1:0`; the address is in `metrics`.
    pub fn start_with_metrics(data_dir: &Path) -> Daemon {
        Self::start_with(
            data_dir,
            Options {
                metrics: true,
                ..Options::default()
            },
        )
    }

    pub fn start_with(data_dir: &Path, options: Options) -> Daemon {
        let stderr_path = data_dir.with_extension(format!("stderr-{}.log", std::process::id()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .expect("stderr file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(
                options
                    .listen
                    .map_or("127.0.0.1:0".into(), |a| a.to_string()),
            )
            .args(&options.args)
            .args(if options.metrics {
                &["--metrics", "127.0.0.1:0"][..]
            } else {
                &[]
            })
            .env("PUBSUB_GROUPS_INITIAL_REBALANCE_DELAY", "0ms")
            .env("PUBSUB_LOG", "info")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        if let Some(limit) = options.max_file_bytes {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // Writes past the limit then fail with EFBIG instead of
                    // killing the process.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        if let Some((soft, hard)) = options.open_files {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn pubsub serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut next_line = |what: &str| match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pubsub serve printed no `{what}` line; stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        };
        let first = next_line("listening on");
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let listeners = (0..options.listeners)
            .map(|_| {
                let line = next_line("listening on");
                line.strip_prefix("listening on ")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected listener line {line:?}"))
            })
            .collect();
        let metrics = options.metrics.then(|| {
            let second = next_line("metrics on");
            second
                .strip_prefix("metrics on ")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        });
        Daemon {
            child: Some(child),
            addr,
            metrics,
            listeners,
            data_dir: data_dir.to_path_buf(),
            stderr_path,
            stdout_rest: rx,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit; returns its status, what else it
    /// printed on stdout, and its stderr.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>, String) {
        let mut child = self.child.take().expect("running");
        let status = child.wait().expect("wait");
        let rest: Vec<String> = self.stdout_rest.try_iter().collect();
        let mut stderr = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut stderr);
        }
        (status, rest, stderr)
    }

    /// SIGTERM, then wait.
    pub fn stop(self) -> (ExitStatus, Vec<String>, String) {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// SIGKILL, then wait.
    pub fn kill9(self) -> String {
        self.signal(libc::SIGKILL);
        self.wait().2
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}
