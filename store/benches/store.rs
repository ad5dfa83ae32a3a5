//! Throughput of the content store.
//!
//! `cargo bench -p drlaas-store --bench store` prints, as the median of several runs (MiB/s):
//! - CID computation: import and hash in memory, no storage (CIDv1 raw leaves and CIDv0);
//! - local store: put and verified get of 3 MiB and 256 MiB, each run on a fresh directory;
//! - IPFS store against the js-ipfs node of `tools/`: put (add, with the local CID computed on the
//!   way and compared), verified get (block by block, every block re-hashed), and for comparison
//!   the node's unverified `cat`.
//!
//! Every run stores different bytes (a new seed), so nothing is served from an earlier put.
//! Options (after `--`): `--runs N` (default 5), `--large-mib N` (default 256), `--skip-ipfs`.

use std::time::Instant;

use bytes::Bytes;
use drlaas_store::cid::Version;
use drlaas_store::devnode::DevNode;
use drlaas_store::{ContentStore, ImportOptions, IpfsStore, LocalStore, cid_of};
use futures::StreamExt;

const MIB: usize = 1 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `len` pseudo-random bytes (xorshift), different for every seed.
fn content(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn mib_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / MIB as f64 / seconds
}

/// Times `f` once; returns MiB/s for `bytes`.
async fn timed<F: Future<Output = ()>>(bytes: usize, f: F) -> f64 {
    let start = Instant::now();
    f.await;
    mib_per_s(bytes, start.elapsed().as_secs_f64())
}

async fn drain(store: &impl ContentStore, cid: &drlaas_store::Cid) -> usize {
    let mut stream = store.get(cid);
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        n += chunk.expect("verified read").len();
    }
    n
}

/// Puts `data` and reads it back verified; returns put and get MiB/s and the CID.
async fn put_then_get(store: &impl ContentStore, data: Bytes) -> (f64, f64, drlaas_store::Cid) {
    let size = data.len();
    let mut cid = None;
    let put = timed(size, async { cid = Some(store.put_bytes(data).await.unwrap().cid) }).await;
    let cid = cid.unwrap();
    let get = timed(size, async { assert_eq!(drain(store, &cid).await, size) }).await;
    (put, get, cid)
}

fn report(label: &str, samples: Vec<f64>) {
    let runs = samples.len();
    println!("  {label:<34} {:>8.1} MiB/s  (median of {runs})", median(samples));
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs = arg("--runs", 5);
    let large = arg("--large-mib", 256) * MIB;
    let skip_ipfs = std::env::args().any(|a| a == "--skip-ipfs");
    let sizes = [(3 * MIB, "3 MiB".to_string()), (large, format!("{} MiB", large / MIB))];
    let mut seed = 1u64;

    println!("== CID computation (import + sha2-256 in memory, nothing stored)");
    for (size, name) in &sizes {
        for (version, tag) in [(Version::V1, "CIDv1"), (Version::V0, "CIDv0")] {
            let data = content(*size, seed);
            seed += 1;
            let mut samples = Vec::new();
            for _ in 0..runs {
                samples.push(
                    timed(*size, async {
                        cid_of(&data, ImportOptions::new(version)).unwrap();
                    })
                    .await,
                );
            }
            report(&format!("{name} {tag}"), samples);
        }
    }

    println!("== Local store (blockstore directory, CIDv1)");
    for (size, name) in &sizes {
        let (mut puts, mut gets) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let dir = tempfile::tempdir().unwrap();
            let store = LocalStore::open(dir.path()).unwrap();
            let (put, get, _) = put_then_get(&store, content(*size, seed)).await;
            seed += 1;
            puts.push(put);
            gets.push(get);
        }
        report(&format!("put {name}"), puts);
        report(&format!("get {name} (verified)"), gets);
    }

    if skip_ipfs {
        return;
    }
    println!("== IPFS store (js-ipfs 0.66 from tools/, offline, CIDv1)");
    let node = DevNode::start().expect("start the js-ipfs node (tools/ipfs.sh install)");
    let store = IpfsStore::connect(node.api()).unwrap();
    for (size, name) in &sizes {
        let (mut puts, mut gets, mut cats) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (put, get, cid) = put_then_get(&store, content(*size, seed)).await;
            seed += 1;
            puts.push(put);
            gets.push(get);
            cats.push(
                timed(*size, async {
                    let mut stream = store.client().cat(&cid).await.unwrap();
                    let mut n = 0;
                    while let Some(chunk) = stream.next().await {
                        n += chunk.unwrap().len();
                    }
                    assert_eq!(n, *size);
                })
                .await,
            );
            store.unpin(&cid).await.unwrap();
        }
        report(&format!("put {name} (add + local CID check)"), puts);
        report(&format!("get {name} (verified, per block)"), gets);
        report(&format!("cat {name} (node, unverified)"), cats);
    }
}
