//! The content store on an IPFS node: puts go through `add` while the same bytes are imported here,
//! and the node's CID must equal ours; gets fetch blocks and verify each one.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use reqwest::Body;
use tokio::io::AsyncRead;

use crate::cid::{self, Cid};
use crate::content_store::{ContentStore, Stored};
use crate::error::{Result, StoreError};
use crate::import::{self, ImportOptions, Importer};
use crate::ipfs::client::KuboClient;
use crate::read::{self, BlockSource};

/// Chunks queued between the reader and the upload: enough to keep the connection busy while the
/// next buffer is read and hashed, small enough to bound memory (4 × 1 MiB).
const UPLOAD_QUEUE: usize = 4;

/// A content store backed by a Kubo (or js-ipfs) node.
#[derive(Debug, Clone)]
pub struct IpfsStore {
    client: Arc<KuboClient>,
    options: ImportOptions,
}

impl IpfsStore {
    /// A store on the node behind `client`, importing with the default settings (CIDv1, raw leaves,
    /// 256 KiB chunks).
    pub fn new(client: KuboClient) -> Self {
        IpfsStore {
            client: Arc::new(client),
            options: ImportOptions::default(),
        }
    }

    /// A store on the node at `address` (URL or multiaddr), with default client settings.
    pub fn connect(address: &str) -> Result<Self> {
        Ok(IpfsStore::new(KuboClient::connect(address)?))
    }

    /// The same store, importing with other settings.
    pub fn with_import_options(self, options: ImportOptions) -> Result<Self> {
        options.validate()?;
        Ok(IpfsStore { options, ..self })
    }

    /// The RPC client, for calls the store interface does not cover.
    pub fn client(&self) -> &KuboClient {
        &self.client
    }

    fn add_timeout(&self) -> StoreError {
        StoreError::Timeout {
            url: self.client.node_url(),
            op: "add",
            after: self.client.config().timeout,
        }
    }

    /// Repeats a whole put while the node is unreachable: adding is idempotent (same bytes, same
    /// CID), so a retry can never store anything twice.
    async fn put_retrying<R, F, Fut>(&self, mut open: F) -> Result<Stored>
    where
        R: AsyncRead + Unpin + Send + 'static,
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<R>> + Send,
    {
        self.client
            .retrying("add", || {
                let opened = open();
                async move { self.put_reader(opened.await?).await }
            })
            .await
    }
}

impl ContentStore for IpfsStore {
    fn import_options(&self) -> ImportOptions {
        self.options
    }

    async fn put_reader<R>(&self, mut reader: R) -> Result<Stored>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let timeout = self.client.config().timeout;
        let mut importer = Importer::new(self.options)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(UPLOAD_QUEUE);
        let body = Body::wrap_stream(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let client = Arc::clone(&self.client);
        let options = self.options;
        let upload = tokio::spawn(async move { client.add(body, options).await });

        let chunk_size = import::READ_BUFFER.max(self.options.chunk_size);
        loop {
            let mut chunk = vec![0u8; chunk_size];
            let n = match import::read_full(&mut reader, &mut chunk).await {
                Ok(n) => n,
                Err(e) => {
                    // Abort the upload so the node does not store a truncated file under a CID.
                    let message = e.to_string();
                    let _ = tx.send(Err(std::io::Error::other(message))).await;
                    upload.abort();
                    return Err(StoreError::io("read", "(input)")(e));
                }
            };
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            let chunk = Bytes::from(chunk);
            importer.push(&chunk, |_| Ok(()))?;
            // The node must keep taking bytes: a stall of a whole timeout ends the put.
            match tokio::time::timeout(timeout, tx.send(Ok(chunk))).await {
                Ok(Ok(())) => {}
                // The upload ended early; its error is reported below.
                Ok(Err(_)) => break,
                Err(_) => {
                    upload.abort();
                    return Err(self.add_timeout());
                }
            }
        }
        drop(tx);
        // Once it has every byte, the node must answer within the timeout.
        let node_cid = match tokio::time::timeout(timeout, upload).await {
            Ok(joined) => joined.map_err(|e| StoreError::Protocol {
                op: "add",
                reason: e.to_string(),
            })??,
            Err(_) => return Err(self.add_timeout()),
        };
        let size = importer.bytes();
        let local = importer.finish(|_| Ok(()))?;
        if node_cid != local {
            return Err(StoreError::CidMismatch {
                node: cid::to_text(&node_cid),
                local: cid::to_text(&local),
            });
        }
        Ok(Stored { cid: local, size })
    }

    async fn put_bytes(&self, data: Bytes) -> Result<Stored> {
        self.put_retrying(|| {
            let data = data.clone();
            async move { Ok(std::io::Cursor::new(data)) }
        })
        .await
    }

    async fn put_file(&self, path: &Path) -> Result<Stored> {
        self.put_retrying(|| async move { tokio::fs::File::open(path).await.map_err(StoreError::io("open", path)) })
            .await
    }

    fn get(&self, cid: &Cid) -> BoxStream<'static, Result<Bytes>> {
        read::read_file(Arc::clone(&self.client), *cid)
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        self.client.pin_add(cid).await
    }

    async fn unpin(&self, cid: &Cid) -> Result<bool> {
        self.client.pin_rm(cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.client.is_pinned(cid).await
    }
}

impl BlockSource for KuboClient {
    async fn block(&self, cid: Cid) -> Result<Bytes> {
        self.block_get(&cid).await
    }
}
