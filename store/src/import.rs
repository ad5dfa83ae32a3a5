//! Turning bytes into a UnixFS file DAG exactly as Kubo's `ipfs add` does, so that a CID computed
//! here equals the node's for the same settings: fixed-size chunks, a balanced tree of at most 174
//! links per node, DAG-PB leaves for CIDv0 and raw leaves for CIDv1.

use rust_unixfs::file::adder::{Chunker, FileAdder};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::cid::{Cid, Version};
use crate::error::{Result, StoreError};

/// Kubo's default chunk size (`size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;
/// The largest chunk Kubo accepts (its block size limit is 1 MiB plus framing).
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

/// How content is cut into blocks and named. The defaults are Kubo's with CIDv1, the form drlaas
/// writes on chain; [`ImportOptions::kubo_v0`] gives the settings of a plain `ipfs add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// CID version of the root and of every DAG-PB node. Default: V1.
    pub cid_version: Version,
    /// Store leaves as raw blocks instead of DAG-PB file nodes. Kubo turns this on for CIDv1 and
    /// off for CIDv0, and so does [`ImportOptions::new`].
    pub raw_leaves: bool,
    /// Bytes per leaf, 1..=1 MiB. Default 256 KiB.
    pub chunk_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions::new(Version::V1)
    }
}

impl ImportOptions {
    /// Kubo's defaults for the given CID version.
    pub fn new(cid_version: Version) -> Self {
        ImportOptions {
            cid_version,
            raw_leaves: cid_version == Version::V1,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// The settings of a plain `ipfs add`: CIDv0, DAG-PB leaves, 256 KiB chunks.
    pub fn kubo_v0() -> Self {
        ImportOptions::new(Version::V0)
    }

    /// The same settings with another chunk size.
    pub fn with_chunk_size(self, chunk_size: usize) -> Self {
        ImportOptions { chunk_size, ..self }
    }

    /// Rejects settings Kubo would reject, or that cannot be expressed as a CID.
    pub fn validate(&self) -> Result<()> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(StoreError::Config {
                field: "chunk_size",
                message: format!("{} is outside 1..={MAX_CHUNK_SIZE} bytes", self.chunk_size),
            });
        }
        if self.cid_version == Version::V0 && self.raw_leaves {
            return Err(StoreError::Config {
                field: "raw_leaves",
                message: "raw leaves need CIDv1 (a CIDv0 can only name DAG-PB nodes)".into(),
            });
        }
        Ok(())
    }

    fn adder(&self) -> FileAdder {
        FileAdder::builder()
            .with_chunker(Chunker::Size(self.chunk_size))
            .with_cid_version(self.cid_version)
            .with_raw_leaves(self.raw_leaves)
            .build()
    }
}

/// A block of the DAG being built: its CID and bytes.
pub type Block = (Cid, Vec<u8>);

/// Builds the DAG of one file incrementally: push bytes as they arrive, get back the blocks that
/// became complete (leaves, then the branch nodes above them), and the root at the end. Memory stays
/// at one chunk plus the pending links of each tree level, whatever the file size.
#[derive(Debug)]
pub struct Importer {
    adder: FileAdder,
    bytes: u64,
    /// The last block emitted: the root once the file is finished (a file of exactly one chunk is
    /// complete, root included, during a push).
    last: Option<Cid>,
}

impl Importer {
    /// Starts a file with the given settings.
    pub fn new(options: ImportOptions) -> Result<Self> {
        options.validate()?;
        Ok(Importer {
            adder: options.adder(),
            bytes: 0,
            last: None,
        })
    }

    /// Feeds `data`, calling `sink` with every block it completes, in an order where children come
    /// before their parents.
    pub fn push(&mut self, mut data: &[u8], mut sink: impl FnMut(Block) -> Result<()>) -> Result<()> {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            let (blocks, consumed) = self.adder.push(data);
            for block in blocks {
                self.last = Some(block.0);
                sink(block)?;
            }
            data = &data[consumed..];
        }
        Ok(())
    }

    /// Ends the file: emits the remaining blocks (the root last) and returns the root CID.
    pub fn finish(self, mut sink: impl FnMut(Block) -> Result<()>) -> Result<Cid> {
        let mut root = self.last;
        for (cid, block) in self.adder.finish() {
            root = Some(cid);
            sink((cid, block))?;
        }
        // Every file has a root block (an empty file is one empty leaf).
        root.ok_or_else(|| StoreError::Malformed {
            cid: "(import)".into(),
            reason: "the importer produced no root block".into(),
        })
    }

    /// Bytes pushed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The CID `data` gets under `options`, without storing anything.
pub fn cid_of(data: &[u8], options: ImportOptions) -> Result<Cid> {
    let mut importer = Importer::new(options)?;
    importer.push(data, |_| Ok(()))?;
    importer.finish(|_| Ok(()))
}

/// Buffer for reading files into the importer: whole chunks at a time keep the adder on its
/// zero-copy path.
pub(crate) const READ_BUFFER: usize = 4 * DEFAULT_CHUNK_SIZE;

/// The CID of everything `reader` yields under `options`, streaming (memory does not grow with the
/// input).
pub async fn cid_of_reader(mut reader: impl AsyncRead + Unpin, options: ImportOptions) -> Result<(Cid, u64)> {
    let mut importer = Importer::new(options)?;
    let mut buffer = vec![0u8; READ_BUFFER.max(options.chunk_size)];
    loop {
        let n = read_full(&mut reader, &mut buffer)
            .await
            .map_err(StoreError::io("read", "(stream)"))?;
        if n == 0 {
            break;
        }
        importer.push(&buffer[..n], |_| Ok(()))?;
    }
    let bytes = importer.bytes();
    Ok((importer.finish(|_| Ok(()))?, bytes))
}

/// Reads until `buffer` is full or the input ends; returns how much was read.
pub(crate) async fn read_full(reader: &mut (impl AsyncRead + Unpin), buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = reader.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
