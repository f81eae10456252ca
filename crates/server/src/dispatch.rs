//! From a request frame to a response frame: header checks, the table of
//! advertised API versions, decoding, the handler, encoding.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TxnOffsetCommitRequest;
use kafka_protocol::messages::WriteTxnMarkersRequest;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, CreateAclsRequest, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteAclsRequest, DeleteGroupsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeAclsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, DescribeLogDirsRequest, DescribeProducersRequest,
    DescribeTopicPartitionsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    RequestHeader, ResponseHeader, SyncGroupRequest,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::messages::{DescribeTransactionsRequest, ListTransactionsRequest};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::task::JoinHandle;

use crate::context::Ctx;
use crate::error::ServerError;
use crate::fetch_response::{self, ResponseFrame};
use crate::handlers;
use crate::metrics::api_slot;

/// Every API served, with the versions advertised. Nothing else is
/// advertised: clients change behaviour on what they see.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

/// The advertised range of an API.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// What to send back.
#[derive(Debug)]
pub enum Reply {
    /// A whole response frame, length prefix included.
    Frame(BytesMut),
    /// A whole response frame as chunks, some of them file ranges (Fetch).
    Chunks(ResponseFrame),
    /// A response frame still being completed on a blocking thread (an
    /// `acks=all` produce waiting for its fsync); the connection's writer
    /// awaits it in turn.
    Later(JoinHandle<Result<BytesMut, ServerError>>),
    /// Nothing (Produce with acks=0).
    Nothing,
}

impl Reply {
    /// The frame to send, once ready (`None`: send nothing).
    pub async fn resolve(self) -> Result<Option<ResponseFrame>, ServerError> {
        match self {
            Reply::Frame(bytes) => Ok(Some(ResponseFrame::from_bytes(bytes.freeze()))),
            Reply::Chunks(frame) => Ok(Some(frame)),
            Reply::Later(pending) => pending
                .await
                .map_err(|e| ServerError::Internal(format!("completing a response: {e}")))?
                .map(|bytes| Some(ResponseFrame::from_bytes(bytes.freeze()))),
            Reply::Nothing => Ok(None),
        }
    }
}

/// Encodes a response frame: size, header (in the API's header version), body.
pub fn encode_response<T: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, ServerError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = key.response_header_version(version);
    let size = header.compute_size(header_version).map_err(enc)?
        + body.compute_size(version).map_err(enc)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).map_err(enc)?;
    body.encode(&mut buf, version).map_err(enc)?;
    Ok(buf)
}

fn enc(e: impl std::fmt::Display) -> ServerError {
    ServerError::Encode(e.to_string())
}

fn malformed(e: impl std::fmt::Display) -> ServerError {
    ServerError::Malformed(e.to_string())
}

