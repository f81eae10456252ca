//! The data directory as [`Broker::open`](crate::Broker::open) judges it,
//! for tools that inspect a stopped broker's files without opening it
//! (`pubsub log check`), as `pubsub_storage::check` does for one log.
//! Nothing here writes.
//!
//! The file names and metadata structs are the broker's own
//! (docs/FORMAT.md section 0); [`stale_reason`] is the rule by which open
//! removes the directory of a deleted topic.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::leader_epoch::{EpochEntry, LeaderEpochs};
use crate::metadata::{
    self, BrokerMeta, ProducerSnapshot, Unreadable, KIND_BROKER, KIND_LEADER_EPOCHS,
    KIND_PARTITION, KIND_PRODUCERS, KIND_TOPIC,
};
pub use crate::metadata::{
    partition_dir, PartitionMeta, TopicMeta, BROKER_FILE, DELETE_SUFFIX, LEADER_EPOCHS_FILE,
    LOCK_FILE, PARTITION_FILE, PRODUCERS_FILE, TOPICS_DIR, TOPIC_SUFFIX,
};

/// Reads a metadata file: `Ok(None)` if absent, `Err(why)` if it cannot be
/// trusted (a bad container or JSON that does not fit, as open decides).
fn read_file<T: DeserializeOwned>(path: &Path, kind: u16) -> Result<Option<T>, String> {
    metadata::decode(path, kind).map_err(|e| match e {
        Unreadable::Container(e) => e.to_string(),
        Unreadable::Json(e) => format!("corrupt {}: {e}", path.display()),
    })
}

/// True if `dir` is a broker data directory (it has the topics directory or
/// the broker file).
pub fn is_data_dir(dir: &Path) -> bool {
    dir.join(TOPICS_DIR).is_dir() || dir.join(BROKER_FILE).exists()
}

/// True if a broker holds the data directory's lock right now.
pub fn broker_running(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// Why open would refuse the broker file or the ACL file, if it would.
pub fn broker_file_problem(data_dir: &Path) -> Option<String> {
    read_file::<BrokerMeta>(&data_dir.join(BROKER_FILE), KIND_BROKER)
        .err()
        .or_else(|| crate::security::acl::store::file_problem(data_dir))
}

/// Why open would ignore a partition's producer snapshot (and rebuild the
/// producer state from the log), if it would.
pub fn producers_file_problem(partition_dir: &Path) -> Option<String> {
    read_file::<ProducerSnapshot>(&partition_dir.join(PRODUCERS_FILE), KIND_PRODUCERS).err()
}

/// Why open would ignore a partition's leader-epoch cache (and rebuild it
/// from the log), if it would.
pub fn leader_epochs_file_problem(partition_dir: &Path) -> Option<String> {
    let path = partition_dir.join(LEADER_EPOCHS_FILE);
    match read_file::<Vec<EpochEntry>>(&path, KIND_LEADER_EPOCHS) {
        Err(why) => Some(why),
        Ok(Some(entries)) => LeaderEpochs::from_entries(entries)
            .is_none()
            .then(|| format!("{}: epochs out of order", path.display())),
        Ok(None) => None,
    }
}

/// What a partition's log holds, as a check of its files found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFigures {
    /// First offset.
    pub log_start_offset: u64,
    /// Next offset.
    pub log_end_offset: u64,
    /// Bytes of its segment files.
    pub size_bytes: u64,
    /// Segments.
    pub segments: u64,
}

impl LogFigures {
    /// The figures of the log `report` checked (as its open would find
    /// them: the start the checkpoint records, the end after the last
    /// valid batch); `None` without segments.
    pub fn of(report: &pubsub_storage::CheckReport) -> Option<LogFigures> {
        let first = report.segments.first()?;
        let last = report.segments.last()?;
        let end = report
            .segments
            .iter()
            .rev()
            .find_map(|s| s.last_offset)
            .map_or(last.base_offset, |l| l + 1);
        Some(LogFigures {
            log_start_offset: report.log_start_offset.unwrap_or(first.base_offset),
            log_end_offset: end,
            size_bytes: report.segments.iter().map(|s| s.size).sum(),
            segments: report.segments.len() as u64,
        })
    }
}

