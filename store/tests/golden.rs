//! The local store names content exactly as Kubo does: every CID of the golden table, CIDv0 and
//! CIDv1, from the importer alone and through a put into the local store and a verified get back.

mod common;

use common::GOLDEN;
use drlaas_store::cid::Version;
use drlaas_store::{ContentStore, ImportOptions, LocalStore, cid_of};

fn settings(version: Version, chunk_size: usize) -> ImportOptions {
    ImportOptions::new(version).with_chunk_size(chunk_size)
}

#[test]
fn importer_reproduces_every_golden_cid() {
    for row in GOLDEN {
        let bytes = (row.bytes)();
        if let Some(v0) = row.v0 {
            let cid = cid_of(&bytes, settings(Version::V0, row.chunk_size)).unwrap();
            assert_eq!(cid.to_string(), v0, "CIDv0 of {}", row.name);
        }
        let cid = cid_of(&bytes, settings(Version::V1, row.chunk_size)).unwrap();
        assert_eq!(cid.to_string(), row.v1, "CIDv1 of {}", row.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_puts_under_the_golden_cids_and_reads_back_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for row in GOLDEN {
        let bytes = (row.bytes)();
        let versions = [(Version::V0, row.v0), (Version::V1, Some(row.v1))];
        for (version, want) in versions {
            let Some(want) = want else { continue };
            let store = LocalStore::open(dir.path())
                .unwrap()
                .with_import_options(settings(version, row.chunk_size))
                .unwrap();
            let stored = store.put_bytes(bytes.clone().into()).await.unwrap();
            assert_eq!(stored.cid.to_string(), want, "{version:?} of {}", row.name);
            assert_eq!(stored.size, bytes.len() as u64);
            assert!(store.has(&stored.cid).await.unwrap());
            let back = store.get_bytes(&stored.cid).await.unwrap();
            assert!(
                back == bytes,
                "{} read back differs ({} vs {} bytes)",
                row.name,
                back.len(),
                bytes.len()
            );
        }
    }
}

#[tokio::test]
async fn a_file_is_put_streaming_under_the_same_cid_as_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).unwrap();
    let bytes = common::pattern(3 * common::MIB);
    let path = dir.path().join("model.bin");
    std::fs::write(&path, &bytes).unwrap();
    let stored = store.put_file(&path).await.unwrap();
    assert_eq!(
        stored.cid.to_string(),
        "bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma"
    );
    let out = dir.path().join("fetched.bin");
    assert_eq!(store.get_to_file(&stored.cid, &out).await.unwrap(), bytes.len() as u64);
    assert!(std::fs::read(&out).unwrap() == bytes);
}
