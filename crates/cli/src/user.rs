//! `pubsub user create|list|delete`: SCRAM users of a running broker, over
//! Kafka's DescribeUserScramCredentials and AlterUserScramCredentials (so
//! it manages Kafka's users as well as pubsub's). The new user's password
//! is salted here and only SaltedPassword crosses the wire.

use std::path::PathBuf;

use clap::Subcommand;
use pubsub_client::scram::{ScramHash, MIN_ITERATIONS};
use pubsub_client::users;
use pubsub_client::Secret;

use crate::error::CliError;
use crate::remote::{block_on, write_out, ConnArgs};
use crate::table::Table;

/// The most iterations Kafka accepts (its ScramMechanism maximum).
const MAX_ITERATIONS: u32 = 16384;

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a SCRAM user, or change its password (both SCRAM mechanisms
    /// unless --mechanism says otherwise).
    #[command(
        after_help = "Examples:\n  pubsub user create alice --new-password-file alice.pw --user admin --password-file admin.pw --tls-ca ca.pem\n  echo \"$ALICE_PW\" | pubsub user create alice --new-password-file - --command-config admin.properties\n  pubsub user create bob --new-password-file bob.pw --mechanism SCRAM-SHA-256 --iterations 8192\n\nThe password is salted by this command (a random salt per mechanism) and\nonly the salted form is sent (KIP-554)."
    )]
    Create {
        /// User name
        name: String,
        /// File holding the new user's password (one line; `-` for stdin)
        #[arg(long, value_name = "FILE", required_unless_present = "new_password")]
        new_password_file: Option<PathBuf>,
        /// The new user's password (visible to `ps`: prefer --new-password-file)
        #[arg(long, value_name = "PASSWORD", conflicts_with = "new_password_file")]
        new_password: Option<String>,
        /// SCRAM-SHA-256 or SCRAM-SHA-512, repeatable [default: both]
        #[arg(long, value_name = "MECHANISM", value_parser = parse_scram)]
        mechanism: Vec<ScramHash>,
        /// PBKDF2 iterations (4096 to 16384)
        #[arg(long, default_value_t = 8192)]
        iterations: u32,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List users and their SCRAM mechanisms.
    #[command(
        after_help = "Examples:\n  pubsub user list --command-config admin.properties\n  pubsub user list --json"
    )]
    List {
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete a user's SCRAM credentials (all its mechanisms unless
    /// --mechanism says which).
    #[command(
        after_help = "Examples:\n  pubsub user delete alice --command-config admin.properties\n  pubsub user delete bob --mechanism SCRAM-SHA-256"
    )]
    Delete {
        /// User name
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512, repeatable [default: all it has]
        #[arg(long, value_name = "MECHANISM", value_parser = parse_scram)]
        mechanism: Vec<ScramHash>,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

fn parse_scram(s: &str) -> Result<ScramHash, String> {
    let mechanism = s.parse::<pubsub_client::SaslMechanism>()?;
    ScramHash::of(mechanism)
        .ok_or_else(|| format!("{s:?}: users have SCRAM-SHA-256 or SCRAM-SHA-512 credentials"))
}

/// The new user's password: from the file (or stdin), else the flag.
fn new_password(file: Option<PathBuf>, flag: Option<String>) -> Result<Secret, CliError> {
    let text = match (file, flag) {
        (_, Some(p)) => p,
        (Some(path), None) => {
            let read = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&path)
            };
            let text = read.map_err(|source| CliError::Io {
                what: format!("reading the new password from {}", path.display()),
                source,
            })?;
            text.lines().next().unwrap_or("").to_string()
        }
        (None, None) => String::new(),
    };
    if text.is_empty() {
        return Err(CliError::Usage("the new password is empty".into()));
    }
    Ok(Secret::new(text))
}

/// Runs a user command.
pub fn run(cmd: UserCommand) -> Result<(), CliError> {
    block_on(async move {
        match cmd {
            UserCommand::Create {
                name,
                new_password_file,
                new_password: flag,
                mechanism,
                iterations,
                conn,
            } => {
                if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                    return Err(CliError::Usage(format!(
                        "--iterations {iterations}: between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
                    )));
                }
                let password = new_password(new_password_file, flag)?;
                let mechanisms = if mechanism.is_empty() {
                    vec![ScramHash::Sha256, ScramHash::Sha512]
                } else {
                    mechanism
                };
                let mut cluster = conn.connect().await?;
                users::upsert_user(
                    cluster.bootstrap()?,
                    &name,
                    &password,
                    &mechanisms,
                    iterations,
                )
                .await?;
                let names: Vec<&str> = mechanisms.iter().map(|h| h.name()).collect();
                eprintln!("set the {} credentials of user {name}", names.join(" and "));
                Ok(())
            }
            UserCommand::List { json, conn } => {
                let mut cluster = conn.connect().await?;
                let found = users::describe_users(cluster.bootstrap()?, None).await?;
                let out = if json {
                    let list: Vec<serde_json::Value> = found
                        .iter()
                        .map(|u| {
                            serde_json::json!({
                                "user": u.user,
                                "mechanisms": u.mechanisms.iter().map(|(h, i)| serde_json::json!({
                                    "mechanism": h.name(),
                                    "iterations": i,
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    format!("{:#}\n", serde_json::Value::Array(list))
                } else {
                    let mut table = Table::new(&["USER", "MECHANISM", "ITERATIONS"]);
                    for u in &found {
                        for (h, i) in &u.mechanisms {
                            table.row(vec![u.user.clone(), h.name().into(), i.to_string()]);
                        }
                    }
                    table.render()
                };
                write_out(out.as_bytes()).map(drop)
            }
            UserCommand::Delete {
                name,
                mechanism,
                conn,
            } => {
                let mut cluster = conn.connect().await?;
                let mechanisms = if mechanism.is_empty() {
                    let found = users::describe_users(cluster.bootstrap()?, Some(&[&name])).await?;
                    found
                        .into_iter()
                        .flat_map(|u| u.mechanisms)
                        .map(|(h, _)| h)
                        .collect()
                } else {
                    mechanism
                };
                if mechanisms.is_empty() {
                    return Err(CliError::Usage(format!("user {name} has no credentials")));
                }
                users::delete_user(cluster.bootstrap()?, &name, &mechanisms).await?;
                eprintln!("deleted user {name}");
                Ok(())
            }
        }
    })
}