/// Problems with the closed-partitions file (`partitions.checkpoint`,
/// docs/FORMAT.md 9.8), each as a sentence: unreadable (open ignores it),
/// or an entry open would trust (the file's generation is the broker
/// file's, or the partition's clean-shutdown marker is there) whose figures
/// are not its log's (`log` gives them; `None`: no log), which a broker
/// would answer (Metadata, DescribeLogDirs, ListOffsets) until the
/// partition's first use. Entries of other topics (deleted, or re-created
/// under another id) are ignored by open, and here.
pub fn closed_partitions_problems(
    data_dir: &Path,
    topics: &TopicFiles,
    log: &dyn Fn(&str, u32) -> Option<LogFigures>,
) -> Vec<String> {
    use crate::closed_partitions::{
        ClosedPartitions, CLOSED_PARTITIONS_FILE, KIND_CLOSED_PARTITIONS,
    };
    let path = data_dir.join(CLOSED_PARTITIONS_FILE);
    let file = match read_file::<ClosedPartitions>(&path, KIND_CLOSED_PARTITIONS) {
        Ok(Some(file)) => file,
        Ok(None) => return Vec::new(),
        Err(why) => {
            return vec![format!(
                "{why}: open would ignore it (every partition is then opened or recovered at its first use)"
            )]
        }
    };
    let generation = read_file::<BrokerMeta>(&data_dir.join(BROKER_FILE), KIND_BROKER)
        .ok()
        .flatten()
        .map(|b| b.generation);
    let trusted = generation == Some(file.generation);
    let mut problems = Vec::new();
    for (name, closed) in &file.topics {
        let Some(meta) = topics.by_name.get(name).filter(|t| t.id == closed.id) else {
            continue;
        };
        for (i, entry) in closed.partitions.iter().enumerate() {
            let (Some(entry), Ok(index)) = (entry, u32::try_from(i)) else {
                continue;
            };
            if index >= meta.partitions {
                continue;
            }
            let dir = partition_dir(data_dir, name, index as i32);
            // A missing directory is a problem of its own (`log check`
            // reports it); without a marker (and an older file) open does
            // not trust the entry.
            if !dir.is_dir() || (!trusted && !dir.join(pubsub_storage::CLEAN_SHUTDOWN).exists()) {
                continue;
            }
            let said = LogFigures {
                log_start_offset: entry.log_start_offset(),
                log_end_offset: entry.log_end_offset(),
                size_bytes: entry.size_bytes(),
                segments: entry.segments(),
            };
            let describe = |f: &LogFigures| {
                format!(
                    "offsets {}..{}, {} bytes in {} segment(s)",
                    f.log_start_offset, f.log_end_offset, f.size_bytes, f.segments
                )
            };
            match log(name, index) {
                Some(found) if found == said => {}
                Some(found) => problems.push(format!(
                    "{}: its entry for {name}-{index} says {}, the log holds {}: a broker would answer the file's figures until the partition's first use",
                    path.display(),
                    describe(&said),
                    describe(&found)
                )),
                None => problems.push(format!(
                    "{}: its entry for {name}-{index} says {}, but the partition has no log: a broker would answer the file's figures until the partition's first use",
                    path.display(),
                    describe(&said)
                )),
            }
        }
    }
    problems
}

/// A partition directory's identity: `Ok(None)` without a partition file.
pub fn partition_meta(partition_dir: &Path) -> Result<Option<PartitionMeta>, String> {
    read_file(&partition_dir.join(PARTITION_FILE), KIND_PARTITION)
}

/// The topic files of a data directory, sorted; none without a topics
/// directory.
pub fn topic_file_paths(data_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(data_dir.join(TOPICS_DIR)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(TOPIC_SUFFIX) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// The topics of a data directory as open would load them.
#[derive(Debug, Default)]
pub struct TopicFiles {
    /// Readable topic files, by topic name.
    pub by_name: BTreeMap<String, TopicMeta>,
    /// Why each unreadable topic file cannot be read (open would fail).
    pub unreadable: Vec<String>,
}

/// Reads every topic file of a data directory.
pub fn topic_files(data_dir: &Path) -> io::Result<TopicFiles> {
    let mut topics = TopicFiles::default();
    for path in topic_file_paths(data_dir)? {
        match read_file::<TopicMeta>(&path, KIND_TOPIC) {
            Ok(Some(t)) => {
                topics.by_name.insert(t.name.clone(), t);
            }
            Ok(None) => {}
            Err(why) => topics.unreadable.push(why),
        }
    }
    Ok(topics)
}

/// Why open would remove the partition directory `dir_name` whose
/// partition file says `meta`, given the topic of that name (if any): the
/// topic is gone, was re-created (another id), has fewer partitions, or the
/// directory is not the one of that partition. `None`: the directory is live.
pub fn stale_reason(
    dir_name: &str,
    meta: &PartitionMeta,
    topic: Option<&TopicMeta>,
) -> Option<String> {
    match topic {
        None => Some(format!("topic {:?} does not exist", meta.topic)),
        Some(t) if t.id != meta.topic_id => Some(format!(
            "topic {:?} now has id {} (this directory is left from a deleted topic of the same name)",
            meta.topic, t.id
        )),
        Some(t) if !u32::try_from(meta.partition).is_ok_and(|p| p < t.partitions) => Some(
            format!("topic {:?} has only {} partition(s)", meta.topic, t.partitions),
        ),
        Some(_) if dir_name != format!("{}-{}", meta.topic, meta.partition) => Some(format!(
            "the directory of that partition is {}-{}",
            meta.topic, meta.partition
        )),
        Some(_) => None,
    }
}

/// `<topic>-<n>` split at its last dash.
pub fn split_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, n) = name.rsplit_once('-')?;
    Some((topic, n.parse().ok()?))
}

/// The subdirectories of a data directory.
#[derive(Debug, Default)]
pub struct DataDirListing {
    /// Every other subdirectory but the topics directory (name, path),
    /// sorted by topic then partition.
    pub dirs: Vec<(String, PathBuf)>,
    /// `<topic>-<n>.<uuid>.delete` directories (a deletion was interrupted:
    /// open removes them), sorted.
    pub deleting: Vec<(String, PathBuf)>,
}

/// Lists a data directory's subdirectories.
pub fn list_data_dir(data_dir: &Path) -> io::Result<DataDirListing> {
    let mut dirs = Vec::new();
    let mut deleting = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let path = entry.path();
        // The entry's type comes with the listing (no stat per entry on
        // most file systems); a symbolic link is followed.
        let dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => path.is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => path.is_dir(),
        };
        if !dir {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(DELETE_SUFFIX) {
            deleting.push((name, path));
        } else if name != TOPICS_DIR {
            let key = match split_dir_name(&name) {
                Some((t, n)) => (t.to_string(), n),
                None => (name.clone(), -1),
            };
            dirs.push((key, name, path));
        }
    }
    dirs.sort();
    deleting.sort();
    Ok(DataDirListing {
        dirs: dirs
            .into_iter()
            .map(|(_, name, path)| (name, path))
            .collect(),
        deleting,
    })
}
