//! Arbitrary SASL exchanges on a SASL_PLAINTEXT connection, through the
//! real dispatcher (the pre-authentication gate, SaslHandshake v0 and v1,
//! SaslAuthenticate, raw tokens) and straight into the SCRAM server: it
//! must never panic, never authenticate without the password, and every
//! answer must be a well-formed frame.
//!
//! Input: byte 0 picks the mechanism (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN),
//! byte 1 the handshake version (0: raw tokens; 1: SaslAuthenticate), then
//! tokens, each a 1-byte length and that many bytes; a token may also be a
//! whole request frame of another API (length 255: the rest of the input).
//! A fresh connection context per input; one user `admin` exists.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use pubsub_broker::security::scram::{ScramServer, ScramStep};
use pubsub_broker::security::ScramMechanism;
use pubsub_broker::{Broker, BrokerConfig};
use pubsub_server::{dispatch, Ctx, SecurityProtocol, ServerConfig};

#[global_allocator]
static ALLOCATOR: pubsub_server::alloc::GuardedAllocator = pubsub_server::alloc::GuardedAllocator;

/// The user's password: no input may authenticate without it.
const PASSWORD: &str = "fuzz-admin-password";

struct World {
    broker: Broker,
    config: Arc<ServerConfig>,
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
        let broker = Broker::open(
            dir.path(),
            BrokerConfig {
                background: false,
                ..BrokerConfig::default()
            },
        )
        .expect("broker");
        broker.users().ensure("admin", PASSWORD).expect("user");
        let config = Arc::new(ServerConfig {
            security_protocol: SecurityProtocol::SaslPlaintext,
            failed_authentication_delay: Duration::from_millis(100),
            ..ServerConfig::default()
        });
        World {
            broker,
            config,
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

/// A request as dispatch takes it (the frame reader has taken the size
/// prefix off): a v1 header (non-flexible versions only), then the body.
fn request(api: i16, version: i16, body: &[u8]) -> BytesMut {
    let mut payload = BytesMut::new();
    payload.put_i16(api);
    payload.put_i16(version);
    payload.put_i32(1);
    payload.put_i16(-1);
    payload.put_slice(body);
    payload
}

fn bytes_field(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + b.len());
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
    out
}

fn string_field(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + s.len());
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

fuzz_target!(|data: &[u8]| {
    let (Some(&m), Some(&v)) = (data.first(), data.get(1)) else {
        return;
    };
    let w = world();
    let mechanism = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"][m as usize % 3];
    let version = (v % 2) as i16;
    let mut tokens = Vec::new();
    let mut rest = &data[2..];
    while let Some((&len, tail)) = rest.split_first() {
        if len == 255 {
            tokens.push((true, tail.to_vec()));
            break;
        }
        let n = (len as usize).min(tail.len());
        tokens.push((false, tail[..n].to_vec()));
        rest = &tail[n..];
    }

    // The SCRAM server alone, on every token in turn.
    if let Some(sm) = ScramMechanism::from_name(mechanism) {
        let mut scram = ScramServer::new(sm, "c2VydmVyLW5vbmNl".to_string());
        for (_, t) in &tokens {
            match scram.step(t, w.broker.users()) {
                Ok(ScramStep::Authenticated { .. }) => {
                    panic!("authenticated without the password")
                }
                Ok(ScramStep::Continue(_)) => {}
                Err(_) => break,
            }
        }
    }

    // The connection: handshake, then the tokens.
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = Ctx::new(
        w.broker.clone(),
        Arc::clone(&w.config),
        std::net::Ipv4Addr::LOCALHOST.into(),
        shutdown,
    );
    let mut frames = vec![request(17, version, &string_field(mechanism))];
    for (whole, t) in tokens {
        frames.push(if whole || version == 0 {
            BytesMut::from(&t[..])
        } else {
            request(36, 1, &bytes_field(&t))
        });
    }
    runtime().block_on(async {
        for frame in frames {
            let answer = async { dispatch(&ctx, frame).await?.resolve().await };
            match tokio::time::timeout(Duration::from_secs(10), answer).await {
                Ok(Ok(Some(out))) => {
                    let out = out.to_bytes().expect("bytes");
                    assert!(out.len() >= 4, "a frame has a size");
                    let size = i32::from_be_bytes([out[0], out[1], out[2], out[3]]);
                    assert_eq!(size as usize, out.len() - 4, "the size prefix is right");
                }
                Ok(Ok(None)) => {}
                // The connection would close here.
                Ok(Err(_)) | Err(_) => break,
            }
            if pubsub_server::sasl::must_close(&ctx) {
                break;
            }
        }
    });
    assert!(
        ctx.principal().is_anonymous(),
        "authenticated as {} without the password",
        ctx.principal()
    );
});
