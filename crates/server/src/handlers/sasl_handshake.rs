//! SaslHandshake (17): the client names a SASL mechanism; v0 means the
//! mechanism's tokens follow bare (size-prefixed, without Kafka headers),
//! v1 that they come in SaslAuthenticate requests. The state machine is
//! [`crate::sasl`].

use kafka_protocol::messages::{RequestHeader, SaslHandshakeRequest, SaslHandshakeResponse};

use super::sb;
use crate::context::Ctx;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: SaslHandshakeRequest,
    version: i16,
) -> SaslHandshakeResponse {
    let (code, mechanisms) = crate::sasl::handshake(ctx, &req.mechanism, version);
    SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(mechanisms.iter().map(|m| sb(m)).collect())
}
