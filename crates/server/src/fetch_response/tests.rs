//! The chunked Fetch encoder against kafka_protocol's: byte-identical
//! frames over every version served and randomized responses, with records
//! in memory and in real files.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
    SnapshotId,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;
use pubsub_storage::fs::{FileHandle, RealFile};
use pubsub_storage::FileRange;

use super::{encode, Chunk, FetchFiles, VERSIONS};
use crate::dispatch::{encode_response, supported};

/// One partition as generated: its data and whether its records are to be
/// served from a file.
type GenPartition = (PartitionData, bool);

fn tags(from: i32) -> impl Strategy<Value = BTreeMap<i32, Bytes>> {
    proptest::collection::btree_map(
        from..from + 6,
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from),
        0..3,
    )
}

fn records() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|v| Some(Bytes::from(v))),
        // Past the inline limit: sent as a chunk of its own.
        (4096usize..9000).prop_map(|n| Some(Bytes::from(
            (0..n).map(|i| (i * 7 + n) as u8).collect::<Vec<u8>>()
        ))),
    ]
}

fn partition(version: i16) -> impl Strategy<Value = GenPartition> {
    let flexible = version >= 12;
    (
        (any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>()),
        proptest::option::of(proptest::collection::vec(
            (any::<i64>(), any::<i64>(), tags(0)),
            0..3,
        )),
        any::<i32>(),
        records(),
        (
            proptest::option::of((any::<i32>(), any::<i64>())),
            proptest::option::of((any::<i32>(), any::<i32>())),
            proptest::option::of((any::<i64>(), any::<i32>())),
            tags(3),
        ),
        any::<bool>(),
    )
        .prop_map(
            move |((error, hw, lso, start), aborted, replica, records, tagged, from_file)| {
                let (diverging, leader, snapshot, unknown) = tagged;
                let mut p = PartitionData::default()
                    .with_error_code(error)
                    .with_high_watermark(hw)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(start)
                    .with_aborted_transactions(aborted.map(|list| {
                        list.into_iter()
                            .map(|(id, first, unknown)| {
                                let mut t = AbortedTransaction::default()
                                    .with_producer_id(kafka_protocol::messages::ProducerId(id))
                                    .with_first_offset(first);
                                if flexible {
                                    t.unknown_tagged_fields = unknown;
                                }
                                t
                            })
                            .collect()
                    }))
                    .with_records(records);
                if version >= 11 {
                    p.preferred_read_replica = BrokerId(replica);
                }
                if flexible {
                    if let Some((epoch, end)) = diverging {
                        p.diverging_epoch = EpochEndOffset::default()
                            .with_epoch(epoch)
                            .with_end_offset(end);
                    }
                    if let Some((id, epoch)) = leader {
                        p.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(id))
                            .with_leader_epoch(epoch);
                    }
                    if let Some((end, epoch)) = snapshot {
                        p.snapshot_id =
                            SnapshotId::default().with_end_offset(end).with_epoch(epoch);
                    }
                    p.unknown_tagged_fields = unknown;
                }
                // A file-backed partition needs records to put in the file.
                let from_file = from_file && p.records.is_some();
                (p, from_file)
            },
        )
}

fn topic(version: i16) -> impl Strategy<Value = GenTopic> {
    (
        "[a-zA-Z0-9._-]{0,12}",
        proptest::collection::vec(partition(version), 0..5),
        tags(0),
    )
}

/// A generated topic: name suffix, partitions, unknown tagged fields.
type GenTopic = (String, Vec<GenPartition>, BTreeMap<i32, Bytes>);

/// A generated response: version, correlation id, throttle, error,
/// session, topics, unknown tagged fields.
type GenResponse = (i16, i32, i32, i16, i32, Vec<GenTopic>, BTreeMap<i32, Bytes>);

fn response() -> impl Strategy<Value = GenResponse> {
    VERSIONS.prop_flat_map(|version| {
        (
            Just(version),
            any::<i32>(),
            any::<i32>(),
            any::<i16>(),
            any::<i32>(),
            proptest::collection::vec(topic(version), 0..4),
            tags(1),
        )
    })
}

/// Writes `bytes` at a random-ish position of a new file: its range.
fn in_file(dir: &tempfile::TempDir, n: usize, bytes: &[u8]) -> FileRange {
    let path = dir.path().join(format!("records-{n}"));
    let mut f = std::fs::File::create(&path).expect("create");
    let pad = vec![0xeeu8; n % 37];
    f.write_all(&pad).expect("write");
    f.write_all(bytes).expect("write");
    f.write_all(b"trailing bytes never sent").expect("write");
    let file: Arc<dyn FileHandle> =
        Arc::new(RealFile::new(std::fs::File::open(&path).expect("open")));
    FileRange::new(file, pad.len() as u64, bytes.len() as u64, 0, 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn chunks_are_byte_identical_to_kafka_protocols_encoding(
        (version, correlation_id, throttle, error, session, topics, unknown) in response()
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut theirs = FetchResponse::default().with_throttle_time_ms(throttle);
        if version >= 7 {
            theirs = theirs.with_error_code(error).with_session_id(session);
        }
        if version >= 12 {
            theirs.unknown_tagged_fields = unknown;
        }
        let mut ours = theirs.clone();
        let mut files = FetchFiles::new();
        let mut n = 0;
        for (t, (name, partitions, unknown)) in topics.into_iter().enumerate() {
            // Names and indexes unique: the file map is keyed by them.
            let name = TopicName(StrBytes::from_string(format!("{t}{name}")));
            let mut mine = FetchableTopicResponse::default().with_topic(name.clone());
            if version >= 12 {
                mine.unknown_tagged_fields = unknown;
            }
            let mut real = mine.clone();
            for (i, (p, from_file)) in partitions.into_iter().enumerate() {
                let p = p.with_partition_index(i as i32);
                real.partitions.push(p.clone());
                if from_file {
                    let bytes = p.records.clone().unwrap_or_default();
                    files.insert((name.clone(), i as i32), in_file(&dir, n, &bytes));
                    n += 1;
                    // Whatever is in memory is ignored for a file-backed partition.
                    mine.partitions.push(p.with_records(Some(Bytes::from_static(b"ignored"))));
                } else {
                    mine.partitions.push(p);
                }
            }
            theirs.responses.push(real);
            ours.responses.push(mine);
        }
        let expected = encode_response(ApiKey::Fetch, version, correlation_id, &theirs)
            .expect("kafka_protocol encodes");
        let frame = encode(version, correlation_id, &ours, &files).expect("encodes");
        prop_assert_eq!(frame.len(), expected.len() as u64);
        let got = frame.to_bytes().expect("read the files");
        prop_assert_eq!(&got[..], &expected[..]);
        // Every non-empty file-backed partition is a file chunk: not copied.
        let file_chunks = frame.chunks().iter().filter(|c| matches!(c, Chunk::File(_))).count();
        let non_empty = files.values().filter(|r| !r.is_empty()).count();
        prop_assert_eq!(file_chunks, non_empty);
    }
}

#[test]
fn the_versions_encoded_are_the_versions_served() {
    let (min, max) = supported(ApiKey::Fetch).expect("Fetch is served");
    assert_eq!((min, max), (*VERSIONS.start(), *VERSIONS.end()));
    let resp = FetchResponse::default();
    assert!(encode(13, 1, &resp, &FetchFiles::new()).is_err());
    assert!(encode(3, 1, &resp, &FetchFiles::new()).is_err());
}
