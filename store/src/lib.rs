//! drlaas's content-addressed model store.
//!
//! Models, checkpoints and task specs are named by IPFS CIDs, and the chain stores only those CIDs,
//! so the store must agree with IPFS to the byte and never hand out data that does not match its
//! name. This crate has:
//!
//! - [`import`]: bytes to a UnixFS DAG and its CID, exactly as Kubo's `ipfs add` (CIDv0 and CIDv1,
//!   any chunk size), streaming;
//! - [`read`]: a CID back to bytes from any [`read::BlockSource`], every block re-hashed against its
//!   CID before use, blocks fetched ahead so remote round trips overlap;
//! - [`ContentStore`], implemented by [`LocalStore`] (a blockstore directory: the embedded default)
//!   and [`IpfsStore`] (a Kubo RPC API; js-ipfs in tests), and by [`Store`], either one chosen from
//!   an address at run time;
//! - [`devnode`]: a throwaway js-ipfs node from `tools/`, for tests and the local mode.
//!
//! ```no_run
//! # async fn demo() -> drlaas_store::Result<()> {
//! use drlaas_store::{ContentStore, Store};
//! let store = Store::open("/var/lib/drlaas/store")?; // or "http://127.0.0.1:5001"
//! let stored = store.put_file("model.safetensors".as_ref()).await?;
//! let bytes = store.get_bytes(&stored.cid).await?; // verified against the CID
//! # let _ = bytes; Ok(()) }
//! ```

pub mod any;
pub mod cid;
pub mod content_store;
mod dag;
pub mod devnode;
pub mod error;
pub mod import;
pub mod ipfs;
pub mod local;
pub mod read;

pub use any::Store;
pub use cid::Cid;
pub use content_store::{ContentStore, Stored};
pub use error::{Result, StoreError};
pub use import::{ImportOptions, Importer, cid_of};
pub use ipfs::{IpfsConfig, IpfsStore, KuboClient};
pub use local::LocalStore;
