//! The records of `__consumer_offsets`, in Kafka's schemas, so Kafka's own
//! tools can read the topic:
//!
//! - key version 1 `{group string, topic string, partition int32}` ->
//!   OffsetCommitValue version 3 `{offset int64, leaderEpoch int32,
//!   metadata string, commitTimestamp int64}`;
//! - key version 2 `{group string}` -> GroupMetadataValue version 3
//!   `{protocolType string, generation int32, protocol nullable string,
//!   leader nullable string, currentStateTimestamp int64, members [memberId,
//!   groupInstanceId nullable, clientId, clientHost, rebalanceTimeout int32,
//!   sessionTimeout int32, subscription bytes, assignment bytes]}`.
//!
//! A null value deletes the key. Every value starts with its int16 version.

use crate::wire::{Reader, WireResult, Writer};

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch the client saw (-1 if none).
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: String,
    /// Wall-clock time of the commit (ms).
    pub commit_timestamp: i64,
}

/// One member as stored in group metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// Group metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsKey {
    /// A committed offset of (group, topic, partition).
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// A group's metadata.
    Group { group: String },
}

impl OffsetsKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            OffsetsKey::Offset {
                group,
                topic,
                partition,
            } => {
                w.i16(1).string(group).string(topic).i32(*partition);
            }
            OffsetsKey::Group { group } => {
                w.i16(2).string(group);
            }
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> WireResult<OffsetsKey> {
        let mut r = Reader::new(bytes);
        match r.i16()? {
            0 | 1 => Ok(OffsetsKey::Offset {
                group: r.string()?,
                topic: r.string()?,
                partition: r.i32()?,
            }),
            2 => Ok(OffsetsKey::Group { group: r.string()? }),
            v => Err(format!("unknown key version {v}")),
        }
    }

    pub fn group(&self) -> &str {
        match self {
            OffsetsKey::Offset { group, .. } | OffsetsKey::Group { group } => group,
        }
    }
}

impl CommittedOffset {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(3)
            .i64(self.offset)
            .i32(self.leader_epoch)
            .string(&self.metadata)
            .i64(self.commit_timestamp);
        w.finish()
    }

    /// Reads versions 0-3 (4 is a flexible encoding Kafka writes; pubsub
    /// never does).
    pub fn decode(bytes: &[u8]) -> WireResult<CommittedOffset> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if !(0..=3).contains(&version) {
            return Err(format!("unsupported offset commit value version {version}"));
        }
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp = r.i64()?;
        if version == 1 {
            r.i64()?; // expireTimestamp
        }
        Ok(CommittedOffset {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        })
    }
}

impl StoredGroup {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(3)
            .string(&self.protocol_type)
            .i32(self.generation)
            .nullable_string(self.protocol.as_deref())
            .nullable_string(self.leader.as_deref())
            .i64(self.state_timestamp)
            .array_len(self.members.len());
        for m in &self.members {
            w.string(&m.member_id)
                .nullable_string(m.instance_id.as_deref())
                .string(&m.client_id)
                .string(&m.client_host)
                .i32(m.rebalance_timeout_ms)
                .i32(m.session_timeout_ms)
                .bytes(&m.subscription)
                .bytes(&m.assignment);
        }
        w.finish()
    }

    /// Reads versions 0-3.
    pub fn decode(bytes: &[u8]) -> WireResult<StoredGroup> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if !(0..=3).contains(&version) {
            return Err(format!("unsupported group metadata version {version}"));
        }
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let n = r.array_len(16)?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let member_id = r.string()?;
            let instance_id = if version >= 3 {
                r.nullable_string()?
            } else {
                None
            };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout_ms = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            members.push(StoredMember {
                member_id,
                instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(StoredGroup {
            protocol_type,
            generation,
            protocol,
            leader,
            state_timestamp,
            members,
        })
    }
}

/// The `__consumer_offsets` partition of a group: Kafka's
/// `abs(groupId.hashCode()) % partitions`, with Java's String.hashCode.
pub fn partition_for_group(group: &str, partitions: u32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        for key in [
            OffsetsKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
            },
            OffsetsKey::Group { group: "g".into() },
        ] {
            assert_eq!(OffsetsKey::decode(&key.encode()), Ok(key));
        }
        let c = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 1,
        };
        assert_eq!(CommittedOffset::decode(&c.encode()), Ok(c));
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 9,
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: vec![1],
                assignment: vec![2],
            }],
        };
        assert_eq!(StoredGroup::decode(&g.encode()), Ok(g));
    }

    #[test]
    fn group_partition_matches_java_string_hash_code() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(partition_for_group("hello", 50), 99_162_322 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka maps it to 0.
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        assert!((0..50).contains(&partition_for_group("some-group", 50)));
    }
}
