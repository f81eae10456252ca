//! SASL authentication of one connection on a `SASL_PLAINTEXT` or
//! `SASL_SSL` listener, as Kafka's `SaslServerAuthenticator` does it:
//!
//! ```text
//! Start ──ApiVersions (once)──▶ Start
//!   │ SaslHandshake(mechanism)
//!   ▼
//! Exchange ──SaslAuthenticate (v1+) or a raw token (handshake v0)──▶ Exchange
//!   │ the mechanism is satisfied          │ it is not
//!   ▼                                     ▼
//! Authenticated: every API          Failed: SASL_AUTHENTICATION_FAILED after
//! (principal User:<name>)           the failed-authentication delay, then closed
//! ```
//!
//! Before authentication nothing but ApiVersions, SaslHandshake and
//! SaslAuthenticate is answered, as in Kafka's `SaslServerAuthenticator`:
//! before the handshake any other request (SaslAuthenticate, or a second
//! ApiVersions, too) closes the connection without an answer; after a v1 handshake, any request but
//! SaslAuthenticate (ApiVersions and a second SaslHandshake too) gets its
//! own error answer with ILLEGAL_SASL_STATE (34) after the
//! failed-authentication delay, then the close (every API's answer is
//! [`crate::error_answer`]'s; a request this server cannot read, or a
//! Produce with `acks=0`, closes unanswered). Mechanisms:
//! SCRAM-SHA-256, SCRAM-SHA-512 ([`pubsub_broker::security::scram`]) and
//! PLAIN, all checked against the broker's users. A failure is counted in
//! the metrics by mechanism and reason and logged once, without secrets;
//! the client is told the same whatever went wrong.

use std::sync::Mutex;

use bytes::{BufMut, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use pubsub_broker::security::scram::{
    parse_plain, server_nonce, ScramMechanism, ScramServer, ScramStep,
};
use pubsub_broker::security::{AuthFailure, Principal};

use crate::context::{blocking, Ctx};
use crate::dispatch::Reply;
use crate::error::ServerError;
use crate::error_answer::Failure;

/// Mechanisms served when the listener names none, in order of preference.
pub const DEFAULT_MECHANISMS: [&str; 3] = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];
/// Every mechanism this server knows (the metrics' `mechanism` label).
pub const KNOWN_MECHANISMS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"];

/// Where a connection is in its authentication.
#[derive(Debug, Default)]
pub struct SaslSession {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Waiting for ApiVersions or SaslHandshake.
    #[default]
    Start,
    /// ApiVersions was answered: waiting for SaslHandshake (Kafka's
    /// HANDSHAKE_REQUEST state, where another ApiVersions closes the
    /// connection unanswered).
    VersionsAnswered,
    /// A mechanism was chosen; its tokens come in SaslAuthenticate
    /// requests (`framed`, handshake v1) or bare (handshake v0).
    Exchange { exchange: Exchange, framed: bool },
    /// Done: every API is served.
    Authenticated,
    /// The exchange failed or broke the protocol: the connection closes.
    Failed,
}

#[derive(Debug)]
enum Exchange {
    Plain,
    Scram(Box<ScramServer>),
}

impl Exchange {
    fn mechanism(&self) -> &'static str {
        match self {
            Exchange::Plain => "PLAIN",
            Exchange::Scram(s) => s.mechanism().name(),
        }
    }
}

/// What a SaslAuthenticate (or raw) token led to.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes; the exchange goes on.
    Continue(Vec<u8>),
    /// Send these bytes; the client is authenticated.
    Authenticated(Vec<u8>),
    /// Authentication failed: answer after the delay, then close.
    Failed,
    /// No exchange is under way (ResponseError::IllegalSaslState.code()).
    Illegal(&'static str),
}

fn session(ctx: &Ctx) -> std::sync::MutexGuard<'_, SaslSession> {
    ctx.sasl
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The mechanisms the listener enables.
pub fn enabled_mechanisms(ctx: &Ctx) -> Vec<String> {
    if ctx.listener.sasl_mechanisms.is_empty() {
        DEFAULT_MECHANISMS.iter().map(|m| m.to_string()).collect()
    } else {
        ctx.listener.sasl_mechanisms.clone()
    }
}

/// The largest request frame read before authentication completes, as
/// Kafka's `sasl.server.max.receive.size` (512 KiB): an unauthenticated
/// client cannot make the server buffer and decode a 100 MiB request.
pub const MAX_UNAUTHENTICATED_FRAME: usize = 512 * 1024;

/// The largest frame the connection's next request may be: the listener's
/// limit, or [`MAX_UNAUTHENTICATED_FRAME`] on a SASL listener until the
/// client is authenticated (a larger one closes the connection, as Kafka's
/// `InvalidReceiveException`).
pub fn frame_limit(ctx: &Ctx) -> usize {
    let limit = ctx.config.max_request_bytes;
    if !ctx.listener.protocol.uses_sasl() || matches!(session(ctx).state, State::Authenticated) {
        limit
    } else {
        limit.min(MAX_UNAUTHENTICATED_FRAME)
    }
}

