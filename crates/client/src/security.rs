//! Connection security as a Kafka client configures it: the listener's
//! security protocol (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`), the
//! TLS trust (a CA file; a client certificate and key for mutual TLS) and
//! the SASL login (mechanism, user, password).
//!
//! A [`Security`] is built once (certificates read, the TLS configuration
//! made) and then applied to every connection a client opens: bootstrap,
//! per broker and coordinator alike. Passwords are kept in [`Secret`],
//! which never prints.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{ClientError, Result};

/// Kafka's `security.protocol` (the vocabulary the broker shares).
pub use pubsub_records::security::SecurityProtocol;

/// Kafka's `sasl.mechanism`, those this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: user and password sent as they are (use with TLS).
    Plain,
    /// RFC 7677 SCRAM with SHA-256.
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// Its IANA name, as SaslHandshake carries it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err(format!(
                "{s:?}: the SASL mechanism is SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"
            )),
        }
    }
}

/// A password: kept as given, never printed (`Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Secret {
        Secret(password.into())
    }

    /// The password itself, for the exchange that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A SASL login.
#[derive(Debug, Clone)]
pub struct SaslLogin {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub user: String,
    /// The password.
    pub password: Secret,
}

/// Where the TLS trust and identity come from (PEM files).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA certificates that sign the brokers' certificates; without it, the
    /// system's CA bundle.
    pub ca: Option<PathBuf>,
    /// The client's certificate chain, for mutual TLS.
    pub cert: Option<PathBuf>,
    /// The client's private key (PKCS#8, PKCS#1 or SEC1), for mutual TLS.
    pub key: Option<PathBuf>,
}

/// System CA bundles, tried in order when no CA file is given.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// How every connection of a client is secured.
#[derive(Clone, Default)]
pub struct Security {
    protocol: SecurityProtocol,
    tls: Option<TlsConnector>,
    sasl: Option<SaslLogin>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Security {
    /// No TLS, no SASL.
    pub fn plaintext() -> Security {
        Security::default()
    }

    /// Security for `protocol`: the TLS configuration is made from `tls`
    /// when the protocol uses TLS, and `sasl` is required when it uses SASL
    /// (and refused when it does not, so a forgotten protocol is noticed).
    pub fn new(
        protocol: SecurityProtocol,
        tls: &TlsFiles,
        sasl: Option<SaslLogin>,
    ) -> Result<Security> {
        let tls = if protocol.uses_tls() {
            Some(TlsConnector::from(Arc::new(client_config(tls)?)))
        } else {
            if tls.ca.is_some() || tls.cert.is_some() || tls.key.is_some() {
                return Err(ClientError::Security(format!(
                    "TLS files were given but the security protocol is {}; use SSL or SASL_SSL",
                    protocol.name()
                )));
            }
            None
        };
        match (&sasl, protocol.uses_sasl()) {
            (None, true) => {
                return Err(ClientError::Security(format!(
                    "security protocol {} needs a SASL user and password",
                    protocol.name()
                )))
            }
            (Some(_), false) => {
                return Err(ClientError::Security(format!(
                    "a SASL user was given but the security protocol is {}; use SASL_PLAINTEXT or SASL_SSL",
                    protocol.name()
                )))
            }
            _ => {}
        }
        Ok(Security {
            protocol,
            tls,
            sasl,
        })
    }

    /// The security protocol.
    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    /// The SASL login, if the protocol uses SASL.
    pub fn sasl(&self) -> Option<&SaslLogin> {
        self.sasl.as_ref()
    }

    /// Wraps a connected stream in TLS if the protocol says so; the broker's
    /// certificate must name `host` (a DNS name or an IP address).
    pub(crate) async fn wrap(&self, addr: &str, stream: TcpStream) -> Result<Stream> {
        let Some(connector) = &self.tls else {
            return Ok(Stream::Plain(stream));
        };
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            ClientError::Security(format!("{host:?} is not a valid TLS server name"))
        })?;
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| ClientError::Tls {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A connected stream, in TLS or not.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The host part of HOST:PORT (`[::1]:9092` gives `::1`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn read_error(what: &str, path: &Path, e: impl fmt::Display) -> ClientError {
    ClientError::Security(format!("reading the {what} {}: {e}", path.display()))
}

/// The rustls client configuration of `files`: ring's algorithms, TLS 1.2
/// and 1.3, the CA file's (or the system's) roots, the client identity if
/// both certificate and key are given.
fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = match &files.ca {
        Some(ca) => ca.clone(),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                ClientError::Security(
                    "no CA file was given (--tls-ca) and no system CA bundle was found".into(),
                )
            })?,
    };
    let certs = CertificateDer::pem_file_iter(&ca)
        .map_err(|e| read_error("CA file", &ca, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error("CA file", &ca, e))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ClientError::Security(format!(
            "the CA file {} holds no usable certificate",
            ca.display()
        )));
    }
    // ring, named explicitly (never a process default that another crate's
    // features could change). rustls 0.23.48 deprecates it only because it
    // lacks post-quantum key exchange; aws-lc-rs would add a C/CMake build.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Security(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots);
    match (&files.cert, &files.key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| read_error("client certificate", cert, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| read_error("client certificate", cert, e))?;
            if chain.is_empty() {
                return Err(ClientError::Security(format!(
                    "the client certificate file {} holds no certificate",
                    cert.display()
                )));
            }
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|e| read_error("client key", key, e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ClientError::Security(format!("the client certificate: {e}")))
        }
        _ => Err(ClientError::Security(
            "mutual TLS needs both the client certificate and its key".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_kafka_spells_them() {
        assert_eq!(
            "sasl_ssl".parse::<SecurityProtocol>(),
            Ok(SecurityProtocol::SaslSsl)
        );
        assert_eq!(
            "SASL_PLAINTEXT".parse::<SecurityProtocol>(),
            Ok(SecurityProtocol::SaslPlaintext)
        );
        assert!("TLS".parse::<SecurityProtocol>().is_err());
        assert_eq!(
            "scram-sha-512".parse::<SaslMechanism>(),
            Ok(SaslMechanism::ScramSha512)
        );
        assert_eq!("PLAIN".parse::<SaslMechanism>(), Ok(SaslMechanism::Plain));
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
    }

    #[test]
    fn a_password_never_prints() {
        let login = SaslLogin {
            mechanism: SaslMechanism::Plain,
            user: "alice".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{login:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(host_of("127.0.0.1:9092"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9092"), "::1");
        assert_eq!(host_of("broker.example.com:9093"), "broker.example.com");
    }

    #[test]
    fn protocol_and_login_must_agree() {
        let none = TlsFiles::default();
        assert!(Security::new(SecurityProtocol::SaslPlaintext, &none, None).is_err());
        let login = SaslLogin {
            mechanism: SaslMechanism::ScramSha256,
            user: "a".into(),
            password: Secret::new("b"),
        };
        assert!(Security::new(SecurityProtocol::Plaintext, &none, Some(login.clone())).is_err());
        let s = Security::new(SecurityProtocol::SaslPlaintext, &none, Some(login)).expect("ok");
        assert_eq!(s.sasl().map(|l| l.user.as_str()), Some("a"));
        let ca = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let err = Security::new(SecurityProtocol::Ssl, &ca, None).expect_err("no such file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
