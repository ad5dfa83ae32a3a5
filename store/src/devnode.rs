//! A throwaway IPFS node for tests and the local mode: the pinned js-ipfs of `tools/`, offline, on a
//! port the OS picks, started and stopped through `tools/ipfs.sh` (the one place that knows how).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Result, StoreError};

/// Where to find the node script: `$DRLAAS_IPFS_SCRIPT`, else `tools/ipfs.sh` of this checkout.
pub fn ipfs_script() -> PathBuf {
    if let Some(path) = std::env::var_os("DRLAAS_IPFS_SCRIPT") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/ipfs.sh")
}

/// A running js-ipfs node; stopped when dropped.
#[derive(Debug)]
pub struct DevNode {
    repo: PathBuf,
    api: String,
    /// Holds a temporary repo alive for as long as the node runs.
    _temp: Option<tempfile::TempDir>,
}

impl DevNode {
    /// Starts a node on a fresh temporary repo (removed when the node is dropped).
    pub fn start() -> Result<DevNode> {
        let temp = tempfile::Builder::new()
            .prefix("drlaas-ipfs-")
            .tempdir()
            .map_err(StoreError::io("create a temporary repo in", std::env::temp_dir()))?;
        let mut node = DevNode::start_in(temp.path())?;
        node._temp = Some(temp);
        Ok(node)
    }

    /// Starts (or finds running) the node whose repo is `repo`, initializing the repo on first use.
    /// What the node stores survives a restart on the same repo.
    pub fn start_in(repo: &Path) -> Result<DevNode> {
        let api = run_script("start", repo)?;
        Ok(DevNode {
            repo: repo.to_path_buf(),
            api,
            _temp: None,
        })
    }

    /// The RPC API address, `http://127.0.0.1:PORT`.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The node's repo directory.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// Stops the node (what it stored stays in its repo).
    pub fn stop(&self) -> Result<()> {
        run_script("stop", &self.repo).map(drop)
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, repo = %self.repo.display(), "could not stop the IPFS dev node");
        }
    }
}

/// Runs `tools/ipfs.sh VERB REPO` and returns its output line.
fn run_script(verb: &str, repo: &Path) -> Result<String> {
    let script = ipfs_script();
    let output = Command::new("bash")
        .arg(&script)
        .arg(verb)
        .arg(repo)
        .output()
        .map_err(StoreError::io("run", &script))?;
    if !output.status.success() {
        return Err(StoreError::Config {
            field: "ipfs dev node",
            message: format!(
                "`{} {verb} {}` failed ({}): {}; run tools/ipfs.sh install or set DRLAAS_IPFS_SCRIPT",
                script.display(),
                repo.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
