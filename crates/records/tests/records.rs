//! Batches built here are read back here and by an independent codec (the
//! `kafka-protocol` crate), and the other way round; corrupt and arbitrary
//! bytes give errors, never panics.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use proptest::prelude::*;
use pubsub_records::{
    Batch, BatchBuilder, BatchMut, Batches, Compression, Header, NewRecord, RecordsError,
    TimestampType,
};

const LIMIT: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn read_all(bytes: &[u8]) -> Vec<Owned> {
    let batch = Batch::parse(bytes).expect("parse");
    batch.validate().expect("valid");
    let set = batch.records(LIMIT).expect("records");
    set.iter()
        .map(|r| {
            let r = r.expect("record");
            Owned {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers()
                    .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
            }
        })
        .collect()
}

fn build(records: &[Owned], codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new().compression(codec);
    for r in records {
        push(&mut b, r);
    }
    b.build().expect("build")
}

/// Adds `r` to the batch `b` builds.
fn push(b: &mut BatchBuilder, r: &Owned) {
    let headers: Vec<Header<'_>> = r
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: k,
            value: v.as_deref(),
        })
        .collect();
    b.push(&NewRecord {
        timestamp: r.timestamp,
        key: r.key.as_deref(),
        value: r.value.as_deref(),
        headers: &headers,
    })
    .expect("push");
}

fn sample(n: usize) -> Vec<Owned> {
    (0..n)
        .map(|i| Owned {
            offset: i as i64,
            // Out of order on purpose: negative timestamp deltas must work.
            timestamp: 1_700_000_000_000 + ((i as i64 * 7919) % 1000) - 500,
            key: (i % 3 != 0).then(|| format!("key-{i}").into_bytes()),
            value: (i % 5 != 4).then(|| format!("value-{i}-").repeat(i % 7 + 1).into_bytes()),
            headers: (0..i % 3)
                .map(|h| {
                    (
                        format!("h{h}").into_bytes(),
                        (h != 1).then(|| vec![h as u8; h]),
                    )
                })
                .collect(),
        })
        .collect()
}

#[test]
fn builder_round_trips_for_every_codec() {
    let records = sample(200);
    for codec in Compression::ALL {
        let bytes = build(&records, codec);
        let batch = Batch::parse(&bytes).expect("parse");
        assert_eq!(batch.compression(), Ok(codec));
        assert_eq!(batch.record_count(), 200);
        assert_eq!(batch.last_offset_delta(), 199);
        assert_eq!(
            batch.max_timestamp(),
            records.iter().map(|r| r.timestamp).max().expect("max")
        );
        assert_eq!(batch.base_timestamp(), records[0].timestamp);
        batch.validate_for_append().expect("appendable");
        assert_eq!(read_all(&bytes), records, "{codec}");
    }
}

#[test]
fn a_reused_buffer_builds_the_same_batch_in_place() {
    let records = sample(120);
    let fresh = build(&records, Compression::None);
    // A buffer left over from a bigger, different batch, reserved for this
    // one: the batch is built in it, byte for byte the fresh one, and the
    // allocation is never moved (the header is written into its gap, the
    // CRC computed where the records lie: no copy of the records).
    let mut old = build(&sample(300), Compression::Zstd);
    old.reserve(fresh.len());
    let (ptr, cap) = (old.as_ptr(), old.capacity());
    let mut b = BatchBuilder::reusing(old);
    for r in &records {
        push(&mut b, r);
        assert!(b.uncompressed_len() <= cap);
    }
    assert_eq!(b.uncompressed_len(), fresh.len());
    let reused = b.build().expect("build");
    assert_eq!(reused, fresh);
    assert_eq!(
        (reused.as_ptr(), reused.capacity()),
        (ptr, cap),
        "same allocation"
    );
    assert_eq!(read_all(&reused), records);
    // A compressed batch from a reused buffer reads back the same.
    let mut b = BatchBuilder::reusing(reused).compression(Compression::Lz4);
    b.push(&NewRecord {
        timestamp: 5,
        key: None,
        value: Some(b"v"),
        headers: &[],
    })
    .expect("push");
    let lz4 = b.build().expect("build");
    let batch = Batch::parse(&lz4).expect("parse");
    batch.validate().expect("valid");
    assert_eq!(batch.compression(), Ok(Compression::Lz4));
    assert_eq!(read_all(&lz4)[0].value.as_deref(), Some(&b"v"[..]));
}

