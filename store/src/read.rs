//! Reading a file back from its CID, verified block by block, from any source of blocks.
//!
//! Each block is re-hashed against the CID its parent names before a single byte of it is used, so
//! the bytes that come out are exactly the bytes the root CID commits to, or the stream ends in an
//! error. The walk follows the UnixFS tree in file order and fetches the next blocks ahead
//! ([`PREFETCH`] at a time), so a remote node's round trips overlap and hashing runs on every core.
//! Memory is bounded by the prefetch window, not by the file size.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use rust_unixfs::file::visit::{Cache, FileVisit, IdleFileVisit};
use tokio::task::JoinHandle;

use crate::cid::{self, Cid, RAW};
use crate::error::{Result, StoreError};

/// Blocks fetched ahead of the one being read.
pub const PREFETCH: usize = 16;

/// Somewhere blocks can be fetched by CID, unverified: the reader checks them.
pub trait BlockSource: Send + Sync + 'static {
    /// The bytes of block `cid`, or [`StoreError::NotFound`] when the source does not have it.
    fn block(&self, cid: Cid) -> impl Future<Output = Result<Bytes>> + Send;
}

/// The verified content of the file `root`, as a stream of chunks in file order.
pub fn read_file<S: BlockSource>(source: Arc<S>, root: Cid) -> BoxStream<'static, Result<Bytes>> {
    if let Err(e) = cid::check_readable(&root) {
        return stream::once(async move { Err(e) }).boxed();
    }
    let walk = Walk {
        source,
        root,
        state: State::Start,
        inflight: HashMap::new(),
        cache: None,
        emitted: 0,
        file_size: 0,
    };
    stream::unfold(walk, |mut walk| async move {
        match walk.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), walk)),
            Ok(None) => None,
            Err(e) => {
                walk.state = State::Ended;
                Some((Err(e), walk))
            }
        }
    })
    .boxed()
}

enum State {
    Start,
    Walking(FileVisit),
    /// Every block was read: check the total, then end.
    Done,
    /// Nothing more to yield (the end was checked, or an error was yielded).
    Ended,
}

/// A spawned fetch that is cancelled when the reader is dropped half way.
struct Fetch(JoinHandle<Result<Bytes>>);

impl Drop for Fetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Walk<S> {
    source: Arc<S>,
    root: Cid,
    state: State,
    /// Fetches under way, by CID; a CID that occurs twice in the window (repeated content) queues.
    inflight: HashMap<Cid, VecDeque<Fetch>>,
    cache: Option<Cache>,
    emitted: u64,
    file_size: u64,
}

impl<S: BlockSource> Walk<S> {
    /// The next non-empty chunk of content, or `None` at the end of the file.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Ended => {
                    self.state = State::Ended;
                    return Ok(None);
                }
                State::Done => {
                    self.state = State::Ended;
                    return self.finish();
                }
                State::Start => {
                    let block = self.fetch(self.root).await?;
                    let content = if self.root.codec() == RAW {
                        self.file_size = block.len() as u64;
                        block
                    } else {
                        let (content, file_size, _metadata, visit) = IdleFileVisit::default()
                            .start(&block)
                            .map_err(|e| malformed(&self.root, e))?;
                        self.file_size = file_size;
                        let content = block.slice_ref(content);
                        if let Some(visit) = visit {
                            self.state = State::Walking(visit);
                        }
                        content
                    };
                    if let Some(chunk) = self.emit(content) {
                        return Ok(Some(chunk));
                    }
                }
                State::Walking(visit) => {
                    let next = *visit.pending_links().0;
                    self.prefetch(&visit);
                    let block = self.take(next).await?;
                    let (content, visit) = visit
                        .continue_walk(&block, &mut self.cache)
                        .map_err(|e| malformed(&next, e))?;
                    let content = block.slice_ref(content);
                    if let Some(visit) = visit {
                        self.state = State::Walking(visit);
                    }
                    if let Some(chunk) = self.emit(content) {
                        return Ok(Some(chunk));
                    }
                }
            }
        }
    }

    fn emit(&mut self, content: Bytes) -> Option<Bytes> {
        self.emitted += content.len() as u64;
        (!content.is_empty()).then_some(content)
    }

    /// At the end, the bytes read must add up to the size the root declares.
    fn finish(&self) -> Result<Option<Bytes>> {
        if self.emitted != self.file_size {
            return Err(StoreError::Malformed {
                cid: cid::to_text(&self.root),
                reason: format!(
                    "the root declares {} bytes but its blocks hold {}",
                    self.file_size, self.emitted
                ),
            });
        }
        Ok(None)
    }

    /// Starts fetching the next [`PREFETCH`] pending blocks that are not already under way.
    fn prefetch(&mut self, visit: &FileVisit) {
        let (first, rest) = visit.pending_links();
        let mut wanted: HashMap<Cid, usize> = HashMap::new();
        for cid in std::iter::once(first).chain(rest).take(PREFETCH) {
            let count = wanted.entry(*cid).or_default();
            *count += 1;
            let queued = self.inflight.get(cid).map_or(0, VecDeque::len);
            if queued < *count {
                let fetch = self.spawn(*cid);
                self.inflight.entry(*cid).or_default().push_back(fetch);
            }
        }
    }

    /// Awaits the fetch of `cid` started by [`Walk::prefetch`].
    async fn take(&mut self, cid: Cid) -> Result<Bytes> {
        let queue = self.inflight.get_mut(&cid);
        let fetch = match queue.and_then(VecDeque::pop_front) {
            Some(fetch) => fetch,
            None => self.spawn(cid),
        };
        if self.inflight.get(&cid).is_some_and(VecDeque::is_empty) {
            self.inflight.remove(&cid);
        }
        join(fetch).await
    }

    async fn fetch(&self, cid: Cid) -> Result<Bytes> {
        join(self.spawn(cid)).await
    }

    /// Fetches and verifies one block on the runtime, so that hashing runs in parallel.
    fn spawn(&self, cid: Cid) -> Fetch {
        let source = Arc::clone(&self.source);
        Fetch(tokio::spawn(async move {
            let block = source.block(cid).await?;
            cid::verify_block(&cid, &block)?;
            Ok(block)
        }))
    }
}

async fn join(mut fetch: Fetch) -> Result<Bytes> {
    match (&mut fetch.0).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Protocol {
            op: "block fetch",
            reason: format!("the fetch task failed: {e}"),
        }),
    }
}

fn malformed(cid: &Cid, e: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed {
        cid: cid::to_text(cid),
        reason: e.to_string(),
    }
}
