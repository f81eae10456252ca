//! DeleteRecords: moving a partition's log start offset forward, as Kafka
//! does for `AdminClient.deleteRecords` and `kafka-delete-records`.

use super::Broker;
use crate::error::{BrokerError, Result};

/// The offset DeleteRecords takes to mean "the high watermark".
pub const HIGH_WATERMARK: i64 = -1;

impl Broker {
    /// Makes every record of `topic`-`partition` below `offset` unreadable
    /// (`-1`: below the high watermark) and returns the log start offset
    /// afterwards (Kafka's low watermark), once it is durable. An offset
    /// below the current start changes nothing; one beyond the high
    /// watermark, or negative, is out of range; a topic whose cleanup policy
    /// does not delete refuses (a policy violation, as in Kafka).
    pub fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> Result<u64> {
        let p = self.inner.partition(topic, partition)?;
        if !p.config().cleanup_policy.deletes() {
            return Err(BrokerError::PolicyViolation(format!(
                "Records of partition {topic}-{partition} can not be deleted due to the configured policy"
            )));
        }
        let log = p.log();
        let target = if offset == HIGH_WATERMARK {
            log.log_end_offset()
        } else {
            u64::try_from(offset).map_err(|_| BrokerError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset: 0,
                start: log.log_start_offset(),
                end: log.log_end_offset(),
            })?
        };
        let report = log
            .advance_start_offset(target)
            .map_err(|e| BrokerError::storage(topic, partition, e))?;
        Ok(report.log_start_offset)
    }
}
