//! `pubsub log dump`: the batches (and records) of segment files, as text
//! or NDJSON, validated by the storage engine's own scan.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use pubsub_records::{Batch, BatchHeader, Record, TimestampType, HEADER_LEN};
use pubsub_storage::fs::{FileHandle, RealFile};
use pubsub_storage::scan::{scan, ScanStop};
use serde_json::{json, Value};

use super::{base_from_name, io_error, max_decompressed, DumpArgs, Out};
use crate::error::CliError;

/// The segment files of a partition directory, oldest first.
fn segments_in(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let list_error = |e| io_error(format!("cannot list {}", dir.display()), e);
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let path = entry.map_err(list_error)?.path();
        if let Some(base) = base_from_name(&path) {
            segments.push((base, path));
        }
    }
    if segments.is_empty() {
        let hint = if dir.join("topics").is_dir() {
            format!(
                " (it looks like a data directory: give one of its partition directories, such as {})",
                dir.join("<topic>-0").display()
            )
        } else {
            String::new()
        };
        return Err(CliError::Usage(format!(
            "{} holds no segment files (<20-digit base offset>.log){hint}",
            dir.display()
        )));
    }
    segments.sort();
    Ok(segments.into_iter().map(|(_, p)| p).collect())
}

pub(super) fn dump(args: &DumpArgs) -> Result<(), CliError> {
    let meta = std::fs::metadata(&args.path)
        .map_err(|e| io_error(format!("cannot read {}", args.path.display()), e))?;
    let segments = if meta.is_dir() {
        segments_in(&args.path)?
    } else {
        let name = args.path.to_string_lossy();
        if name.ends_with(".index") || name.ends_with(".timeindex") {
            return Err(CliError::Usage(format!(
                "{} is an index file: dump takes a segment (.log) file or a partition directory",
                args.path.display()
            )));
        }
        vec![args.path.clone()]
    };
    let mut out = Out::new();
    for segment in &segments {
        dump_segment(segment, args, &mut out)?;
        if out.closed {
            break;
        }
    }
    out.finish()
}

/// What a dump of one segment met.
#[derive(Default)]
struct DumpStats {
    records: u64,
    record_errors: u64,
}

fn dump_segment(path: &Path, args: &DumpArgs, out: &mut Out) -> Result<(), CliError> {
    let read_error = |e| io_error(format!("cannot read {}", path.display()), e);
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let file = RealFile::new(file);
    // A segment copied under another name: take its first batch's offset.
    let base = base_from_name(path).unwrap_or_else(|| {
        let mut first = [0u8; 8];
        file.read_exact_at(&mut first, 0)
            .ok()
            .and_then(|()| u64::try_from(i64::from_be_bytes(first)).ok())
            .unwrap_or(0)
    });
    let shown = path.display().to_string();
    if args.json {
        out.line(
            &json!({"type": "segment", "path": shown, "base_offset": base, "size": size})
                .to_string(),
        );
    } else {
        out.line(&format!(
            "segment {shown}: base offset {base}, {size} bytes"
        ));
    }
    let mut stats = DumpStats::default();
    let summary = scan(&file, size, base, |scanned| {
        if !out.closed {
            dump_batch(scanned.position, &scanned.batch, args, out, &mut stats);
        }
    })
    .map_err(read_error)?;
    if let Some(stop) = &summary.stop {
        dump_invalid(&file, size, stop, &shown, args.json, out);
    }
    let batches = summary.batches;
    if args.json {
        out.line(
            &json!({
                "type": "end",
                "path": shown,
                "batches": batches,
                "records": stats.records,
                "record_errors": stats.record_errors,
                "last_offset": summary.last_offset,
                "valid_bytes": summary.valid_len,
                "size": size,
                "valid": summary.stop.is_none() && stats.record_errors == 0,
            })
            .to_string(),
        );
    } else {
        let offsets = match summary.last_offset {
            Some(last) => format!("offsets up to {last}"),
            None => "no offsets".into(),
        };
        let errors = match stats.record_errors {
            0 => String::new(),
            n => format!(", {n} batch(es) with unreadable records"),
        };
        out.line(&format!(
            "end of {shown}: {batches} batch(es), {} record(s), {offsets}, {} of {size} bytes valid{errors}",
            stats.records, summary.valid_len
        ));
    }
    Ok(())
}

