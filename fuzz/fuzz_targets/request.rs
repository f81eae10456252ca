//! Arbitrary bytes as one request frame, through the real decoder and
//! dispatcher of the protocol server, against a real broker on a tmpfs
//! directory: it must never panic or abort, whatever the bytes claim
//! (array counts of two billion included), and every answer it gives must
//! be a well-formed frame.
//!
//! Time is virtual (a paused tokio clock), so long polls and group joins
//! that would wait end at once.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pubsub_broker::{Broker, BrokerConfig, GroupConfig};
use pubsub_server::{dispatch, Ctx, ServerConfig};

#[global_allocator]
static ALLOCATOR: pubsub_server::alloc::GuardedAllocator = pubsub_server::alloc::GuardedAllocator;

struct World {
    ctx: Ctx,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        let config = BrokerConfig {
            background: false,
            group: GroupConfig {
                initial_rebalance_delay: Duration::ZERO,
                offsets_topic_partitions: 4,
                ..GroupConfig::default()
            },
            txn: pubsub_broker::txn::TxnConfig {
                state_topic_partitions: 2,
                ..Default::default()
            },
            ..BrokerConfig::default()
        };
        let broker = Broker::open(dir.path(), config).expect("broker");
        for (name, partitions) in [("t", 2u32), ("u", 1)] {
            broker
                .create_topic(name, Some(partitions), Default::default())
                .expect("topic");
        }
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        World {
            ctx: Ctx::new(
                broker,
                std::sync::Arc::new(ServerConfig::default()),
                std::net::Ipv4Addr::LOCALHOST.into(),
                shutdown,
            ),
            _stop: stop,
            _dir: dir,
        }
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let frame = BytesMut::from(data);
    let result = runtime().block_on(async {
        let answer = async { dispatch(&w.ctx, frame).await?.resolve().await };
        tokio::time::timeout(Duration::from_secs(120), answer).await
    });
    if let Ok(Ok(Some(frame))) = result {
        let out = frame.to_bytes().expect("file-backed records are readable");
        assert!(out.len() >= 8, "a response has a size and a correlation id");
        let size = i32::from_be_bytes([out[0], out[1], out[2], out[3]]);
        assert_eq!(size as usize, out.len() - 4, "the size prefix is right");
    }
    // Keep the broker small: topics created by inputs are dropped again.
    let topics = w.ctx.broker.topics(false);
    if topics.len() > 20 {
        for t in topics {
            if t != "t" && t != "u" {
                let _ = w.ctx.broker.delete_topic(&t);
            }
        }
    }
});
