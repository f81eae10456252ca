//! SaslAuthenticate (36): one token of the SASL exchange each way
//! ([`crate::sasl`]). A failed authentication is answered
//! SASL_AUTHENTICATION_FAILED (58) with the same message whatever went
//! wrong, after `failed_authentication_delay` (Kafka's
//! `connection.failed.authentication.delay.ms`), and the connection then
//! closes. `session_lifetime_ms` is 0: no re-authentication (KIP-368).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::sb;
use crate::context::Ctx;
use crate::dispatch::{encode_response, Reply};
use crate::error::ServerError;
use crate::sasl::{self, Outcome};

/// Runs the token through the exchange and encodes the answer (delayed
/// if the authentication failed).
pub fn reply(
    ctx: &Ctx,
    correlation_id: i32,
    req: SaslAuthenticateRequest,
    version: i16,
    slot: usize,
) -> Result<Reply, ServerError> {
    let mechanism = sasl::current_mechanism(ctx);
    let base = SaslAuthenticateResponse::default().with_session_lifetime_ms(0);
    let (resp, delayed) = match sasl::authenticate(ctx, &req.auth_bytes) {
        Outcome::Continue(bytes) | Outcome::Authenticated(bytes) => {
            (base.with_auth_bytes(bytes.into()), false)
        }
        Outcome::Failed => (
            base.with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(sb(&sasl::failure_message(
                    mechanism.unwrap_or_default(),
                )))),
            true,
        ),
        Outcome::Illegal(why) => (
            base.with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(sb(why))),
            false,
        ),
    };
    ctx.metrics.errors_in(slot, &resp);
    let frame = encode_response(ApiKey::SaslAuthenticate, version, correlation_id, &resp)?;
    if !delayed {
        return Ok(Reply::Frame(frame));
    }
    let delay = ctx.config.failed_authentication_delay;
    Ok(Reply::Later(tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        Ok(frame)
    })))
}
