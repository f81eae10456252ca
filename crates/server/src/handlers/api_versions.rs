//! ApiVersions (18): the versions of every API served.

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use crate::context::Ctx;
use crate::dispatch::{encode_response, SUPPORTED};
use crate::error::ServerError;

pub async fn handle(
    _ctx: &Ctx,
    _h: &RequestHeader,
    _req: ApiVersionsRequest,
    _v: i16,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        SUPPORTED
            .iter()
            .map(|(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(*key as i16)
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect(),
    )
}

/// KIP-511: the answer to an ApiVersions version we do not speak, in the v0
/// layout, listing only ApiVersions so the client retries with one we do.
pub fn unsupported(correlation_id: i32) -> Result<BytesMut, ServerError> {
    let (min, max) = crate::dispatch::supported(ApiKey::ApiVersions).unwrap_or((0, 0));
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(min)
            .with_max_version(max)]);
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
