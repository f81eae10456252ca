//! The one error type of the server crate: why a connection is dropped.

use crate::frame::FrameError;

/// A problem that ends a connection (requests the broker refuses are
/// answered with error codes instead).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Framing failed (closed, oversized, broken).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The request header or body could not be decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// An API key this server does not know.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// A version outside what this server advertises.
    #[error("unsupported version {version} of API {api}")]
    UnsupportedVersion {
        /// API key.
        api: i16,
        /// Version asked for.
        version: i16,
    },
    /// A response could not be encoded (a bug: logged, connection closed).
    #[error("encoding a response: {0}")]
    Encode(String),
    /// A task serving the request failed (a bug: logged, connection closed).
    #[error("internal error: {0}")]
    Internal(String),
    /// Writing to the socket failed.
    #[error("writing a response: {0}")]
    Write(#[from] std::io::Error),
    /// A SASL listener's client did what an unauthenticated client may not.
    #[error("closing an unauthenticated connection: {0}")]
    Unauthenticated(String),
    /// The connection was idle too long.
    #[error("idle for longer than the idle timeout")]
    Idle,
    /// A listener's TLS files are missing or unusable, or a handshake
    /// failed.
    #[error("TLS: {0}")]
    Tls(String),
}
