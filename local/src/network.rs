//! Where a marketplace is: the chain endpoint, the contracts and the content store. `drlaas local
//! run` writes it to `network.json` in its data directory, so that the people's commands (`drlaas
//! task`, `worker`, `model`) find the local marketplace with no flags; against another network the
//! same fields come from flags.

use std::path::{Path, PathBuf};

use drlaas_chain::Deployment;
use serde::{Deserialize, Serialize};

/// The file in a data directory that names its marketplace.
pub const NETWORK_FILE: &str = "network.json";

/// A marketplace's coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// JSON-RPC endpoint of the chain.
    pub rpc_url: String,
    /// The contracts.
    pub deployment: Deployment,
    /// The content store: an IPFS API URL, or a local store directory.
    pub store: String,
    /// Whether the chain is a dev chain whose well-known accounts the local mode uses (anvil's
    /// mnemonic): then `--account N` names a key.
    #[serde(default)]
    pub dev_chain: bool,
}

impl Network {
    /// The network recorded in `data_dir`, if any.
    pub fn load(data_dir: &Path) -> std::io::Result<Option<Network>> {
        let path = data_dir.join(NETWORK_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records this network in `data_dir` (atomically: a reader sees the old file or the new one).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let tmp = data_dir.join(format!("{NETWORK_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, data_dir.join(NETWORK_FILE))
    }
}

/// The data directory: `given`, else `$DRLAAS_DATA_DIR`, else `$XDG_DATA_HOME/drlaas`, else
/// `~/.local/share/drlaas`.
pub fn data_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = given.or_else(|| std::env::var_os("DRLAAS_DATA_DIR").map(PathBuf::from)) {
        return dir;
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(xdg).join("drlaas");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/drlaas")
}
