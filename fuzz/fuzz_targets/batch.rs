//! Arbitrary bytes through everything that reads a batch: the length prefix,
//! the header view, validation, decompression (bounded) and the record and
//! header iterators. Nothing may panic or allocate past the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pubsub_records::{compression, BatchHeader, Batches, Compression};

fuzz_target!(|data: &[u8]| {
    let _ = BatchHeader::parse(data);
    for batch in Batches::new(data) {
        let Ok(batch) = batch else { break };
        let _ = batch.validate();
        let _ = batch.validate_for_append();
        let _ = (
            batch.last_offset(),
            batch.last_sequence(),
            batch.timestamp_type(),
        );
        if let Ok(records) = batch.records(1 << 20) {
            for record in records.iter() {
                let Ok(record) = record else { break };
                for header in record.headers() {
                    let _ = header.value.map(<[u8]>::len);
                }
            }
        }
    }
    // Every codec on the raw input, bounded to 64 KiB of output.
    if let Some((&codec, rest)) = data.split_first() {
        if let Ok(codec) = Compression::from_id(codec % 5) {
            if let Ok(out) = compression::decompress(codec, rest, 64 << 10) {
                assert!(out.len() <= 64 << 10);
            }
        }
    }
});
