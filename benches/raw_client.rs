//! Raw-wire Kafka clients for `net-bench`: a consumer and a producer whose
//! own work is about as small as the loopback copy's reader and writer, so
//! that what they measure is the broker (rdkafka_performance measures the
//! broker plus a real client that parses every record).
//!
//! The consumer sends Fetch v11 requests (no session, one partition per
//! request, one request in flight per partition, all pipelined on one
//! connection) and reads the answers through a 1 MiB buffer, as the
//! loopback reader does. It looks only at batch headers: every batch must
//! start at the offset the previous one ended at, and its record count
//! must match the offsets it spans, so every offset is received exactly
//! once; record bodies are skipped unread. As soon as the header of a
//! partition's last complete batch in an answer is in, the next fetch for
//! that partition is sent, while the rest of the batch is still arriving.
//!
//! The producer sends prebuilt Produce v7 requests (one batch of valid,
//! CRC-checked records, producer id -1: idempotence off, acks=1), a window
//! of them in flight, from a writer thread; the reader checks each
//! answer's correlation id, error code and base offset (each partition's
//! answers must follow one another by the batch's record count).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use pubsub_client::low_water::{self, LowWater};

/// What a raw client moved.
pub struct Moved {
    /// Records received or acknowledged.
    pub records: u64,
    /// Record batch bytes (headers included) received or sent.
    pub batch_bytes: u64,
    /// Requests sent.
    pub requests: u64,
    /// Wall time, seconds.
    pub secs: f64,
}

const CLIENT_ID: &[u8] = b"raw";

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s);
}

fn header(out: &mut Vec<u8>, api_key: i16, version: i16, correlation: i32) {
    out.extend_from_slice(&[0; 4]); // size, set by `finish`
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation.to_be_bytes());
    put_str(out, CLIENT_ID);
}

fn finish(out: &mut [u8]) {
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
}

/// A Fetch v11 request for one partition, no session.
fn fetch_request(
    topic: &[u8],
    partition: i32,
    offset: i64,
    partition_max: i32,
    correlation: i32,
) -> Vec<u8> {
    let mut r = Vec::with_capacity(96);
    header(&mut r, 1, 11, correlation);
    r.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
    r.extend_from_slice(&500i32.to_be_bytes()); // max wait ms
    r.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    r.extend_from_slice(&partition_max.to_be_bytes()); // max bytes
    r.push(0); // read uncommitted
    r.extend_from_slice(&0i32.to_be_bytes()); // session id
    r.extend_from_slice(&(-1i32).to_be_bytes()); // session epoch: none
    r.extend_from_slice(&1i32.to_be_bytes()); // topics
    put_str(&mut r, topic);
    r.extend_from_slice(&1i32.to_be_bytes()); // partitions
    r.extend_from_slice(&partition.to_be_bytes());
    r.extend_from_slice(&(-1i32).to_be_bytes()); // current leader epoch
    r.extend_from_slice(&offset.to_be_bytes());
    r.extend_from_slice(&(-1i64).to_be_bytes()); // log start offset
    r.extend_from_slice(&partition_max.to_be_bytes());
    r.extend_from_slice(&0i32.to_be_bytes()); // forgotten topics
    put_str(&mut r, b""); // rack id
    finish(&mut r);
    r
}

/// Buffered reads off the socket: header fields are looked at in place,
/// record bodies are skipped (read into the buffer and dropped).
struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `s`'s low-water mark, raised only inside [`Wire::skip`].
    low_water: LowWater,
}

impl Wire {
    fn new(s: TcpStream) -> Wire {
        Wire {
            low_water: LowWater::new(),
            s,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
        }
    }

