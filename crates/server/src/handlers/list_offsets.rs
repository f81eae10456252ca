//! ListOffsets (2): earliest (-2), latest (-1), max timestamp (-3: the
//! first record carrying the largest timestamp), earliest local (-4: the
//! log start, everything being local), latest tiered (-5: none, there is
//! no tiered storage) or the first offset at or after a timestamp; each
//! with the leader epoch of the offset (v4+). A `current_leader_epoch`
//! other than the partition's is refused as Kafka refuses it;
//! `timeout_ms` (v10) bounds nothing here, every answer is local.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};
use pubsub_broker::{ListedOffset, OffsetSpec};

use crate::authorize::{Access, LIST_OFFSETS};
use crate::codes::{epoch_error, error_code};
use crate::context::{blocking, Ctx};

/// Kafka's EARLIEST_LOCAL_TIMESTAMP.
const EARLIEST_LOCAL: i64 = -4;
/// Kafka's LATEST_TIERED_TIMESTAMP.
const LATEST_TIERED: i64 = -5;

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // The answer names the offset's leader epoch from v4 on.
    let epoch_of = |e: i32| if version >= 4 { e } else { -1 };
    let access = Access::of(ctx);
    // isolation_level came with v2; before it every read was uncommitted.
    let read_committed = version >= 2 && req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name: &str = &t.name;
            let allowed = access.allows(&LIST_OFFSETS, name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !allowed {
                        return base.with_error_code(LIST_OFFSETS.error);
                    }
                    let part = match ctx.broker.partition(name, p.partition_index) {
                        Ok(part) => part,
                        Err(e) => return base.with_error_code(error_code(&e)),
                    };
                    if let Some(code) = epoch_error(part.leader_epoch(), p.current_leader_epoch) {
                        return base.with_error_code(code);
                    }
                    let spec = match p.timestamp {
                        -2 | EARLIEST_LOCAL => OffsetSpec::Earliest,
                        -1 => OffsetSpec::Latest,
                        -3 => OffsetSpec::MaxTimestamp,
                        // Nothing is tiered: no offset, as Kafka answers
                        // without remote storage.
                        LATEST_TIERED => return base,
                        ts => OffsetSpec::Timestamp(ts),
                    };
                    let listed = blocking(|| ctx.broker.list_offset(name, p.partition_index, spec));
                    // read_committed (as Kafka): LATEST is the last stable
                    // offset, and nothing at or past it is found by time.
                    let listed = match listed {
                        Ok(Some(l)) if read_committed => {
                            let lso = part.last_stable_offset() as i64;
                            match spec {
                                OffsetSpec::Latest => Ok(Some(ListedOffset { offset: lso, ..l })),
                                OffsetSpec::Earliest => Ok(Some(l)),
                                _ => Ok(Some(l).filter(|l| l.offset < lso)),
                            }
                        }
                        other => other,
                    };
                    match listed {
                        Ok(Some(ListedOffset {
                            offset,
                            timestamp,
                            leader_epoch,
                        })) => base
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(epoch_of(leader_epoch)),
                        Ok(None) => base,
                        Err(e) => base.with_error_code(error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
