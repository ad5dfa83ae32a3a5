//! Environment servers that already run beside the trainer: the environment sidecar of a trainer or
//! evaluator pod (a native sidecar container, started before the trainer, on a volume they share).
//!
//! The operator names the sidecar's servers in [`ENV_SERVERS`] and the file the sidecar writes once
//! every one of them listens in [`ENV_READY`]. The trainer waits for that file, then connects; it
//! starts no server and installs no package itself (the sidecar did both).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::connection::ServerAddress;

/// The servers of the environment sidecar: protocol addresses, comma-separated
/// (`unix:/drlaas-env/env-0.sock,unix:/drlaas-env/env-1.sock`). Unset: the trainer starts its own.
pub const ENV_SERVERS: &str = "DRLAAS_ENV_SERVERS";

/// The file the sidecar writes once every server listens (`drlaas-envserver --ready-file`).
pub const ENV_READY: &str = "DRLAAS_ENV_READY";

/// How often the trainer looks for the ready file.
const POLL: Duration = Duration::from_millis(100);

/// The servers a sidecar runs for this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    /// Where its servers listen, one process each.
    pub addresses: Vec<ServerAddress>,
    /// The file that says they all listen, if the pod names one.
    pub ready_file: Option<PathBuf>,
}

impl Sidecar {
    /// The sidecar this process's environment names ([`ENV_SERVERS`], [`ENV_READY`]), if any.
    pub fn from_env() -> Result<Option<Sidecar>, String> {
        let Some(servers) = std::env::var_os(ENV_SERVERS) else {
            return Ok(None);
        };
        let servers = servers
            .into_string()
            .map_err(|_| format!("{ENV_SERVERS} is not UTF-8"))?;
        Sidecar::parse(&servers, std::env::var_os(ENV_READY).map(PathBuf::from)).map(Some)
    }

    /// The sidecar of the comma-separated `servers` and `ready_file`.
    pub fn parse(servers: &str, ready_file: Option<PathBuf>) -> Result<Sidecar, String> {
        let addresses = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| format!("{ENV_SERVERS}: {e}")))
            .collect::<Result<Vec<ServerAddress>, String>>()?;
        if addresses.is_empty() {
            return Err(format!("{ENV_SERVERS} names no server"));
        }
        Ok(Sidecar { addresses, ready_file })
    }

    /// Waits up to `within` for the sidecar's ready file. A sidecar that never writes it (its image
    /// has no drlaas-envserver, or it cannot start) is reported as such: its own logs say why.
    pub fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let Some(file) = &self.ready_file else {
            return Ok(());
        };
        let start = Instant::now();
        while !file.exists() {
            if start.elapsed() >= within {
                return Err(format!(
                    "the environment sidecar did not get ready within {}s (no {}): its image must run \
                     drlaas-envserver; the logs of the pod's `environment` container say why it did not",
                    within.as_secs(),
                    file.display()
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// The first `wanted` of its servers (at least one; all of them if it runs fewer).
    pub fn servers(&self, wanted: usize) -> &[ServerAddress] {
        &self.addresses[..wanted.clamp(1, self.addresses.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_addresses_parses_and_a_bad_one_is_named() {
        let sidecar = Sidecar::parse("unix:/e/env-0.sock, unix:/e/env-1.sock,", None).unwrap();
        assert_eq!(sidecar.addresses.len(), 2);
        assert_eq!(sidecar.servers(4).len(), 2);
        assert_eq!(sidecar.servers(0).len(), 1);
        let e = Sidecar::parse("unix:/e/a.sock,/e/b.sock", None).unwrap_err();
        assert!(e.contains(ENV_SERVERS) && e.contains("/e/b.sock"), "{e}");
        assert!(Sidecar::parse(" , ", None).unwrap_err().contains("no server"));
    }

    #[test]
    fn waiting_ends_when_the_ready_file_appears_or_says_why_it_did_not() {
        let ready = std::env::temp_dir().join(format!("drlaas-sidecar-ready-{}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let sidecar = Sidecar::parse("unix:/e/env-0.sock", Some(ready.clone())).unwrap();
        let e = sidecar.wait_ready(Duration::from_millis(150)).unwrap_err();
        assert!(e.contains("did not get ready") && e.contains("environment"), "{e}");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::write(ready, "unix:/e/env-0.sock\n").unwrap();
        });
        sidecar.wait_ready(Duration::from_secs(10)).unwrap();
        writer.join().unwrap();
        let _ = std::fs::remove_file(sidecar.ready_file.unwrap());
    }
}
