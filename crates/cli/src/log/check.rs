//! `pubsub log check`: every partition of a stopped broker's data
//! directory through `pubsub_storage::check`, plus what the broker's own
//! open would change or answer (its rules come from `pubsub_broker::check`:
//! stale directories, unreadable metadata files, a closed-partitions file
//! that does not match the logs), reported as text or one JSON document.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pubsub_broker::check::{
    self, partition_dir, split_dir_name, TopicFiles, LOCK_FILE, PARTITION_FILE, TOPICS_DIR,
};
use pubsub_broker::TopicConfig;
use pubsub_storage::{CheckReport, FlushPolicy, LogConfig, Outcome, SegmentCheck};
use serde_json::{json, Value};

use super::{base_from_name, io_error, CheckArgs, Out};
use crate::error::CliError;

/// Holds files a partition directory may contain.
fn is_partition_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let path = e.path();
        base_from_name(&path).is_some()
            || e.file_name() == PARTITION_FILE
            || e.file_name() == pubsub_storage::RECOVERY_CHECKPOINT
    })
}

/// The findings for one partition directory.
#[derive(Debug)]
struct PartitionCheck {
    name: String,
    topic: Option<String>,
    partition: Option<i32>,
    index_interval_bytes: u64,
    report: CheckReport,
    /// What the broker would change or refuse, besides the log itself.
    problems: Vec<String>,
    /// The log ends below its recovery point (recovery refuses to open it).
    ends_below_recovery_point: bool,
}

impl PartitionCheck {
    fn healthy(&self) -> bool {
        self.report.is_healthy()
            && self.report.leftover_files.is_empty()
            && !self.report.segments.is_empty()
            && !self.ends_below_recovery_point
            && self.problems.is_empty()
    }
}

/// Reads the topic files; an unreadable one is a problem (open would fail).
fn read_topics(data_dir: &Path, problems: &mut Vec<String>) -> Result<TopicFiles, CliError> {
    let topics = check::topic_files(data_dir).map_err(|e| {
        io_error(
            format!("cannot list {}", data_dir.join(TOPICS_DIR).display()),
            e,
        )
    })?;
    for why in &topics.unreadable {
        problems.push(format!("{why}: open would fail"));
    }
    Ok(topics)
}

fn check_partition(
    dir: &Path,
    broker_dir: bool,
    topics: &TopicFiles,
    index_interval: Option<u64>,
) -> Result<PartitionCheck, CliError> {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut problems = Vec::new();
    let meta = check::partition_meta(dir).unwrap_or_else(|why| {
        problems.push(format!("{why}: open would fail"));
        None
    });
    let (topic, partition) = match &meta {
        Some(m) => (Some(m.topic.clone()), Some(m.partition)),
        None => match split_dir_name(&name) {
            Some((t, n)) => (Some(t.to_string()), Some(n)),
            None => (None, None),
        },
    };
    let topic_file = topic.as_ref().and_then(|t| topics.by_name.get(t));
    // The broker removes a directory whose partition.checkpoint names a
    // topic (id) it does not have, or a partition beyond the count.
    if let (true, true, Some(m)) = (broker_dir, topics.unreadable.is_empty(), &meta) {
        if let Some(why) = check::stale_reason(&name, m, topic_file) {
            problems.push(format!(
                "{PARTITION_FILE} names topic {:?} (id {}) partition {}, but {why}: open would delete this directory",
                m.topic, m.topic_id, m.partition
            ));
        }
    }
    // The log configuration the broker opens the partition with.
    let mut config = LogConfig::default();
    if let Some(t) = topic_file {
        match TopicConfig::default().with_overrides(&t.configs) {
            Ok(c) => config = c.log_config(FlushPolicy::Never),
            Err(e) => problems.push(format!("topic {:?}: {e}: open would fail", t.name)),
        }
    }
    if let Some(bytes) = index_interval {
        config.index_interval_bytes = bytes;
    }
    if let Some(why) = check::producers_file_problem(dir) {
        problems.push(format!(
            "{why}: open would ignore it and rebuild the producer state from the log"
        ));
    }
    if let Some(why) = check::leader_epochs_file_problem(dir) {
        problems.push(format!(
            "{why}: open would ignore it and rebuild the leader-epoch cache from the log"
        ));
    }
    let report = pubsub_storage::check(dir, &config)?;
    Ok(PartitionCheck {
        name,
        topic,
        partition,
        index_interval_bytes: config.index_interval_bytes,
        ends_below_recovery_point: report.ends_below_recovery_point(),
        report,
        problems,
    })
}

