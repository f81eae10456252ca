//! Fetch answered from the segment files (splice or sendfile): records
//! arrive byte for byte as produced, whole batches within the byte budgets,
//! pipelined answers in order; the sender's splice, sendfile and copying
//! modes write the same bytes, whether the range is in the page cache (sent
//! on the worker) or not (sent under `block_in_place`); a file truncated
//! under a send closes the connection rather than corrupt the stream; a
//! splice cut off by the peer leaves no bytes in a pooled pipe, and more
//! sends at once than the pool has pipes fall back to sendfile.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::FetchRequest;
use pubsub_broker::FileRange;
use pubsub_client::fetch;
use pubsub_server::fetch_response::{Chunk, ResponseFrame};
use pubsub_server::sender::{in_page_cache, FrameSender, SendMode, BUFFER, SENDFILE_MIN};
use pubsub_storage::fs::{FileHandle, RealFile};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::client::Client;
use crate::common::*;

/// A batch of `n` records of `size`-byte values (partition `p`, batch `b`).
fn batch(p: i32, b: usize, n: usize, size: usize) -> Bytes {
    let values: Vec<String> = (0..n)
        .map(|i| {
            let mut v = format!("p{p}-b{b}-r{i}-");
            while v.len() < size {
                v.push(char::from(b'a' + ((v.len() + i) % 26) as u8));
            }
            v
        })
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    bytes(batch_of(&refs))
}

/// Splits a records field into its batches.
fn batches_in(records: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let len = pubsub_records::batch_len(&records[at..]).expect("a whole batch");
        out.push(&records[at..at + len]);
        at += len;
    }
    out
}