#[test]
fn header_fields_are_where_the_format_says() {
    let mut b = BatchBuilder::new()
        .base_offset(42)
        .partition_leader_epoch(7)
        .producer(1234, 5, 99)
        .transactional(true)
        .compression(Compression::Gzip);
    b.push(&NewRecord {
        timestamp: 1000,
        key: None,
        value: Some(b"x"),
        headers: &[],
    })
    .expect("push");
    b.push(&NewRecord {
        timestamp: 3000,
        key: None,
        value: Some(b"y"),
        headers: &[],
    })
    .expect("push");
    let bytes = b.build().expect("build");
    let batch = Batch::parse(&bytes).expect("parse");
    assert_eq!(batch.base_offset(), 42);
    assert_eq!(batch.last_offset(), 43);
    assert_eq!(batch.next_offset(), 44);
    assert_eq!(batch.partition_leader_epoch(), 7);
    assert_eq!(batch.magic(), 2);
    assert_eq!(batch.batch_length() as usize, bytes.len() - 12);
    assert_eq!(batch.producer_id(), 1234);
    assert_eq!(batch.producer_epoch(), 5);
    assert_eq!(batch.base_sequence(), 99);
    assert_eq!(batch.last_sequence(), 100);
    assert!(batch.is_transactional());
    assert!(!batch.is_control());
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(batch.base_timestamp(), 1000);
    assert_eq!(batch.max_timestamp(), 3000);
    // Raw positions, independent of the accessors.
    assert_eq!(&bytes[0..8], &42i64.to_be_bytes());
    assert_eq!(&bytes[23..27], &1i32.to_be_bytes());
    assert_eq!(&bytes[35..43], &3000i64.to_be_bytes());
    assert_eq!(&bytes[57..61], &2i32.to_be_bytes());
    assert_eq!(bytes[16], 2);
    assert_eq!(
        u32::from_be_bytes([bytes[17], bytes[18], bytes[19], bytes[20]]),
        crc32c::crc32c(&bytes[21..])
    );
}

#[test]
fn sequence_wraps_like_kafka() {
    let mut b = BatchBuilder::new().producer(1, 0, i32::MAX - 1);
    for _ in 0..4 {
        b.push(&NewRecord::default()).expect("push");
    }
    let bytes = b.build().expect("build");
    assert_eq!(Batch::parse(&bytes).expect("parse").last_sequence(), 1);
}

#[test]
fn broker_rewrites_keep_the_crc_valid() {
    let mut bytes = build(&sample(10), Compression::None);
    let mut batch = BatchMut::parse(&mut bytes).expect("parse");
    batch.set_base_offset(1 << 40);
    batch.set_partition_leader_epoch(3);
    let view = batch.as_batch();
    view.validate().expect("still valid");
    assert_eq!(view.base_offset(), 1 << 40);
    let records = read_all(&bytes);
    assert_eq!(records[9].offset, (1 << 40) + 9);
}

#[test]
fn log_append_time_rewrites_crc_and_timestamps() {
    let mut bytes = build(&sample(5), Compression::Lz4);
    BatchMut::parse(&mut bytes)
        .expect("parse")
        .set_log_append_time(42_000);
    let batch = Batch::parse(&bytes).expect("parse");
    batch.validate().expect("crc recomputed");
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert!(read_all(&bytes).iter().all(|r| r.timestamp == 42_000));
}

#[test]
fn any_flipped_bit_in_the_crc_span_is_caught() {
    let bytes = build(&sample(3), Compression::None);
    for i in 21..bytes.len() {
        for bit in [0, 3, 7] {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            let batch = Batch::parse(&bad).expect("length untouched");
            assert!(
                matches!(batch.validate(), Err(RecordsError::CrcMismatch { .. })),
                "byte {i} bit {bit}"
            );
        }
    }
}