/// Whether the connection must close once what was accepted is answered
/// (a failed authentication).
pub fn must_close(ctx: &Ctx) -> bool {
    matches!(session(ctx).state, State::Failed)
}

/// The pre-authentication gate, before a frame is dispatched: `Ok(None)`
/// lets it through, `Ok(Some(reply))` is the answer to a raw token
/// (handshake v0), an error closes the connection unanswered.
pub async fn gate(ctx: &Ctx, frame: &[u8]) -> Result<Option<Reply>, ServerError> {
    if !ctx.listener.protocol.uses_sasl() {
        return Ok(None);
    }
    let framed = match &session(ctx).state {
        State::Authenticated => return Ok(None),
        State::Failed => {
            return Err(ServerError::Unauthenticated(
                "a request after a failed authentication".into(),
            ))
        }
        State::Start | State::VersionsAnswered => None,
        State::Exchange { framed, .. } => Some(*framed),
    };
    if framed == Some(false) {
        return raw_token(ctx, frame).await.map(Some);
    }
    if frame.len() < 2 {
        // Dispatch reports it as malformed.
        return Ok(None);
    }
    let api = i16::from_be_bytes([frame[0], frame[1]]);
    let allowed = match framed {
        None => api == ApiKey::ApiVersions as i16 || api == ApiKey::SaslHandshake as i16,
        Some(_) => api == ApiKey::SaslAuthenticate as i16,
    };
    if allowed && framed.is_none() && api == ApiKey::ApiVersions as i16 {
        return versions_before_handshake(ctx, frame);
    }
    if allowed {
        return Ok(None);
    }
    let name = ApiKey::try_from(api).map_or_else(|_| format!("key {api}"), |k| format!("{k:?}"));
    let mechanism = current_mechanism(ctx);
    session(ctx).state = State::Failed;
    let Some(mechanism) = mechanism else {
        // Before the handshake, Kafka closes without an answer.
        return Err(ServerError::Unauthenticated(format!(
            "unexpected {name} request during SASL handshake"
        )));
    };
    tracing::warn!(client = %ctx.client_host, mechanism, request = %name, "unexpected request during SASL authentication: ILLEGAL_SASL_STATE, then the close");
    ctx.metrics
        .sasl_outcome(mechanism, Some(AuthFailure::Malformed));
    tokio::time::sleep(ctx.config.failed_authentication_delay).await;
    match crate::error_answer::answer(frame, Failure::illegal_sasl_state) {
        Some(answer) => Ok(Some(Reply::Frame(answer))),
        None => Err(ServerError::Unauthenticated(format!(
            "unexpected {name} request during SASL authentication"
        ))),
    }
}

/// ApiVersions before the handshake: Kafka answers one of a version it
/// speaks (an unsupported version gets its UNSUPPORTED_VERSION answer and
/// may be retried); a second closes the connection unanswered.
fn versions_before_handshake(ctx: &Ctx, frame: &[u8]) -> Result<Option<Reply>, ServerError> {
    let mut s = session(ctx);
    if matches!(s.state, State::VersionsAnswered) {
        s.state = State::Failed;
        return Err(ServerError::Unauthenticated(
            "a second ApiVersions request before the SASL handshake".into(),
        ));
    }
    let version = frame.get(2..4).map(|v| i16::from_be_bytes([v[0], v[1]]));
    let speaks = crate::dispatch::supported(ApiKey::ApiVersions)
        .zip(version)
        .is_some_and(|((min, max), v)| (min..=max).contains(&v));
    if speaks {
        s.state = State::VersionsAnswered;
    }
    Ok(None)
}

/// SaslHandshake: chooses the mechanism. The error code (0,
/// UNSUPPORTED_SASL_MECHANISM (33) or ILLEGAL_SASL_STATE (34)) and the
/// mechanisms enabled.
pub fn handshake(ctx: &Ctx, mechanism: &str, version: i16) -> (i16, Vec<String>) {
    let enabled = enabled_mechanisms(ctx);
    if !ctx.listener.protocol.uses_sasl() {
        // Kafka answers so on a listener without SASL.
        return (ResponseError::IllegalSaslState.code(), enabled);
    }
    let mut s = session(ctx);
    match s.state {
        State::Start | State::VersionsAnswered => {}
        State::Authenticated => return (ResponseError::IllegalSaslState.code(), enabled),
        State::Exchange { .. } | State::Failed => {
            s.state = State::Failed;
            return (ResponseError::IllegalSaslState.code(), enabled);
        }
    }
    let exchange = if !enabled.iter().any(|m| m == mechanism) {
        None
    } else if mechanism == "PLAIN" {
        Some(Exchange::Plain)
    } else if let Some(m) = ScramMechanism::from_name(mechanism) {
        match server_nonce() {
            Ok(nonce) => Some(Exchange::Scram(Box::new(ScramServer::new(m, nonce)))),
            Err(e) => {
                tracing::error!(error = %e, "no random server nonce for SCRAM");
                None
            }
        }
    } else {
        None
    };
    match exchange {
        Some(exchange) => {
            s.state = State::Exchange {
                exchange,
                framed: version >= 1,
            };
            (0, enabled)
        }
        None => {
            drop(s);
            tracing::warn!(client = %ctx.client_host, mechanism, "SASL handshake with a mechanism this listener does not enable");
            session(ctx).state = State::Failed;
            (ResponseError::UnsupportedSaslMechanism.code(), enabled)
        }
    }
}

