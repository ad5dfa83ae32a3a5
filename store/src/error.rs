//! Errors of the content store. Every variant says what was asked for and why it failed, and no
//! variant ever carries data: content that fails verification is dropped, never returned.

use std::path::PathBuf;
use std::time::Duration;

/// Result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The text is not a CID.
    #[error("invalid CID {input:?}: {reason}")]
    InvalidCid { input: String, reason: String },

    /// The CID uses a hash function or codec this store cannot verify.
    #[error("unsupported CID {cid}: {reason}")]
    Unsupported { cid: String, reason: String },

    /// A block's bytes do not hash to the CID that names them: the store or the node holds corrupted
    /// or forged data.
    #[error("integrity check failed for block {cid}: its bytes hash to {actual}, not to the CID")]
    Integrity { cid: String, actual: String },

    /// A block hashed correctly but is not a valid UnixFS file node (or the DAG is inconsistent).
    #[error("content {cid} is not a readable UnixFS file: {reason}")]
    Malformed { cid: String, reason: String },

    /// The node imported the content under another CID than the one computed here with the same
    /// import settings: the two disagree on the bytes or on the settings.
    #[error("the IPFS node stored the content as {node}, but the same import settings give {local} here")]
    CidMismatch { node: String, local: String },

    /// A block is not in the store.
    #[error("block {cid} is not in the store")]
    NotFound { cid: String },

    /// The IPFS API could not be reached at all (connection refused, DNS, reset).
    #[error("IPFS API at {url} is unreachable during {op} ({reason}); is the node running?")]
    Unreachable {
        url: String,
        op: &'static str,
        reason: String,
    },

    /// The IPFS API is served over `https://` with a certificate this client does not trust (or no
    /// CA certificate could be read to check it). Not transient: the node's certificate or this
    /// machine's roots (`SSL_CERT_FILE`) must change.
    #[error("IPFS API at {url} refused during {op}: {reason}")]
    Untrusted {
        url: String,
        op: &'static str,
        reason: String,
    },

    /// The IPFS API did not answer in time. js-ipfs waits forever for a block it does not have, so a
    /// missing block also ends here.
    #[error("IPFS API at {url} did not answer {op} within {after:?}")]
    Timeout {
        url: String,
        op: &'static str,
        after: Duration,
    },

    /// The IPFS API answered with an error.
    #[error("IPFS API {op} failed with HTTP {status}: {message}")]
    Api {
        op: &'static str,
        status: u16,
        message: String,
    },

    /// The IPFS API answered something this client cannot parse.
    #[error("IPFS API {op} returned an unexpected answer: {reason}")]
    Protocol { op: &'static str, reason: String },

    /// A bad store address or option.
    #[error("invalid {field}: {message}")]
    Config { field: &'static str, message: String },

    /// A local file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path and what was being done to it.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { action, path, source }
    }

    /// Whether retrying the same request soon could succeed: the node was not reachable, or a proxy
    /// in front of it was. Timeouts are not retried (they already waited the whole budget), and HTTP
    /// 500 is Kubo's answer to every command error, so it is a verdict, not a hiccup.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::Api { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}
