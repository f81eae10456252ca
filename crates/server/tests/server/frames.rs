//! The frame reader over a real loopback socket: frames of every size,
//! written in pieces that ignore frame boundaries, come back whole and in
//! order, and a large frame owns its buffer alone (the produce handler
//! relies on that to rewrite records in place instead of copying them).

use std::time::Duration;

use pubsub_server::frame::{FrameError, FrameReader, OWN_BUFFER};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A connected pair of loopback sockets.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.expect("connect"), accepted.expect("accept").0)
}

/// Payload `i` of `len` bytes, distinct per frame and position.
fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

#[tokio::test]
async fn frames_of_mixed_sizes_come_back_whole_in_order_and_large_ones_own_their_buffer() {
    // Small pipelined frames, frames around the read chunk and the
    // own-buffer size, growing and shrinking large ones, an empty one.
    let sizes: Vec<usize> = vec![
        0,
        5,
        100,
        100,
        OWN_BUFFER - 1,
        OWN_BUFFER,
        205_000,
        205_000,
        204_000,
        300_000,
        7,
        64 << 10,
        (64 << 10) + 3,
        1_500_000,
        9,
        200_000,
        210_000,
        12,
    ];
    let (mut writer, reader) = pair().await;
    let mut stream = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        stream.extend_from_slice(&(len as i32).to_be_bytes());
        stream.extend_from_slice(&payload(i, len));
    }
    // Pieces of odd sizes, so frame ends fall anywhere within a write.
    let writing = tokio::spawn(async move {
        let mut at = 0;
        let mut piece = 1;
        while at < stream.len() {
            let end = (at + piece).min(stream.len());
            writer.write_all(&stream[at..end]).await.expect("write");
            at = end;
            piece = piece * 3 % 100_003 + 1;
        }
        writer
    });
    let mut frames = FrameReader::new(reader, 2 << 20);
    for (i, &len) in sizes.iter().enumerate() {
        let frame = tokio::time::timeout(Duration::from_secs(30), frames.next())
            .await
            .expect("a frame within 30 s")
            .expect("frame");
        assert_eq!(frame.len(), len, "frame {i}");
        assert!(frame[..] == payload(i, len)[..], "frame {i} bytes");
        if len >= OWN_BUFFER {
            assert!(
                frame.freeze().try_into_mut().is_ok(),
                "frame {i} ({len} bytes) shares its buffer"
            );
        }
    }
    let writer = writing.await.expect("writer");
    drop(writer);
    assert!(matches!(frames.next().await, Err(FrameError::Closed)));
}

#[tokio::test]
async fn a_connection_ending_inside_a_frame_is_an_error_not_a_frame() {
    let (mut writer, reader) = pair().await;
    writer
        .write_all(&100_000i32.to_be_bytes())
        .await
        .expect("write");
    writer.write_all(&[1u8; 70_000]).await.expect("write");
    drop(writer);
    let mut frames = FrameReader::new(reader, 1 << 20);
    match frames.next().await {
        Err(FrameError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("expected an unexpected EOF, got {other:?}"),
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_before_its_bytes_arrive() {
    let (mut writer, reader) = pair().await;
    // Only the prefix is sent: the refusal must not wait for the payload.
    writer
        .write_all(&((1 << 20) + 1i32).to_be_bytes())
        .await
        .expect("write");
    let mut frames = FrameReader::new(reader, 1 << 20);
    let got = tokio::time::timeout(Duration::from_secs(30), frames.next())
        .await
        .expect("an answer within 30 s");
    assert!(
        matches!(got, Err(FrameError::TooLarge { size, limit }) if size == (1 << 20) + 1 && limit == 1 << 20),
        "{got:?}"
    );
}
