//! What the operator's integration tests share: a scratch content store, the operator's settings and
//! a chain with the contracts deployed.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use drlaas_chain::alloy::primitives::Address;
use drlaas_local::api_server::ApiServer;
use drlaas_operator::controller::{Settings, WatchScope};
use drlaas_operator::pods::{EnvironmentSidecars, PodSettings};
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

/// The operator's settings, with `oracle` as its account and trainer pods reaching the content
/// store at `store_address`.
pub fn settings_for(oracle: Address, store_address: &str) -> Arc<Settings> {
    Arc::new(Settings {
        oracle,
        namespace: "drlaas-system".into(),
        scope: WatchScope::All,
        pods: PodSettings {
            trainer_image: "drlaas/trainer:test".into(),
            store_address: store_address.into(),
            // No standard environment image: gymnasium tasks without their own wait (see
            // check_runnable).
            environments: EnvironmentSidecars::default(),
        },
        confirmations: 0,
        proposal_turn_seconds: drlaas_core::consortium::PROPOSAL_TURN_SECONDS,
    })
}

/// Settings for tests that send no oracle transaction and run no pod.
pub fn settings() -> Arc<Settings> {
    settings_for(Address::ZERO, "http://ipfs.drlaas-system:5001")
}

/// Every request the operator made to `api` is one that the Helm chart's RBAC, rendered with
/// `values` and installed as release `drlaas` in `drlaas-system` (the operator's namespace here),
/// grants its ServiceAccount: a permission the chart lacks fails here, not in a cluster.
pub fn assert_chart_rbac_allows(api: &ApiServer, values: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let objects = drlaas_chart::Helm::pinned()
        .template(&[&file])
        .expect("the chart renders");
    let permissions = drlaas_chart::rbac::Permissions::of_service_account(&objects, "drlaas-system", "drlaas");
    let requests = api.requests_with_query();
    assert!(requests.len() > 20, "only {} requests seen", requests.len());
    let denied = permissions.denied(&requests);
    assert!(
        denied.is_empty(),
        "the chart ({values:?}) does not grant what the operator asked: {denied:#?}"
    );
}
