//! Hostile bytes against the real binary: a 2 GiB length prefix, frames cut
//! short, hostile array counts and random bytes close only their own
//! connection; afterwards a normal client is served as before.

use kafka_protocol::messages::ApiVersionsRequest;

use crate::client::{raw_request, Client};
use crate::daemon::Daemon;
use crate::kafka::{fetch_all, produce_values};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_survives_hostile_bytes_and_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&tmp.path().join("data"));
    let mut before = Client::connect(daemon.addr).await;
    produce_values(&mut before, "steady", 0, -1, &["before".to_string()]).await;

    // A 2 GiB length prefix: refused before anything is allocated.
    let mut c = Client::connect(daemon.addr).await;
    c.send_raw(&i32::MAX.to_be_bytes()).await.expect("send");
    c.send_raw(&[0u8; 64]).await.ok();
    assert!(c.is_closed().await, "2 GiB frame refused");

    // Whole frames with bad contents: each gets its connection closed.
    let complete: Vec<Vec<u8>> = vec![
        // Arrays claiming 2^31-1 elements, plain and compact, nested.
        raw_request(3, 4, &[0x7F, 0xFF, 0xFF, 0xFF]),
        raw_request(19, 4, &[0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        raw_request(
            0,
            9,
            &[0x00, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
        ),
        raw_request(
            1,
            12,
            &[
                0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x7F, 0xFF, 0xFF, 0xFF,
            ],
        ),
        raw_request(
            11,
            5,
            &[
                0x00, 0x01, b'g', 0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 0, 0, 0xFF, 0xFF, 0, 0, 0x7F,
                0xFF, 0xFF, 0xFF,
            ],
        ),
        // Unknown API, unsupported version, garbage.
        raw_request(999, 0, &[]),
        raw_request(1, 99, &[1, 2, 3]),
        raw_request(0, 9, &[0xEE; 300]),
    ];
    for bytes in &complete {
        let mut c = Client::connect(daemon.addr).await;
        c.send_raw(bytes).await.ok();
        assert!(
            c.is_closed().await,
            "closed after {:02x?}",
            &bytes[..bytes.len().min(12)]
        );
    }
    // Frames that end early and random bytes, from clients that then hang up.
    let mut hostile: Vec<Vec<u8>> = vec![vec![0, 0, 0, 2, 0]];
    // Frames cut short at every length (the client then hangs up).
    let whole = raw_request(18, 3, &[0x05, b'r', b'u', b's', b't', 0x02, b'1', 0x00]);
    for cut in 1..whole.len() {
        hostile.push(whole[..cut].to_vec());
    }
    // Random bytes.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for len in [8usize, 64, 1000, 70_000] {
        let mut junk = vec![0u8; len];
        for b in junk.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        hostile.push(junk);
    }
    for bytes in &hostile {
        let mut c = Client::connect(daemon.addr).await;
        c.send_raw(bytes).await.ok();
        drop(c);
    }

    // The process is alive, the earlier connection works, and so do new ones.
    assert_eq!(
        before
            .call(3, &ApiVersionsRequest::default())
            .await
            .error_code,
        0
    );
    let mut after = Client::connect(daemon.addr).await;
    produce_values(&mut after, "steady", 0, -1, &["after".to_string()]).await;
    let got = fetch_all(&mut after, "steady", 0).await;
    assert_eq!(
        got,
        vec![(0, "before".to_string()), (1, "after".to_string())]
    );
    let (status, _, stderr) = daemon.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
