//! Listeners: a name, a security protocol, the address clients are told to
//! connect to, SASL mechanisms and TLS, as Kafka's `listeners`,
//! `advertised.listeners` and `listener.security.protocol.map` describe
//! them. Every connection knows the listener it came in on
//! ([`crate::Ctx::listener`]): Metadata, FindCoordinator and DescribeCluster
//! answer with that listener's advertised address, as Kafka does, so a
//! client that bootstrapped on the TLS port stays on it.

use std::sync::Arc;

use crate::config::SecurityProtocol;
use crate::tls::Tls;

/// One listener's identity and security.
#[derive(Debug, Clone)]
pub struct Listener {
    /// The listener's name (`PLAINTEXT`, `ssl`, ...), in logs.
    pub name: String,
    /// How clients of this listener connect.
    pub protocol: SecurityProtocol,
    /// Host clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: u16,
    /// SASL mechanisms offered when `protocol` uses SASL (`SCRAM-SHA-512`,
    /// `SCRAM-SHA-256`, `PLAIN`), in order of preference.
    pub sasl_mechanisms: Vec<String>,
    /// The TLS configuration, when `protocol` uses TLS.
    pub tls: Option<Arc<Tls>>,
}

impl Listener {
    /// A PLAINTEXT listener named `PLAINTEXT` advertising `host:port`.
    pub fn plaintext(host: impl Into<String>, port: u16) -> Listener {
        Listener {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            advertised_host: host.into(),
            advertised_port: port,
            sasl_mechanisms: Vec::new(),
            tls: None,
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Listener::plaintext("127.0.0.1", 9092)
    }
}

/// A bound socket and the listener it serves.
#[derive(Debug)]
pub struct Bound {
    /// The socket accepting connections.
    pub socket: tokio::net::TcpListener,
    /// What its connections are.
    pub listener: Arc<Listener>,
}

impl Bound {
    /// `socket` as a PLAINTEXT listener advertising its own address
    /// (127.0.0.1 when bound to all interfaces).
    pub fn plaintext(socket: tokio::net::TcpListener) -> std::io::Result<Bound> {
        let local = socket.local_addr()?;
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            local.ip().to_string()
        };
        Ok(Bound {
            socket,
            listener: Arc::new(Listener::plaintext(host, local.port())),
        })
    }
}
