//! A requester's environment shipped as Python wheels: installed, without any download, into a
//! folder of its own that the environment server gets on its `PYTHONPATH`.
//!
//! The package is one wheel or a *wheelhouse* (a folder of wheels: the environment's own and any
//! dependency the standard environment image lacks). The install is drlaas-envserver's own
//! (`python -m drlaas_envserver.install`, the same code an environment sidecar runs for
//! `--package`): every wheel with `--no-deps` and `--no-index`, so what runs is exactly what the
//! requester stored under the task's CID, on the worker and on the verifier alike, and an install
//! never reaches a package index.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs the wheels of `package` with `python`'s drlaas-envserver into `target` (created; an
/// existing one is replaced) and returns `target`, the folder to put on the server's `PYTHONPATH`.
pub fn install(python: &Path, package: &Path, target: &Path) -> Result<PathBuf, String> {
    let output = Command::new(python)
        .args(["-m", "drlaas_envserver.install"])
        .arg(package)
        .arg(target)
        .output()
        .map_err(|e| format!("could not run {} -m drlaas_envserver.install: {e}", python.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    Ok(target.to_path_buf())
}