fn dump_invalid(
    file: &RealFile,
    size: u64,
    stop: &ScanStop,
    shown: &str,
    json: bool,
    out: &mut Out,
) {
    let left = size.saturating_sub(stop.position);
    // What the bytes there claim to be, when they still parse as a header.
    let mut header = [0u8; HEADER_LEN];
    let claimed = (left >= HEADER_LEN as u64)
        .then(|| file.read_exact_at(&mut header, stop.position).ok())
        .flatten()
        .and_then(|()| BatchHeader::parse(&header).ok());
    if json {
        let claimed = claimed.map(|h| {
            json!({"base_offset": h.base_offset, "last_offset": h.last_offset(), "size": h.len})
        });
        out.line(
            &json!({
                "type": "invalid",
                "path": shown,
                "position": stop.position,
                "bytes_to_end": left,
                "reason": stop.reason,
                "claimed": claimed,
            })
            .to_string(),
        );
    } else {
        let claimed = claimed.map_or(String::new(), |h| {
            format!(
                " (the header there claims offsets {}..={}, {} bytes)",
                h.base_offset,
                h.last_offset(),
                h.len
            )
        });
        out.line(&format!(
            "INVALID data at byte {} of {shown} ({left} bytes to the end of the file): {}{claimed}; the dump of this segment stops here",
            stop.position, stop.reason
        ));
    }
}