/// Takes one token of the exchange.
pub fn authenticate(ctx: &Ctx, token: &[u8]) -> Outcome {
    if !ctx.listener.protocol.uses_sasl() {
        return Outcome::Illegal("SaslAuthenticate request received on a listener without SASL");
    }
    let (exchange, framed) = {
        let mut s = session(ctx);
        match std::mem::replace(&mut s.state, State::Failed) {
            State::Exchange { exchange, framed } => (exchange, framed),
            State::Authenticated => {
                // Kafka answers so; the connection stays usable.
                s.state = State::Authenticated;
                return Outcome::Illegal(
                    "SaslAuthenticate request received after successful authentication",
                );
            }
            // Before a handshake, or after a failure: the connection closes.
            State::Start | State::VersionsAnswered | State::Failed => {
                return Outcome::Illegal("SaslAuthenticate request received before a SaslHandshake")
            }
        }
    };
    let mechanism = exchange.mechanism();
    let users = ctx.broker.users();
    // PBKDF2 for PLAIN: off the runtime's thread.
    let (result, user) = blocking(|| match exchange {
        Exchange::Plain => match parse_plain(token) {
            Ok((user, password)) => {
                let ok = users.check_password(&user, &password);
                let r = if ok {
                    Ok((Vec::new(), true, None))
                } else {
                    Err(AuthFailure::InvalidCredentials)
                };
                (r, Some(user))
            }
            Err(e) => (Err(e), None),
        },
        Exchange::Scram(mut scram) => {
            // The name from the client-first message: a failed step leaves
            // the exchange without it, and the log must still say who.
            let named = scram.user().map(str::to_string);
            let r = scram.step(token, users);
            let user = scram.user().map(str::to_string).or(named);
            match r {
                Ok(ScramStep::Continue(first)) => (Ok((first, false, Some(scram))), user),
                Ok(ScramStep::Authenticated { user, server_final }) => {
                    (Ok((server_final, true, None)), Some(user))
                }
                Err(e) => (Err(e), user),
            }
        }
    });
    match result {
        Ok((bytes, false, Some(scram))) => {
            session(ctx).state = State::Exchange {
                exchange: Exchange::Scram(scram),
                framed,
            };
            Outcome::Continue(bytes)
        }
        Ok((bytes, _, _)) => {
            let user = user.unwrap_or_default();
            tracing::debug!(client = %ctx.client_host, mechanism, %user, "SASL authentication succeeded");
            ctx.metrics.sasl_outcome(mechanism, None);
            ctx.set_principal(Principal::user(user));
            session(ctx).state = State::Authenticated;
            Outcome::Authenticated(bytes)
        }
        Err(reason) => {
            tracing::warn!(
                client = %ctx.client_host,
                mechanism,
                user = user.as_deref().unwrap_or("?"),
                reason = reason.as_str(),
                "SASL authentication failed"
            );
            ctx.metrics.sasl_outcome(mechanism, Some(reason));
            Outcome::Failed
        }
    }
}

/// The message every failed authentication of `mechanism` gets, whatever
/// the reason (Kafka 4.1's words for a wrong password).
pub fn failure_message(mechanism: &str) -> String {
    if mechanism == "PLAIN" {
        "Authentication failed: Invalid username or password".to_string()
    } else {
        format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
    }
}

/// The mechanism of the exchange under way, if any.
pub fn current_mechanism(ctx: &Ctx) -> Option<&'static str> {
    match &session(ctx).state {
        State::Exchange { exchange, .. } => Some(exchange.mechanism()),
        _ => None,
    }
}

/// A raw token after a v0 handshake: the answer is a bare size-prefixed
/// token; a failure closes the connection (after the delay) unanswered.
async fn raw_token(ctx: &Ctx, token: &[u8]) -> Result<Reply, ServerError> {
    match authenticate(ctx, token) {
        Outcome::Continue(bytes) | Outcome::Authenticated(bytes) => {
            let mut out = BytesMut::with_capacity(4 + bytes.len());
            out.put_u32(bytes.len() as u32);
            out.put_slice(&bytes);
            Ok(Reply::Frame(out))
        }
        Outcome::Failed | Outcome::Illegal(_) => {
            tokio::time::sleep(ctx.config.failed_authentication_delay).await;
            Err(ServerError::Unauthenticated(
                "SASL authentication failed".into(),
            ))
        }
    }
}

/// The per-connection state, for [`Ctx`].
pub fn new_session() -> std::sync::Arc<Mutex<SaslSession>> {
    std::sync::Arc::new(Mutex::new(SaslSession::default()))
}
