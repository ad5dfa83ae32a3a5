//! The embedded default: a blockstore in a directory, with CIDs computed here exactly as Kubo
//! computes them, so a model stored locally has the same CID it would have on IPFS.
//!
//! Layout under the store directory:
//! - `blocks/XY/<key>`: one file per block, named by its multihash (so the same bytes under CIDv0
//!   and CIDv1 are stored once, as Kubo's flatfs does) and sharded by two characters of the name;
//! - `pins/<cid>`: one empty file per pinned root;
//! - `tmp/`: blocks being written. A block is written there and renamed into place, so a crash (or a
//!   kill -9) leaves either the whole block or none of it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::AsyncRead;

use crate::cid::{self, Cid, RAW};
use crate::content_store::{ContentStore, Stored};
use crate::dag;
use crate::error::{Result, StoreError};
use crate::import::{self, Block, ImportOptions, Importer};
use crate::read::{self, BlockSource};

/// A content store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    blocks: Arc<Blocks>,
    options: ImportOptions,
}

/// Where a put is after one buffer of input.
enum Step {
    More(Importer, Vec<u8>),
    Done(Stored),
}

/// The block files of a store directory.
#[derive(Debug)]
struct Blocks {
    /// Held shared by puts and exclusively by gc, so gc never removes the blocks of a put that has
    /// not pinned its root yet.
    gc_lock: tokio::sync::RwLock<()>,
    root: PathBuf,
    /// Makes temporary names unique within this process (the pid makes them unique across).
    next_tmp: AtomicU64,
}

impl LocalStore {
    /// Opens (creating if needed) the store in `dir`, importing with the default settings (CIDv1,
    /// raw leaves, 256 KiB chunks). Leftovers of interrupted writes are removed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        for sub in ["blocks", "pins"] {
            let path = root.join(sub);
            std::fs::create_dir_all(&path).map_err(StoreError::io("create store directory", &path))?;
        }
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(StoreError::io("clear", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(StoreError::io("create store directory", &tmp))?;
        Ok(LocalStore {
            blocks: Arc::new(Blocks {
                gc_lock: Default::default(),
                root,
                next_tmp: AtomicU64::new(0),
            }),
            options: ImportOptions::default(),
        })
    }

    /// The same store, importing with other settings.
    pub fn with_import_options(self, options: ImportOptions) -> Result<Self> {
        options.validate()?;
        Ok(LocalStore { options, ..self })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.blocks.root
    }

    /// The pinned roots.
    pub async fn pins(&self) -> Result<Vec<Cid>> {
        let dir = self.blocks.pins_dir();
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(StoreError::io("list", &dir))?;
        let mut pins = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(StoreError::io("list", &dir))? {
            pins.push(cid::parse(&entry.file_name().to_string_lossy())?);
        }
        pins.sort();
        Ok(pins)
    }

    /// Deletes every block no pin needs; returns how many were removed.
    pub async fn gc(&self) -> Result<usize> {
        let _gc = self.blocks.gc_lock.write().await;
        let mut keep = HashSet::new();
        for pin in self.pins().await? {
            for block in self.blocks.dag(pin).await? {
                keep.insert(Blocks::key(&block));
            }
        }
        let blocks = Arc::clone(&self.blocks);
        tokio::task::spawn_blocking(move || blocks.remove_all_but(&keep))
            .await
            .map_err(join_error)?
    }
}

impl ContentStore for LocalStore {
    fn import_options(&self) -> ImportOptions {
        self.options
    }