#[test]
fn bad_headers_are_rejected() {
    let good = build(&sample(3), Compression::None);
    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    assert_eq!(
        Batch::parse(&bad_magic).err(),
        Some(RecordsError::UnsupportedMagic(1))
    );
    let mut short_len = good.clone();
    short_len[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(
        Batch::parse(&short_len).err(),
        Some(RecordsError::InvalidLength(10))
    );
    assert!(matches!(
        Batch::parse(&good[..good.len() - 1]),
        Err(RecordsError::Truncated { .. })
    ));
    // More records announced than offsets: rejected even with a fixed-up CRC.
    let mut count = good.clone();
    count[57..61].copy_from_slice(&9i32.to_be_bytes());
    let crc = crc32c::crc32c(&count[21..]);
    count[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        Batch::parse(&count).expect("parse").validate(),
        Err(RecordsError::InvalidHeader(_))
    ));
    // Unknown codec 6.
    let mut codec = good.clone();
    codec[22] |= 6;
    let crc = crc32c::crc32c(&codec[21..]);
    codec[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        Batch::parse(&codec).expect("parse").validate(),
        Err(RecordsError::UnknownCodec(6))
    );
}

#[test]
fn record_count_disagreeing_with_bytes_is_an_error() {
    // Announce 2 records but carry 3.
    let mut bytes = build(&sample(3), Compression::None);
    bytes[57..61].copy_from_slice(&2i32.to_be_bytes());
    let batch = Batch::parse(&bytes).expect("parse");
    let set = batch.records(LIMIT).expect("records");
    let results: Vec<_> = set.iter().collect();
    assert_eq!(results.len(), 3);
    assert!(results[2].is_err());
    // Announce 4 but carry 3.
    bytes[57..61].copy_from_slice(&4i32.to_be_bytes());
    let batch = Batch::parse(&bytes).expect("parse");
    let set = batch.records(LIMIT).expect("records");
    assert!(set.iter().any(|r| r.is_err()));
}

#[test]
fn batches_iterates_and_reports_a_partial_tail() {
    let a = build(&sample(2), Compression::None);
    let b = build(&sample(4), Compression::Snappy);
    let mut buf = [a.clone(), b.clone(), b[..30].to_vec()].concat();
    let mut it = Batches::new(&buf);
    assert_eq!(it.next().expect("a").expect("a").len(), a.len());
    assert_eq!(it.next().expect("b").expect("b").len(), b.len());
    assert_eq!(it.position(), a.len() + b.len());
    assert!(matches!(
        it.next(),
        Some(Err(RecordsError::Truncated { .. }))
    ));
    assert!(it.next().is_none());
    buf.truncate(a.len() + b.len());
    assert_eq!(Batches::new(&buf).count(), 2);
}

#[test]
fn explicit_offsets_and_forced_span_for_compaction() {
    let mut b = BatchBuilder::new().base_offset(100).last_offset_delta(9);
    b.push_at(
        3,
        &NewRecord {
            timestamp: 5,
            key: Some(b"a"),
            value: Some(b"1"),
            headers: &[],
        },
    )
    .expect("push");
    b.push_at(
        7,
        &NewRecord {
            timestamp: 6,
            key: Some(b"b"),
            value: None,
            headers: &[],
        },
    )
    .expect("push");
    assert!(b.push_at(7, &NewRecord::default()).is_err());
    let bytes = b.build().expect("build");
    let batch = Batch::parse(&bytes).expect("parse");
    batch.validate().expect("valid");
    assert!(
        batch.validate_for_append().is_err(),
        "gaps are not appendable"
    );
    assert_eq!(batch.last_offset(), 109);
    let offsets: Vec<i64> = read_all(&bytes).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [103, 107]);

    let empty = BatchBuilder::new()
        .base_offset(5)
        .last_offset_delta(2)
        .base_timestamp(77)
        .max_timestamp(99)
        .build()
        .expect("empty");
    let batch = Batch::parse(&empty).expect("parse");
    batch.validate().expect("empty batches are valid");
    assert_eq!((batch.record_count(), batch.last_offset()), (0, 7));
    assert_eq!(batch.max_timestamp(), 99);
}