    /// At least `n` (small) bytes in the buffer, contiguous.
    fn need(&mut self, n: usize) -> Result<&[u8], String> {
        if self.end - self.start < n {
            if self.buf.len() - self.start < n {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            while self.end - self.start < n {
                let got = self
                    .s
                    .read(&mut self.buf[self.end..])
                    .map_err(|e| format!("read: {e}"))?;
                if got == 0 {
                    return Err("the broker closed the connection".into());
                }
                self.end += got;
            }
        }
        Ok(&self.buf[self.start..self.start + n])
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        self.need(n)?;
        let at = self.start;
        self.start += n;
        Ok(&self.buf[at..at + n])
    }

    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<(), String> {
        let n = self.i16()?;
        self.skip(n.max(0) as usize)
    }

    /// Drops `n` bytes, reading them off the socket as needed (whole
    /// buffers at a time; what follows them stays buffered). A long run is
    /// read with the socket's low-water mark at up to 256 KiB of what is
    /// still to come, as pubsub's client reads a large answer: the reader
    /// wakes once per mark, not once per arriving segment.
    fn skip(&mut self, mut n: usize) -> Result<(), String> {
        let buffered = (self.end - self.start).min(n);
        self.start += buffered;
        n -= buffered;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let run = n;
        while n > 0 {
            self.low_water.before_read(self.s.as_fd(), run, n);
            // A blocking read with a mark could sleep for more than is
            // coming (`low_water::read_when_ready`).
            let got = low_water::read_when_ready(self.s.as_fd(), &mut self.buf)
                .map_err(|e| format!("read: {e}"))?;
            if got == 0 {
                return Err("the broker closed the connection".into());
            }
            if got <= n {
                n -= got;
            } else {
                self.start = n;
                self.end = got;
                n = 0;
            }
        }
        self.low_water.reset(self.s.as_fd());
        if self.low_water.mark() != Some(1) {
            // `need` reads blocking, which a mark left raised could stall.
            return Err("could not put the socket's low-water mark back to 1".into());
        }
        Ok(())
    }
}

/// Fetch protocol constants of a record batch header.
const BATCH_PREFIX: usize = 12; // base offset, batch length
const BATCH_HEADER: usize = 61;

/// Answers in a row that may leave a partition where it was (each waits
/// up to the fetch's 500 ms) before the consumer gives up.
const MAX_STALLS: u32 = 20;

/// Reads `topic`'s partitions `0..partitions` from offset 0 to their high
/// watermark (taken from each partition's first answer), checking every
/// offset arrives once. `partition_max` is the Fetch partition and
/// request byte limit.
pub fn consume(
    addr: &str,
    topic: &str,
    partitions: i32,
    partition_max: i32,
) -> Result<Moved, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let mut out = s.try_clone().map_err(|e| format!("{e}"))?;
    let mut wire = Wire::new(s);
    let topic_b = topic.as_bytes();
    let n = partitions as usize;
    let mut next = vec![0i64; n];
    let mut end: Vec<Option<i64>> = vec![None; n];
    let mut done = 0;
    // Answers in a row that moved a partition no further: a broker that
    // keeps answering nothing (or only a partial batch) below the high
    // watermark fails the run instead of spinning.
    let mut stalled = vec![0u32; n];
    let mut moved = Moved {
        records: 0,
        batch_bytes: 0,
        requests: 0,
        secs: 0.0,
    };
    let start = Instant::now();
    let mut correlation = 0i32;
    let mut send = |out: &mut TcpStream, p: i32, offset: i64, moved: &mut Moved| {
        correlation = correlation.wrapping_add(1);
        moved.requests += 1;
        out.write_all(&fetch_request(
            topic_b,
            p,
            offset,
            partition_max,
            correlation,
        ))
        .map_err(|e| format!("write: {e}"))
    };
    for p in 0..partitions {
        send(&mut out, p, 0, &mut moved)?;
    }
    let mut in_flight = n;
    while in_flight > 0 {
        // One answer: size, correlation id, throttle, error, session id.
        let size = wire.i32()?;
        if size < 14 {
            return Err(format!("fetch answer of {size} bytes"));
        }
        wire.i32()?;
        wire.i32()?;
        let error = wire.i16()?;
        if error != 0 {
            return Err(format!("fetch error {error}"));
        }
        wire.i32()?;
        in_flight -= 1;
        let topics = wire.i32()?;
        for _ in 0..topics {
            wire.string()?;
            let parts = wire.i32()?;
            for _ in 0..parts {
                let p = wire.i32()?;
                let error = wire.i16()?;
                let hw = wire.i64()?;
                wire.i64()?; // last stable offset
                wire.i64()?; // log start offset
                let aborted = wire.i32()?;
                for _ in 0..aborted.max(0) {
                    wire.i64()?;
                    wire.i64()?;
                }
                wire.i32()?; // preferred read replica
                let mut left = wire.i32()?.max(0) as usize;
                let i = usize::try_from(p)
                    .ok()
                    .filter(|&i| i < n)
                    .ok_or_else(|| format!("answer for partition {p}"))?;
                if error != 0 {
                    return Err(format!("partition {p}: error {error}"));
                }
                let last_end = *end[i].get_or_insert(hw);
                let before = next[i];
                let mut sent_next = false;
                // The batches: headers only.
                while left >= BATCH_PREFIX {
                    let h = wire.need(BATCH_PREFIX)?;
                    let length = i32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                    let whole = BATCH_PREFIX + length.max(0) as usize;
                    if length < (BATCH_HEADER - BATCH_PREFIX) as i32 || whole > left {
                        break; // a partial batch at the end: not counted
                    }
                    let h = wire.need(BATCH_HEADER)?;
                    let base = i64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]));
                    let delta = i32::from_be_bytes([h[23], h[24], h[25], h[26]]);
                    let count = i32::from_be_bytes([h[57], h[58], h[59], h[60]]);
                    if base != next[i] || delta < 0 || i64::from(count) != i64::from(delta) + 1 {
                        return Err(format!(
                            "partition {p}: batch at {base} (+{delta}, {count} records) where {} was due",
                            next[i]
                        ));
                    }
                    next[i] = base + i64::from(delta) + 1;
                    moved.records += count as u64;
                    moved.batch_bytes += whole as u64;
                    left -= whole;
                    // The last whole batch of the answer: ask for what
                    // follows before its body is read.
                    if left < BATCH_PREFIX && next[i] < last_end {
                        send(&mut out, p, next[i], &mut moved)?;
                        in_flight += 1;
                        sent_next = true;
                    }
                    wire.skip(whole)?;
                }
                wire.skip(left)?;
                stalled[i] = if next[i] == before { stalled[i] + 1 } else { 0 };
                if stalled[i] > MAX_STALLS {
                    return Err(format!(
                        "partition {p}: no progress at offset {} (high watermark {last_end}) in {MAX_STALLS} answers",
                        next[i]
                    ));
                }
                if sent_next {
                    // Asked for already.
                } else if next[i] >= last_end {
                    done += 1;
                } else {
                    send(&mut out, p, next[i], &mut moved)?;
                    in_flight += 1;
                }
            }
        }
    }
    moved.secs = start.elapsed().as_secs_f64();
    if done != n {
        return Err(format!("{done} of {n} partitions read to their end"));
    }
    Ok(moved)
}

