//! Model-based property test: random appends, reads, rolls, clean and
//! unclean reopens, retention, compaction and timestamp lookups against a
//! plain in-memory list of records.

use std::collections::BTreeMap;

use proptest::prelude::*;
use pubsub_records::{Batch, Batches, Compression};
use pubsub_storage::{CleanupPolicy, Log, LogConfig};

use crate::common::*;

#[derive(Debug, Clone)]
enum Op {
    /// Batches of records: (key index or none, tombstone?, timestamp jitter).
    Append {
        batches: Vec<Vec<(Option<u8>, bool, i16)>>,
        codec: u8,
    },
    Read {
        at: u32,
        max_bytes: u16,
    },
    Roll,
    ReopenClean,
    ReopenUnclean,
    Retention {
        advance: u16,
    },
    Compact {
        advance: u16,
    },
    FindTimestamp {
        back: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let record = (
        proptest::option::weighted(0.9, 0u8..10),
        proptest::bool::weighted(0.15),
        -60i16..60,
    );
    let batch = proptest::collection::vec(record, 1..6);
    prop_oneof![
        8 => (proptest::collection::vec(batch, 1..3), 0u8..5)
            .prop_map(|(batches, codec)| Op::Append { batches, codec }),
        3 => (any::<u32>(), 1u16..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Roll),
        1 => Just(Op::ReopenClean),
        1 => Just(Op::ReopenUnclean),
        1 => (0u16..4000).prop_map(|advance| Op::Retention { advance }),
        1 => (0u16..4000).prop_map(|advance| Op::Compact { advance }),
        2 => (0u16..6000).prop_map(|back| Op::FindTimestamp { back }),
    ]
}

fn config() -> impl Strategy<Value = LogConfig> {
    (
        300u64..2500,
        16u64..600,
        prop_oneof![Just(48u64), Just(96), Just(4096)],
        proptest::option::of(2000i64..20_000),
    )
        .prop_map(
            |(segment_bytes, interval, index_bytes, segment_ms)| LogConfig {
                segment_bytes,
                index_interval_bytes: interval,
                max_index_bytes: index_bytes,
                segment_ms,
                retention_ms: Some(30_000),
                retention_bytes: None,
                cleanup_policy: CleanupPolicy::CompactDelete,
                delete_retention_ms: 5_000,
                ..LogConfig::default()
            },
        )
}

struct Model {
    records: Vec<Rec>,
    next: u64,
    start: u64,
    clock: i64,
}

fn check_read(log: &Log, model: &Model, offset: u64, max_bytes: usize) {
    let r = log.read(offset, max_bytes).expect("read in range");
    if offset == model.next {
        assert!(r.records.is_empty());
        return;
    }
    let batches: Vec<Batch<'_>> = Batches::new(&r.records)
        .map(|b| b.expect("whole batches"))
        .collect();
    assert!(
        !batches.is_empty(),
        "read at {offset} below the end returned nothing"
    );
    assert!(batches[0].last_offset() as u64 >= offset);
    let end = batches[batches.len() - 1].last_offset() as u64;
    let got: Vec<Rec> = records_in(&r.records)
        .into_iter()
        .filter(|x| x.offset >= offset)
        .collect();
    let want: Vec<Rec> = model
        .records
        .iter()
        .filter(|x| x.offset >= offset && x.offset <= end)
        .cloned()
        .collect();
    assert_eq!(got, want, "read at {offset}");
}

fn run(config: LogConfig, ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = Log::open(dir.path(), config.clone()).expect("open");
    let mut model = Model {
        records: Vec::new(),
        next: 0,
        start: 0,
        clock: 1_000_000,
    };
    for op in ops {
        match op {
            Op::Append { batches, codec } => {
                let codec = Compression::from_id(codec).expect("codec");
                let mut buf = Vec::new();
                let mut recs = Vec::new();
                for b in &batches {
                    model.clock += 100;
                    let keys: Vec<Option<Vec<u8>>> = b
                        .iter()
                        .map(|(k, _, _)| k.map(|k| format!("key{k}").into_bytes()))
                        .collect();
                    let values: Vec<Option<Vec<u8>>> = b
                        .iter()
                        .enumerate()
                        .map(|(i, (_, tomb, _))| {
                            (!tomb).then(|| format!("v{}-{i}", model.next).into_bytes())
                        })
                        .collect();
                    let spec: Vec<Spec<'_>> = b
                        .iter()
                        .enumerate()
                        .map(|(i, (_, _, jitter))| {
                            (
                                keys[i].as_deref(),
                                values[i].as_deref(),
                                model.clock + i64::from(*jitter),
                            )
                        })
                        .collect();
                    for (k, v, ts) in &spec {
                        recs.push(Rec {
                            offset: 0, // assigned below, in append order
                            timestamp: *ts,
                            key: k.map(<[u8]>::to_vec),
                            value: v.map(<[u8]>::to_vec),
                        });
                    }
                    buf.extend(batch_of(&spec, codec));
                }
                for (i, r) in recs.iter_mut().enumerate() {
                    r.offset = model.next + i as u64;
                }
                if buf.len() as u64 > config.segment_bytes {
                    assert!(matches!(
                        log.append(&mut buf),
                        Err(pubsub_storage::StorageError::BatchTooLarge { .. })
                    ));
                    continue;
                }
                let info = log.append(&mut buf).expect("append");
                assert_eq!(info.base_offset, model.next);
                assert_eq!(info.last_offset, model.next + recs.len() as u64 - 1);
                model.next += recs.len() as u64;
                model.records.extend(recs);
            }
            Op::Read { at, max_bytes } => {
                let span = model.next - model.start + 1;
                let offset = model.start + u64::from(at) % span;
                check_read(&log, &model, offset, usize::from(max_bytes));
            }
            Op::Roll => log.roll().expect("roll"),
            Op::ReopenClean => {
                log.close().expect("close");
                drop(log);
                let (l, report) = Log::open(dir.path(), config.clone()).expect("reopen");
                assert!(report.clean_shutdown, "{report}");
                log = l;
            }
            Op::ReopenUnclean => {
                drop(log);
                let (l, report) = Log::open(dir.path(), config.clone()).expect("reopen");
                assert!(report.is_clean(), "nothing was torn: {report}");
                log = l;
            }
            Op::Retention { advance } => {
                let now = model.clock + i64::from(advance) * 10;
                let horizon = now - config.retention_ms.unwrap_or(0);
                let report = log.apply_retention(now).expect("retention");
                let start = log.log_start_offset();
                assert_eq!(report.log_start_offset, start);
                assert!(start >= model.start && start <= model.next);
                for r in model.records.iter().filter(|r| r.offset < start) {
                    assert!(
                        r.timestamp < horizon,
                        "retention deleted a live record {r:?}"
                    );
                }
                model.records.retain(|r| r.offset >= start);
                model.start = start;
            }
            Op::Compact { advance } => {
                let now = model.clock + i64::from(advance);
                let active_base = log.segments().last().expect("active").base_offset;
                log.compact(now).expect("compact");
                let horizon = now - config.delete_retention_ms;
                let mut latest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
                for r in model.records.iter().filter(|r| r.offset < active_base) {
                    if let Some(k) = &r.key {
                        latest.insert(k.clone(), r.offset);
                    }
                }
                model.records.retain(|r| {
                    r.offset >= active_base
                        || r.key.as_ref().is_some_and(|k| {
                            latest.get(k) == Some(&r.offset)
                                && !(r.value.is_none() && r.timestamp < horizon)
                        })
                });
            }
            Op::FindTimestamp { back } => {
                let target = model.clock - i64::from(back) * 10;
                let want = model
                    .records
                    .iter()
                    .find(|r| r.timestamp >= target)
                    .map(|r| (r.offset, r.timestamp));
                let got = log
                    .offset_for_timestamp(target)
                    .expect("lookup")
                    .map(|t| (t.offset, t.timestamp));
                assert_eq!(got, want, "timestamp {target}");
            }
        }
        assert_eq!(log.log_end_offset(), model.next);
        assert_eq!(log.log_start_offset(), model.start);
        let segs = log.segments();
        for pair in segs.windows(2) {
            assert_eq!(pair[0].end_offset, pair[1].base_offset, "{segs:?}");
        }
    }
    assert_eq!(read_all(&log), model.records);
    drop(log);
    let (log, _) = Log::open(dir.path(), config).expect("final reopen");
    assert_eq!(read_all(&log), model.records);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_behaves_like_a_list_of_records(config in config(), ops in proptest::collection::vec(op(), 1..80)) {
        run(config, ops);
    }
}
