//! What the operator's integration tests share: a scratch content store, the operator's settings and
//! a chain with the contracts deployed.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use drlaas_chain::alloy::primitives::Address;
use drlaas_operator::controller::{Settings, WatchScope};
use drlaas_operator::pods::PodSettings;
use drlaas_store::Store;

pub mod kubelet;

/// A fresh, empty directory under the target directory's scratch space.
pub fn scratch_dir(what: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "operator-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A fresh local content store under the target directory's scratch space.
pub fn scratch_store() -> Store {
    let dir = scratch_dir("store");
    Store::open(dir.to_str().expect("a UTF-8 path")).expect("a local store opens")
}

/// The operator's settings, with `oracle` as its account.
pub fn settings_for(oracle: Address) -> Arc<Settings> {
    Arc::new(Settings {
        oracle,
        namespace: "drlaas-system".into(),
        scope: WatchScope::All,
        pods: PodSettings {
            trainer_image: "drlaas/trainer:test".into(),
            store_address: "http://ipfs.drlaas-system:5001".into(),
        },
        confirmations: 0,
    })
}

/// Settings for tests that send no oracle transaction.
pub fn settings() -> Arc<Settings> {
    settings_for(Address::ZERO)
}
