//! SCRAM (RFC 5802, RFC 7677) as Kafka speaks it: the two mechanisms
//! (`SCRAM-SHA-256`, `SCRAM-SHA-512`), the credential a broker keeps
//! (salt, iterations, StoredKey, ServerKey: never the password nor the
//! SaltedPassword), and the server side of the exchange.
//!
//! The exchange, with Kafka's conventions:
//!
//! ```text
//! client-first  n,[a=<authzid>],n=<user>,r=<cnonce>[,tokenauth=true,...]
//! server-first  r=<cnonce><snonce>,s=<base64 salt>,i=<iterations>
//! client-final  c=<base64 gs2 header>,r=<cnonce><snonce>,p=<base64 ClientProof>
//! server-final  v=<base64 ServerSignature>
//! ```
//!
//! No channel binding is offered (`n` or `y` only). The authzid, when
//! given, must be the user. `tokenauth=true` asks for a delegation token,
//! which pubsub does not issue: it fails like a wrong password. An unknown
//! user gets a decoy salt derived from a broker secret and fails at the
//! final message, like a wrong password, after the same work: the exchange
//! does not tell which users exist.
//!
//! Everything here is pure (no I/O): the fuzz target drives it directly.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Fewest iterations accepted (Kafka's `minIterations`, RFC 7677's 4096).
pub const MIN_ITERATIONS: i32 = 4096;
/// Most iterations accepted (Kafka's limit).
pub const MAX_ITERATIONS: i32 = 16384;
/// Iterations of credentials the broker derives itself (the bootstrap
/// user): Kafka's default for `kafka-configs --add-config` and
/// `kafka-storage format --add-scram` alike.
pub const DEFAULT_ITERATIONS: i32 = 4096;
/// Salt length of credentials the broker derives itself, and of decoys.
pub const SALT_LEN: usize = 32;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256` (type 1 in the Kafka APIs).
    Sha256,
    /// `SCRAM-SHA-512` (type 2).
    Sha512,
}

impl ScramMechanism {
    /// Both, in the order Kafka lists them.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (exact, as SASL names are).
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism's type in DescribeUserScramCredentials and
    /// AlterUserScramCredentials (0 is UNKNOWN).
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a type code.
    pub fn from_type_code(code: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.type_code() == code)
    }

    /// The hash's output length.
    pub fn key_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// HMAC(key, the concatenation of `parts`).
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            ScramMechanism::Sha256 => run::<Hmac<Sha256>>(key, parts),
            ScramMechanism::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    /// H(data).
    pub fn hash_of(self, data: &[u8]) -> Vec<u8> {
        self.hash(data)
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SaltedPassword = Hi(password, salt, iterations) (PBKDF2 with HMAC).
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.key_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        out
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the broker keeps of one user's password for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// Iterations of the key derivation.
    pub iterations: i32,
    /// H(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are as good as the password against this broker: never shown.
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential of a SaltedPassword (what AlterUserScramCredentials
    /// carries); the SaltedPassword itself is not kept.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        iterations: i32,
        salted_password: &[u8],
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, &[b"Client Key"]);
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, &[b"Server Key"]),
        }
    }

    /// The credential of a password.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &[u8],
        salt: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password, salt, iterations.max(1) as u32);
        ScramCredential::from_salted_password(mechanism, salt, iterations, &salted)
    }

    /// Whether `password` is this credential's password (SASL/PLAIN):
    /// derives it again and compares the StoredKeys in constant time.
    pub fn matches_password(&self, mechanism: ScramMechanism, password: &[u8]) -> bool {
        let other =
            ScramCredential::from_password(mechanism, password, &self.salt, self.iterations);
        bool::from(other.stored_key.ct_eq(&self.stored_key))
    }
}

/// A fresh server nonce: base64 of 24 random bytes.
pub fn server_nonce() -> crate::Result<String> {
    Ok(BASE64.encode(super::users::random_bytes(24)?))
}

/// Why an authentication failed (the metrics' `reason` label). Clients are
/// told the same thing whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// A wrong password, an unknown user (indistinguishable on purpose), a
    /// delegation-token request or an authzid other than the user.
    InvalidCredentials,
    /// A message that does not follow the mechanism.
    Malformed,
}

impl AuthFailure {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::InvalidCredentials => "invalid_credentials",
            AuthFailure::Malformed => "malformed",
        }
    }
}

/// Where to find credentials during an exchange.
pub trait CredentialSource {
    /// The user's credential for `mechanism`, if any.
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
    /// A credential for a user that does not exist, the same for the same
    /// name every time (so probing twice does not tell), and as costly to
    /// check as a real one.
    fn decoy(&self, user: &str, mechanism: ScramMechanism) -> ScramCredential;
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    Initial {
        server_nonce: String,
    },
    SentFirst {
        user: String,
        /// False for an unknown user or a token request: the exchange
        /// runs to the end and fails there.
        acceptable: bool,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        credential: ScramCredential,
    },
    Done,
}

/// What the server says after a client message.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this (server-first) and wait for the client-final message.
    Continue(Vec<u8>),
    /// Authenticated as `user`: send `server_final`.
    Authenticated {
        /// The user name.
        user: String,
        /// The server-final message.
        server_final: Vec<u8>,
    },
}

impl ScramServer {
    /// A new exchange; `server_nonce` must be fresh and unpredictable
    /// (printable, without commas: base64 of random bytes is).
    pub fn new(mechanism: ScramMechanism, server_nonce: String) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::Initial { server_nonce },
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The user named in the client-first message, once it arrived.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::SentFirst { user, .. } => Some(user),
            _ => None,
        }
    }

    /// Takes the next client message.
    pub fn step(
        &mut self,
        message: &[u8],
        users: &dyn CredentialSource,
    ) -> Result<ScramStep, AuthFailure> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Initial { server_nonce } => {
                let (step, next) = self.client_first(message, &server_nonce, users)?;
                self.state = next;
                Ok(step)
            }
            State::SentFirst {
                user,
                acceptable,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
                credential,
            } => {
                let text = std::str::from_utf8(message).map_err(|_| AuthFailure::Malformed)?;
                let without_proof = text
                    .rsplit_once(",p=")
                    .map(|(head, _)| head)
                    .ok_or(AuthFailure::Malformed)?;
                let proof_b64 = &text[without_proof.len() + 3..];
                let mut fields = without_proof.split(',');
                let binding = fields
                    .next()
                    .and_then(|f| f.strip_prefix("c="))
                    .ok_or(AuthFailure::Malformed)?;
                let their_nonce = fields
                    .next()
                    .and_then(|f| f.strip_prefix("r="))
                    .ok_or(AuthFailure::Malformed)?;
                // Further attributes (extensions) are allowed and ignored.
                let binding = BASE64.decode(binding).map_err(|_| AuthFailure::Malformed)?;
                // Exactly the nonce of the server-first message (RFC 5802;
                // Kafka 4.1 too). librdkafka before 2.2 (Debian's kcat)
                // repeats its own nonce in front and fails here, as there.
                if binding != gs2_header.as_bytes() || their_nonce != nonce {
                    return Err(AuthFailure::Malformed);
                }
                let proof = BASE64
                    .decode(proof_b64)
                    .map_err(|_| AuthFailure::Malformed)?;
                let m = self.mechanism;
                let auth_message = [
                    client_first_bare.as_bytes(),
                    b",",
                    server_first.as_bytes(),
                    b",",
                    without_proof.as_bytes(),
                ];
                // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage);
                // the proof holds if H(ClientKey) is the StoredKey.
                let signature = m.hmac(&credential.stored_key, &auth_message);
                let length_ok = proof.len() == signature.len();
                let client_key: Vec<u8> = signature
                    .iter()
                    .zip(proof.iter().chain(std::iter::repeat(&0u8)))
                    .map(|(s, p)| s ^ p)
                    .collect();
                let key_ok = bool::from(m.hash(&client_key).ct_eq(&credential.stored_key));
                if !(key_ok && length_ok && acceptable) {
                    return Err(AuthFailure::InvalidCredentials);
                }
                let server_signature = m.hmac(&credential.server_key, &auth_message);
                let mut server_final = b"v=".to_vec();
                server_final.extend_from_slice(BASE64.encode(server_signature).as_bytes());
                Ok(ScramStep::Authenticated { user, server_final })
            }
            State::Done => Err(AuthFailure::Malformed),
        }
    }

    fn client_first(
        &self,
        message: &[u8],
        server_nonce: &str,
        users: &dyn CredentialSource,
    ) -> Result<(ScramStep, State), AuthFailure> {
        let text = std::str::from_utf8(message).map_err(|_| AuthFailure::Malformed)?;
        // gs2-header: cbind flag, authzid, then the bare message.
        let (flag, rest) = text.split_once(',').ok_or(AuthFailure::Malformed)?;
        if flag != "n" && flag != "y" {
            // "p=...": channel binding, which this server does not offer.
            return Err(AuthFailure::Malformed);
        }
        let (authzid_field, bare) = rest.split_once(',').ok_or(AuthFailure::Malformed)?;
        let gs2_header = format!("{flag},{authzid_field},");
        let authzid = match authzid_field {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(decode_saslname)
                    .ok_or(AuthFailure::Malformed)?,
            ),
        };
        let mut fields = bare.split(',');
        let first = fields.next().ok_or(AuthFailure::Malformed)?;
        if first.starts_with("m=") {
            // Mandatory extensions: none is known.
            return Err(AuthFailure::Malformed);
        }
        let user = first
            .strip_prefix("n=")
            .and_then(decode_saslname)
            .ok_or(AuthFailure::Malformed)?;
        let client_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(AuthFailure::Malformed)?;
        if user.is_empty() || client_nonce.is_empty() || !client_nonce.bytes().all(printable) {
            return Err(AuthFailure::Malformed);
        }
        let mut token_auth = false;
        for ext in fields {
            let (key, value) = ext.split_once('=').ok_or(AuthFailure::Malformed)?;
            if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
                token_auth = true;
            }
        }
        let authz_ok = authzid.as_deref().is_none_or(|a| a == user);
        let found = users.credential(&user, self.mechanism);
        let acceptable = found.is_some() && !token_auth && authz_ok;
        let credential = found.unwrap_or_else(|| users.decoy(&user, self.mechanism));
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let step = ScramStep::Continue(server_first.clone().into_bytes());
        Ok((
            step,
            State::SentFirst {
                user,
                acceptable,
                gs2_header,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
                credential,
            },
        ))
    }
}

fn printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// A SCRAM saslname: `=2C` is a comma, `=3D` an equals sign, any other `=`
/// is invalid.
pub fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// A SASL/PLAIN message (RFC 4616): `authzid NUL user NUL password`; the
/// authzid must be empty or the user (as Kafka requires).
pub fn parse_plain(message: &[u8]) -> Result<(String, Vec<u8>), AuthFailure> {
    let mut parts = message.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthFailure::Malformed);
    };
    let user = std::str::from_utf8(user).map_err(|_| AuthFailure::Malformed)?;
    if user.is_empty() || password.is_empty() {
        return Err(AuthFailure::Malformed);
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(AuthFailure::InvalidCredentials);
    }
    Ok((user.to_string(), password.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Knows one user, `user`, with the password of the RFC examples.
    struct OneUser(ScramMechanism, Vec<u8>, i32);

    impl CredentialSource for OneUser {
        fn credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
            (user == "user" && m == self.0)
                .then(|| ScramCredential::from_password(m, b"pencil", &self.1, self.2))
        }
        fn decoy(&self, _user: &str, m: ScramMechanism) -> ScramCredential {
            ScramCredential::from_password(m, b"not-a-password", &[7; SALT_LEN], 4096)
        }
    }

    fn rfc7677() -> (OneUser, ScramServer) {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("base64");
        let users = OneUser(ScramMechanism::Sha256, salt, 4096);
        let server = ScramServer::new(
            ScramMechanism::Sha256,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_string(),
        );
        (users, server)
    }

    /// RFC 7677 section 3: the exchange of user "user", password "pencil".
    #[test]
    fn rfc7677_sha256_vector() {
        let (users, mut server) = rfc7677();
        let first = server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &users)
            .expect("first");
        assert_eq!(
            first,
            ScramStep::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        let last = server
            .step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                &users,
            )
            .expect("final");
        assert_eq!(
            last,
            ScramStep::Authenticated {
                user: "user".into(),
                server_final: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
            }
        );
        // Nothing more is accepted.
        assert_eq!(server.step(b"x", &users), Err(AuthFailure::Malformed));
    }

    #[test]
    fn wrong_proof_and_unknown_user_fail_alike_at_the_end() {
        let (users, mut server) = rfc7677();
        server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &users)
            .expect("first");
        let r = server.step(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            &users,
        );
        assert_eq!(r, Err(AuthFailure::InvalidCredentials));

        let (users, mut server) = rfc7677();
        let first = server
            .step(b"n,,n=nobody,r=abc", &users)
            .expect("an unknown user gets a server-first message too");
        let ScramStep::Continue(first) = first else {
            panic!("expected a server-first message")
        };
        let first = String::from_utf8(first).expect("utf8");
        assert!(first.starts_with("r=abc%hv") && first.ends_with(",i=4096"));
        let nonce = first.split(',').next().expect("nonce");
        let r = server.step(format!("c=biws,{nonce},p=AAAA").as_bytes(), &users);
        assert_eq!(r, Err(AuthFailure::InvalidCredentials));
    }

    #[test]
    fn token_auth_and_foreign_authzid_are_refused() {
        for first in [
            &b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO,tokenauth=true"[..],
            b"n,a=admin,n=user,r=rOprNGfwEbeRWgbNEkqO",
        ] {
            let (users, mut server) = rfc7677();
            server.step(first, &users).expect("first");
            let header = if first.starts_with(b"n,a=") {
                "n,a=admin,"
            } else {
                "n,,"
            };
            let final_msg = format!(
                "c={},r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                BASE64.encode(header)
            );
            assert_eq!(
                server.step(final_msg.as_bytes(), &users),
                Err(AuthFailure::InvalidCredentials)
            );
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        for first in [
            &b""[..],
            b"p=tls-unique,,n=user,r=x",
            b"n,,n=us=er,r=x",
            b"n,,r=x",
            b"n,,n=user",
            b"n,,m=ext,n=user,r=x",
            b"\xff\xfe",
        ] {
            let (users, mut server) = rfc7677();
            assert_eq!(server.step(first, &users), Err(AuthFailure::Malformed));
        }
        // A final message with another nonce or binding.
        let (users, mut server) = rfc7677();
        server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &users)
            .expect("first");
        assert_eq!(
            server.step(b"c=biws,r=other,p=AAAA", &users),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn saslnames_and_plain_messages() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=2"), None);
        assert_eq!(
            parse_plain(b"\0alice\0secret"),
            Ok(("alice".into(), b"secret".to_vec()))
        );
        assert_eq!(
            parse_plain(b"alice\0alice\0secret"),
            Ok(("alice".into(), b"secret".to_vec()))
        );
        assert_eq!(
            parse_plain(b"bob\0alice\0secret"),
            Err(AuthFailure::InvalidCredentials)
        );
        assert_eq!(parse_plain(b"\0alice"), Err(AuthFailure::Malformed));
        assert_eq!(parse_plain(b"\0\0secret"), Err(AuthFailure::Malformed));
        assert_eq!(parse_plain(b"\0a\0b\0c"), Err(AuthFailure::Malformed));
    }

    #[test]
    fn credentials_check_passwords() {
        for m in ScramMechanism::ALL {
            let c = ScramCredential::from_password(m, b"pencil", b"salt", 4096);
            assert_eq!(c.stored_key.len(), m.key_len());
            assert!(c.matches_password(m, b"pencil"));
            assert!(!c.matches_password(m, b"pencil2"));
            let salted = m.salted_password(b"pencil", b"salt", 4096);
            assert_eq!(
                ScramCredential::from_salted_password(m, b"salt", 4096, &salted),
                c
            );
            assert_eq!(ScramMechanism::from_type_code(m.type_code()), Some(m));
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(ScramMechanism::from_type_code(0), None);
    }
}
