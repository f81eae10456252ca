//! The group protocol's requests and answers as the coordinator takes and
//! gives them (the server maps them to and from Kafka's messages), and
//! DescribeGroups' view of a group.

use super::GroupState;

/// A JoinGroup request.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// "consumer" for consumers.
    pub protocol_type: String,
    /// (assignor name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (-1: the session timeout, as JoinGroup v0 implies).
    pub rebalance_timeout_ms: i32,
    /// Client id.
    pub client_id: String,
    /// Client host as Kafka reports it ("/127.0.0.1").
    pub client_host: String,
    /// JoinGroup v4+: an empty member id gets MEMBER_ID_REQUIRED first.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a static leader that rejoins can be told to skip the
    /// assignment; an older one makes the group rebalance, as on Kafka.
    pub skip_assignment_supported: bool,
}

/// A member as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// The new generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen assignor.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member, for the leader only; empty for the others.
    pub members: Vec<JoinMember>,
    /// The leader keeps the group's assignment and must not compute one (a
    /// static leader rejoining a stable group, JoinGroup v9+).
    pub skip_assignment: bool,
}

/// A SyncGroup request.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Group id.
    pub group_id: String,
    /// Generation from the JoinGroup answer.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+: must match the group's.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+: must match the group's.
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id (empty from followers).
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen assignor.
    pub protocol_name: Option<String>,
    /// This member's assignment bytes.
    pub assignment: Vec<u8>,
}

/// One member in a group description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the chosen protocol (subscription).
    pub metadata: Vec<u8>,
    /// Assignment bytes.
    pub assignment: Vec<u8>,
}

/// DescribeGroups for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: GroupState,
    /// Protocol type ("" if none).
    pub protocol_type: String,
    /// Chosen protocol ("" if none).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}