    async fn put_reader<R>(&self, mut reader: R) -> Result<Stored>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        // A gc running now would see these blocks unpinned: puts share the lock, gc takes it alone.
        let _put = self.blocks.gc_lock.read().await;
        let mut importer = Importer::new(self.options)?;
        let mut buffer = vec![0u8; import::READ_BUFFER.max(self.options.chunk_size)];
        // Reads are async; hashing and block writes run on the blocking pool, one buffer at a time.
        let stored = loop {
            let n = import::read_full(&mut reader, &mut buffer)
                .await
                .map_err(StoreError::io("read", "(input)"))?;
            let blocks = Arc::clone(&self.blocks);
            let step = tokio::task::spawn_blocking(move || -> Result<Step> {
                let write = |block: Block| blocks.write(block);
                if n == 0 {
                    let size = importer.bytes();
                    return importer.finish(write).map(|cid| Step::Done(Stored { cid, size }));
                }
                importer.push(&buffer[..n], write)?;
                Ok(Step::More(importer, buffer))
            })
            .await
            .map_err(join_error)??;
            match step {
                Step::Done(stored) => break stored,
                Step::More(i, b) => (importer, buffer) = (i, b),
            }
        };
        self.blocks.write_pin(&stored.cid).await?;
        Ok(stored)
    }

    fn get(&self, cid: &Cid) -> BoxStream<'static, Result<Bytes>> {
        read::read_file(Arc::clone(&self.blocks), *cid)
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        self.blocks.dag(*cid).await?;
        self.blocks.write_pin(cid).await
    }

    async fn unpin(&self, cid: &Cid) -> Result<bool> {
        let path = self.blocks.pin_path(cid);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove", &path)(e)),
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        if !tokio::fs::try_exists(self.blocks.pin_path(cid)).await.unwrap_or(false) {
            return Ok(false);
        }
        match self.blocks.dag(*cid).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl BlockSource for Blocks {
    async fn block(&self, cid: Cid) -> Result<Bytes> {
        let path = self.block_path(&cid);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound {
                cid: cid::to_text(&cid),
            }),
            Err(e) => Err(StoreError::io("read block", &path)(e)),
        }
    }
}

impl Blocks {
    /// A block's file name: its multihash, as the CIDv1 of a raw block with that multihash.
    fn key(cid: &Cid) -> String {
        cid::to_text(&Cid::new_v1(RAW, *cid.hash()))
    }

    fn block_path(&self, cid: &Cid) -> PathBuf {
        let key = Self::key(cid);
        // Shard on the next-to-last two characters, as flatfs does: the end of a base32 hash is
        // uniformly distributed, while its start is the shared multibase/CID prefix.
        let shard = &key[key.len() - 3..key.len() - 1];
        self.root.join("blocks").join(shard).join(key)
    }

    fn pins_dir(&self) -> PathBuf {
        self.root.join("pins")
    }

    fn pin_path(&self, cid: &Cid) -> PathBuf {
        self.pins_dir().join(cid::to_text(cid))
    }

    /// Writes one block unless it is already there (blocking).
    fn write(&self, (cid, block): Block) -> Result<()> {
        let path = self.block_path(&cid);
        if path.exists() {
            return Ok(());
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join("tmp").join(format!("{}-{n}", std::process::id()));
        std::fs::write(&tmp, &block).map_err(StoreError::io("write block", &tmp))?;
        let shard = path.parent().expect("block paths have a shard directory");
        std::fs::create_dir_all(shard).map_err(StoreError::io("create", shard))?;
        std::fs::rename(&tmp, &path).map_err(StoreError::io("rename block into", &path))
    }

    async fn write_pin(&self, cid: &Cid) -> Result<()> {
        let path = self.pin_path(cid);
        tokio::fs::write(&path, b"")
            .await
            .map_err(StoreError::io("write pin", &path))
    }

    /// Every block of the DAG under `root`, checking that each is present. Branch nodes are read and
    /// verified (they decide what else is needed); leaves are only checked for existence.
    async fn dag(&self, root: Cid) -> Result<Vec<Cid>> {
        cid::check_readable(&root)?;
        let mut all = Vec::new();
        let mut stack = vec![root];
        while let Some(cid) = stack.pop() {
            if dag::may_link(&cid) {
                let block = self.block(cid).await?;
                cid::verify_block(&cid, &block)?;
                stack.extend(dag::children(&cid, &block).into_iter().rev());
            } else if !tokio::fs::try_exists(self.block_path(&cid)).await.unwrap_or(false) {
                return Err(StoreError::NotFound {
                    cid: cid::to_text(&cid),
                });
            }
            all.push(cid);
        }
        Ok(all)
    }

    /// Removes every block file whose key is not in `keep` (blocking).
    fn remove_all_but(&self, keep: &HashSet<String>) -> Result<usize> {
        let mut removed = 0;
        let blocks = self.root.join("blocks");
        for shard in std::fs::read_dir(&blocks).map_err(StoreError::io("list", &blocks))? {
            let shard = shard.map_err(StoreError::io("list", &blocks))?.path();
            for entry in std::fs::read_dir(&shard).map_err(StoreError::io("list", &shard))? {
                let path = entry.map_err(StoreError::io("list", &shard))?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !keep.contains(&name) {
                    std::fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Protocol {
        op: "local store",
        reason: format!("a blocking task failed: {e}"),
    }
}