fn kp_record(r: &Owned) -> KpRecord {
    let mut headers = IndexMap::new();
    for (k, v) in &r.headers {
        headers.insert(
            StrBytes::from_string(String::from_utf8(k.clone()).expect("utf8")),
            v.clone().map(Bytes::from),
        );
    }
    KpRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: KpTimestampType::Creation,
        offset: r.offset,
        sequence: -1,
        timestamp: r.timestamp,
        key: r.key.clone().map(Bytes::from),
        value: r.value.clone().map(Bytes::from),
        headers,
    }
}

#[test]
fn reads_what_an_independent_encoder_writes() {
    let records = sample(50);
    for (codec, ours) in [
        (KpCompression::None, Compression::None),
        (KpCompression::Gzip, Compression::Gzip),
        (KpCompression::Snappy, Compression::Snappy),
    ] {
        let kp: Vec<KpRecord> = records.iter().map(kp_record).collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &kp,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .expect("encode");
        // The encoder may split the records over several batches.
        let mut decoded = Vec::new();
        for batch in Batches::new(&buf) {
            let batch = batch.expect("parse");
            assert_eq!(batch.compression(), Ok(ours));
            decoded.extend(read_all(batch.as_bytes()));
        }
        assert!(decoded == records, "{ours}: records differ");
    }
}

#[test]
fn an_independent_decoder_reads_what_we_write() {
    let records = sample(50);
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy] {
        let bytes = build(&records, codec);
        let mut buf = Bytes::from(bytes);
        let set = RecordBatchDecoder::decode(&mut buf).expect("decode");
        assert_eq!(set.records.len(), records.len());
        for (theirs, ours) in set.records.iter().zip(&records) {
            assert_eq!(theirs.offset, ours.offset);
            assert_eq!(theirs.timestamp, ours.timestamp);
            assert_eq!(theirs.key.as_deref(), ours.key.as_deref());
            assert_eq!(theirs.value.as_deref(), ours.value.as_deref());
            assert_eq!(theirs.headers.len(), ours.headers.len());
        }
    }
}

fn owned_strategy() -> impl Strategy<Value = Vec<Owned>> {
    let record = (
        -1_000_000i64..1_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(
            (
                "[a-z]{0,8}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ),
            0..3,
        ),
    );
    proptest::collection::vec(record, 1..40).prop_map(|rs| {
        rs.into_iter()
            .enumerate()
            .map(|(i, (ts, key, value, headers))| Owned {
                offset: i as i64,
                timestamp: 1_600_000_000_000 + ts,
                key,
                value,
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.into_bytes(), v))
                    .collect(),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_records_round_trip(records in owned_strategy(), codec in 0u8..5) {
        let codec = Compression::from_id(codec).expect("codec");
        let bytes = build(&records, codec);
        prop_assert_eq!(read_all(&bytes), records);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Random bytes almost never pass the length and magic checks; half
        // the inputs get both right, so validation and decoding run too.
        if bytes.len() >= 61 && bytes[0] & 1 == 0 {
            let len = (bytes.len() - 12) as i32;
            bytes[8..12].copy_from_slice(&len.to_be_bytes());
            bytes[16] = 2;
        }
        for batch in Batches::new(&bytes) {
            let Ok(batch) = batch else { break };
            let _ = batch.validate();
            if let Ok(set) = batch.records(1 << 16) {
                for r in set.iter().map_while(Result::ok) {
                    let _ = r.headers().count();
                }
            }
        }
    }

    #[test]
    fn corrupted_records_never_panic(seed in any::<u64>(), flips in 1usize..8) {
        let mut bytes = build(&sample(20), Compression::None);
        let mut x = seed | 1;
        for _ in 0..flips {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let i = 61 + (x as usize) % (bytes.len() - 61);
            bytes[i] ^= (x >> 32) as u8 | 1;
        }
        let batch = Batch::parse(&bytes).expect("header untouched");
        prop_assert!(batch.validate().is_err());
        if let Ok(set) = batch.records(1 << 16) {
            for r in set.iter() { let _ = r; }
        }
    }
}
