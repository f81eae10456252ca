//! Users: SCRAM credentials kept as broker metadata in
//! `<data>/users.checkpoint` (a checkpoint container of kind 21, JSON
//! payload, docs/FORMAT.md), loaded at open and replaced atomically on
//! every change, before the change is acknowledged.
//!
//! Per user and mechanism only the salt, the iterations, StoredKey and
//! ServerKey are kept: not the password, not the SaltedPassword. The file
//! also keeps a random secret from which unknown users get decoy salts, so
//! that probing a name twice, even across restarts, answers the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::scram::{
    CredentialSource, ScramCredential, ScramMechanism, DEFAULT_ITERATIONS, SALT_LEN,
};
use crate::error::{BrokerError, Result};
use crate::metadata::{self, KIND_USERS, USERS_FILE};

/// The users of a broker.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    state: Mutex<UsersFile>,
}

/// The file's payload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UsersFile {
    /// Base64 of 32 random bytes: the key of decoy salts.
    decoy_secret: String,
    /// User -> mechanism name -> credential.
    users: BTreeMap<String, BTreeMap<String, StoredCredential>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredCredential {
    salt: String,
    iterations: i32,
    stored_key: String,
    server_key: String,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl StoredCredential {
    fn new(c: &ScramCredential) -> StoredCredential {
        StoredCredential {
            salt: BASE64.encode(&c.salt),
            iterations: c.iterations,
            stored_key: BASE64.encode(&c.stored_key),
            server_key: BASE64.encode(&c.server_key),
        }
    }

    fn credential(&self) -> Option<ScramCredential> {
        Some(ScramCredential {
            salt: BASE64.decode(&self.salt).ok()?,
            iterations: self.iterations,
            stored_key: BASE64.decode(&self.stored_key).ok()?,
            server_key: BASE64.decode(&self.server_key).ok()?,
        })
    }
}

/// One change of [`Users::apply`].
#[derive(Debug, Clone)]
pub enum UserChange {
    /// Sets (adds or replaces) a user's credential for a mechanism.
    Upsert {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The credential.
        credential: ScramCredential,
    },
    /// Removes a user's credential for a mechanism (the user goes with
    /// its last one).
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; n];
    getrandom::fill(&mut out).map_err(|e| BrokerError::Io {
        op: "draw random bytes",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(out)
}

impl Users {
    /// Loads `<dir>/users.checkpoint` (none: no users). A damaged file is
    /// an error: the broker does not open with users it cannot read.
    pub(crate) fn open(dir: &Path) -> Result<Users> {
        let path = dir.join(USERS_FILE);
        let mut file = metadata::read::<UsersFile>(&path, KIND_USERS)?.unwrap_or_default();
        let corrupt = |reason: &str| BrokerError::CorruptMetadata {
            path: path.clone(),
            reason: reason.to_string(),
        };
        for (user, creds) in &file.users {
            for (mechanism, c) in creds {
                if ScramMechanism::from_name(mechanism).is_none() || c.credential().is_none() {
                    return Err(corrupt(&format!(
                        "user {user:?}: unreadable {mechanism} credential"
                    )));
                }
            }
        }
        match BASE64.decode(&file.decoy_secret) {
            Ok(secret) if secret.len() == 32 => {}
            _ if file.users.is_empty() => {
                // Written with the first user.
                file.decoy_secret = BASE64.encode(random_bytes(32)?);
            }
            _ => return Err(corrupt("the decoy secret is missing or damaged")),
        }
        Ok(Users {
            path,
            state: Mutex::new(file),
        })
    }

    /// The credential of `user` for `mechanism`.
    pub fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.state
            .lock()
            .users
            .get(user)?
            .get(mechanism.name())?
            .credential()
    }

    /// Every user with the mechanisms and iterations of its credentials.
    pub fn describe(&self) -> BTreeMap<String, Vec<(ScramMechanism, i32)>> {
        self.state
            .lock()
            .users
            .iter()
            .map(|(user, creds)| {
                let infos = creds
                    .iter()
                    .filter_map(|(m, c)| Some((ScramMechanism::from_name(m)?, c.iterations)))
                    .collect();
                (user.clone(), infos)
            })
            .collect()
    }

    /// Applies `changes` all together: durable (the file replaced and
    /// synced) before this returns Ok, and nothing changed if it fails.
    /// Deleting a credential that does not exist is a no-op here (the
    /// Kafka API checks first).
    pub fn apply(&self, changes: &[UserChange]) -> Result<()> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        for change in changes {
            match change {
                UserChange::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    next.users.entry(user.clone()).or_default().insert(
                        mechanism.name().to_string(),
                        StoredCredential::new(credential),
                    );
                }
                UserChange::Delete { user, mechanism } => {
                    if let Some(creds) = next.users.get_mut(user) {
                        creds.remove(mechanism.name());
                        if creds.is_empty() {
                            next.users.remove(user);
                        }
                    }
                }
            }
        }
        metadata::write(&self.path, KIND_USERS, &next)?;
        *state = next;
        Ok(())
    }

    /// Creates `user` with `password` for both SCRAM mechanisms
    /// ([`DEFAULT_ITERATIONS`], fresh salts) unless it has a credential
    /// already; true if it was created. The bootstrap user.
    pub fn ensure(&self, user: &str, password: &str) -> Result<bool> {
        if self.state.lock().users.contains_key(user) {
            return Ok(false);
        }
        let mut changes = Vec::new();
        for mechanism in ScramMechanism::ALL {
            let salt = random_bytes(SALT_LEN)?;
            changes.push(UserChange::Upsert {
                user: user.to_string(),
                mechanism,
                credential: ScramCredential::from_password(
                    mechanism,
                    password.as_bytes(),
                    &salt,
                    DEFAULT_ITERATIONS,
                ),
            });
        }
        self.apply(&changes)?;
        Ok(true)
    }

    /// Whether `password` is `user`'s (SASL/PLAIN), checked against its
    /// SCRAM-SHA-512 credential, else its SCRAM-SHA-256 one. An unknown
    /// user costs the same work as a known one and is false.
    pub fn check_password(&self, user: &str, password: &[u8]) -> bool {
        let found = [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| Some((m, self.credential(user, m)?)));
        match found {
            Some((m, c)) => c.matches_password(m, password),
            None => {
                let m = ScramMechanism::Sha512;
                // The work of a real check, and its answer thrown away.
                let _ = self.decoy(user, m).matches_password(m, password);
                false
            }
        }
    }

    fn decoy_key(&self, label: &[u8], user: &str, mechanism: ScramMechanism) -> Vec<u8> {
        let secret = BASE64
            .decode(&self.state.lock().decoy_secret)
            .unwrap_or_default();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        for part in [label, mechanism.name().as_bytes(), b"\0", user.as_bytes()] {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

impl CredentialSource for Users {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        Users::credential(self, user, mechanism)
    }

    fn decoy(&self, user: &str, mechanism: ScramMechanism) -> ScramCredential {
        // Keys no password leads to, derived without PBKDF2 so that an
        // unknown user's first message costs what a known user's does
        // (a PLAIN check derives from the salt, as for a real user).
        let mut salt = self.decoy_key(b"salt", user, mechanism);
        salt.resize(SALT_LEN, 0);
        ScramCredential {
            salt,
            iterations: DEFAULT_ITERATIONS,
            stored_key: mechanism.hash_of(&self.decoy_key(b"stored", user, mechanism)),
            server_key: self.decoy_key(b"server", user, mechanism),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_survive_reopening_and_keep_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let users = Users::open(dir.path()).expect("open");
        assert!(users.describe().is_empty());
        assert!(users.ensure("admin", "admin-secret-1").expect("ensure"));
        assert!(!users.ensure("admin", "other").expect("ensure again"));
        let salt = b"0123456789abcdef";
        let salted = ScramMechanism::Sha256.salted_password(b"alice-pw", salt, 8192);
        users
            .apply(&[UserChange::Upsert {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha256,
                credential: ScramCredential::from_salted_password(
                    ScramMechanism::Sha256,
                    salt,
                    8192,
                    &salted,
                ),
            }])
            .expect("upsert");
        let decoy = users.decoy("nobody", ScramMechanism::Sha256);
        drop(users);

        let users = Users::open(dir.path()).expect("reopen");
        let all = users.describe();
        assert_eq!(
            all.get("admin"),
            Some(&vec![
                (ScramMechanism::Sha256, DEFAULT_ITERATIONS),
                (ScramMechanism::Sha512, DEFAULT_ITERATIONS)
            ])
        );
        assert_eq!(
            all.get("alice"),
            Some(&vec![(ScramMechanism::Sha256, 8192)])
        );
        assert!(users.check_password("admin", b"admin-secret-1"));
        assert!(!users.check_password("admin", b"admin-secret-2"));
        assert!(users.check_password("alice", b"alice-pw"));
        assert!(!users.check_password("nobody", b"alice-pw"));
        // Decoys are stable across restarts.
        assert_eq!(users.decoy("nobody", ScramMechanism::Sha256), decoy);

        let bytes = std::fs::read(dir.path().join(USERS_FILE)).expect("read");
        for secret in [&b"admin-secret-1"[..], b"alice-pw", &salted] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "a secret is stored in the users file"
            );
        }
        let salted_b64 = BASE64.encode(&salted);
        assert!(!String::from_utf8_lossy(&bytes).contains(&salted_b64));

        users
            .apply(&[UserChange::Delete {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha256,
            }])
            .expect("delete");
        drop(users);
        let users = Users::open(dir.path()).expect("reopen");
        assert!(users.credential("alice", ScramMechanism::Sha256).is_none());
        assert!(users.credential("admin", ScramMechanism::Sha512).is_some());
    }

    #[test]
    fn a_damaged_users_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let users = Users::open(dir.path()).expect("open");
        users.ensure("admin", "pw").expect("ensure");
        drop(users);
        let path = dir.path().join(USERS_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(&path, &bytes).expect("write");
        let err = Users::open(dir.path()).expect_err("a corrupt file must not open");
        assert!(
            matches!(err, BrokerError::CorruptMetadata { .. }),
            "unexpected error {err}"
        );
        assert!(err.to_string().contains("users.checkpoint"), "{err}");
    }
}
