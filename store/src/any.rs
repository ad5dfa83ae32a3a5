//! A store chosen at run time from an address: an IPFS API or a local directory.

use std::path::Path;

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::AsyncRead;

use crate::cid::Cid;
use crate::content_store::{ContentStore, Stored};
use crate::error::Result;
use crate::import::ImportOptions;
use crate::ipfs::IpfsStore;
use crate::local::LocalStore;

/// Either store, behind one type, for code that learns which one from its configuration.
#[derive(Debug, Clone)]
pub enum Store {
    /// A local blockstore directory (the embedded default).
    Local(LocalStore),
    /// An IPFS node's RPC API.
    Ipfs(IpfsStore),
}

impl Store {
    /// Opens the store at `address`: an `http(s)://` URL or a `/ip4|/ip6|/dns…/tcp/PORT` multiaddr
    /// names an IPFS API; anything else (optionally `file://`) is a local store directory.
    pub fn open(address: &str) -> Result<Store> {
        if is_ipfs_address(address) {
            Ok(Store::Ipfs(IpfsStore::connect(address)?))
        } else {
            let dir = address.strip_prefix("file://").unwrap_or(address);
            Ok(Store::Local(LocalStore::open(dir)?))
        }
    }

    /// The same store, importing with other settings.
    pub fn with_import_options(self, options: ImportOptions) -> Result<Store> {
        Ok(match self {
            Store::Local(s) => Store::Local(s.with_import_options(options)?),
            Store::Ipfs(s) => Store::Ipfs(s.with_import_options(options)?),
        })
    }
}

/// Whether `address` names an IPFS API rather than a directory.
pub fn is_ipfs_address(address: &str) -> bool {
    let a = address.trim();
    ["http://", "https://", "/ip4/", "/ip6/", "/dns/", "/dns4/", "/dns6/"]
        .iter()
        .any(|p| a.starts_with(p))
}

impl ContentStore for Store {
    fn import_options(&self) -> ImportOptions {
        match self {
            Store::Local(s) => s.import_options(),
            Store::Ipfs(s) => s.import_options(),
        }
    }

    async fn put_reader<R>(&self, reader: R) -> Result<Stored>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        match self {
            Store::Local(s) => s.put_reader(reader).await,
            Store::Ipfs(s) => s.put_reader(reader).await,
        }
    }

    async fn put_bytes(&self, data: Bytes) -> Result<Stored> {
        match self {
            Store::Local(s) => s.put_bytes(data).await,
            Store::Ipfs(s) => s.put_bytes(data).await,
        }
    }

    async fn put_file(&self, path: &Path) -> Result<Stored> {
        match self {
            Store::Local(s) => s.put_file(path).await,
            Store::Ipfs(s) => s.put_file(path).await,
        }
    }

    fn get(&self, cid: &Cid) -> BoxStream<'static, Result<Bytes>> {
        match self {
            Store::Local(s) => s.get(cid),
            Store::Ipfs(s) => s.get(cid),
        }
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        match self {
            Store::Local(s) => s.pin(cid).await,
            Store::Ipfs(s) => s.pin(cid).await,
        }
    }

    async fn unpin(&self, cid: &Cid) -> Result<bool> {
        match self {
            Store::Local(s) => s.unpin(cid).await,
            Store::Ipfs(s) => s.unpin(cid).await,
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self {
            Store::Local(s) => s.has(cid).await,
            Store::Ipfs(s) => s.has(cid).await,
        }
    }
}
