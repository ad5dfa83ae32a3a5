//! A requester's environment shipped as Python wheels: installed, without any download, into a
//! folder of its own that the environment server gets on its `PYTHONPATH`.
//!
//! The package is one wheel or a *wheelhouse* (a folder of wheels: the environment's own and any
//! dependency the standard environment image lacks). Every wheel is installed with `--no-deps` and
//! `--no-index`, so what runs is exactly what the requester stored under the task's CID, on the
//! worker and on the verifier alike, and an install never reaches a package index.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wheels of `package`: the file itself, or every `*.whl` in the folder (sorted, so every
/// machine installs them in the same order).
pub fn wheels(package: &Path) -> Result<Vec<PathBuf>, String> {
    if package.is_file() {
        return match package.extension().and_then(|e| e.to_str()) {
            Some("whl") => Ok(vec![package.to_path_buf()]),
            _ => Err(format!("{} is not a wheel (*.whl)", package.display())),
        };
    }
    let entries = std::fs::read_dir(package).map_err(|e| format!("{}: {e}", package.display()))?;
    let mut wheels: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    wheels.sort();
    if wheels.is_empty() {
        return Err(format!("{} holds no wheel (*.whl)", package.display()));
    }
    Ok(wheels)
}

/// Installs the wheels of `package` with `python`'s pip into `target` (created; an existing one is
/// replaced) and returns `target`, the folder to put on the server's `PYTHONPATH`.
pub fn install(python: &Path, package: &Path, target: &Path) -> Result<PathBuf, String> {
    let wheels = wheels(package)?;
    if target.exists() {
        std::fs::remove_dir_all(target).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    let output = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(["--no-deps", "--no-index", "--no-compile", "--target"])
        .arg(target)
        .args(&wheels)
        .output()
        .map_err(|e| format!("could not run {} -m pip: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the environment package {} did not install: {}",
            package.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(target.to_path_buf())
}
