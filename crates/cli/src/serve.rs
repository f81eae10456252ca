//! `pubsub serve`: open the broker, listen, serve the Kafka protocol (and,
//! if asked, Prometheus metrics over HTTP) until SIGINT or SIGTERM, then
//! shut down cleanly. SIGHUP reloads the TLS certificate and key.
//!
//! The listeners are `listen` (PLAINTEXT, when set) and then each
//! `[[listeners]]` entry, in that order; stdout says `listening on ADDR` for
//! the first and `listening on ADDR (NAME, PROTOCOL)` for each other.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use pubsub_broker::Broker;
use pubsub_server::{Bound, Listener, Metrics, Tls};
use pubsub_storage::handles::{self, RESERVED_DESCRIPTORS};
use pubsub_storage::{HandleLimits, Handles};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::error::CliError;
use crate::settings::{advertised_parts, Settings};

/// Descriptors of the fetch path's pipe pool (none off Linux).
#[cfg(target_os = "linux")]
const PIPE_DESCRIPTORS: usize = pubsub_server::pipe::DESCRIPTORS;
#[cfg(not(target_os = "linux"))]
const PIPE_DESCRIPTORS: usize = 0;

/// Runs the daemon to completion.
pub fn run(settings: Settings) -> Result<(), CliError> {
    fit_limits(settings.server.max_connections as usize);
    let broker = Broker::open(&settings.data_dir, settings.broker_config()?)?;
    if let Some((user, password)) = settings.auth.bootstrap_user() {
        if broker.users().ensure(user, password)? {
            tracing::info!(
                user,
                iterations = pubsub_broker::security::scram::DEFAULT_ITERATIONS,
                "bootstrap user created (SCRAM-SHA-256 and SCRAM-SHA-512)"
            );
        } else {
            tracing::info!(user, "bootstrap user exists; left as it is");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.io_threads())
        .enable_all()
        .thread_name("pubsub-io")
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the runtime".into(),
            source,
        })?;
    tracing::info!(
        io_threads = runtime.metrics().num_workers(),
        "threads serving connections (waits for the disk run on a pool of their own)"
    );
    let served = runtime.block_on(serve(&settings, broker.clone()));
    drop(runtime);
    // Flush every partition and write the clean-shutdown marker.
    let closed = broker.close();
    served?;
    closed?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Binds `addr`; the socket and its local address.
async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), CliError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Io {
            what: format!("listening on {addr}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| CliError::Io {
        what: "reading the listen address".into(),
        source,
    })?;
    Ok((listener, local))
}

/// Binds every listener: `listen` first, then `[[listeners]]`; each with
/// its local address.
async fn bind_all(
    settings: &Settings,
    tls: Option<&Arc<Tls>>,
) -> Result<Vec<(Bound, SocketAddr)>, CliError> {
    let mut bound = Vec::new();
    if !settings.listen.trim().is_empty() {
        let (socket, local) = bind(&settings.listen).await?;
        let (host, port) = advertised(&settings.advertised, local);
        let listener = Arc::new(Listener::plaintext(host, port));
        bound.push((Bound { socket, listener }, local));
    }
    for l in &settings.listeners {
        let (socket, local) = bind(&l.listen).await?;
        let (host, port) = advertised(&l.advertised, local);
        let protocol = l.security_protocol();
        let listener = Arc::new(Listener {
            name: l.name.clone(),
            protocol,
            advertised_host: host,
            advertised_port: port,
            sasl_mechanisms: l.sasl_mechanisms.clone(),
            tls: protocol.uses_tls().then(|| tls.cloned()).flatten(),
        });
        bound.push((Bound { socket, listener }, local));
    }
    Ok(bound)
}