/// The partition directories of a data directory, by topic then partition;
/// `<topic>-<n>.<uuid>.delete` directories go to `deleting`.
fn partition_dirs(data_dir: &Path, deleting: &mut Vec<String>) -> Result<Vec<PathBuf>, CliError> {
    let listing = check::list_data_dir(data_dir)
        .map_err(|e| io_error(format!("cannot list {}", data_dir.display()), e))?;
    deleting.extend(listing.deleting.into_iter().map(|(name, _)| name));
    Ok(listing
        .dirs
        .into_iter()
        .filter(|(_, path)| is_partition_dir(path))
        .map(|(_, path)| path)
        .collect())
}

pub(super) fn check(args: &CheckArgs) -> Result<(), CliError> {
    let path = &args.path;
    let meta = std::fs::metadata(path)
        .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
    if !meta.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is not a directory: check takes a data directory or a partition directory",
            path.display()
        )));
    }
    let single = is_partition_dir(path);
    let data_dir = if single {
        path.parent()
            .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
    } else {
        path.clone()
    };
    let broker_dir = check::is_data_dir(&data_dir);
    let running = check::broker_running(&data_dir);
    if running {
        eprintln!(
            "warning: a running broker holds {} (its {LOCK_FILE} is locked): active segments may change while they are checked",
            data_dir.display()
        );
    }
    let mut problems = Vec::new();
    let topics = if broker_dir {
        read_topics(&data_dir, &mut problems)?
    } else {
        TopicFiles::default()
    };
    let dirs = if single {
        vec![path.clone()]
    } else {
        let mut deleting = Vec::new();
        let dirs = partition_dirs(path, &mut deleting)?;
        for d in deleting {
            problems.push(format!(
                "{d}: a partition directory being deleted: open would remove it"
            ));
        }
        if dirs.is_empty() && !broker_dir {
            return Err(CliError::Usage(format!(
                "{} is neither a pubsub data directory nor a partition directory",
                path.display()
            )));
        }
        if broker_dir {
            if let Some(why) = check::broker_file_problem(&data_dir) {
                problems.push(format!("{why}: open would fail"));
            }
            for t in topics.by_name.values() {
                for p in 0..t.partitions {
                    if !partition_dir(&data_dir, &t.name, p as i32).is_dir() {
                        problems.push(format!(
                            "topic {:?} partition {p} has no directory: open would create an empty log",
                            t.name
                        ));
                    }
                }
            }
        }
        dirs
    };
    let mut partitions = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        partitions.push(check_partition(
            dir,
            broker_dir,
            &topics,
            args.index_interval_bytes,
        )?);
    }
    if broker_dir && !single {
        // The closed-partitions file against the logs just checked.
        let figures: std::collections::BTreeMap<(&str, i32), check::LogFigures> = partitions
            .iter()
            .filter_map(|p| {
                let key = (p.topic.as_deref()?, p.partition?);
                Some((key, check::LogFigures::of(&p.report)?))
            })
            .collect();
        let log = |topic: &str, index: u32| {
            let index = i32::try_from(index).ok()?;
            figures.get(&(topic, index)).copied()
        };
        problems.extend(check::closed_partitions_problems(&data_dir, &topics, &log));
    }
    let unhealthy = partitions.iter().filter(|p| !p.healthy()).count();
    let healthy = unhealthy == 0 && problems.is_empty();
    let text = if args.json {
        let doc = json!({
            "path": path.display().to_string(),
            "broker_data_dir": broker_dir,
            "broker_running": running,
            "healthy": healthy,
            "problems": problems,
            "partitions": partitions.iter().map(partition_json).collect::<Vec<_>>(),
        });
        format!("{doc}\n")
    } else {
        let mut text = String::new();
        for p in &partitions {
            human_partition(&mut text, p, args.verbose);
        }
        for problem in &problems {
            let _ = writeln!(text, "PROBLEM: {problem}");
        }
        let _ = writeln!(
            text,
            "{} partition(s) checked: {} healthy, {unhealthy} not healthy{}",
            partitions.len(),
            partitions.len() - unhealthy,
            match problems.len() {
                0 => String::new(),
                n => format!("; {n} data directory problem(s)"),
            }
        );
        text
    };
    let mut out = Out::new();
    out.line(text.trim_end_matches('\n'));
    out.finish()?;
    if healthy {
        Ok(())
    } else {
        Err(CliError::Unhealthy(format!(
            "log check: {unhealthy} of {} partition(s) not healthy{}",
            partitions.len(),
            match problems.len() {
                0 => String::new(),
                n => format!(", {n} data directory problem(s)"),
            }
        )))
    }
}

fn segment_line(s: &SegmentCheck) -> String {
    let mut line = format!(
        "segment {:020}: {} bytes, {} batch(es)",
        s.base_offset, s.size, s.batches
    );
    if let Some(l) = s.last_offset {
        let _ = write!(line, ", offsets {}..={l}", s.base_offset);
    }
    if let Some(p) = &s.invalid {
        let _ = write!(
            line,
            "; INVALID at byte {} ({} bytes to the end): {}",
            p.position,
            s.size.saturating_sub(p.position),
            p.reason
        );
    }
    if let Some(g) = &s.gap {
        let _ = write!(line, "; GAP: {g}");
    }
    if let Some(p) = &s.index_problem {
        let _ = write!(line, "; offset index: {p}");
    }
    if let Some(p) = &s.time_index_problem {
        let _ = write!(line, "; time index: {p}");
    }
    line
}

