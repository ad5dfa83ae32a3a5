//! The local blockstore keeps what it is given and never returns what it was not: corrupted,
//! missing or truncated blocks end a read in an error (and no file), pins decide what gc keeps, and a
//! store reopened after a crash still serves everything it had pinned.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{MIB, pattern};
use drlaas_store::cid::Version;
use drlaas_store::{Cid, ContentStore, ImportOptions, LocalStore, StoreError};
use futures::StreamExt;

/// Every block file of the store, sorted.
fn block_files(store: &LocalStore) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for shard in std::fs::read_dir(store.dir().join("blocks")).unwrap() {
        for entry in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files.sort();
    files
}

fn flip_a_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// The block file that holds the most bytes: a leaf of a multi-block file.
fn largest_block(store: &LocalStore) -> PathBuf {
    block_files(store)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

async fn put(store: &LocalStore, bytes: &[u8]) -> Cid {
    store.put_bytes(Bytes::copy_from_slice(bytes)).await.unwrap().cid
}

#[tokio::test]
async fn a_corrupted_leaf_is_detected_and_no_data_is_returned() {
    for version in [Version::V0, Version::V1] {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path())
            .unwrap()
            .with_import_options(ImportOptions::new(version))
            .unwrap();
        let cid = put(&store, &pattern(3 * MIB)).await;
        flip_a_byte(&largest_block(&store), 1000);

        let err = store.get_bytes(&cid).await.unwrap_err();
        assert!(matches!(err, StoreError::Integrity { .. }), "{version:?}: {err:?}");
        assert!(err.to_string().contains("integrity check failed for block"), "{err}");

        // The stream may yield the verified chunks before the bad one, never the bad one itself.
        let chunks: Vec<_> = store.get(&cid).collect().await;
        let good: usize = chunks.iter().filter_map(|c| c.as_ref().ok()).map(|c| c.len()).sum();
        assert!(chunks.last().unwrap().is_err());
        assert!(good < 3 * MIB && pattern(3 * MIB).starts_with(&concat_ok(&chunks)));

        let out = dir.path().join("model.bin");
        assert!(store.get_to_file(&cid, &out).await.is_err());
        assert!(!out.exists(), "a failed read leaves no file");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial"))
        );
    }
}

fn concat_ok(chunks: &[drlaas_store::Result<Bytes>]) -> Vec<u8> {
    chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .flat_map(|c| c.iter().copied())
        .collect()
}

#[tokio::test]
async fn a_corrupted_root_or_single_block_file_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let small = put(&store, b"0123456789").await;
    let big = put(&store, &pattern(256 * 1024 + 1)).await;
    // Corrupt every block: the small file's only block and the big file's root and leaves.
    for file in block_files(&store) {
        flip_a_byte(&file, 3);
    }
    for cid in [small, big] {
        let err = store.get_bytes(&cid).await.unwrap_err();
        assert!(matches!(err, StoreError::Integrity { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn a_missing_or_truncated_block_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let cid = put(&store, &pattern(MIB)).await;
    let leaf = largest_block(&store);

    let bytes = std::fs::read(&leaf).unwrap();
    std::fs::write(&leaf, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        store.get_bytes(&cid).await.unwrap_err(),
        StoreError::Integrity { .. }
    ));

    std::fs::remove_file(&leaf).unwrap();
    let err = store.get_bytes(&cid).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(
        !store.has(&cid).await.unwrap(),
        "a pinned root with a missing block is not held"
    );

    let never = drlaas_store::cid_of(b"never stored", ImportOptions::default()).unwrap();
    assert!(matches!(
        store.get_bytes(&never).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(!store.has(&never).await.unwrap());
    assert!(matches!(
        store.pin(&never).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[tokio::test]
async fn gc_keeps_pinned_content_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let kept = put(&store, &pattern(MIB)).await;
    let dropped = put(&store, &pattern(MIB + 5)).await;
    // Shares no block with `kept` except by chance of content: pattern offsets differ per chunk.
    assert!(store.unpin(&dropped).await.unwrap());
    assert!(!store.unpin(&dropped).await.unwrap());
    assert_eq!(store.pins().await.unwrap(), vec![kept]);

    let before = block_files(&store).len();
    let removed = store.gc().await.unwrap();
    assert!(removed > 0 && block_files(&store).len() == before - removed);
    assert!(store.get_bytes(&kept).await.unwrap() == pattern(MIB));
    assert!(matches!(
        store.get_bytes(&dropped).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_eq!(store.gc().await.unwrap(), 0, "a second gc finds nothing");
}

#[tokio::test]
async fn a_reopened_store_serves_what_it_had_and_clears_interrupted_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cid = {
        let store = LocalStore::open(dir.path()).unwrap();
        put(&store, &pattern(2 * MIB)).await
    };
    // What a write killed half way leaves behind.
    std::fs::write(dir.path().join("tmp").join("12345-0"), b"half a block").unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    assert!(store.has(&cid).await.unwrap());
    assert!(store.get_bytes(&cid).await.unwrap() == pattern(2 * MIB));
}

#[tokio::test]
async fn unreadable_cids_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    // dag-cbor (0x71) root: not a UnixFS file.
    let cbor = Cid::new_v1(
        0x71,
        *drlaas_store::cid_of(b"x", ImportOptions::default()).unwrap().hash(),
    );
    let err = store.get_bytes(&cbor).await.unwrap_err();
    assert!(err.to_string().contains("codec 0x71"), "{err}");
    let err = drlaas_store::cid::parse("bafy-not-really").unwrap_err();
    assert!(err.to_string().contains("invalid CID"), "{err}");
    let err = ImportOptions::default()
        .with_chunk_size(2 * MIB)
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("chunk_size"), "{err}");
}
