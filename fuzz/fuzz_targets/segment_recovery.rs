//! Recovery of a segment made of valid batches followed by arbitrary bytes,
//! through the real `Log::open` on real files: it must never panic, only
//! ever shorten the file, never lose the valid prefix, and agree with the
//! pure scanner about where the valid data ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pubsub_records::{BatchBuilder, BatchMut, Compression, NewRecord};
use pubsub_storage::scan::scan_bytes;
use pubsub_storage::{Log, LogConfig};

/// Builds a few valid batches from the first bytes of the input.
fn valid_prefix(seed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = 0i64;
    for (i, chunk) in seed.chunks(4).enumerate() {
        let n = 1 + usize::from(chunk[0] % 4);
        let codec =
            Compression::from_id(chunk.get(1).copied().unwrap_or(0) % 5).unwrap_or_default();
        let mut b = BatchBuilder::new().compression(codec);
        for j in 0..n {
            let value = vec![chunk.get(2).copied().unwrap_or(7); j * 5 + i];
            let key = chunk.get(3).map(|k| [*k]);
            let _ = b.push(&NewRecord {
                timestamp: 1_000 * i as i64 + j as i64,
                key: key.as_ref().map(|k| &k[..]),
                value: Some(&value),
                headers: &[],
            });
        }
        let Ok(mut bytes) = b.build() else { return out };
        if let Ok(mut m) = BatchMut::parse(&mut bytes) {
            m.set_base_offset(next);
        }
        next += n as i64;
        out.extend(bytes);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (&count, rest) = match data.split_first() {
        Some(x) => x,
        None => return,
    };
    let seed_len = (usize::from(count % 8) * 4).min(rest.len());
    let (seed, garbage) = rest.split_at(seed_len);
    let prefix = valid_prefix(seed);
    let segment = [prefix.as_slice(), garbage].concat();

    // The pure scanner keeps at least the prefix and at most everything.
    let summary = scan_bytes(&segment, 0);
    assert!(
        summary.valid_len >= prefix.len() as u64,
        "scanner lost the valid prefix"
    );
    assert!(summary.valid_len <= segment.len() as u64);
    let again = scan_bytes(&segment[..summary.valid_len as usize], 0);
    assert!(again.stop.is_none() && again.valid_len == summary.valid_len);

    // The real recovery on a real file agrees.
    // tmpfs when there is one: fsync there is cheap, so the fuzzer runs faster.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    let Ok(dir) = dir else { return };
    let path = dir.path().join("00000000000000000000.log");
    if std::fs::write(&path, &segment).is_err() {
        return;
    }
    let config = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 64,
        max_index_bytes: 4096,
        ..LogConfig::default()
    };
    let (log, report) =
        Log::open(dir.path(), config).expect("recovery of a lone segment never fails");
    let kept = std::fs::read(&path).expect("segment still there");
    assert_eq!(
        kept.len() as u64,
        summary.valid_len,
        "recovery and scanner disagree"
    );
    assert_eq!(
        &kept[..],
        &segment[..kept.len()],
        "recovery may only truncate"
    );
    assert_eq!(
        report.lost_bytes(),
        segment.len() as u64 - summary.valid_len
    );
    assert_eq!(
        log.log_end_offset(),
        summary.last_offset.map_or(0, |l| l + 1),
        "log end offset after recovery"
    );
    // Everything kept reads back.
    if log.log_end_offset() > 0 {
        let r = log.read(0, 1 << 20).expect("read recovered data");
        assert!(!r.records.is_empty());
    }
});
