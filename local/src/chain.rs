//! The local mode's chain: the pinned anvil from `tools/`, run as a daemon of the data directory
//! so that it outlives a `drlaas local run` (the people's commands read it afterwards, and a run
//! killed mid-task finds its escrows where it left them). Its state is dumped to the data
//! directory every second and on exit, and loaded when it starts again (after a reboot or
//! `drlaas local stop`). Anvil mines a block per transaction; a ticker adds an empty block every
//! second so that waits measured in blocks (the verification seed's block) end on a quiet chain.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::B256;
use drlaas_chain::alloy::providers::{DynProvider, Provider};
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::devnet::anvil_binary;
use serde::{Deserialize, Serialize};

/// Accounts of the local chain: anvil's ten funded dev accounts.
pub const ACCOUNTS: usize = 10;

/// A dev chain served by an anvil of a data directory.
#[derive(Debug, Clone)]
pub struct LocalChain {
    /// Its JSON-RPC endpoint.
    pub endpoint: String,
    /// The funded dev accounts' keys, in anvil's order.
    pub signers: Vec<PrivateKeySigner>,
}

/// What the data directory records of its anvil.
#[derive(Debug, Serialize, Deserialize)]
struct Daemon {
    pid: u32,
    port: u16,
}

/// Where the chain of `data_dir` keeps its files.
fn chain_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("chain")
}

/// The data directory's anvil: the one already running, else a new one started from the saved
/// state (a fresh chain the first time).
pub async fn start_or_reuse(data_dir: &Path) -> Result<LocalChain, String> {
    let dir = chain_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(daemon) = read_daemon(&dir)
        && alive(daemon.pid)
    {
        let endpoint = format!("http://127.0.0.1:{}", daemon.port);
        if answers(&endpoint).await {
            return Ok(LocalChain {
                endpoint,
                signers: read_keys(&dir)?,
            });
        }
    }
    // The port of the last run when it is free: the data directory's network keeps its address.
    let port = match read_daemon(&dir).map(|d| d.port) {
        Some(port) if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() => port,
        _ => free_port().map_err(|e| format!("no free port for the local chain: {e}"))?,
    };
    let bin = anvil_binary();
    let log = std::fs::File::create(dir.join("anvil.log")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let child = Command::new(&bin)
        .args(["--port", &port.to_string(), "--accounts", &ACCOUNTS.to_string()])
        .arg("--state")
        .arg(dir.join("state.json"))
        .args(["--state-interval", "1", "--config-out"])
        .arg(dir.join("accounts.json"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        // Its own process group: Ctrl-C of the run (or a kill of its group) leaves the chain alone.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!(
                "could not start anvil ({}): {e}; run tools/setup.sh (it installs the pinned anvil) or set DRLAAS_ANVIL",
                bin.display()
            )
        })?;
    let daemon = Daemon { pid: child.id(), port };
    std::fs::write(dir.join("anvil.json"), serde_json::to_vec(&daemon).expect("serializes"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !answers(&endpoint).await {
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "anvil did not answer at {endpoint} within 20 s; see {}",
                dir.join("anvil.log").display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(LocalChain {
        endpoint,
        signers: read_keys(&dir)?,
    })
}

/// Stops the data directory's anvil (it saves its state first); false when none ran.
pub fn stop(data_dir: &Path) -> bool {
    let dir = chain_dir(data_dir);
    let Some(daemon) = read_daemon(&dir).filter(|d| alive(d.pid)) else {
        return false;
    };
    let _ = Command::new("kill").args(["-TERM", &daemon.pid.to_string()]).status();
    let started = Instant::now();
    while alive(daemon.pid) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Mines an empty block every `every` until the task is dropped.
pub async fn tick(provider: DynProvider, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let mined: Result<serde_json::Value, _> = provider.raw_request("evm_mine".into(), ()).await;
        if let Err(e) = mined {
            tracing::debug!(error = %e, "the block ticker could not mine");
        }
    }
}

fn read_daemon(dir: &Path) -> Option<Daemon> {
    serde_json::from_slice(&std::fs::read(dir.join("anvil.json")).ok()?).ok()
}

fn read_keys(dir: &Path) -> Result<Vec<PrivateKeySigner>, String> {
    #[derive(Deserialize)]
    struct Config {
        private_keys: Vec<B256>,
    }
    let path = dir.join("accounts.json");
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config: Config = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    config
        .private_keys
        .iter()
        .map(|k| PrivateKeySigner::from_bytes(k).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// Whether process `pid` exists and is anvil.
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("anvil"))
        .unwrap_or(false)
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

async fn answers(endpoint: &str) -> bool {
    drlaas_chain::reach(endpoint, Duration::from_secs(2)).await.is_ok()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
