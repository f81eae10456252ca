//! DescribeLogDirs (35): the size of every partition on disk, grouped under
//! the one log directory (the data directory), with the file system's total
//! and usable bytes. `pubsub topic describe` and Kafka's
//! `kafka-log-dirs.sh` read partition sizes from it.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, RequestHeader};

use crate::authorize::{Access, DESCRIBE_LOG_DIRS};
use crate::context::Ctx;
use crate::handlers::{sb, topic_name};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DescribeLogDirsRequest,
    _version: i16,
) -> DescribeLogDirsResponse {
    if !Access::of(ctx).allows(&DESCRIBE_LOG_DIRS, "") {
        return DescribeLogDirsResponse::default().with_error_code(DESCRIBE_LOG_DIRS.error);
    }
    // `None` asks for every partition; otherwise only those named (unknown
    // ones are left out, as Kafka does).
    let wanted: Vec<(String, Vec<i32>)> = match req.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
        None => ctx
            .broker
            .topics(true)
            .into_iter()
            .filter_map(|name| {
                let count = ctx.broker.partition_count(&name)?;
                let all = (0..count).filter_map(|p| i32::try_from(p).ok()).collect();
                Some((name, all))
            })
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, partitions)| {
            let partitions: Vec<DescribeLogDirsPartition> = partitions
                .into_iter()
                .filter_map(|p| {
                    // Without opening it: a partition not used since the
                    // start reports the size its clean close recorded.
                    let partition = ctx.broker.describe_partition(&name, p).ok()?;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p)
                            .with_partition_size(
                                i64::try_from(partition.size_bytes).unwrap_or(i64::MAX),
                            ),
                    )
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&name))
                    .with_partitions(partitions)
            })
        })
        .collect();
    let (total, usable) = disk_space(ctx.broker.dir()).unwrap_or((-1, -1));
    let dir = std::fs::canonicalize(ctx.broker.dir()).unwrap_or_else(|_| ctx.broker.dir().into());
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(sb(&dir.to_string_lossy()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}

/// Total and available bytes of the file system holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a valid
    // out-pointer for the duration of the call.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = i64::try_from(stat.f_frsize).ok()?;
    let total = i64::try_from(stat.f_blocks).ok()?.saturating_mul(block);
    let usable = i64::try_from(stat.f_bavail).ok()?.saturating_mul(block);
    Some((total, usable))
}
