//! TLS on a listener: the certificate, key and optional client CA read from
//! PEM files, TLS 1.2 and 1.3 with rustls (ring), a reload that swaps them
//! for new connections while open ones keep their session, and the
//! principal of a client certificate in the form Kafka's default principal
//! builder gives it. Sessions read the socket through a buffer
//! ([`buffered`]), so a burst of records costs one `read(2)`.
//!
//! [`Tls`] holds the current rustls configuration behind a lock; every
//! handshake takes the configuration current at its start, so
//! [`Tls::reload`] (on SIGHUP) never touches an open connection. A reload
//! that fails (a missing file, a key that does not match) keeps the old
//! configuration and says why.
//!
//! With a client CA, every client must present a certificate that chains to
//! it (mutual TLS); its subject becomes the connection's principal:
//! `User:` plus the subject in the RFC 2253 form of Java's
//! `X500Principal.getName()` ([`subject_name`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::error::ServerError;

/// Bytes read from the socket at once under TLS. rustls asks its transport
/// for at most 4 KiB per read, so reading the socket directly costs four or
/// more `read(2)` calls per 16 KiB record; through this buffer one call
/// brings in a burst of records and rustls's reads are copies from memory.
pub const READ_BUFFER: usize = 64 << 10;

/// A TLS connection as the listener serves it: rustls over a read-buffered
/// socket ([`buffered`]).
pub type TlsConnection = tokio_rustls::server::TlsStream<BufReader<TcpStream>>;

/// `stream` with a [`READ_BUFFER`] read buffer under rustls (writes go
/// straight through: rustls already writes whole records, vectored).
pub fn buffered(stream: TcpStream) -> BufReader<TcpStream> {
    BufReader::with_capacity(READ_BUFFER, stream)
}

/// Where a listener's certificate, key and client CA are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), the server's own first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates must chain to; `None`:
    /// no client certificate is asked for.
    pub client_ca: Option<PathBuf>,
}

/// A reloadable TLS server configuration.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `files`; fails if any is missing or unusable.
    pub fn load(files: TlsFiles) -> Result<Tls, ServerError> {
        let config = build(&files)?;
        Ok(Tls {
            files,
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again and, if they make a valid configuration, uses
    /// it for new connections; otherwise keeps the current one.
    pub fn reload(&self) -> Result<(), ServerError> {
        let config = build(&self.files)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificate(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        TlsAcceptor::from(Arc::clone(&config))
    }
}

fn tls_error(path: &Path, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(format!("{}: {reason}", path.display()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, e))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The rustls configuration of `files`.
fn build(files: &TlsFiles) -> Result<rustls::ServerConfig, ServerError> {
    // ring, not aws-lc-rs (a C and assembly build of its own); rustls
    // marks ring's provider deprecated for lacking post-quantum key
    // exchange, which Kafka clients do not offer either.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| tls_error(&files.key, e))?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(|e| tls_error(ca, e))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| tls_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(certs, key).map_err(|e| {
        tls_error(
            &files.cert,
            format!("{e} (with the key {})", files.key.display()),
        )
    })
}

/// One DER element: its tag and contents.
fn der_next<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    *input = after;
    Some((tag, content))
}

/// The whole DER element (tag, length, contents) at the start of `input`.
fn der_whole<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let start = *input;
    der_next(input)?;
    Some(&start[..start.len() - input.len()])
}

/// An object identifier's dotted form.
fn oid_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in content {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The keyword RFC 2253 (and Java) gives an attribute type.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// A string value escaped as Java's RFC 2253 form does: `,=+<>#;"\`
/// behind a backslash, NUL as `\00`, and leading and trailing spaces
/// escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    let blank = |c: char| c == ' ' || c == '\r';
    let chars: Vec<char> = out.chars().collect();
    let lead = chars.iter().take_while(|&&c| blank(c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|&&c| blank(c)).count();
    let mut escaped = String::with_capacity(out.len() + 2);
    for (i, &c) in chars.iter().enumerate() {
        if i < lead || i >= trail.max(lead) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One attribute (`SEQUENCE { type OID, value ANY }`) as `KEY=value`.
fn attribute(mut seq: &[u8]) -> Option<String> {
    let (tag, oid) = der_next(&mut seq)?;
    if tag != 0x06 {
        return None;
    }
    let oid = oid_string(oid)?;
    let mut peek = seq;
    let whole = der_whole(&mut peek)?;
    let (tag, content) = der_next(&mut seq)?;
    // PrintableString, T61String, IA5String, GeneralString, BMPString,
    // UTF8String: the types Java prints as text (decoded as UTF-8, as it
    // does); anything else, or a type without a keyword, as #hex of its DER.
    let text = matches!(tag, 0x13 | 0x14 | 0x16 | 0x1b | 0x1e | 0x0c);
    Some(match keyword(&oid) {
        Some(key) if text => format!("{key}={}", escape(&String::from_utf8_lossy(content))),
        key => {
            let hex: String = whole.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", key.map_or(oid, str::to_string))
        }
    })
}

/// The subject of a DER certificate as Java's `X500Principal.getName()`
/// prints it (RFC 2253): relative names last to first, joined by `,`; the
/// attributes of a multi-valued one joined by `+` in certificate order.
/// `None` if the certificate cannot be read.
pub fn subject_name(cert: &[u8]) -> Option<String> {
    let mut input = cert;
    let (_, mut certificate) = der_next(&mut input).filter(|(t, _)| *t == 0x30)?;
    let (_, mut tbs) = der_next(&mut certificate).filter(|(t, _)| *t == 0x30)?;
    // [0] version, when present.
    if tbs.first() == Some(&0xa0) {
        der_next(&mut tbs)?;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        der_next(&mut tbs)?;
    }
    let (tag, mut name) = der_next(&mut tbs)?;
    if tag != 0x30 {
        return None;
    }
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, mut set) = der_next(&mut name)?;
        if tag != 0x31 {
            return None;
        }
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (tag, seq) = der_next(&mut set)?;
            if tag != 0x30 {
                return None;
            }
            avas.push(attribute(seq)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn subject_of(dn: &[(DnType, &str)]) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            params.distinguished_name.push(t.clone(), *v);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        subject_name(cert.der()).expect("subject")
    }

    #[test]
    fn the_subject_reads_as_java_prints_it() {
        // Certificate order C, O, OU, CN prints reversed.
        assert_eq!(
            subject_of(&[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Acme"),
                (DnType::OrganizationalUnitName, "Team"),
                (DnType::CommonName, "client"),
            ]),
            "CN=client,OU=Team,O=Acme,C=US"
        );
        assert_eq!(
            subject_of(&[
                (DnType::CommonName, "a,b+c=d"),
                (DnType::LocalityName, " x "),
            ]),
            "L=\\ x\\ ,CN=a\\,b\\+c\\=d"
        );
        // A type without a keyword: its dotted OID and the value's DER.
        let email = subject_of(&[
            (DnType::CommonName, "c"),
            (
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                "a@b",
            ),
        ]);
        assert!(
            email.starts_with("1.2.840.113549.1.9.1=#") && email.ends_with(",CN=c"),
            "{email}"
        );
        assert_eq!(subject_of(&[]), "");
    }

    #[test]
    fn garbage_is_no_subject() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x02, 0x01, 0x00],
        ] {
            assert_eq!(subject_name(bytes), None);
        }
    }

    #[test]
    fn object_identifiers_read_dotted() {
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]).as_deref(), Some("2.5.4.3"));
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(oid_string(&[0x86]), None);
    }
}
