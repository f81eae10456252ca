//! Starting a real server on a loopback port for a test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use pubsub_broker::{Broker, BrokerConfig, GroupConfig};
use pubsub_server::ServerConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server on 127.0.0.1:<free port> over a temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub broker: Broker,
    pub dir: TempDir,
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

    pub async fn start_with(broker_config: BrokerConfig, mut config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = Broker::open(dir.path(), broker_config).expect("open broker");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.advertised_host = "127.0.0.1".into();
        config.advertised_port = addr.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(pubsub_server::run(
            listener,
            broker.clone(),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            broker,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server (waits for connections to finish) and closes the broker.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        self.broker.close().expect("close broker");
    }
}
