//! Consumer groups seen from outside: listing, describing (members and
//! their assignments), committed offsets, committing and deleting, and the
//! consumer protocol's subscription and assignment bytes.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::admin::name;
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};

fn group_id(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub id: String,
    /// `consumer` for Kafka consumer groups.
    pub protocol_type: String,
    /// `Stable`, `Empty`, ... (empty if the broker does not say).
    pub state: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The coordinator's id for the member.
    pub id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// Where it connects from.
    pub host: String,
    /// Its partitions, by topic.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub id: String,
    /// `Stable`, `Empty`, `Dead`, `PreparingRebalance`, `CompletingRebalance`.
    pub state: String,
    /// The assignor in use (`range`, ...).
    pub protocol: String,
    /// Members, with their assignments.
    pub members: Vec<Member>,
}

/// Every group the cluster's brokers know.
pub async fn list_groups(cluster: &mut Cluster) -> Result<Vec<GroupListing>> {
    let metadata = cluster.metadata(Some(&[])).await?;
    let mut nodes: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    nodes.sort_unstable();
    let mut out = Vec::new();
    for node in nodes {
        let conn = cluster.node(node).await?;
        let v = conn.versions().pick::<ListGroupsRequest>(0..=4)?;
        let resp = conn.call(v, &ListGroupsRequest::default()).await?;
        check(resp.error_code, || "listing groups".into(), None)?;
        out.extend(resp.groups.into_iter().map(|g| GroupListing {
            id: g.group_id.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: g.group_state.to_string(),
        }));
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Describes `group` (state `Dead` with no members if it does not exist).
pub async fn describe_group(conn: &mut Connection, group: &str) -> Result<GroupDescription> {
    let v = conn.versions().pick::<DescribeGroupsRequest>(0..=5)?;
    let resp = conn
        .call(
            v,
            &DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
        )
        .await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Other(format!("no description of group {group}")))?;
    check(
        g.error_code,
        || format!("describing group {group}"),
        g.error_message.as_deref(),
    )?;
    let members = g
        .members
        .into_iter()
        .map(|m| Member {
            id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            // Assignments of other protocol types are opaque: shown empty.
            assignment: decode_assignment(m.member_assignment).unwrap_or_default(),
        })
        .collect();
    Ok(GroupDescription {
        id: group.to_string(),
        state: g.group_state.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    })
}

/// Committed offsets of `group`: topic -> partition -> offset. Partitions
/// without a commit are left out.
pub async fn committed_offsets(
    conn: &mut Connection,
    group: &str,
) -> Result<BTreeMap<String, BTreeMap<i32, i64>>> {
    // v2+ accepts "all topics" as a null topic list.
    let v = conn.versions().pick::<OffsetFetchRequest>(2..=7)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    let resp = conn.call(v, &req).await?;
    check(
        resp.error_code,
        || format!("fetching the offsets of group {group}"),
        None,
    )?;
    let mut out: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            check(
                p.error_code,
                || {
                    format!(
                        "offset of {}-{} in group {group}",
                        t.name.as_str(),
                        p.partition_index
                    )
                },
                None,
            )?;
            if p.committed_offset >= 0 {
                out.entry(t.name.to_string())
                    .or_default()
                    .insert(p.partition_index, p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` (partition -> next offset to read) of `topic` for
/// `group` as member `member` of `generation` (-1 and "" from outside the
/// group, which only an empty group accepts).
pub async fn commit_offsets(
    conn: &mut Connection,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let v = conn.versions().pick::<OffsetCommitRequest>(2..=8)?;
    let req = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name(topic))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(&p, &o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    let resp = conn.call(v, &req).await?;
    for t in resp.topics {
        for p in t.partitions {
            check(
                p.error_code,
                || format!("committing {topic}-{} for group {group}", p.partition_index),
                None,
            )?;
        }
    }
    Ok(())
}

/// Deletes an empty group and its offsets.
pub async fn delete_group(conn: &mut Connection, group: &str) -> Result<()> {
    let v = conn.versions().pick::<DeleteGroupsRequest>(0..=2)?;
    let resp = conn
        .call(
            v,
            &DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]),
        )
        .await?;
    for r in resp.results {
        let message = match ResponseError::try_from_code(r.error_code) {
            Some(ResponseError::GroupIdNotFound) => Some("the group does not exist"),
            Some(ResponseError::NonEmptyGroup) => {
                Some("the group still has members; stop its consumers first")
            }
            _ => None,
        };
        check(r.error_code, || format!("deleting group {group}"), message)?;
    }
    Ok(())
}

/// Consumer-protocol version written (v0: topics and user data; every
/// broker and client reads it).
const PROTOCOL_VERSION: i16 = 0;

/// The JoinGroup metadata of a consumer subscribed to `topics`.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let sub = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    versioned(&sub)
}

/// The topics of a consumer's JoinGroup metadata.
pub fn decode_subscription(mut bytes: Bytes) -> Result<Vec<String>> {
    let version = read_version(&mut bytes)?;
    let sub = ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map_err(|e| ClientError::Protocol(format!("a member's subscription: {e}")))?;
    Ok(sub.topics.into_iter().map(|t| t.to_string()).collect())
}

/// The SyncGroup assignment bytes for `partitions` (topic -> partitions).
pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(t, ps)| {
                AssignedPartitions::default()
                    .with_topic(name(t))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    versioned(&a)
}

/// Topic -> partitions of SyncGroup assignment bytes (empty bytes: none).
pub fn decode_assignment(mut bytes: Bytes) -> Result<BTreeMap<String, Vec<i32>>> {
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let version = read_version(&mut bytes)?;
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|e| ClientError::Protocol(format!("an assignment: {e}")))?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.to_string(), tp.partitions))
        .collect())
}

fn versioned<T: Encodable>(msg: &T) -> Result<Bytes> {
    let encode = |e| ClientError::Protocol(format!("encoding consumer-protocol bytes: {e}"));
    let mut buf = BytesMut::new();
    buf.put_i16(PROTOCOL_VERSION);
    msg.encode(&mut buf, PROTOCOL_VERSION).map_err(encode)?;
    Ok(buf.freeze())
}

/// The version prefix; newer versions than we know are read as the newest
/// we know (fields are only ever added at the end).
fn read_version(bytes: &mut Bytes) -> Result<i16> {
    if bytes.len() < 2 {
        return Err(ClientError::Protocol(
            "consumer-protocol bytes without a version".into(),
        ));
    }
    Ok(bytes.get_i16().clamp(0, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_assignment_round_trip() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let sub = encode_subscription(&topics).expect("encode");
        assert_eq!(&sub[..2], &[0, 0], "version prefix");
        assert_eq!(decode_subscription(sub).expect("decode"), topics);
        let mut parts = BTreeMap::new();
        parts.insert("a".to_string(), vec![0, 2]);
        parts.insert("b".to_string(), vec![1]);
        let bytes = encode_assignment(&parts).expect("encode");
        assert_eq!(decode_assignment(bytes).expect("decode"), parts);
        assert!(decode_assignment(Bytes::new()).expect("empty").is_empty());
        assert!(decode_assignment(Bytes::from_static(&[0])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }
}