async fn serve(settings: &Settings, broker: Broker) -> Result<(), CliError> {
    let uses_tls = settings
        .listeners
        .iter()
        .any(|l| l.security_protocol().uses_tls());
    let tls = match settings.tls.files() {
        Some(files) if uses_tls => Some(Arc::new(Tls::load(files).map_err(|e| {
            CliError::Invalid {
                key: "tls".into(),
                reason: e.to_string(),
            }
        })?)),
        _ => None,
    };
    let bound = bind_all(settings, tls.as_ref()).await?;
    let metrics_listener = match settings.metrics.as_str() {
        "" => None,
        addr => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| CliError::Io {
                    what: format!("listening for metrics on {addr}"),
                    source,
                })?;
            let local = l.local_addr().map_err(|source| CliError::Io {
                what: "reading the metrics address".into(),
                source,
            })?;
            Some((l, local))
        }
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(|source| CliError::Io {
        what: "installing the SIGTERM handler".into(),
        source,
    })?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| CliError::Io {
        what: "installing the SIGINT handler".into(),
        source,
    })?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|source| CliError::Io {
        what: "installing the SIGHUP handler".into(),
        source,
    })?;
    // The lines on stdout: scripts and tests wait for them.
    let mut out = std::io::stdout().lock();
    for (i, (b, local)) in bound.iter().enumerate() {
        let l = &b.listener;
        let advertised = format!("{}:{}", l.advertised_host, l.advertised_port);
        tracing::info!(listener = %l.name, protocol = %l.protocol, listen = %local, %advertised, data_dir = %settings.data_dir.display(), "serving the Kafka protocol");
        if i == 0 {
            let _ = writeln!(out, "listening on {local}");
        } else {
            let _ = writeln!(out, "listening on {local} ({}, {})", l.name, l.protocol);
        }
    }
    if let Some((_, addr)) = &metrics_listener {
        tracing::info!(listen = %addr, "serving /metrics and /health over HTTP");
        let _ = writeln!(out, "metrics on {addr}");
    }
    let _ = out.flush();
    drop(out);
    let shutdown = async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing in-flight requests");
        // A second signal stops at once (recovery runs at the next start).
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::warn!("second signal: exiting without a clean shutdown");
            std::process::exit(130);
        });
    };
    let reloads = tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: no TLS listener, nothing to reload");
                continue;
            };
            let files = tls.files();
            match tls.reload() {
                Ok(()) => {
                    tracing::info!(cert = %files.cert.display(), key = %files.key.display(), "SIGHUP: reloaded the TLS certificate and key; new connections use them")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SIGHUP: TLS reload failed, keeping the current certificate")
                }
            }
        }
    });
    let config = settings.server_config();
    let metrics = Arc::new(Metrics::new());
    let (stop_metrics, metrics_stopped) = oneshot::channel::<()>();
    let metrics_task = metrics_listener.map(|(l, _)| {
        tokio::spawn(pubsub_server::metrics::http::serve(
            l,
            broker.clone(),
            Arc::clone(&metrics),
            async move {
                let _ = metrics_stopped.await;
            },
        ))
    });
    let listeners = bound.into_iter().map(|(b, _)| b).collect();
    pubsub_server::run_listeners(listeners, broker, config, metrics, shutdown).await;
    reloads.abort();
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard one (a shell's or service
/// manager's 1024 is the usual soft limit; the hard one is often far higher)
/// and sizes the storage budget of open segment files and index maps to
/// what is left after the connection reserve: `server.max_connections` plus
/// [`RESERVED_DESCRIPTORS`] for everything else (the metrics listener,
/// checkpoints, recovery scans, temporary files) plus the fetch path's
/// pooled pipes ([`PIPE_DESCRIPTORS`]).
/// Storage then never takes the descriptors a client needs to connect.
fn fit_limits(max_connections: usize) {
    match handles::raise_nofile_limit() {
        Ok((before, after)) => {
            let hard = handles::nofile_limits().map_or(after, |(_, hard)| hard);
            if before == after {
                tracing::info!(
                    soft = after,
                    hard,
                    "open-files limit (RLIMIT_NOFILE) already at the hard limit"
                );
            } else {
                tracing::info!(
                    soft_before = before,
                    soft = after,
                    hard,
                    "raised the open-files limit (RLIMIT_NOFILE) to the hard limit"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, soft = handles::soft_nofile(), "could not raise the open-files limit (RLIMIT_NOFILE)");
        }
    }
    let reserved = max_connections
        .saturating_add(RESERVED_DESCRIPTORS)
        .saturating_add(PIPE_DESCRIPTORS);
    let limits = HandleLimits::from_system(reserved);
    let nofile = handles::soft_nofile();
    let connections = nofile.saturating_sub(limits.descriptors);
    if connections < reserved {
        tracing::warn!(
            open_files = nofile,
            reserve = connections,
            wanted = reserved,
            "the open-files limit is low: half of it is kept for connections and other files; raise the hard limit (ulimit -Hn) for more"
        );
    }
    Handles::process().set_limits(limits);
    tracing::info!(
        segment_files = limits.descriptors,
        index_maps = limits.maps,
        reserved_descriptors = connections,
        max_map_count = handles::max_map_count(),
        "storage budget of open files and maps"
    );
}

/// What clients are told to connect to: `advertised`, or the bound address.
fn advertised(advertised: &str, local: SocketAddr) -> (String, u16) {
    if !advertised.is_empty() {
        if let Ok(parts) = advertised_parts(advertised) {
            return parts;
        }
    }
    if local.ip().is_unspecified() {
        tracing::warn!(
            "listening on all interfaces but advertising 127.0.0.1: set --advertised HOST:PORT so remote clients can connect"
        );
        return ("127.0.0.1".into(), local.port());
    }
    (local.ip().to_string(), local.port())
}
