//! The one interface every content store offers: put content and get its CID, get content back by
//! CID (always verified), pin and unpin.

use std::future::Future;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::cid::Cid;
use crate::error::{Result, StoreError};
use crate::import::ImportOptions;

/// What a put stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The root CID of the content.
    pub cid: Cid,
    /// Content bytes (not counting DAG overhead).
    pub size: u64,
}

/// A content-addressed store of files.
///
/// Content that is put is pinned: it stays until [`ContentStore::unpin`]. Every read re-hashes each
/// block against its CID, so a get either yields exactly the bytes the CID names or fails; it never
/// yields unverified data. Reads and puts stream, so memory does not grow with the file size (except
/// in the `*_bytes` helpers, which hold the whole content by design).
pub trait ContentStore: Send + Sync {
    /// The import settings puts use (chunk size, CID version, raw leaves).
    fn import_options(&self) -> ImportOptions;

    /// Stores everything `reader` yields and pins it.
    fn put_reader<R>(&self, reader: R) -> impl Future<Output = Result<Stored>> + Send
    where
        R: AsyncRead + Unpin + Send + 'static;

    /// The verified content of `cid`, in order, as a stream of chunks. An error ends the stream.
    fn get(&self, cid: &Cid) -> BoxStream<'static, Result<Bytes>>;

    /// Pins content the store already holds, so that it is kept.
    fn pin(&self, cid: &Cid) -> impl Future<Output = Result<()>> + Send;

    /// Releases a pin; returns whether there was one.
    fn unpin(&self, cid: &Cid) -> impl Future<Output = Result<bool>> + Send;

    /// Whether the store holds `cid` pinned, so that a get will find every block.
    fn has(&self, cid: &Cid) -> impl Future<Output = Result<bool>> + Send;

    /// Stores `data` and pins it.
    fn put_bytes(&self, data: Bytes) -> impl Future<Output = Result<Stored>> + Send {
        self.put_reader(std::io::Cursor::new(data))
    }

    /// Stores the file at `path` and pins it, streaming.
    fn put_file(&self, path: &Path) -> impl Future<Output = Result<Stored>> + Send {
        let path = path.to_path_buf();
        async move {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(StoreError::io("open", &path))?;
            self.put_reader(file).await
        }
    }

    /// The whole verified content of `cid` in memory.
    fn get_bytes(&self, cid: &Cid) -> impl Future<Output = Result<Bytes>> + Send {
        let mut chunks = self.get(cid);
        async move {
            let mut out = BytesMut::new();
            while let Some(chunk) = chunks.next().await {
                out.extend_from_slice(&chunk?);
            }
            Ok(out.freeze())
        }
    }

    /// Writes the verified content of `cid` to `path`, streaming. The file appears only once the
    /// whole content has been verified (it is written beside `path` and renamed), so a failed read
    /// never leaves a partial or unverified file under that name. Returns the size.
    fn get_to_file(&self, cid: &Cid, path: &Path) -> impl Future<Output = Result<u64>> + Send {
        let mut chunks = self.get(cid);
        let path = path.to_path_buf();
        async move {
            let partial = partial_path(&path);
            let mut file = tokio::fs::File::create(&partial)
                .await
                .map_err(StoreError::io("create", &partial))?;
            let mut size = 0u64;
            let copied: Result<()> = async {
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    file.write_all(&chunk)
                        .await
                        .map_err(StoreError::io("write", &partial))?;
                    size += chunk.len() as u64;
                }
                file.sync_all().await.map_err(StoreError::io("sync", &partial))
            }
            .await;
            drop(file);
            if let Err(e) = copied {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(e);
            }
            tokio::fs::rename(&partial, &path)
                .await
                .map_err(StoreError::io("rename into", &path))?;
            Ok(size)
        }
    }
}

/// `DIR/.NAME.partial`: where a download is written before it is verified and renamed.
fn partial_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}