fn timestamp_type(batch: &Batch<'_>) -> &'static str {
    match batch.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

fn dump_batch(
    position: u64,
    batch: &Batch<'_>,
    args: &DumpArgs,
    out: &mut Out,
    stats: &mut DumpStats,
) {
    // The scan validated the batch: its codec is known and its CRC matches.
    let compression = batch.compression().map_or("unknown", |c| c.name());
    let crc_ok = batch.validate_crc().is_ok();
    if args.json {
        out.line(
            &json!({
                "type": "batch",
                "base_offset": batch.base_offset(),
                "last_offset": batch.last_offset(),
                "record_count": batch.record_count(),
                "position": position,
                "size": batch.len(),
                "crc": batch.crc(),
                "crc_ok": crc_ok,
                "compression": compression,
                "timestamp_type": timestamp_type(batch),
                "base_timestamp": batch.base_timestamp(),
                "max_timestamp": batch.max_timestamp(),
                "producer_id": batch.producer_id(),
                "producer_epoch": batch.producer_epoch(),
                "base_sequence": batch.base_sequence(),
                "partition_leader_epoch": batch.partition_leader_epoch(),
                "transactional": batch.is_transactional(),
                "control": batch.is_control(),
            })
            .to_string(),
        );
    } else {
        out.line(&format!(
            "baseOffset: {} lastOffset: {} count: {} position: {position} size: {} crc: {:#010x} ({}) compression: {compression} timestampType: {} baseTimestamp: {} maxTimestamp: {} producerId: {} producerEpoch: {} baseSequence: {} partitionLeaderEpoch: {} transactional: {} control: {}",
            batch.base_offset(),
            batch.last_offset(),
            batch.record_count(),
            batch.len(),
            batch.crc(),
            if crc_ok { "ok" } else { "BAD" },
            timestamp_type(batch),
            batch.base_timestamp(),
            batch.max_timestamp(),
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
            batch.partition_leader_epoch(),
            batch.is_transactional(),
            batch.is_control(),
        ));
    }
    stats.records += u64::try_from(batch.record_count()).unwrap_or(0);
    if !args.records {
        return;
    }
    let failure = match batch.records(max_decompressed()) {
        Err(e) => Some(e),
        Ok(set) => {
            let mut failure = None;
            for record in set.iter() {
                match record {
                    Ok(r) => dump_record(&r, args, out),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            failure
        }
    };
    if let Some(e) = failure {
        stats.record_errors += 1;
        if args.json {
            out.line(
                &json!({"type": "record_error", "batch_base_offset": batch.base_offset(), "reason": e.to_string()})
                    .to_string(),
            );
        } else {
            out.line(&format!(
                "| ERROR reading the records of the batch at offset {}: {e}",
                batch.base_offset()
            ));
        }
    }
}

fn dump_record(r: &Record<'_>, args: &DumpArgs, out: &mut Out) {
    let max = args.max_value_bytes;
    if args.json {
        let headers: Vec<Value> = r
            .headers()
            .map(|h| {
                json!({
                    "key": json_bytes(Some(h.key), max),
                    "value": json_bytes(h.value, max),
                    "value_size": h.value.map(<[u8]>::len),
                })
            })
            .collect();
        out.line(
            &json!({
                "type": "record",
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": json_bytes(r.key, max),
                "key_size": r.key.map(<[u8]>::len),
                "headers": headers,
                "value": json_bytes(r.value, max),
                "value_size": r.value.map(<[u8]>::len),
            })
            .to_string(),
        );
    } else {
        let headers: Vec<String> = r
            .headers()
            .map(|h| {
                format!(
                    "{}: {}",
                    human_bytes(Some(h.key), max),
                    human_bytes(h.value, max)
                )
            })
            .collect();
        out.line(&format!(
            "| offset: {} timestamp: {} key: {} headers: [{}] value: {}",
            r.offset,
            r.timestamp,
            human_bytes(r.key, max),
            headers.join(", "),
            human_bytes(r.value, max)
        ));
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn utf8_prefix(s: &str, max: usize) -> &str {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes for people: `null`, a quoted, escaped string if they are UTF-8,
/// else `0x` and hex; cut to `max` bytes with the full size noted.
fn human_bytes(bytes: Option<&[u8]>, max: usize) -> String {
    let Some(bytes) = bytes else {
        return "null".into();
    };
    let (mut text, shown) = match std::str::from_utf8(bytes) {
        Ok(s) => {
            let prefix = utf8_prefix(s, max);
            (format!("{prefix:?}"), prefix.len())
        }
        Err(_) => {
            let prefix = &bytes[..max.min(bytes.len())];
            (format!("0x{}", hex(prefix)), prefix.len())
        }
    };
    if shown < bytes.len() {
        let _ = write!(text, "... (first {shown} of {} bytes)", bytes.len());
    }
    text
}

/// Bytes for JSON: `null`, a string if they are UTF-8, else `{"hex": ...}`;
/// cut to `max` bytes (the record's `*_size` fields give the full size).
fn json_bytes(bytes: Option<&[u8]>, max: usize) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(utf8_prefix(s, max).to_string()),
            Err(_) => json!({"hex": hex(&b[..max.min(b.len())])}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_as_text_or_hex_and_cut_on_characters() {
        assert_eq!(human_bytes(None, 10), "null");
        assert_eq!(human_bytes(Some(b"hi \"x\"\n"), 10), r#""hi \"x\"\n""#);
        assert_eq!(human_bytes(Some(&[0xff, 0x00]), 10), "0xff00");
        assert_eq!(
            human_bytes(Some(b"abcdef"), 3),
            "\"abc\"... (first 3 of 6 bytes)"
        );
        // "é" is two bytes: a cut inside it falls back to the character before.
        assert_eq!(
            human_bytes(Some("aé".as_bytes()), 2),
            "\"a\"... (first 1 of 3 bytes)"
        );
        assert_eq!(json_bytes(Some(&[0xff, 1, 2]), 2), json!({"hex": "ff01"}));
        assert_eq!(json_bytes(Some(b"abc"), 2), json!("ab"));
        assert_eq!(json_bytes(None, 2), Value::Null);
    }
}