fn segment_has_problem(s: &SegmentCheck) -> bool {
    s.invalid.is_some()
        || s.gap.is_some()
        || s.index_problem.is_some()
        || s.time_index_problem.is_some()
}

fn human_partition(text: &mut String, p: &PartitionCheck, verbose: bool) {
    let r = &p.report;
    let start = r.log_start_offset.unwrap_or_default();
    let offsets = match (
        r.segments.first(),
        r.segments.iter().rev().find_map(|s| s.last_offset),
    ) {
        (Some(_), Some(last)) if start > last => format!("empty, next offset {}", last + 1),
        (Some(_), Some(last)) => format!("offsets {start}..={last}"),
        (Some(first), None) => format!("empty, next offset {}", first.base_offset),
        (None, _) => "no segments".into(),
    };
    let stop = if r.clean_shutdown {
        "stopped cleanly".to_string()
    } else {
        format!("not stopped cleanly: {}", r.recovery_action())
    };
    if p.healthy() {
        let _ = writeln!(
            text,
            "{}: ok ({} segment(s), {offsets}, {stop})",
            p.name,
            r.segments.len()
        );
    } else {
        let log_intact = r.is_healthy() && !r.segments.is_empty() && !p.ends_below_recovery_point;
        let mut action = if log_intact && !r.leftover_files.is_empty() {
            "open would remove or settle leftover files".to_string()
        } else if log_intact {
            "the log itself is intact, but:".to_string()
        } else {
            r.recovery_action()
        };
        if r.segments.iter().any(|s| s.invalid.is_some()) && r.plan.outcome == Outcome::KeepAll {
            action.push_str(
                "; the invalid data lies below the recovery point, which open does not read: it stays, and consumers reading it get a CRC error",
            );
        }
        let _ = writeln!(
            text,
            "{}: NOT HEALTHY ({} segment(s), {offsets}): {action}",
            p.name,
            r.segments.len()
        );
    }
    for s in &r.segments {
        if verbose || segment_has_problem(s) {
            let _ = writeln!(text, "  {}", segment_line(s));
        }
    }
    for c in &r.checkpoint_problems {
        let _ = writeln!(text, "  checkpoint: {c}");
    }
    for l in &r.leftover_files {
        let _ = writeln!(
            text,
            "  leftover file: {l} (open would remove or settle it)"
        );
    }
    for problem in &p.problems {
        let _ = writeln!(text, "  {problem}");
    }
    let differs = |p: &Option<String>| p.as_ref().is_some_and(|p| p.contains("differ"));
    if r.segments
        .iter()
        .any(|s| differs(&s.index_problem) || differs(&s.time_index_problem))
    {
        let _ = writeln!(
            text,
            "  (indexes were compared with those built at index.interval.bytes = {}; a log written with another interval shows every index as different: see --index-interval-bytes)",
            p.index_interval_bytes
        );
    }
    if verbose {
        let rp = r
            .recovery_point
            .map_or("none".to_string(), |rp| rp.to_string());
        let _ = writeln!(
            text,
            "  recovery point {rp}, index interval {} bytes: {}",
            p.index_interval_bytes,
            r.recovery_action()
        );
    }
}

fn partition_json(p: &PartitionCheck) -> Value {
    let r = &p.report;
    let segments: Vec<Value> = r
        .segments
        .iter()
        .map(|s| {
            json!({
                "base_offset": s.base_offset,
                "size": s.size,
                "valid_bytes": s.valid_bytes,
                "batches": s.batches,
                "last_offset": s.last_offset,
                "invalid": s.invalid.as_ref().map(|i| json!({"position": i.position, "reason": i.reason})),
                "gap": s.gap,
                "index_problem": s.index_problem,
                "time_index_problem": s.time_index_problem,
            })
        })
        .collect();
    json!({
        "dir": r.dir.display().to_string(),
        "name": p.name,
        "topic": p.topic,
        "partition": p.partition,
        "healthy": p.healthy(),
        "recovery_action": r.recovery_action(),
        "clean_shutdown": r.clean_shutdown,
        "recovery_point": r.recovery_point,
        "log_start_offset": r.log_start_offset,
        "index_interval_bytes": p.index_interval_bytes,
        "ends_below_recovery_point": p.ends_below_recovery_point,
        "segments": segments,
        "leftover_files": r.leftover_files,
        "checkpoint_problems": r.checkpoint_problems,
        "problems": p.problems,
    })
}
