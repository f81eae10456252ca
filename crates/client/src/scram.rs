//! The client side of SCRAM (RFC 5802, with the SHA-256 and SHA-512 hashes
//! of RFC 7677 as Kafka names them), and the salted password that
//! AlterUserScramCredentials carries (KIP-554: the client salts, the broker
//! derives and keeps only StoredKey and ServerKey).
//!
//! The primitives are RustCrypto's (`hmac`, `sha2`, `pbkdf2`); the server's
//! signature is checked in constant time (`Mac::verify_slice`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::error::{ClientError, Result};
use crate::security::SaslMechanism;

/// The fewest iterations this client accepts from a server, and the
/// default it uses for new credentials (RFC 7677's minimum; Kafka's too).
pub const MIN_ITERATIONS: u32 = 4096;

/// The SCRAM hash of a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// The hash of a SCRAM mechanism; `None` for PLAIN.
    pub fn of(mechanism: SaslMechanism) -> Option<ScramHash> {
        match mechanism {
            SaslMechanism::ScramSha256 => Some(ScramHash::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramHash::Sha512),
            SaslMechanism::Plain => None,
        }
    }

    /// Kafka's number for it in the SCRAM credential APIs (ScramMechanism).
    pub fn kafka_id(self) -> i8 {
        match self {
            ScramHash::Sha256 => 1,
            ScramHash::Sha512 => 2,
        }
    }

    /// The hash for Kafka's ScramMechanism number.
    pub fn from_kafka_id(id: i8) -> Option<ScramHash> {
        match id {
            1 => Some(ScramHash::Sha256),
            2 => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    /// Its mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Hi(password, salt, i): PBKDF2 with HMAC of this hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Whether `tag` is HMAC(key, data), compared in constant time.
    fn hmac_verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        match self {
            ScramHash::Sha256 => <Hmac<Sha256> as Mac>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.verify_slice(tag).is_ok()
                })
                .unwrap_or(false),
            ScramHash::Sha512 => <Hmac<Sha512> as Mac>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.verify_slice(tag).is_ok()
                })
                .unwrap_or(false),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// `n` fresh random bytes from the operating system.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; n];
    getrandom::fill(&mut out)
        .map_err(|e| ClientError::Security(format!("no randomness from the system: {e}")))?;
    Ok(out)
}

/// A user name as SCRAM writes it: `=` as `=3D`, `,` as `=2C`.
fn escape_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn malformed(what: &str) -> ClientError {
    ClientError::Security(format!("the broker's SCRAM {what} is malformed"))
}

/// One SCRAM exchange as the client: [`ScramClient::first`], then
/// [`ScramClient::answer`] to the server's first message, then
/// [`ScramClient::verify`] of the server's final message.
#[derive(Debug)]
pub struct ScramClient {
    hash: ScramHash,
    nonce: String,
    first_bare: String,
    /// Set by `answer`: what `verify` checks.
    server_signature_key: Option<(Vec<u8>, String)>,
}

impl ScramClient {
    /// Starts an exchange for `user`, with a random nonce.
    pub fn new(hash: ScramHash, user: &str) -> Result<ScramClient> {
        let nonce = B64.encode(random_bytes(24)?);
        Ok(ScramClient::with_nonce(hash, user, nonce))
    }

    fn with_nonce(hash: ScramHash, user: &str, nonce: String) -> ScramClient {
        let first_bare = format!("n={},r={nonce}", escape_name(user));
        ScramClient {
            hash,
            nonce,
            first_bare,
            server_signature_key: None,
        }
    }

    /// client-first-message: no channel binding, no authzid.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// client-final-message answering `server_first`, proving `password`.
    pub fn answer(&mut self, server_first: &[u8], password: &str) -> Result<Vec<u8>> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| malformed("first message"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(B64.decode(v).map_err(|_| malformed("salt"))?),
                Some(("i", v)) => {
                    iterations = Some(v.parse::<u32>().map_err(|_| malformed("iteration count"))?)
                }
                Some(("e", v)) => {
                    return Err(ClientError::Security(format!(
                        "the broker refused the SCRAM exchange: {v}"
                    )))
                }
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(malformed("first message"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ClientError::Security(
                "the broker's SCRAM nonce does not extend this client's".into(),
            ));
        }
        if iterations < MIN_ITERATIONS {
            return Err(ClientError::Security(format!(
                "the broker asks for {iterations} SCRAM iterations, fewer than the safe {MIN_ITERATIONS}"
            )));
        }
        let salted = self
            .hash
            .salted_password(password.as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.hash(&client_key);
        // "biws" is base64 of the GS2 header "n,,".
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature_key = Some((server_key, auth_message));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message: the server knew the credentials.
    pub fn verify(&self, server_final: &[u8]) -> Result<()> {
        let server_final =
            std::str::from_utf8(server_final).map_err(|_| malformed("final message"))?;
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(ClientError::Security(format!(
                "the broker refused the SCRAM proof: {e}"
            )));
        }
        let signature = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or_else(|| malformed("final message"))?;
        let signature = B64.decode(signature).map_err(|_| malformed("signature"))?;
        let (server_key, auth_message) = self
            .server_signature_key
            .as_ref()
            .ok_or_else(|| ClientError::Security("the SCRAM exchange is out of order".into()))?;
        if self
            .hash
            .hmac_verify(server_key, auth_message.as_bytes(), &signature)
        {
            Ok(())
        } else {
            Err(ClientError::Security(
                "the broker's SCRAM signature is wrong: it does not know this user's credentials"
                    .into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's example exchange (SCRAM-SHA-256, user "user",
    /// password "pencil").
    #[test]
    fn rfc_7677_example() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(c.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let last = c.answer(server_first, "pencil").expect("answer");
        assert_eq!(
            String::from_utf8(last).expect("utf-8"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .expect("the RFC's server signature");
        assert!(c
            .verify(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert!(c.verify(b"e=invalid-proof").is_err());
    }

    #[test]
    fn a_server_that_does_not_extend_the_nonce_or_skimps_is_refused() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha512, "u", "abc".into());
        assert!(c.answer(b"r=xyz123,s=AAAA,i=4096", "p").is_err());
        assert!(c.answer(b"r=abc,s=AAAA,i=4096", "p").is_err());
        assert!(c.answer(b"r=abcdef,s=AAAA,i=1000", "p").is_err());
        assert!(c.answer(b"r=abcdef,s=AAAA", "p").is_err());
        assert!(c.answer(b"r=abcdef,s=AAAA,i=4096", "p").is_ok());
    }

    #[test]
    fn names_are_escaped() {
        let c = ScramClient::with_nonce(ScramHash::Sha256, "a=b,c", "n".into());
        assert_eq!(c.first(), b"n,,n=a=3Db=2Cc,r=n");
    }

    #[test]
    fn kafka_mechanism_numbers() {
        assert_eq!(ScramHash::from_kafka_id(1), Some(ScramHash::Sha256));
        assert_eq!(ScramHash::from_kafka_id(2), Some(ScramHash::Sha512));
        assert_eq!(ScramHash::from_kafka_id(0), None);
        assert_eq!(
            ScramHash::Sha512.salted_password(b"p", b"s", 4096).len(),
            64
        );
    }
}
