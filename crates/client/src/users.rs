//! SCRAM users over Kafka's own APIs: DescribeUserScramCredentials (50)
//! and AlterUserScramCredentials (51), as KIP-554 defines them. The client
//! salts: it draws a random salt and sends SaltedPassword (PBKDF2 of the
//! password), never the password; the broker keeps StoredKey and ServerKey.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
use crate::scram::{random_bytes, ScramHash};
use crate::security::Secret;

/// Salt length of new credentials (Kafka's own tools draw this many bytes).
const SALT_LEN: usize = 32;

/// A user and the SCRAM credentials it has, by mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    /// The user name.
    pub user: String,
    /// (mechanism, iterations), in mechanism order.
    pub mechanisms: Vec<(ScramHash, i32)>,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The users with SCRAM credentials: all of them for `None`, else those
/// named (an unknown name is RESOURCE_NOT_FOUND).
pub async fn describe_users(
    conn: &mut Connection,
    users: Option<&[&str]>,
) -> Result<Vec<UserCredentials>> {
    let v = conn
        .versions()
        .pick::<DescribeUserScramCredentialsRequest>(0..=0)?;
    // All users is an empty list, not null: Kafka 4.1 reads both as "all",
    // but refusing a null list (to a user without Describe on the cluster)
    // throws in its error path and never answers. Kafka's admin client
    // sends an empty list too.
    let names = users.unwrap_or_default();
    let req = DescribeUserScramCredentialsRequest::default().with_users(Some(
        names
            .iter()
            .map(|u| UserName::default().with_name(sb(u)))
            .collect(),
    ));
    let resp = conn.call(v, &req).await?;
    check(
        resp.error_code,
        || "listing users".into(),
        resp.error_message.as_deref(),
    )?;
    let mut out = Vec::with_capacity(resp.results.len());
    for r in resp.results {
        let user = r.user.to_string();
        check(
            r.error_code,
            || format!("describing user {user}"),
            r.error_message.as_deref(),
        )?;
        let mut mechanisms = Vec::new();
        for c in &r.credential_infos {
            let hash = ScramHash::from_kafka_id(c.mechanism).ok_or_else(|| {
                ClientError::Protocol(format!("the broker sent SCRAM mechanism {}", c.mechanism))
            })?;
            mechanisms.push((hash, c.iterations));
        }
        mechanisms.sort_by_key(|(h, _)| h.kafka_id());
        out.push(UserCredentials { user, mechanisms });
    }
    out.sort_by(|a, b| a.user.cmp(&b.user));
    Ok(out)
}

/// Creates `user`, or changes its password, for each of `mechanisms`, with
/// `iterations` rounds and a fresh random salt each. One request per
/// mechanism: Kafka refuses a user named twice in one request
/// (DUPLICATE_RESOURCE).
pub async fn upsert_user(
    conn: &mut Connection,
    user: &str,
    password: &Secret,
    mechanisms: &[ScramHash],
    iterations: u32,
) -> Result<()> {
    let rounds = i32::try_from(iterations)
        .map_err(|_| ClientError::Other(format!("{iterations} iterations are too many")))?;
    for &hash in mechanisms {
        let salt = random_bytes(SALT_LEN)?;
        let salted = hash.salted_password(password.expose().as_bytes(), &salt, iterations);
        let upsertion = ScramCredentialUpsertion::default()
            .with_name(sb(user))
            .with_mechanism(hash.kafka_id())
            .with_iterations(rounds)
            .with_salt(Bytes::from(salt))
            .with_salted_password(Bytes::from(salted));
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
        alter(conn, &req, user, "setting the credentials of user").await?;
    }
    Ok(())
}

/// Deletes `user`'s credentials for each of `mechanisms` (one request
/// each, as [`upsert_user`]).
pub async fn delete_user(
    conn: &mut Connection,
    user: &str,
    mechanisms: &[ScramHash],
) -> Result<()> {
    for h in mechanisms {
        let deletion = ScramCredentialDeletion::default()
            .with_name(sb(user))
            .with_mechanism(h.kafka_id());
        let req = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
        alter(conn, &req, user, "deleting user").await?;
    }
    Ok(())
}

async fn alter(
    conn: &mut Connection,
    req: &AlterUserScramCredentialsRequest,
    user: &str,
    what: &str,
) -> Result<()> {
    let v = conn
        .versions()
        .pick::<AlterUserScramCredentialsRequest>(0..=0)?;
    let resp = conn.call(v, req).await?;
    for r in &resp.results {
        check(
            r.error_code,
            || format!("{what} {user}"),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}
