//! The IPFS store against a real node (js-ipfs from `tools/`, started by each test): round trips of
//! every size class in CIDv0 and CIDv1 with node CID == local CID, pins, and the failures a node can
//! cause (stopped, missing block) ending in clear errors within the timeout.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{MIB, pattern, sha256_chain};
use drlaas_store::cid::Version;
use drlaas_store::devnode::DevNode;
use drlaas_store::{ContentStore, ImportOptions, IpfsConfig, IpfsStore, KuboClient, LocalStore, StoreError, cid_of};

fn store_on(node: &DevNode, version: Version) -> IpfsStore {
    IpfsStore::connect(node.api())
        .unwrap()
        .with_import_options(ImportOptions::new(version))
        .unwrap()
}

/// A CIDv1 store on `node` whose calls time out after `timeout`.
fn store_with_timeout(node: &DevNode, timeout: Duration) -> IpfsStore {
    let mut config = IpfsConfig::new(node.api()).unwrap();
    config.timeout = timeout;
    IpfsStore::new(KuboClient::new(config).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_every_size_in_both_cid_versions_with_the_local_cid() {
    let node = DevNode::start().unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("0 B", Vec::new()),
        ("10 B", b"0123456789".to_vec()),
        ("256 KiB", pattern(256 * 1024)),
        ("256 KiB + 1", pattern(256 * 1024 + 1)),
        ("3 MiB", pattern(3 * MIB)),
        ("50 MiB", sha256_chain(common::CHAIN_BYTES)),
    ];
    for version in [Version::V0, Version::V1] {
        let ipfs = store_on(&node, version);
        let local = LocalStore::open(local_dir.path())
            .unwrap()
            .with_import_options(ImportOptions::new(version))
            .unwrap();
        for (name, bytes) in &inputs {
            let data = Bytes::from(bytes.clone());
            let on_node = ipfs
                .put_bytes(data.clone())
                .await
                .unwrap_or_else(|e| panic!("add {name} {version:?}: {e}"));
            let in_process = local.put_bytes(data).await.unwrap();
            assert_eq!(on_node.cid, in_process.cid, "{name} {version:?}: node CID vs local CID");
            assert_eq!(on_node.cid, cid_of(bytes, ImportOptions::new(version)).unwrap());
            assert_eq!(on_node.cid.version(), version);

            assert!(ipfs.has(&on_node.cid).await.unwrap(), "{name}: pinned after add");
            let back = ipfs.get_bytes(&on_node.cid).await.unwrap();
            assert!(back == bytes.as_slice(), "{name} {version:?}: verified get differs");
            let mut cat = Vec::new();
            let mut stream = ipfs.client().cat(&on_node.cid).await.unwrap();
            while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                cat.extend_from_slice(&chunk.unwrap());
            }
            assert!(cat == *bytes, "{name} {version:?}: cat differs");

            assert!(ipfs.unpin(&on_node.cid).await.unwrap(), "{name}: unpin");
            assert!(!ipfs.has(&on_node.cid).await.unwrap(), "{name}: unpinned");
            assert!(
                !ipfs.unpin(&on_node.cid).await.unwrap(),
                "{name}: second unpin finds no pin"
            );
            ipfs.pin(&on_node.cid).await.unwrap();
            assert!(ipfs.has(&on_node.cid).await.unwrap(), "{name}: pinned again");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stream_to_and_from_the_node() {
    let node = DevNode::start().unwrap();
    let ipfs = store_on(&node, Version::V1);
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(3 * MIB + 17);
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let stored = ipfs.put_file(&path).await.unwrap();
    assert_eq!(stored.size, bytes.len() as u64);
    let out = dir.path().join("fetched");
    ipfs.get_to_file(&stored.cid, &out).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == bytes);

    let info = ipfs.client().id().await.unwrap();
    assert!(info.agent_version.starts_with("js-ipfs/"), "{info:?}");
    assert!(!ipfs.client().version().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_gives_a_clear_error_within_the_timeout() {
    let node = DevNode::start().unwrap();
    let ipfs = store_with_timeout(&node, Duration::from_secs(5));
    let stored = ipfs.put_bytes(Bytes::from_static(b"0123456789")).await.unwrap();
    node.stop().unwrap();

    let started = Instant::now();
    let err = ipfs.get_bytes(&stored.cid).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(node.api()) && message.contains("is the node running?"),
        "{message}"
    );
    let err = ipfs.put_bytes(Bytes::from_static(b"more")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let err = ipfs.has(&stored.cid).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "errors took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_the_node_lacks_times_out_instead_of_hanging() {
    let node = DevNode::start().unwrap();
    let ipfs = store_with_timeout(&node, Duration::from_secs(2));
    // Never added: js-ipfs would wait for it forever.
    let absent = cid_of(b"not on this node", ImportOptions::default()).unwrap();
    let started = Instant::now();
    let err = ipfs.get_bytes(&absent).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("block/get"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(!ipfs.has(&absent).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_corrupted_on_the_node_is_detected_and_no_data_is_returned() {
    let node = DevNode::start().unwrap();
    let ipfs = store_on(&node, Version::V1);
    let bytes = pattern(MIB);
    let stored = ipfs.put_bytes(Bytes::from(bytes.clone())).await.unwrap();
    // Tamper with the node's own blockstore: flip one byte of every 256 KiB leaf.
    let mut tampered = 0;
    for shard in std::fs::read_dir(node.repo().join("blocks")).unwrap() {
        let shard = shard.unwrap().path();
        if !shard.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard).unwrap() {
            let path = entry.unwrap().path();
            let mut block = std::fs::read(&path).unwrap();
            if block.len() == 256 * 1024 {
                block[100] ^= 0x80;
                std::fs::write(&path, block).unwrap();
                tampered += 1;
            }
        }
    }
    assert_eq!(tampered, 4);
    // The node itself serves the tampered bytes without complaint...
    let mut cat = Vec::new();
    let mut stream = ipfs.client().cat(&stored.cid).await.unwrap();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        cat.extend_from_slice(&chunk.unwrap());
    }
    assert!(cat.len() == bytes.len() && cat != bytes);
    // ...the store does not.
    let err = ipfs.get_bytes(&stored.cid).await.unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_longer_than_the_timeout_succeeds_while_it_keeps_moving() {
    let node = DevNode::start().unwrap();
    let ipfs = store_with_timeout(&node, Duration::from_secs(1));
    // 3 s of upload in 15 pieces, each well within the 1 s timeout.
    let bytes = pattern(15 * 64 * 1024);
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let source = bytes.clone();
    let feeder = tokio::spawn(async move {
        for piece in source.chunks(64 * 1024) {
            tokio::io::AsyncWriteExt::write_all(&mut writer, piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = Instant::now();
    let stored = ipfs.put_reader(reader).await.unwrap();
    feeder.await.unwrap();
    assert!(started.elapsed() > Duration::from_secs(2), "the upload really was slow");
    assert_eq!(stored.cid, cid_of(&bytes, ImportOptions::default()).unwrap());
    assert!(ipfs.get_bytes(&stored.cid).await.unwrap() == bytes);
}
