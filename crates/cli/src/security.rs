//! Client security settings of the `pubsub` client subcommands: flags,
//! `PUBSUB_*` environment variables, and a Kafka client properties file
//! (`--command-config`, as Kafka's tools take one) with the keys of both
//! the Java client and librdkafka.
//!
//! Flags and environment variables win over the file. Passwords come from
//! `--password-file`, `PUBSUB_PASSWORD` or the properties file (none of
//! which shows in `ps`), or `--password` (which does); they are kept in a
//! [`Secret`] and never printed.

use std::path::{Path, PathBuf};

use pubsub_client::{SaslLogin, SaslMechanism, Secret, Security, SecurityProtocol, TlsFiles};

use crate::error::CliError;

/// The security flags every client subcommand takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SecurityArgs {
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL [default: SASL_SSL with a
    /// user and TLS files, SASL_PLAINTEXT with a user, SSL with TLS files,
    /// else PLAINTEXT]
    #[arg(
        long,
        value_name = "PROTOCOL",
        env = "PUBSUB_SECURITY_PROTOCOL",
        help_heading = "Security"
    )]
    pub security_protocol: Option<SecurityProtocol>,
    /// SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN [default: SCRAM-SHA-512]
    #[arg(
        long,
        value_name = "MECHANISM",
        env = "PUBSUB_SASL_MECHANISM",
        help_heading = "Security"
    )]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name
    #[arg(
        long,
        value_name = "NAME",
        env = "PUBSUB_USER",
        help_heading = "Security"
    )]
    pub user: Option<String>,
    /// SASL password (visible to `ps`: prefer --password-file or PUBSUB_PASSWORD)
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "PUBSUB_PASSWORD",
        hide_env_values = true,
        help_heading = "Security"
    )]
    pub password: Option<String>,
    /// File holding the SASL password (one line)
    #[arg(
        long,
        value_name = "FILE",
        env = "PUBSUB_PASSWORD_FILE",
        conflicts_with = "password",
        help_heading = "Security"
    )]
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the brokers' certificates [default:
    /// the system's CA bundle]
    #[arg(
        long,
        value_name = "FILE",
        env = "PUBSUB_CLIENT_TLS_CA",
        help_heading = "Security"
    )]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM), for mutual TLS
    #[arg(
        long,
        value_name = "FILE",
        env = "PUBSUB_CLIENT_TLS_CERT",
        requires = "tls_key",
        help_heading = "Security"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM), for mutual TLS
    #[arg(
        long,
        value_name = "FILE",
        env = "PUBSUB_CLIENT_TLS_KEY",
        requires = "tls_cert",
        help_heading = "Security"
    )]
    pub tls_key: Option<PathBuf>,
    /// Kafka client properties file (security.protocol, sasl.mechanism,
    /// sasl.jaas.config or sasl.username/sasl.password, ssl.ca.location or
    /// a PEM ssl.truststore.location, ...); flags win over it
    #[arg(
        long,
        value_name = "FILE",
        env = "PUBSUB_COMMAND_CONFIG",
        help_heading = "Security"
    )]
    pub command_config: Option<PathBuf>,
}