/// Asks for `topic`'s metadata (Metadata v4, auto-creation allowed), so
/// that a broker with auto-creation on creates it, and reads the answer.
fn ensure_topic(s: &mut TcpStream, topic: &str) -> Result<(), String> {
    let mut r = Vec::new();
    header(&mut r, 3, 4, -1);
    r.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut r, topic.as_bytes());
    r.push(1); // allow auto topic creation
    finish(&mut r);
    s.write_all(&r).map_err(|e| format!("write: {e}"))?;
    let mut size = [0; 4];
    s.read_exact(&mut size).map_err(|e| format!("read: {e}"))?;
    let size = i32::from_be_bytes(size).max(0) as u64;
    let mut answer = Vec::new();
    s.take(size)
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    Ok(())
}

/// A Produce v7 request of `batch` for one partition, acks=1.
fn produce_request(topic: &[u8], partition: i32, batch: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(batch.len() + 64);
    header(&mut r, 0, 7, 0);
    r.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    r.extend_from_slice(&1i16.to_be_bytes()); // acks
    r.extend_from_slice(&30_000i32.to_be_bytes()); // timeout ms
    r.extend_from_slice(&1i32.to_be_bytes()); // topics
    put_str(&mut r, topic);
    r.extend_from_slice(&1i32.to_be_bytes()); // partitions
    r.extend_from_slice(&partition.to_be_bytes());
    r.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    r.extend_from_slice(batch);
    finish(&mut r);
    r
}