/// Handles one request frame.
pub async fn dispatch(ctx: &Ctx, frame: BytesMut) -> Result<Reply, ServerError> {
    // On a SASL listener, before authentication: only ApiVersions and the
    // SASL exchange (raw tokens after a v0 handshake, however short, are
    // answered here).
    if let Some(reply) = crate::sasl::gate(ctx, &frame).await? {
        return Ok(reply);
    }
    if frame.len() < 8 {
        return Err(malformed(format!(
            "{} bytes is too short for a request header",
            frame.len()
        )));
    }
    let api = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(api).map_err(|_| ServerError::UnknownApi(api))?;
    let (min, max) = supported(key).ok_or(ServerError::UnknownApi(api))?;
    // Every supported API has a slot.
    let slot = api_slot(api).ok_or(ServerError::UnknownApi(api))?;
    if key == ApiKey::ApiVersions && version > max {
        // KIP-511: a v0-layout answer listing only ApiVersions, so the client
        // retries with a version we speak.
        ctx.metrics.request(slot);
        ctx.metrics
            .error(slot, ResponseError::UnsupportedVersion.code());
        return Ok(Reply::Frame(handlers::api_versions::unsupported(
            correlation_id,
        )?));
    }
    if version < min || version > max {
        return Err(ServerError::UnsupportedVersion { api, version });
    }
    let frame: Bytes = frame.freeze();
    let mut body = frame.clone();
    let header =
        RequestHeader::decode(&mut body, key.request_header_version(version)).map_err(malformed)?;
    // Decode the request, run its handler, count the answer's error codes,
    // encode it.
    macro_rules! serve {
        ($Req:ty, $handler:path) => {{
            let req = <$Req>::decode(&mut body, version).map_err(malformed)?;
            ctx.metrics.request(slot);
            let resp = $handler(ctx, &header, req, version).await;
            ctx.metrics.errors_in(slot, &resp);
            Reply::Frame(encode_response(key, version, correlation_id, &resp)?)
        }};
    }
    let reply = match key {
        ApiKey::ApiVersions => serve!(ApiVersionsRequest, handlers::api_versions::handle),
        ApiKey::Metadata => serve!(MetadataRequest, handlers::metadata::handle),
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut body, version).map_err(malformed)?;
            ctx.metrics.request(slot);
            // The records may be written in place in the frame: nothing
            // but the request may keep a part of it.
            let correlation_id = header.correlation_id;
            drop((body, header));
            // Counts its answer's error codes itself (after the fsync for acks=all).
            handlers::produce::reply(ctx, correlation_id, frame, req, version, slot)?
        }
        ApiKey::Fetch => {
            // Records stay in their segment files (see fetch_response).
            let req = FetchRequest::decode(&mut body, version).map_err(malformed)?;
            ctx.metrics.request(slot);
            let (resp, files) = handlers::fetch::handle(ctx, &header, req, version).await;
            ctx.metrics.errors_in(slot, &resp);
            Reply::Chunks(fetch_response::encode(
                version,
                correlation_id,
                &resp,
                &files,
            )?)
        }
        ApiKey::ListOffsets => serve!(ListOffsetsRequest, handlers::list_offsets::handle),
        ApiKey::FindCoordinator => {
            serve!(FindCoordinatorRequest, handlers::find_coordinator::handle)
        }
        ApiKey::JoinGroup => serve!(JoinGroupRequest, handlers::join_group::handle),
        ApiKey::SyncGroup => serve!(SyncGroupRequest, handlers::sync_group::handle),
        ApiKey::Heartbeat => serve!(HeartbeatRequest, handlers::heartbeat::handle),
        ApiKey::LeaveGroup => serve!(LeaveGroupRequest, handlers::leave_group::handle),
        ApiKey::OffsetCommit => serve!(OffsetCommitRequest, handlers::offset_commit::handle),
        ApiKey::OffsetFetch => serve!(OffsetFetchRequest, handlers::offset_fetch::handle),
        ApiKey::InitProducerId => serve!(InitProducerIdRequest, handlers::init_producer_id::handle),
        ApiKey::AddPartitionsToTxn => serve!(
            AddPartitionsToTxnRequest,
            handlers::add_partitions_to_txn::handle
        ),
        ApiKey::AddOffsetsToTxn => {
            serve!(AddOffsetsToTxnRequest, handlers::add_offsets_to_txn::handle)
        }
        ApiKey::EndTxn => serve!(EndTxnRequest, handlers::end_txn::handle),
        ApiKey::TxnOffsetCommit => {
            serve!(TxnOffsetCommitRequest, handlers::txn_offset_commit::handle)
        }
        ApiKey::CreateTopics => serve!(CreateTopicsRequest, handlers::create_topics::handle),
        ApiKey::DeleteTopics => serve!(DeleteTopicsRequest, handlers::delete_topics::handle),
        ApiKey::DescribeGroups => serve!(DescribeGroupsRequest, handlers::describe_groups::handle),
        ApiKey::ListGroups => serve!(ListGroupsRequest, handlers::list_groups::handle),
        ApiKey::DeleteGroups => serve!(DeleteGroupsRequest, handlers::delete_groups::handle),
        ApiKey::DescribeConfigs => {
            serve!(DescribeConfigsRequest, handlers::describe_configs::handle)
        }
        ApiKey::CreatePartitions => {
            serve!(CreatePartitionsRequest, handlers::create_partitions::handle)
        }
        ApiKey::IncrementalAlterConfigs => serve!(
            IncrementalAlterConfigsRequest,
            handlers::incremental_alter_configs::handle
        ),
        ApiKey::DescribeLogDirs => {
            serve!(DescribeLogDirsRequest, handlers::describe_log_dirs::handle)
        }
        ApiKey::DeleteRecords => serve!(DeleteRecordsRequest, handlers::delete_records::handle),
        ApiKey::AlterConfigs => serve!(AlterConfigsRequest, handlers::alter_configs::handle),
        ApiKey::OffsetDelete => serve!(OffsetDeleteRequest, handlers::offset_delete::handle),
        ApiKey::DescribeCluster => {
            serve!(DescribeClusterRequest, handlers::describe_cluster::handle)
        }
        ApiKey::DescribeTopicPartitions => serve!(
            DescribeTopicPartitionsRequest,
            handlers::describe_topic_partitions::handle
        ),
        ApiKey::OffsetForLeaderEpoch => serve!(
            OffsetForLeaderEpochRequest,
            handlers::offset_for_leader_epoch::handle
        ),
        ApiKey::DescribeProducers => {
            serve!(
                DescribeProducersRequest,
                handlers::describe_producers::handle
            )
        }
        ApiKey::DescribeTransactions => serve!(
            DescribeTransactionsRequest,
            handlers::describe_transactions::handle
        ),
        ApiKey::ListTransactions => {
            serve!(ListTransactionsRequest, handlers::list_transactions::handle)
        }
        ApiKey::WriteTxnMarkers => {
            serve!(WriteTxnMarkersRequest, handlers::write_txn_markers::handle)
        }
        ApiKey::SaslHandshake => serve!(SaslHandshakeRequest, handlers::sasl_handshake::handle),
        ApiKey::SaslAuthenticate => {
            let req = SaslAuthenticateRequest::decode(&mut body, version).map_err(malformed)?;
            ctx.metrics.request(slot);
            // Counts its answer's error codes; delays a failure's answer.
            handlers::sasl_authenticate::reply(ctx, correlation_id, req, version, slot)?
        }
        ApiKey::DescribeUserScramCredentials => serve!(
            DescribeUserScramCredentialsRequest,
            handlers::describe_user_scram_credentials::handle
        ),
        ApiKey::AlterUserScramCredentials => serve!(
            AlterUserScramCredentialsRequest,
            handlers::alter_user_scram_credentials::handle
        ),
        ApiKey::DescribeAcls => serve!(DescribeAclsRequest, handlers::describe_acls::handle),
        ApiKey::CreateAcls => serve!(CreateAclsRequest, handlers::create_acls::handle),
        ApiKey::DeleteAcls => serve!(DeleteAclsRequest, handlers::delete_acls::handle),
        _ => return Err(ServerError::UnknownApi(api)),
    };
    Ok(reply)
}