/// What a properties file says about security.
#[derive(Debug, Default, PartialEq, Eq)]
struct FromFile {
    protocol: Option<String>,
    mechanism: Option<String>,
    user: Option<String>,
    password: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn invalid(key: &str, reason: impl Into<String>) -> CliError {
    CliError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl SecurityArgs {
    /// The security of every connection the command opens.
    pub fn build(&self) -> Result<Security, CliError> {
        let file = match &self.command_config {
            Some(path) => read_properties(path)?,
            None => FromFile::default(),
        };
        let protocol = match (&self.security_protocol, &file.protocol) {
            (Some(p), _) => Some(*p),
            (None, Some(p)) => Some(
                p.parse::<SecurityProtocol>()
                    .map_err(|e| invalid("security.protocol", e))?,
            ),
            (None, None) => None,
        };
        let mechanism = match (&self.sasl_mechanism, &file.mechanism) {
            (Some(m), _) => *m,
            (None, Some(m)) => m
                .parse::<SaslMechanism>()
                .map_err(|e| invalid("sasl.mechanism", e))?,
            (None, None) => SaslMechanism::ScramSha512,
        };
        let user = self.user.clone().or(file.user);
        let password = match (&self.password, &self.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(path)) => Some(read_password(path)?),
            (None, None) => file.password,
        };
        let tls = TlsFiles {
            ca: self.tls_ca.clone().or(file.ca),
            cert: self.tls_cert.clone().or(file.cert),
            key: self.tls_key.clone().or(file.key),
        };
        let has_tls = tls.ca.is_some() || tls.cert.is_some();
        let protocol = protocol.unwrap_or(match (user.is_some(), has_tls) {
            (true, true) => SecurityProtocol::SaslSsl,
            (true, false) => SecurityProtocol::SaslPlaintext,
            (false, true) => SecurityProtocol::Ssl,
            (false, false) => SecurityProtocol::Plaintext,
        });
        let sasl = if protocol.uses_sasl() {
            let user = user.ok_or_else(|| {
                invalid(
                    "user",
                    format!("security protocol {} needs --user", protocol.name()),
                )
            })?;
            let password = password.ok_or_else(|| {
                invalid(
                    "password",
                    format!(
                        "security protocol {} needs a password: --password-file, PUBSUB_PASSWORD or --password",
                        protocol.name()
                    ),
                )
            })?;
            Some(SaslLogin {
                mechanism,
                user,
                password: Secret::new(password),
            })
        } else {
            None
        };
        Ok(Security::new(protocol, &tls, sasl)?)
    }
}

/// The password in `path`: its first line, without the line end.
fn read_password(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        what: format!("reading the password file {}", path.display()),
        source,
    })?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(invalid(
            "password-file",
            format!("{} holds no password", path.display()),
        ));
    }
    Ok(line.to_string())
}

/// Reads a Kafka client properties file (Java properties: `key=value` or
/// `key: value`, `#` and `!` comments, `\` continues a line). Keys that are
/// not about security are skipped: the same file may configure a Kafka
/// client for other things.
fn read_properties(path: &Path) -> Result<FromFile, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        what: format!("reading the command config {}", path.display()),
        source,
    })?;
    let where_ = path.display().to_string();
    parse_properties(&text, path.parent().unwrap_or(Path::new("."))).map_err(|reason| {
        CliError::Config {
            source_name: where_,
            reason,
        }
    })
}

fn parse_properties(text: &str, dir: &Path) -> Result<FromFile, String> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if current.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        logical.push(current);
    }
    let mut out = FromFile::default();
    let (mut truststore_type, mut keystore_type) = (None, None);
    let (mut truststore, mut keystore) = (None, None);
    let path = |v: &str| {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    for entry in logical {
        let split = entry
            .find(['=', ':'])
            .ok_or_else(|| format!("{entry:?} is not key=value"))?;
        let key = entry[..split].trim();
        let value = entry[split + 1..].trim().to_string();
        match key {
            "security.protocol" => out.protocol = Some(value),
            "sasl.mechanism" | "sasl.mechanisms" => out.mechanism = Some(value),
            "sasl.username" => out.user = Some(value),
            "sasl.password" => out.password = Some(value),
            "sasl.jaas.config" => {
                let (user, password) = parse_jaas(&value)?;
                out.user = out.user.or(user);
                out.password = out.password.or(password);
            }
            "ssl.ca.location" => out.ca = Some(path(&value)),
            "ssl.certificate.location" => out.cert = Some(path(&value)),
            "ssl.key.location" => out.key = Some(path(&value)),
            "ssl.truststore.location" => truststore = Some(path(&value)),
            "ssl.truststore.type" => truststore_type = Some(value),
            "ssl.keystore.location" => keystore = Some(path(&value)),
            "ssl.keystore.type" => keystore_type = Some(value),
            _ => {}
        }
    }
    let pem = |t: &Option<String>| t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("PEM"));
    if let Some(store) = truststore {
        if !pem(&truststore_type) {
            return Err(format!(
                "ssl.truststore.location {} is read as PEM only: set ssl.truststore.type=PEM (convert a JKS or PKCS12 store with keytool/openssl), or use ssl.ca.location",
                store.display()
            ));
        }
        out.ca = out.ca.or(Some(store));
    }
    if let Some(store) = keystore {
        if !pem(&keystore_type) {
            return Err(format!(
                "ssl.keystore.location {} is read as PEM only: set ssl.keystore.type=PEM, or use ssl.certificate.location and ssl.key.location",
                store.display()
            ));
        }
        // One PEM file with the key and the certificate chain, as Kafka reads it.
        out.cert = out.cert.or(Some(store.clone()));
        out.key = out.key.or(Some(store));
    }
    Ok(out)
}

