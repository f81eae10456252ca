//! `pubsub serve`: open the broker, listen, serve the Kafka protocol (and,
//! if asked, Prometheus metrics over HTTP) until SIGINT or SIGTERM, then
//! shut down cleanly.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use pubsub_broker::Broker;
use pubsub_server::Metrics;
use pubsub_storage::handles::{self, RESERVED_DESCRIPTORS};
use pubsub_storage::{HandleLimits, Handles};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::error::CliError;
use crate::settings::{advertised_parts, Settings};

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
        .enable_all()
        .thread_name("pubsub-io")
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the runtime".into(),
            source,
        })?;
    let served = runtime.block_on(serve(&settings, broker.clone()));
    drop(runtime);
    // Flush every partition and write the clean-shutdown marker.
    let closed = broker.close();
    served?;
    closed?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn serve(settings: &Settings, broker: Broker) -> Result<(), CliError> {
    let listener = TcpListener::bind(&settings.listen)
        .await
        .map_err(|source| CliError::Io {
            what: format!("listening on {}", settings.listen),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| CliError::Io {
        what: "reading the listen address".into(),
        source,
    })?;
    let (host, port) = advertised(settings, local);
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
    tracing::info!(listen = %local, advertised = %format!("{host}:{port}"), data_dir = %settings.data_dir.display(), "serving the Kafka protocol");
    // The lines on stdout: scripts and tests wait for them.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {local}");
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
    let config = settings.server_config(host, port);
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
    pubsub_server::run_with_metrics(listener, broker, config, metrics, shutdown).await;
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
/// checkpoints, recovery scans, temporary files). Storage then never takes
/// the descriptors a client needs to connect.
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
    let reserved = max_connections.saturating_add(RESERVED_DESCRIPTORS);
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
fn advertised(settings: &Settings, local: SocketAddr) -> (String, u16) {
    if !settings.advertised.is_empty() {
        if let Ok(parts) = advertised_parts(&settings.advertised) {
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