fn request(topic: &str, partitions: &[i32], max_bytes: i32, partition_max: i32) -> FetchRequest {
    let positions: BTreeMap<i32, i64> = partitions.iter().map(|&p| (p, 0)).collect();
    fetch::request(topic, &positions, 0, max_bytes, partition_max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_partitions_get_their_batches_byte_for_byte_within_the_budgets() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    create_topic(&mut c, "zc", 3, &[]).await;
    // Large batches (sent with sendfile) between small ones (copied).
    let shapes: [&[(usize, usize)]; 3] = [
        &[(150, 1000), (2, 10), (120, 900), (1, 5)],
        &[(1, 3), (3, 40), (200, 700)],
        &[(90, 1000), (80, 1000), (70, 1000)],
    ];
    // Per partition: (base offset, produced batch).
    let mut produced: Vec<Vec<(i64, Bytes)>> = Vec::new();
    for (p, shape) in shapes.iter().enumerate() {
        let mut mine = Vec::new();
        for (b, &(n, size)) in shape.iter().enumerate() {
            let bytes = batch(p as i32, b, n, size);
            let r = produce(&mut c, "zc", p as i32, -1, bytes.clone()).await;
            assert_eq!(r.error_code, 0);
            mine.push((r.base_offset, bytes));
        }
        produced.push(mine);
    }
    let lens: Vec<Vec<usize>> = produced
        .iter()
        .map(|v| v.iter().map(|(_, b)| b.len()).collect())
        .collect();
    assert!(lens[0][0] as u64 > SENDFILE_MIN && (lens[0][1] as u64) < SENDFILE_MIN);

    // What a fetch must hold of a partition: its first `k` batches as
    // produced, with the offsets the broker assigned.
    let check = |p: usize, records: &[u8], k: usize| {
        let got = batches_in(records);
        assert_eq!(got.len(), k, "partition {p}: batches");
        for (batch, (base, sent)) in got.iter().zip(&produced[p]) {
            assert_eq!(
                &batch[..8],
                &base.to_be_bytes(),
                "partition {p}: base offset"
            );
            // Only the base offset and leader epoch are the broker's to set.
            assert_eq!(
                &batch[16..],
                &sent[16..],
                "partition {p}: bytes as produced"
            );
        }
    };

    for version in [4i16, 7, 11, 12] {
        // Everything.
        let r = c
            .call(version, &request("zc", &[0, 1, 2], 50 << 20, 1 << 20))
            .await;
        for (i, part) in r.responses[0].partitions.iter().enumerate() {
            assert_eq!(part.error_code, 0);
            let records = part.records.clone().expect("records");
            check(i, &records, produced[i].len());
        }
        // Per-partition budgets at batch boundaries: exactly the first two
        // batches, one byte less leaves the second out; a first batch
        // larger than the budget still comes whole.
        for (p, budget, k) in [
            (0usize, lens[0][0] + lens[0][1], 2usize),
            (0, lens[0][0] + lens[0][1] - 1, 1),
            (0, 1, 1),
            (1, lens[1][0] + lens[1][1] + lens[1][2], 3),
            (1, lens[1][0] + lens[1][1] + lens[1][2] - 1, 2),
            (2, lens[2][0] - 1, 1),
            (2, lens[2][0] + lens[2][1] + 1, 2),
        ] {
            let req = request("zc", &[p as i32], 50 << 20, budget as i32);
            let r = c.call(version, &req).await;
            let part = &r.responses[0].partitions[0];
            check(p, &part.records.clone().expect("records"), k);
        }
        // The response budget: partition 0 takes its first batch (whole,
        // past the budget); nothing is left for the others, which answer
        // empty records without an error.
        let r = c
            .call(version, &request("zc", &[0, 1, 2], 10, 1 << 20))
            .await;
        let parts = &r.responses[0].partitions;
        check(0, &parts[0].records.clone().expect("records"), 1);
        for part in &parts[1..] {
            assert_eq!(part.error_code, 0);
            assert_eq!(part.records.as_deref(), Some(&[][..]));
        }
        // A response budget spent by partition 1's second batch: its third
        // is left out, and nothing is left for partition 2.
        let budget = lens[0].iter().sum::<usize>() + lens[1][0] + lens[1][1];
        let r = c
            .call(version, &request("zc", &[0, 1, 2], budget as i32, 1 << 20))
            .await;
        let parts = &r.responses[0].partitions;
        check(0, &parts[0].records.clone().expect("records"), 4);
        check(1, &parts[1].records.clone().expect("records"), 2);
        check(2, &parts[2].records.clone().expect("records"), 0);
    }

    // Pipelined fetches on one connection come back in order, each whole.
    let mut ids = Vec::new();
    for p in [2, 0, 1, 2, 0] {
        ids.push((
            p,
            c.send(FETCH_V, &request("zc", &[p], 50 << 20, 1 << 20))
                .await,
        ));
    }
    for (p, id) in ids {
        let r = c.receive::<FetchRequest>(id, FETCH_V).await;
        let part = &r.responses[0].partitions[0];
        assert_eq!(part.partition_index, p);
        check(
            p as usize,
            &part.records.clone().expect("records"),
            produced[p as usize].len(),
        );
    }
    server.stop().await;
}

/// A file of `len` patterned bytes: its handle.
fn patterned_file(dir: &tempfile::TempDir, name: &str, len: usize) -> Arc<dyn FileHandle> {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    f.write_all(&bytes).expect("write");
    Arc::new(RealFile::new(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open"),
    ))
}

/// Sends `frames` through a sender in `mode` over loopback; what arrived
/// and what the send returned.
async fn through_socket(
    frames: Vec<ResponseFrame>,
    mode: SendMode,
) -> (Vec<u8>, std::io::Result<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read");
        got
    });
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (_read, write) = stream.into_split();
    let mut sender = FrameSender::new(write, mode);
    let mut result = Ok(());
    for f in frames {
        result = sender.send(f).await;
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = sender.flush().await;
    }
    drop(sender);
    drop(_read);
    (reader.await.expect("reader"), result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splice_sendfile_and_copying_modes_write_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = patterned_file(&dir, "big", 3 << 20);
    let small = patterned_file(&dir, "small", 1000);
    let range = |f: &Arc<dyn FileHandle>, pos: u64, len: u64| {
        Chunk::File(FileRange::new(Arc::clone(f), pos, len, 0, 0))
    };
    let header = |n: u8| Chunk::Bytes(Bytes::from(vec![n; 9]));
    let frames = || {
        vec![
            // Bytes only, then a mix around the thresholds, then large
            // in-memory bytes (past the buffer) and a 2 MiB range.
            ResponseFrame::from_bytes(Bytes::from_static(b"just bytes")),
            ResponseFrame::from_chunks(vec![
                header(1),
                range(&big, 7, SENDFILE_MIN - 1),
                header(2),
                range(&big, 100_000, SENDFILE_MIN),
                range(&small, 10, 500),
                header(3),
            ]),
            ResponseFrame::from_chunks(vec![
                Chunk::Bytes(Bytes::from(vec![0x42; BUFFER + 10])),
                range(&big, 1, 2 << 20),
                header(4),
            ]),
        ]
    };
    let mut expected = Vec::new();
    for f in frames() {
        expected.extend(f.to_bytes().expect("read"));
    }
    let _pool = POOL.lock().await;
    let fallbacks = pubsub_server::pipe::fallbacks();
    for mode in [SendMode::Splice, SendMode::Sendfile, SendMode::Copy] {
        let (got, result) = through_socket(frames(), mode).await;
        result.expect("sent");
        assert_eq!(got.len(), expected.len(), "{mode:?}");
        assert!(got == expected, "{mode:?}: the bytes differ");
    }
    assert_eq!(
        pubsub_server::pipe::fallbacks(),
        fallbacks,
        "the splice mode spliced (a pipe was free)"
    );
}

