//! Starting a real server on a loopback port for a test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use pubsub_broker::{Broker, BrokerConfig, GroupConfig};
use std::sync::Arc;

use pubsub_server::{Bound, Listener, ServerConfig};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server on 127.0.0.1:<free port> over a temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub broker: Broker,
    pub dir: TempDir,
    /// The server's counters (what its metrics endpoint would show).
    pub metrics: Arc<pubsub_server::Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Broker settings for tests: groups form without the 3 s initial delay.
pub fn broker_config() -> BrokerConfig {
    BrokerConfig {
        group: GroupConfig {
            initial_rebalance_delay: Duration::ZERO,
            ..GroupConfig::default()
        },
        ..BrokerConfig::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(broker_config(), ServerConfig::default()).await
    }

    pub async fn start_with(broker_config: BrokerConfig, config: ServerConfig) -> TestServer {
        Self::start_in(tempfile::tempdir().expect("tempdir"), broker_config, config).await
    }

    /// Starts on an existing data directory (a restart).
    pub async fn start_in(
        dir: TempDir,
        broker_config: BrokerConfig,
        config: ServerConfig,
    ) -> TestServer {
        Self::start_listener_in(dir, broker_config, config, Listener::default()).await
    }

    /// Starts on `dir` with one listener like `listener` (its advertised
    /// address becomes the bound one).
    pub async fn start_listener_in(
        dir: TempDir,
        broker_config: BrokerConfig,
        config: ServerConfig,
        listener: Listener,
    ) -> TestServer {
        let broker = Broker::open(dir.path(), broker_config).expect("open broker");
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let bound = Bound {
            socket,
            listener: Arc::new(Listener {
                advertised_host: addr.ip().to_string(),
                advertised_port: addr.port(),
                ..listener
            }),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let metrics = Arc::new(pubsub_server::Metrics::new());
        let task = tokio::spawn(pubsub_server::run_listeners(
            vec![bound],
            broker.clone(),
            config,
            metrics.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            broker,
            dir,
            metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and the broker, keeping the data directory.
    pub async fn stop_keeping_data(mut self) -> TempDir {
        self.shut_down().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Stops the server (waits for connections to finish) and closes the broker.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        self.broker.close().expect("close broker");
    }
}

use bytes::Bytes;
use pubsub_records::{BatchBuilder, NewRecord};

/// Fetch v12, the version librdkafka uses.
pub const FETCH_V: i16 = 12;

pub use crate::client::{create_topic, fetch_request, produce, produce_request, PRODUCE_V};

/// A batch of `values` (key `k`, timestamps from 1_700_000_000_000).
pub fn batch_of(values: &[&str]) -> BatchBuilder {
    let mut b = BatchBuilder::new();
    for (j, value) in values.iter().enumerate() {
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000 + j as i64,
            key: Some(b"k"),
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .expect("push");
    }
    b
}

/// Encodes a builder.
pub fn bytes(b: BatchBuilder) -> Bytes {
    Bytes::from(b.build().expect("build"))
}