/// Offset of the correlation id in a request frame (size, key, version).
const CORRELATION_AT: usize = 8;

/// Sends `requests` produce requests of `batch` (which holds `per_batch`
/// records, base offset 0, producer id -1) round robin over partitions
/// `0..partitions` of `topic`, at most `window` unanswered, acks=1; every
/// answer must carry no error and the base offset due.
pub fn produce(
    addr: &str,
    topic: &str,
    partitions: i32,
    batch: &[u8],
    per_batch: u64,
    requests: u64,
    window: usize,
) -> Result<Moved, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    ensure_topic(&mut s, topic)?;
    let mut out = s.try_clone().map_err(|e| format!("{e}"))?;
    let mut frames: Vec<Vec<u8>> = (0..partitions)
        .map(|p| produce_request(topic.as_bytes(), p, batch))
        .collect();
    let (credit, credits) = sync_channel::<()>(window);
    for _ in 0..window {
        let _ = credit.send(());
    }
    let start = Instant::now();
    let writer = std::thread::spawn(move || -> Result<(), String> {
        for k in 0..requests {
            if credits.recv().is_err() {
                return Ok(()); // the reader stopped: it reports why
            }
            let count = frames.len() as u64;
            let frame = &mut frames[(k % count) as usize];
            frame[CORRELATION_AT..CORRELATION_AT + 4].copy_from_slice(&(k as i32).to_be_bytes());
            out.write_all(frame).map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    });
    let mut wire = Wire::new(s);
    let checked = check_answers(&mut wire, &credit, partitions, per_batch, requests);
    let secs = start.elapsed().as_secs_f64();
    // A failed check leaves the writer waiting for credit or blocked in a
    // write: both end here.
    drop(credit);
    let _ = wire.s.shutdown(std::net::Shutdown::Both);
    let written = writer
        .join()
        .map_err(|_| "the writer thread panicked".to_string())?;
    checked?;
    written?;
    Ok(Moved {
        records: requests * per_batch,
        batch_bytes: requests * batch.len() as u64,
        requests,
        secs,
    })
}

/// Reads `requests` Produce v7 answers, in order, each for one partition
/// with no error and the base offset due; a credit for each.
fn check_answers(
    wire: &mut Wire,
    credit: &std::sync::mpsc::SyncSender<()>,
    partitions: i32,
    per_batch: u64,
    requests: u64,
) -> Result<(), String> {
    // Each partition's first answer sets where its offsets start (0 on a
    // new topic); every later one must follow on.
    let mut next: Vec<Option<i64>> = vec![None; partitions as usize];
    for k in 0..requests {
        wire.i32()?; // size
        let correlation = wire.i32()?;
        if correlation != k as i32 {
            return Err(format!("answer {correlation} where {k} was due"));
        }
        let topics = wire.i32()?;
        let mut answered = 0;
        for _ in 0..topics {
            wire.string()?;
            let parts = wire.i32()?;
            for _ in 0..parts {
                let p = wire.i32()?;
                let error = wire.i16()?;
                let base = wire.i64()?;
                wire.i64()?; // log append time
                wire.i64()?; // log start offset
                let due = usize::try_from(p)
                    .ok()
                    .and_then(|i| next.get_mut(i))
                    .ok_or_else(|| format!("answer for partition {p}"))?;
                if error != 0 || base < 0 || due.is_some_and(|d| d != base) {
                    return Err(format!(
                        "partition {p}: error {error}, base offset {base} where {due:?} was due"
                    ));
                }
                *due = Some(base + per_batch as i64);
                answered += 1;
            }
        }
        wire.i32()?; // throttle time
        if answered != 1 {
            return Err(format!("answer {k}: {answered} partitions"));
        }
        let _ = credit.try_send(());
    }
    Ok(())
}
