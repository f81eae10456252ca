//! `pubsub log dump` and `pubsub log check` on the data directory of a real
//! daemon, stopped with SIGTERM: exact batches, records and codecs; a
//! healthy directory; corrupted copies (a torn tail, a truncated fsynced
//! segment, a damaged index), each checked without a byte changing.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use pubsub_records::{Batch, BatchBuilder, Compression, Header, NewRecord};
use serde_json::{json, Value};

use crate::client::{create_topic, Client};
use crate::daemon::{binary, Daemon, Options};

const T0: i64 = 1_700_000_000_000;
const SEGMENT: &str = "00000000000000000000.log";

fn pubsub<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(binary())
        .args(args)
        .output()
        .expect("run pubsub")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], ty: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == ty).collect()
}

/// Every file and directory under `dir`, with file contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                out.insert(path.clone(), None);
                stack.push(path);
            } else {
                out.insert(path.clone(), Some(std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// One record to build: key, value, headers.
type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [Header<'a>]);

/// A batch whose record `i` has timestamp `T0 + first + i`.
fn build(codec: Compression, first: i64, records: &[Rec<'_>]) -> Vec<u8> {
    let mut b = BatchBuilder::new().compression(codec);
    for (i, (key, value, headers)) in records.iter().enumerate() {
        b.push(&NewRecord {
            timestamp: T0 + first + i as i64,
            key: *key,
            value: *value,
            headers,
        })
        .expect("push");
    }
    b.build().expect("build")
}

/// Produces one batch to partition 0; returns its base offset.
async fn produce(c: &mut Client, topic: &str, batch: &[u8]) -> i64 {
    let p = crate::client::produce(c, topic, 0, -1, Bytes::copy_from_slice(batch)).await;
    assert_eq!(p.error_code, 0, "produce to {topic}: {:?}", p.error_message);
    p.base_offset
}

/// A data directory written by a real daemon and stopped cleanly, with the
/// batches produced to each topic (as sent: the stored bytes differ only in
/// baseOffset and partitionLeaderEpoch).
struct Produced {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    /// `orders`: 10 records in 6 batches, every codec, keys, headers,
    /// a non-UTF-8 value, a 600-byte value and a tombstone.
    orders: Vec<Vec<u8>>,
    /// `bulk`: 30 batches of 3 records, segment.bytes 2048 and
    /// index.interval.bytes 256 (several segments with index entries).
    bulk: Vec<Vec<u8>>,
    /// `cut`: 5 batches of 3 records.
    cut: Vec<Vec<u8>>,
}

async fn produce_and_stop() -> Produced {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let daemon = Daemon::start_with(
        &data,
        Options {
            env: vec![("PUBSUB_GROUPS_OFFSETS_TOPIC_PARTITIONS".into(), "2".into())],
            ..Options::default()
        },
    );
    let mut c = Client::connect(daemon.addr).await;
    create_topic(&mut c, "orders", 1, &[]).await;
    create_topic(
        &mut c,
        "bulk",
        1,
        &[("segment.bytes", "2048"), ("index.interval.bytes", "256")],
    )
    .await;
    create_topic(&mut c, "cut", 1, &[]).await;

    let big = vec![b'x'; 600];
    let trace = [
        Header {
            key: b"trace",
            value: Some(b"abc"),
        },
        Header {
            key: b"empty",
            value: None,
        },
    ];
    let orders = vec![
        build(
            Compression::None,
            0,
            &[
                (Some(b"user-1"), Some(b"hello"), &[]),
                (None, Some("wörld".as_bytes()), &trace),
                (Some(b"bin"), Some(&[0xff, 0x00, 0x10]), &[]),
            ],
        ),
        build(
            Compression::Gzip,
            3,
            &[
                (Some(b"k-3"), Some(b"zipped-3"), &[]),
                (Some(b"k-4"), Some(b"zipped-4"), &[]),
            ],
        ),
        build(
            Compression::Snappy,
            5,
            &[(Some(b"k-5"), Some(b"snappy-5"), &[])],
        ),
        build(Compression::Lz4, 6, &[(Some(b"k-6"), Some(b"lz4-6"), &[])]),
        build(
            Compression::Zstd,
            7,
            &[(Some(b"k-7"), Some(b"zstd-7"), &[])],
        ),
        build(
            Compression::None,
            8,
            &[(Some(b"big"), Some(&big), &[]), (Some(b"gone"), None, &[])],
        ),
    ];
    let mut next = 0;
    for batch in &orders {
        assert_eq!(produce(&mut c, "orders", batch).await, next);
        next += i64::from(Batch::parse(batch).expect("batch").last_offset_delta()) + 1;
    }
    let mut bulk = Vec::new();
    for i in 0..30i64 {
        let values: Vec<String> = (0..3).map(|j| format!("bulk-{:040}", i * 3 + j)).collect();
        let recs: Vec<Rec<'_>> = values
            .iter()
            .map(|v| (Some(&b"k"[..]), Some(v.as_bytes()), &[][..]))
            .collect();
        let batch = build(Compression::None, i * 3, &recs);
        assert_eq!(produce(&mut c, "bulk", &batch).await, i * 3);
        bulk.push(batch);
    }
    let mut cut = Vec::new();
    for i in 0..5i64 {
        let values: Vec<String> = (0..3).map(|j| format!("cut-{}", i * 3 + j)).collect();
        let recs: Vec<Rec<'_>> = values
            .iter()
            .map(|v| (None, Some(v.as_bytes()), &[][..]))
            .collect();
        let batch = build(Compression::None, i * 3, &recs);
        assert_eq!(produce(&mut c, "cut", &batch).await, i * 3);
        cut.push(batch);
    }
    drop(c);
    let (status, _, err) = daemon.stop();
    assert!(status.success(), "clean stop: {err}");
    Produced {
        _tmp: tmp,
        data,
        orders,
        bulk,
        cut,
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_prints_batches_and_records_of_a_segment_as_text() {
    let p = produce_and_stop().await;
    let segment = p.data.join("orders-0").join(SEGMENT);

    let o = pubsub([OsStr::new("log"), "dump".as_ref(), segment.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 6 + 1, "segment, 6 batches, end:\n{text}");
    assert_eq!(
        lines[0],
        format!(
            "segment {}: base offset 0, {} bytes",
            segment.display(),
            std::fs::metadata(&segment).expect("segment").len()
        )
    );
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd", "none"];
    let mut position = 0;
    for (i, built) in p.orders.iter().enumerate() {
        let b = Batch::parse(built).expect("batch");
        let first = [0, 3, 5, 6, 7, 8][i];
        let last = first + i64::from(b.last_offset_delta());
        let want = format!(
            "baseOffset: {first} lastOffset: {last} count: {} position: {position} size: {} crc: {:#010x} (ok) compression: {} timestampType: CreateTime baseTimestamp: {} maxTimestamp: {} producerId: -1 producerEpoch: -1 baseSequence: -1 partitionLeaderEpoch: ",
            b.record_count(),
            b.len(),
            b.crc(),
            codecs[i],
            T0 + first,
            T0 + last,
        );
        assert!(
            lines[1 + i].starts_with(&want),
            "batch {i}:\n{}\nwant prefix\n{want}",
            lines[1 + i]
        );
        assert!(lines[1 + i].ends_with("transactional: false control: false"));
        position += b.len();
    }
    assert_eq!(
        lines[7],
        format!(
            "end of {}: 6 batch(es), 10 record(s), offsets up to 9, {position} of {position} bytes valid",
            segment.display()
        )
    );
    assert!(!text.contains("| offset"), "no records without --records");

    let o = pubsub([
        OsStr::new("log"),
        "dump".as_ref(),
        segment.as_os_str(),
        "--records".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let records: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
    let want = [
        r#"| offset: 0 timestamp: 1700000000000 key: "user-1" headers: [] value: "hello""#.to_string(),
        r#"| offset: 1 timestamp: 1700000000001 key: null headers: ["trace": "abc", "empty": null] value: "wörld""#.to_string(),
        r#"| offset: 2 timestamp: 1700000000002 key: "bin" headers: [] value: 0xff0010"#.to_string(),
        r#"| offset: 3 timestamp: 1700000000003 key: "k-3" headers: [] value: "zipped-3""#.to_string(),
        r#"| offset: 4 timestamp: 1700000000004 key: "k-4" headers: [] value: "zipped-4""#.to_string(),
        r#"| offset: 5 timestamp: 1700000000005 key: "k-5" headers: [] value: "snappy-5""#.to_string(),
        r#"| offset: 6 timestamp: 1700000000006 key: "k-6" headers: [] value: "lz4-6""#.to_string(),
        r#"| offset: 7 timestamp: 1700000000007 key: "k-7" headers: [] value: "zstd-7""#.to_string(),
        format!(
            r#"| offset: 8 timestamp: 1700000000008 key: "big" headers: [] value: "{}"... (first 256 of 600 bytes)"#,
            "x".repeat(256)
        ),
        r#"| offset: 9 timestamp: 1700000000009 key: "gone" headers: [] value: null"#.to_string(),
    ];
    assert_eq!(records, want);

    let o = pubsub([
        OsStr::new("log"),
        "dump".as_ref(),
        segment.as_os_str(),
        "--records".as_ref(),
        "--max-value-bytes".as_ref(),
        "4".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(r#"key: "big" headers: [] value: "xxxx"... (first 4 of 600 bytes)"#),
        "{text}"
    );
    assert!(
        text.contains(r#"key: "user"... (first 4 of 6 bytes) headers: [] value: "hell"... (first 4 of 5 bytes)"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_json_is_one_object_per_line_with_every_field() {
    let p = produce_and_stop().await;
    let segment = p.data.join("orders-0").join(SEGMENT);
    let size = std::fs::metadata(&segment).expect("segment").len();
    let o = pubsub([
        OsStr::new("log"),
        "dump".as_ref(),
        segment.as_os_str(),
        "--records".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(
        lines[0],
        json!({"type": "segment", "path": segment.display().to_string(), "base_offset": 0, "size": size})
    );
    let batches = of_type(&lines, "batch");
    assert_eq!(batches.len(), 6);
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd", "none"];
    let firsts = [0, 3, 5, 6, 7, 8];
    let mut position = 0;
    for (i, (batch, built)) in batches.iter().zip(&p.orders).enumerate() {
        let b = Batch::parse(built).expect("batch");
        let last = firsts[i] + i64::from(b.last_offset_delta());
        let mut want = json!({
            "type": "batch",
            "base_offset": firsts[i],
            "last_offset": last,
            "record_count": b.record_count(),
            "position": position,
            "size": b.len(),
            "crc": b.crc(),
            "crc_ok": true,
            "compression": codecs[i],
            "timestamp_type": "CreateTime",
            "base_timestamp": T0 + firsts[i],
            "max_timestamp": T0 + last,
            "producer_id": -1,
            "producer_epoch": -1,
            "base_sequence": -1,
            "transactional": false,
            "control": false,
        });
        // Set by the broker on append.
        want["partition_leader_epoch"] = batch["partition_leader_epoch"].clone();
        assert!(batch["partition_leader_epoch"].is_i64());
        assert_eq!(*batch, &want, "batch {i}");
        position += b.len();
    }
    let records = of_type(&lines, "record");
    let want = vec![
        json!({"type": "record", "offset": 0, "timestamp": T0, "key": "user-1", "key_size": 6,
               "headers": [], "value": "hello", "value_size": 5}),
        json!({"type": "record", "offset": 1, "timestamp": T0 + 1, "key": null, "key_size": null,
               "headers": [{"key": "trace", "value": "abc", "value_size": 3},
                           {"key": "empty", "value": null, "value_size": null}],
               "value": "wörld", "value_size": 6}),
        json!({"type": "record", "offset": 2, "timestamp": T0 + 2, "key": "bin", "key_size": 3,
               "headers": [], "value": {"hex": "ff0010"}, "value_size": 3}),
        json!({"type": "record", "offset": 3, "timestamp": T0 + 3, "key": "k-3", "key_size": 3,
               "headers": [], "value": "zipped-3", "value_size": 8}),
        json!({"type": "record", "offset": 4, "timestamp": T0 + 4, "key": "k-4", "key_size": 3,
               "headers": [], "value": "zipped-4", "value_size": 8}),
        json!({"type": "record", "offset": 5, "timestamp": T0 + 5, "key": "k-5", "key_size": 3,
               "headers": [], "value": "snappy-5", "value_size": 8}),
        json!({"type": "record", "offset": 6, "timestamp": T0 + 6, "key": "k-6", "key_size": 3,
               "headers": [], "value": "lz4-6", "value_size": 5}),
        json!({"type": "record", "offset": 7, "timestamp": T0 + 7, "key": "k-7", "key_size": 3,
               "headers": [], "value": "zstd-7", "value_size": 6}),
        json!({"type": "record", "offset": 8, "timestamp": T0 + 8, "key": "big", "key_size": 3,
               "headers": [], "value": "x".repeat(256), "value_size": 600}),
        json!({"type": "record", "offset": 9, "timestamp": T0 + 9, "key": "gone", "key_size": 4,
               "headers": [], "value": null, "value_size": null}),
    ];
    let got: Vec<Value> = records.into_iter().cloned().collect();
    assert_eq!(got, want);
    assert_eq!(
        lines.last().expect("end"),
        &json!({"type": "end", "path": segment.display().to_string(), "batches": 6,
                "records": 10, "record_errors": 0, "last_offset": 9,
                "valid_bytes": size, "size": size, "valid": true})
    );
    assert_eq!(position as u64, size);
    // Lines come in file order: each batch is followed by its records.
    let order: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        &order[..6],
        ["segment", "batch", "record", "record", "record", "batch"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_of_a_partition_directory_covers_every_segment_in_order() {
    let p = produce_and_stop().await;
    let dir = p.data.join("bulk-0");
    let logs = segments(&dir);
    assert!(logs.len() >= 3, "segment.bytes 2048 rolled: {logs:?}");
    let o = pubsub([
        OsStr::new("log"),
        "dump".as_ref(),
        dir.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    let heads: Vec<String> = of_type(&lines, "segment")
        .iter()
        .map(|l| l["path"].as_str().expect("path").to_string())
        .collect();
    let want: Vec<String> = logs.iter().map(|l| l.display().to_string()).collect();
    assert_eq!(heads, want, "every segment, oldest first");
    let bases: Vec<i64> = of_type(&lines, "batch")
        .iter()
        .map(|b| b["base_offset"].as_i64().expect("offset"))
        .collect();
    let want: Vec<i64> = (0..30).map(|i| i * 3).collect();
    assert_eq!(bases, want, "all 30 batches, once each, in offset order");
    let ends = of_type(&lines, "end");
    assert_eq!(ends.len(), logs.len());
    assert!(ends.iter().all(|e| e["valid"] == true), "{ends:?}");
    assert_eq!(ends.last().expect("end")["last_offset"], 89);
    // The positions restart in every segment and follow the batch sizes.
    let mut position = 0;
    let mut segment = 0;
    for line in &lines {
        match line["type"].as_str() {
            Some("segment") => {
                position = 0;
                segment += 1;
            }
            Some("batch") => {
                let i = (line["base_offset"].as_u64().expect("offset") / 3) as usize;
                assert_eq!(line["position"], position, "batch {i} in segment {segment}");
                assert_eq!(line["size"], p.bulk[i].len());
                position += p.bulk[i].len();
            }
            _ => {}
        }
    }

    let o = pubsub([OsStr::new("log"), "dump".as_ref(), dir.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("segment ")).count(),
        logs.len()
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("baseOffset: "))
            .count(),
        30
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_cleanly_stopped_data_dir_and_changes_nothing() {
    let p = produce_and_stop().await;
    let before = snapshot(&p.data);

    let o = pubsub([OsStr::new("log"), "check".as_ref(), p.data.as_os_str()]);
    assert!(o.status.success(), "exit 0: {}\n{}", stdout(&o), stderr(&o));
    assert_eq!(stderr(&o), "", "no warning, no error");
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    // Sorted by topic, then partition number.
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once(": ok (").map(|(n, _)| n))
        .collect();
    assert_eq!(
        names,
        [
            "__consumer_offsets-0",
            "__consumer_offsets-1",
            "bulk-0",
            "cut-0",
            "orders-0"
        ],
        "{text}"
    );
    let bulk_segments = segments(&p.data.join("bulk-0")).len();
    assert!(
        text.contains(&format!(
            "bulk-0: ok ({bulk_segments} segment(s), offsets 0..=89, stopped cleanly)"
        )),
        "{text}"
    );
    assert!(
        text.contains("orders-0: ok (1 segment(s), offsets 0..=9, stopped cleanly)"),
        "{text}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("5 partition(s) checked: 5 healthy, 0 not healthy")
    );

    let o = pubsub([
        OsStr::new("log"),
        "check".as_ref(),
        p.data.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(doc["healthy"], true);
    assert_eq!(doc["broker_data_dir"], true);
    assert_eq!(doc["broker_running"], false);
    assert_eq!(doc["problems"], json!([]));
    let parts = doc["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 5);
    let bulk = parts
        .iter()
        .find(|p| p["name"] == "bulk-0")
        .expect("bulk-0");
    // The topic's own index.interval.bytes, read from its topic file: with
    // the default 4096 every bulk index would compare as different.
    assert_eq!(bulk["index_interval_bytes"], 256);
    assert_eq!(bulk["topic"], "bulk");
    assert_eq!(bulk["partition"], 0);
    assert_eq!(bulk["clean_shutdown"], true);
    assert_eq!(
        bulk["segments"].as_array().expect("segments").len(),
        bulk_segments
    );
    assert!(
        std::fs::metadata(
            p.data
                .join("bulk-0")
                .join(SEGMENT.replace(".log", ".index"))
        )
        .expect("index")
        .len()
            > 0,
        "the first bulk segment has index entries to compare"
    );

    // One partition directory on its own.
    let o = pubsub([
        OsStr::new("log"),
        "check".as_ref(),
        p.data.join("bulk-0").as_os_str(),
        "--verbose".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  segment ")).count(),
        bulk_segments,
        "--verbose lists every segment:\n{text}"
    );
    assert!(text.contains("index interval 256 bytes"), "{text}");

    assert_eq!(snapshot(&p.data), before, "check changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_corruption_and_what_recovery_would_do_without_changing_anything() {
    let p = produce_and_stop().await;
    let data = p.data.parent().expect("tmp").join("corrupt");
    copy_dir(&p.data, &data);

    // What the broker itself would change: a partition directory under a
    // name that is not its partition's (deleted at open), and a partition
    // without a directory (created empty at open).
    copy_dir(&data.join("orders-0"), &data.join("ghost-0"));
    // ...whose leader-epoch cache is damaged too (rebuilt from the log at open).
    std::fs::write(
        data.join("ghost-0").join("leader-epoch.checkpoint"),
        b"garbage",
    )
    .expect("write");
    std::fs::remove_dir_all(data.join("__consumer_offsets-1")).expect("remove");
    // orders-0: a torn append, 100 bytes of garbage after the last batch.
    let orders = data.join("orders-0").join(SEGMENT);
    let orders_size = std::fs::metadata(&orders).expect("segment").len();
    let mut bytes = std::fs::read(&orders).expect("read");
    bytes.extend_from_slice(&[0xAB; 100]);
    std::fs::write(&orders, &bytes).expect("write");
    // cut-0: the last 10 bytes of fsynced data gone.
    let cut = data.join("cut-0").join(SEGMENT);
    let mut bytes = std::fs::read(&cut).expect("read");
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&cut, &bytes).expect("write");
    let last_cut_batch: usize = p.cut[..4].iter().map(Vec::len).sum();
    // bulk-0: one byte of the first (sealed) segment's offset index.
    let index = data.join("bulk-0").join(SEGMENT.replace(".log", ".index"));
    let mut bytes = std::fs::read(&index).expect("read");
    assert!(bytes.len() >= 8, "an index entry to damage");
    bytes[5] ^= 0x40;
    std::fs::write(&index, &bytes).expect("write");

    let before = snapshot(&data);
    let o = pubsub([OsStr::new("log"), "check".as_ref(), data.as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "orders-0: NOT HEALTHY (1 segment(s), offsets 0..=9): open would truncate segment 0 at byte {orders_size} (100 bytes: "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cut-0: NOT HEALTHY (1 segment(s), offsets 0..=11): open would fail: segment 0 is corrupt at byte {last_cut_batch} ("
        )) && text.contains("below the recovery point 15"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  segment 00000000000000000000: {} bytes, 4 batch(es), offsets 0..=11; INVALID at byte {last_cut_batch} ({} bytes to the end): batch of ",
            last_cut_batch + p.cut[4].len() - 10,
            p.cut[4].len() - 10
        )),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("bulk-0: NOT HEALTHY")
            && l.contains("clean shutdown: open would not scan anything")),
        "{text}"
    );
    assert!(
        text.contains("offset index: ") && text.contains("contents differ"),
        "{text}"
    );
    assert!(text.contains("__consumer_offsets-0: ok ("), "{text}");
    assert!(
        text.contains(
            "ghost-0: NOT HEALTHY (1 segment(s), offsets 0..=9): the log itself is intact, but:\n  partition.checkpoint names topic \"orders\" (id "
        ) && text.contains(
            "partition 0, but the directory of that partition is orders-0: open would delete this directory\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(": open would ignore it and rebuild the leader-epoch cache from the log\n"),
        "{text}"
    );
    assert!(
        text.contains("PROBLEM: topic \"__consumer_offsets\" partition 1 has no directory: open would create an empty log\n"),
        "{text}"
    );
    // The clean stop's partitions.checkpoint (its generation the broker
    // file's: open trusts every entry) still describes the logs as they
    // were before the damage: a broker would answer that until first use.
    assert!(
        text.contains("partitions.checkpoint: its entry for cut-0 says offsets 0..15, ")
            && text.contains(", the log holds offsets 0..12, 480 bytes in 1 segment(s): a broker would answer the file's figures until the partition's first use\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "partitions.checkpoint: its entry for orders-0 says offsets 0..10, {orders_size} bytes in 1 segment(s), the log holds offsets 0..10, {} bytes in 1 segment(s)",
            orders_size + 100
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "5 partition(s) checked: 1 healthy, 4 not healthy; 3 data directory problem(s)\n"
        ),
        "{text}"
    );
    assert_eq!(
        stderr(&o),
        "error: log check: 4 of 5 partition(s) not healthy, 3 data directory problem(s)\n",
        "one error line"
    );

    let o = pubsub([
        OsStr::new("log"),
        "check".as_ref(),
        data.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(doc["healthy"], false);
    let unhealthy: Vec<&str> = doc["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| p["healthy"] == false)
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(unhealthy, ["bulk-0", "cut-0", "ghost-0", "orders-0"]);
    assert_eq!(doc["problems"].as_array().expect("problems").len(), 3);
    let part = |name: &str| {
        doc["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .expect("partition")
    };
    let orders_json = part("orders-0");
    assert_eq!(
        orders_json["clean_shutdown"], false,
        "the size no longer matches"
    );
    assert_eq!(
        orders_json["segments"][0]["invalid"]["position"],
        orders_size
    );
    assert_eq!(orders_json["segments"][0]["valid_bytes"], orders_size);
    assert_eq!(part("cut-0")["segments"][0]["last_offset"], 11);
    assert!(part("bulk-0")["segments"][0]["index_problem"].is_string());
    assert!(part("bulk-0")["segments"][0]["time_index_problem"].is_null());

    assert_eq!(snapshot(&data), before, "check changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_when_whole_fsynced_batches_are_missing() {
    // Every remaining batch is valid, but the log now ends below the
    // recovery point: acknowledged, fsynced data is gone and open refuses.
    let p = produce_and_stop().await;
    let segment = p.data.join("cut-0").join(SEGMENT);
    let keep: usize = p.cut[..4].iter().map(Vec::len).sum();
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.truncate(keep);
    std::fs::write(&segment, &bytes).expect("write");
    let before = snapshot(&p.data);
    let o = pubsub([
        OsStr::new("log"),
        "check".as_ref(),
        p.data.join("cut-0").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        stdout(&o),
        "cut-0: NOT HEALTHY (1 segment(s), offsets 0..=11): open would fail: the log ends at offset 12, below the recovery point 15 (fsynced data is missing)\n1 partition(s) checked: 0 healthy, 1 not healthy\n"
    );
    assert_eq!(snapshot(&p.data), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_of_a_torn_segment_stops_where_the_invalid_data_starts() {
    let p = produce_and_stop().await;
    let segment = p.data.join("cut-0").join(SEGMENT);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&segment, &bytes).expect("write");
    let valid: usize = p.cut[..4].iter().map(Vec::len).sum();
    let left = p.cut[4].len() - 10;

    let o = pubsub([
        OsStr::new("log"),
        "dump".as_ref(),
        segment.as_os_str(),
        "--records".as_ref(),
    ]);
    assert!(
        o.status.success(),
        "exit 0 even with invalid data: {}",
        stderr(&o)
    );
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("baseOffset: "))
            .count(),
        4
    );
    assert_eq!(
        lines.iter().rev().find(|l| l.starts_with("| ")).copied(),
        Some(r#"| offset: 11 timestamp: 1700000000011 key: null headers: [] value: "cut-11""#)
    );
    let invalid = lines[lines.len() - 2];
    assert_eq!(
        invalid,
        format!(
            "INVALID data at byte {valid} of {} ({left} bytes to the end of the file): batch of {} bytes runs past the end of the segment ({left} bytes left) (the header there claims offsets 12..=14, {} bytes); the dump of this segment stops here",
            segment.display(),
            p.cut[4].len(),
            p.cut[4].len()
        )
    );
    assert_eq!(
        lines[lines.len() - 1],
        format!(
            "end of {}: 4 batch(es), 12 record(s), offsets up to 11, {valid} of {} bytes valid",
            segment.display(),
            valid + left
        )
    );

    let o = pubsub([
        OsStr::new("log"),
        "dump".as_ref(),
        segment.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success());
    let lines = json_lines(&o);
    let invalid = of_type(&lines, "invalid");
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["position"], valid);
    assert_eq!(invalid[0]["bytes_to_end"], left);
    assert_eq!(
        invalid[0]["claimed"],
        json!({"base_offset": 12, "last_offset": 14, "size": p.cut[4].len()})
    );
    let end = of_type(&lines, "end");
    assert_eq!(end[0]["valid"], false);
    assert_eq!(end[0]["batches"], 4);
    assert_eq!(end[0]["valid_bytes"], valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_when_a_broker_holds_the_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data);
    let o = pubsub([OsStr::new("log"), "check".as_ref(), data.as_os_str()]);
    assert!(
        stderr(&o).starts_with(&format!(
            "warning: a running broker holds {} (its .lock is locked)",
            data.display()
        )),
        "{}",
        stderr(&o)
    );
    let (status, _, err) = daemon.stop();
    assert!(status.success(), "the broker is undisturbed: {err}");
}

#[test]
fn missing_paths_and_wrong_inputs_fail_with_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("nope");
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "not a log").expect("write");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let cases: Vec<(Vec<&OsStr>, String)> = vec![
        (
            vec!["dump".as_ref(), missing.as_os_str()],
            format!(
                "error: cannot read {}: No such file or directory",
                missing.display()
            ),
        ),
        (
            vec!["check".as_ref(), missing.as_os_str()],
            format!(
                "error: cannot read {}: No such file or directory",
                missing.display()
            ),
        ),
        (
            vec!["check".as_ref(), file.as_os_str()],
            format!("error: {} is not a directory", file.display()),
        ),
        (
            vec!["check".as_ref(), empty.as_os_str()],
            format!(
                "error: {} is neither a pubsub data directory nor a partition directory",
                empty.display()
            ),
        ),
        (
            vec!["dump".as_ref(), empty.as_os_str()],
            format!("error: {} holds no segment files", empty.display()),
        ),
    ];
    for (args, want) in cases {
        let o = pubsub(std::iter::once(OsStr::new("log")).chain(args.iter().copied()));
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with(&want), "{args:?}: {err}\nwant {want}");
    }
    // A file that is not a segment: the dump says so at byte 0.
    let o = pubsub([OsStr::new("log"), "dump".as_ref(), file.as_os_str()]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("INVALID data at byte 0 of"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn help_of_every_log_subcommand_has_examples() {
    for sub in ["dump", "check"] {
        let o = pubsub(["log", sub, "--help"]);
        assert!(o.status.success());
        let text = stdout(&o);
        assert!(text.contains("Examples:"), "{sub}: {text}");
        assert!(
            text.contains(&format!("pubsub log {sub} pubsub-data")),
            "{sub}: {text}"
        );
    }
    let o = pubsub(["log", "--help"]);
    let text = stdout(&o);
    assert!(text.contains("dump") && text.contains("check"), "{text}");
}
