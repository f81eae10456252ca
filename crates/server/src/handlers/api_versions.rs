//! ApiVersions (18): the versions of every API served, and (version 3 on,
//! in tagged fields) the features: `transaction.version`, which tells
//! clients whether to use KIP-890's transaction version 2.
//!
//! Kafka 4.1.1 answers a new single-node cluster with the supported range
//! `transaction.version` 0-2 and the finalized level 2 (with its
//! `metadata.version`, `group.version`, `kraft.version`, `share.version` and
//! `eligible.leader.replicas.version`, features of its KRaft metadata log
//! that pubsub does not have; no client acts on them). Version 3's
//! supported features leave out those whose range starts at 0 (KIP-1022:
//! older clients refuse a minimum of 0), version 4's list them all; the
//! finalized ones list every feature above level 0.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::context::Ctx;
use crate::dispatch::{encode_response, SUPPORTED};
use crate::error::ServerError;

/// The feature naming the transaction protocol clients may use.
pub const TRANSACTION_VERSION: &str = "transaction.version";
/// The highest `transaction.version` served: 2, KIP-890 part 2 (EndTxn 5's
/// epoch bump, partitions added by Produce 12 and TxnOffsetCommit 5).
pub const TRANSACTION_VERSION_MAX: i16 = 2;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    _req: ApiVersionsRequest,
    v: i16,
) -> ApiVersionsResponse {
    let level = ctx.config.transaction_version;
    ApiVersionsResponse::default()
        .with_api_keys(
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
        .with_supported_features(supported_features(v))
        .with_finalized_features_epoch(finalized_epoch())
        .with_finalized_features(finalized_features(level))
}

/// The features this broker can run, as (name, min, max).
const FEATURES: &[(&str, i16, i16)] = &[(TRANSACTION_VERSION, 0, TRANSACTION_VERSION_MAX)];

/// The supported features of an answer at version `v` (KIP-1022: below
/// version 4, none whose range starts at 0).
fn supported_features(v: i16) -> Vec<SupportedFeatureKey> {
    FEATURES
        .iter()
        .filter(|(_, min, _)| v >= 4 || *min > 0)
        .map(|(name, min, max)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect()
}

/// The finalized features: `transaction.version` at `level` (min and max
/// equal, as Kafka reports it), left out at level 0.
fn finalized_features(level: i16) -> Vec<FinalizedFeatureKey> {
    if level <= 0 {
        return Vec::new();
    }
    vec![FinalizedFeatureKey::default()
        .with_name(StrBytes::from_static_str(TRANSACTION_VERSION))
        .with_min_version_level(level)
        .with_max_version_level(level)]
}

/// The epoch of the finalized features: clients keep the features of the
/// highest epoch they saw, so it must grow whenever the levels may have
/// changed. Levels change only with a restart (a setting), so the process's
/// start time in milliseconds serves (Kafka uses its metadata log's offset).
fn finalized_epoch() -> i64 {
    static EPOCH: OnceLock<i64> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
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
