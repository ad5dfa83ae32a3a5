//! Where an [`crate::EventStream`] remembers how far it got, so a restart neither misses nor repeats an
//! event. The operator keeps its cursor in the cluster; the local mode and tests use a file.

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::{
    error::{ChainError, Result},
    events::EventPosition,
};

/// The persisted progress of an event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// Chain the cursor belongs to (a cursor is never applied to another chain).
    pub chain_id: u64,
    /// TMC address of the deployment the cursor belongs to.
    pub tmc: Address,
    /// The last event the consumer acknowledged.
    pub last_acked: Option<EventPosition>,
    /// Every event in blocks up to and including this one has been acknowledged.
    pub scanned_through: Option<u64>,
}

/// Storage for a [`Cursor`]. `save` must be durable when it returns.
pub trait CursorStore: Send {
    /// The saved cursor, or `None` on first start.
    fn load(&mut self) -> impl Future<Output = Result<Option<Cursor>>> + Send;
    /// Persist `cursor`, replacing the previous one.
    fn save(&mut self, cursor: &Cursor) -> impl Future<Output = Result<()>> + Send;
}

/// A cursor in a JSON file, replaced atomically (write to a temporary file, fsync, rename).
#[derive(Clone, Debug)]
pub struct FileCursor {
    path: PathBuf,
}

impl FileCursor {
    /// A cursor stored at `path` (its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCursor { path: path.into() }
    }

    /// Where the cursor lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> ChainError {
        ChainError::Cursor {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

impl CursorStore for FileCursor {
    async fn load(&mut self) -> Result<Option<Cursor>> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    async fn save(&mut self, cursor: &Cursor) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(cursor).map_err(|e| self.err(e))?;
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut f, &bytes).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &self.path).await
        };
        write.await.map_err(|e| self.err(e))
    }
}

/// A cursor in memory, shared between clones (tests; consumers that persist elsewhere).
#[derive(Clone, Debug, Default)]
pub struct MemoryCursor(Arc<Mutex<Option<Cursor>>>);

impl MemoryCursor {
    /// The cursor as last saved.
    pub fn get(&self) -> Option<Cursor> {
        *self.0.lock().expect("cursor lock")
    }
}

impl CursorStore for MemoryCursor {
    async fn load(&mut self) -> Result<Option<Cursor>> {
        Ok(self.get())
    }

    async fn save(&mut self, cursor: &Cursor) -> Result<()> {
        *self.0.lock().expect("cursor lock") = Some(*cursor);
        Ok(())
    }
}