/// The `username` and `password` options of a JAAS login module line
/// (`org.apache.kafka.common.security.scram.ScramLoginModule required
/// username="alice" password="...";`).
fn parse_jaas(config: &str) -> Result<(Option<String>, Option<String>), String> {
    let (mut user, mut password) = (None, None);
    let mut rest = config;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].rsplit(char::is_whitespace).next().unwrap_or("");
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted value: `\x` stands for x.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                    None => return Err("sasl.jaas.config has an unterminated quote".into()),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = after
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        match key {
            "username" => user = Some(value),
            "password" => password = Some(value),
            _ => {}
        }
        rest = tail;
    }
    Ok((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_client_properties() {
        let text = "# a Kafka client config\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    username=\"alice\" password=\"a=b \\\"c\";\nssl.truststore.type=PEM\nssl.truststore.location=ca.pem\nacks=all\n";
        let got = parse_properties(text, Path::new("/etc/pubsub")).expect("parses");
        assert_eq!(got.protocol.as_deref(), Some("SASL_SSL"));
        assert_eq!(got.mechanism.as_deref(), Some("SCRAM-SHA-256"));
        assert_eq!(got.user.as_deref(), Some("alice"));
        assert_eq!(got.password.as_deref(), Some("a=b \"c"));
        assert_eq!(got.ca, Some(PathBuf::from("/etc/pubsub/ca.pem")));
    }

    #[test]
    fn librdkafka_properties() {
        let text = "security.protocol: sasl_plaintext\nsasl.mechanisms=PLAIN\nsasl.username=bob\nsasl.password=s3cret\nssl.ca.location=/tls/ca.pem\nssl.certificate.location=/tls/me.pem\nssl.key.location=/tls/me.key\n";
        let got = parse_properties(text, Path::new(".")).expect("parses");
        assert_eq!(
            got,
            FromFile {
                protocol: Some("sasl_plaintext".into()),
                mechanism: Some("PLAIN".into()),
                user: Some("bob".into()),
                password: Some("s3cret".into()),
                ca: Some("/tls/ca.pem".into()),
                cert: Some("/tls/me.pem".into()),
                key: Some("/tls/me.key".into()),
            }
        );
    }

    #[test]
    fn a_jks_truststore_is_refused_with_a_way_out() {
        let err =
            parse_properties("ssl.truststore.location=/x.jks\n", Path::new(".")).expect_err("JKS");
        assert!(err.contains("ssl.truststore.type=PEM"), "{err}");
        assert!(parse_properties("no separator\n", Path::new(".")).is_err());
    }

    #[test]
    fn the_protocol_follows_what_was_given() {
        let args = SecurityArgs {
            user: Some("alice".into()),
            password: Some("pw".into()),
            ..SecurityArgs::default()
        };
        let s = args.build().expect("builds");
        assert_eq!(s.protocol(), SecurityProtocol::SaslPlaintext);
        assert_eq!(
            s.sasl().map(|l| l.mechanism),
            Some(SaslMechanism::ScramSha512)
        );
        let no_password = SecurityArgs {
            user: Some("alice".into()),
            ..SecurityArgs::default()
        };
        let err = no_password.build().expect_err("no password");
        assert!(err.to_string().contains("--password-file"), "{err}");
        assert_eq!(
            SecurityArgs::default().build().expect("plain").protocol(),
            SecurityProtocol::Plaintext
        );
    }
}
