//! Listeners and TLS of `pubsub serve`: `[[listeners]]` entries (name,
//! listen address, advertised address, security protocol, SASL mechanisms)
//! besides the PLAINTEXT listener of `listen`, and the `[tls]` certificate,
//! key and client CA the TLS listeners share.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pubsub_server::{SecurityProtocol, TlsFiles};
use serde::{Deserialize, Serialize};

use super::advertised_parts;
use crate::error::CliError;

/// The SASL mechanisms a listener may offer.
pub const SASL_MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/// One `[[listeners]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    /// The listener's name (in logs), unique.
    pub name: String,
    /// Address to listen on (`HOST:PORT`, port 0 picks a free one).
    pub listen: String,
    /// Address clients are told to connect to; empty: the listen address.
    #[serde(default)]
    pub advertised: String,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    #[serde(default = "plaintext")]
    pub protocol: String,
    /// SASL mechanisms offered, in order of preference.
    #[serde(default)]
    pub sasl_mechanisms: Vec<String>,
}

fn plaintext() -> String {
    SecurityProtocol::Plaintext.name().to_string()
}

impl ListenerSettings {
    /// The protocol (checked by [`validate`]).
    pub fn security_protocol(&self) -> SecurityProtocol {
        SecurityProtocol::from_name(&self.protocol).unwrap_or_default()
    }
}

/// `[tls]`: the certificate and key of every TLS listener, and the CA of
/// client certificates (mutual TLS) if any. Empty: not set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain (PEM), the server's own first.
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
    /// CA certificates (PEM) client certificates must chain to; set, every
    /// TLS client must present one, and its subject is its principal.
    pub client_ca: String,
}

impl TlsSettings {
    /// The files, if a certificate and key are set.
    pub fn files(&self) -> Option<TlsFiles> {
        if self.cert.is_empty() || self.key.is_empty() {
            return None;
        }
        Some(TlsFiles {
            cert: PathBuf::from(&self.cert),
            key: PathBuf::from(&self.key),
            client_ca: (!self.client_ca.is_empty()).then(|| PathBuf::from(&self.client_ca)),
        })
    }
}

/// Checks the listeners together: names unique (the `listen` listener is
/// `PLAINTEXT`), addresses and protocols valid, SASL mechanisms known, and
/// `[tls]` complete when a listener uses TLS.
pub fn validate(
    listen: &str,
    listeners: &[ListenerSettings],
    tls: &TlsSettings,
) -> Result<(), CliError> {
    let bad = |key: String, reason: String| Err(CliError::Invalid { key, reason });
    if listen.trim().is_empty() && listeners.is_empty() {
        return bad(
            "listen".into(),
            "must be HOST:PORT unless [[listeners]] are given".into(),
        );
    }
    let mut names = BTreeSet::new();
    if !listen.trim().is_empty() {
        names.insert("PLAINTEXT".to_string());
    }
    for (i, l) in listeners.iter().enumerate() {
        let key = |field: &str| format!("listeners[{i}].{field}");
        if l.name.trim().is_empty() {
            return bad(key("name"), "must not be empty".into());
        }
        if !names.insert(l.name.clone()) {
            return bad(
                key("name"),
                format!(
                    "{:?} is used twice (the `listen` listener is named PLAINTEXT)",
                    l.name
                ),
            );
        }
        if l.listen.trim().is_empty() || !l.listen.contains(':') {
            return bad(key("listen"), "must be HOST:PORT".into());
        }
        if !l.advertised.is_empty() {
            if let Err(reason) = advertised_parts(&l.advertised) {
                return bad(key("advertised"), reason);
            }
        }
        let Some(protocol) = SecurityProtocol::from_name(&l.protocol) else {
            return bad(
                key("protocol"),
                format!(
                    "{:?}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    l.protocol
                ),
            );
        };
        for m in &l.sasl_mechanisms {
            if !SASL_MECHANISMS.contains(&m.as_str()) {
                return bad(
                    key("sasl_mechanisms"),
                    format!("{m:?}: expected {}", SASL_MECHANISMS.join(", ")),
                );
            }
        }
        if !protocol.uses_sasl() && !l.sasl_mechanisms.is_empty() {
            return bad(
                key("sasl_mechanisms"),
                format!("only SASL listeners offer mechanisms, not {protocol}"),
            );
        }
        if protocol.uses_tls() && tls.files().is_none() {
            return bad(
                "tls".into(),
                format!(
                    "listener {:?} is {protocol}: set tls.cert and tls.key",
                    l.name
                ),
            );
        }
    }
    if tls.files().is_none() && !tls.client_ca.is_empty() {
        return bad("tls.client_ca".into(), "needs tls.cert and tls.key".into());
    }
    Ok(())
}