/// Held by the tests that take pipes from the process-wide pool for long
/// or count its fallbacks, so that one does not starve another (other
/// tests of this binary take pipes only for the moment of a send).
static POOL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_in_and_out_of_the_page_cache_are_sent_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let len: usize = 3 << 20;
    let file = patterned_file(&dir, "cache", len);
    let pattern: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let frame = |pos: usize, n: usize| {
        ResponseFrame::from_chunks(vec![
            Chunk::Bytes(Bytes::from_static(b"head")),
            Chunk::File(FileRange::new(
                Arc::clone(&file),
                pos as u64,
                n as u64,
                0,
                0,
            )),
            Chunk::Bytes(Bytes::from_static(b"tail")),
        ])
    };
    let check = |got: &[u8], pos: usize, n: usize, what: &str| {
        assert_eq!(got.len(), 8 + n, "{what}");
        assert_eq!(&got[..4], b"head", "{what}");
        assert!(
            got[4..4 + n] == pattern[pos..pos + n],
            "{what}: the bytes differ"
        );
        assert_eq!(&got[4 + n..], b"tail", "{what}");
    };
    // Just written: every page is in the page cache (dirty or not).
    let std_file = file.std_file();
    let cached = in_page_cache(std_file, 0, len as u64);
    assert_ne!(
        cached,
        Some(false),
        "a file just written is in the page cache"
    );
    for mode in [SendMode::Splice, SendMode::Sendfile] {
        let (got, result) = through_socket(vec![frame(5, len - 5)], mode).await;
        result.expect("sent");
        check(&got, 5, len - 5, &format!("cached, {mode:?}"));
    }
    // Written back and dropped from the page cache: the kernel says so
    // where it can tell, and the send (under block_in_place) reads the disk;
    // for each zero-copy mode in turn.
    use std::os::fd::AsRawFd;
    for mode in [SendMode::Splice, SendMode::Sendfile] {
        // The advice is only advice: pages under writeback or touched by
        // someone else may stay. Asked again a few times; if the kernel
        // keeps them, the uncached path is not reached, which is said, and
        // the bytes are still checked.
        let mut dropped = false;
        for _ in 0..20 {
            std_file.sync_all().expect("fsync");
            // SAFETY: a valid descriptor; the advice only drops clean cached pages.
            let advised = unsafe {
                libc::posix_fadvise(std_file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
            };
            assert_eq!(advised, 0, "posix_fadvise");
            if cached.is_none() || in_page_cache(std_file, 4096, 1 << 20) == Some(false) {
                dropped = cached.is_some();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if cached.is_some() && !dropped {
            eprintln!("{mode:?}: the kernel kept the pages cached: the uncached send path was not reached");
        }
        let (got, result) = through_socket(vec![frame(4096, 1 << 20)], mode).await;
        result.expect("sent");
        check(&got, 4096, 1 << 20, &format!("not cached, {mode:?}"));
        // The send read those pages back in.
        if dropped {
            assert_eq!(in_page_cache(std_file, 4096, 1 << 20), Some(true));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_truncated_under_a_send_closes_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [SendMode::Splice, SendMode::Sendfile, SendMode::Copy] {
        let file = patterned_file(&dir, &format!("shrinks-{mode:?}"), 1 << 20);
        let frame = ResponseFrame::from_chunks(vec![
            Chunk::Bytes(Bytes::from_static(b"head")),
            Chunk::File(FileRange::new(Arc::clone(&file), 0, 1 << 20, 0, 0)),
            Chunk::Bytes(Bytes::from_static(b"tail")),
        ]);
        // Truncated after the range was taken (as by a log truncation).
        file.set_len(300_000).expect("truncate");
        let (got, result) = through_socket(vec![frame], mode).await;
        let err = result.expect_err("a short send is an error");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{mode:?}");
        // The peer sees the stream end short of the frame, never bytes
        // that are not the file's.
        assert!(got.len() < 4 + (1 << 20) + 4, "{mode:?}");
        assert!(!got.ends_with(b"tail"), "{mode:?}");
        assert_eq!(&got[..4], b"head");
        let pattern: Vec<u8> = (0..got.len() - 4).map(|i| (i % 251) as u8).collect();
        assert!(got[4..] == pattern[..], "{mode:?}: only the file's bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_splice_cut_off_by_the_peer_leaves_no_bytes_in_the_pool() {
    use pubsub_server::pipe;
    let dir = tempfile::tempdir().expect("tempdir");
    let len: usize = 8 << 20;
    let file = patterned_file(&dir, "cut", len);
    let pattern: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let frame = || {
        ResponseFrame::from_chunks(vec![
            Chunk::Bytes(Bytes::from_static(b"head")),
            Chunk::File(FileRange::new(Arc::clone(&file), 0, len as u64, 0, 0)),
        ])
    };
    let _pool = POOL.lock().await;
    let fallbacks = pipe::fallbacks();
    // The peer reads a little and closes with unread bytes (a reset): the
    // send fails with bytes still in its pipe.
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut some = vec![0u8; 64 << 10];
            s.read_exact(&mut some).await.expect("read");
            drop(s);
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (_read, write) = stream.into_split();
        let mut sender = FrameSender::new(write, SendMode::Splice);
        let result = sender.send(frame()).await;
        peer.await.expect("peer");
        assert!(result.is_err(), "a send to a closed peer fails");
        assert!(pipe::live() <= pipe::PIPES);
    }
    // Every later send through the pool carries exactly its own bytes: no
    // pipe went back holding the cut-off sends' leftovers.
    for _ in 0..4 {
        let (got, result) = through_socket(vec![frame()], SendMode::Splice).await;
        result.expect("sent");
        assert_eq!(got.len(), 4 + len);
        assert_eq!(&got[..4], b"head");
        assert!(got[4..] == pattern[..], "the bytes differ");
    }
    assert_eq!(pipe::fallbacks(), fallbacks, "every send had a pipe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_sends_at_once_than_pipes_fall_back_to_sendfile() {
    use pubsub_server::pipe;
    let _pool = POOL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Sockets with 64 KiB buffers each way: far less than a send, so each
    // send waits on its socket holding what it took, whatever the system's
    // TCP buffer settings.
    let buffers = 64 << 10;
    let len: usize = 4 << 20;
    let file = patterned_file(&dir, "many", len);
    let pattern: Arc<Vec<u8>> = Arc::new((0..len).map(|i| (i % 251) as u8).collect());
    let senders = pipe::PIPES + 8;
    let fallbacks = pipe::fallbacks();
    // Every peer waits until its sender's first bytes arrive and then for
    // all the others, before reading: each send has taken a pipe (or found
    // none) and blocks on a full socket until every send has. Then all the
    // pool's pipes are held by these sends.
    let start = Arc::new(tokio::sync::Barrier::new(senders));
    let mut sends = Vec::new();
    for _ in 0..senders {
        let (file, start, pattern) = (Arc::clone(&file), Arc::clone(&start), Arc::clone(&pattern));
        sends.push(tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_recv_buffer_size(buffers).expect("SO_RCVBUF");
            socket
                .bind("127.0.0.1:0".parse().expect("addr"))
                .expect("bind");
            let listener = socket.listen(1).expect("listen");
            let addr = listener.local_addr().expect("addr");
            let reader = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.expect("accept");
                s.peek(&mut [0u8; 1]).await.expect("first bytes");
                let held_at_once = start.wait().await.is_leader().then(pipe::live);
                // Compared as it arrives, not kept: 24 copies of 4 MiB.
                let (mut at, mut same) = (0usize, true);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    same &= pattern.get(at..at + n) == Some(&buf[..n]);
                    at += n;
                }
                (at, same, held_at_once)
            });
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_send_buffer_size(buffers).expect("SO_SNDBUF");
            let stream = socket.connect(addr).await.expect("connect");
            let (read, write) = stream.into_split();
            let mut sender = FrameSender::new(write, SendMode::Splice);
            let frame = ResponseFrame::from_chunks(vec![Chunk::File(FileRange::new(
                file, 0, len as u64, 0, 0,
            ))]);
            sender.send(frame).await.expect("sent");
            drop(sender);
            drop(read);
            reader.await.expect("reader")
        }));
    }
    let mut held = None;
    for send in sends {
        // A hung send would hang the test, not fail it: bounded.
        let (at, same, held_at_once) =
            tokio::time::timeout(std::time::Duration::from_secs(300), send)
                .await
                .expect("the sends finish")
                .expect("send");
        assert_eq!(at, len, "a send's length");
        assert!(same, "a send's bytes differ");
        held = held.or(held_at_once);
    }
    assert_eq!(
        held,
        Some(pipe::PIPES),
        "while every send waited, the pool's pipes were all in use"
    );
    assert!(pipe::live() <= pipe::PIPES);
    assert!(
        pipe::fallbacks() >= fallbacks + 8,
        "the sends beyond the pool's pipes used sendfile"
    );
}
