//! An environment server run as a child process (`python -m drlaas_envserver`), the way the local
//! mode and the tests run one; in a cluster the server is a sidecar container instead.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::connection::ServerAddress;

/// The line a server writes to standard error once it accepts connections.
pub const READY: &str = "drlaas-envserver listening on ";
/// Lines of a server's standard error kept for messages.
const KEPT_LINES: usize = 20;

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    address: ServerAddress,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// How to start a server: the Python that has `drlaas_envserver` (and the environment's packages)
/// installed, and folders of the requester's own modules, if any, for its `PYTHONPATH`.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The interpreter.
    pub python: PathBuf,
    /// Put before the interpreter's own `PYTHONPATH`.
    pub python_path: Vec<PathBuf>,
}

impl Launcher {
    /// A launcher of `python` with nothing added to its path.
    pub fn new(python: impl Into<PathBuf>) -> Launcher {
        Launcher {
            python: python.into(),
            python_path: Vec::new(),
        }
    }
}

impl ServerProcess {
    /// Starts `python -m drlaas_envserver` listening on the Unix socket `socket` and waits up to
    /// `ready_within` for it to say it is ready.
    pub fn spawn(launcher: &Launcher, socket: &Path, ready_within: Duration) -> Result<ServerProcess, String> {
        let address = ServerAddress::Unix(socket.to_path_buf());
        let python = &launcher.python;
        let mut command = Command::new(python);
        if !launcher.python_path.is_empty() {
            let inherited = std::env::var_os("PYTHONPATH").unwrap_or_default();
            let paths = launcher
                .python_path
                .iter()
                .cloned()
                .chain(std::env::split_paths(&inherited));
            command.env(
                "PYTHONPATH",
                std::env::join_paths(paths).map_err(|e| format!("a PYTHONPATH folder: {e}"))?,
            );
        }
        let mut child = command
            .args(["-m", "drlaas_envserver", "--once", "--listen"])
            .arg(address.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "could not start the environment server ({} -m drlaas_envserver): {e}",
                    python.display()
                )
            })?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.starts_with(READY) {
                    let _ = ready_tx.send(());
                }
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let mut server = ServerProcess { child, address, stderr };
        match ready_rx.recv_timeout(ready_within) {
            Ok(()) => Ok(server),
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                // Let the reader thread take the last lines of a server that died.
                std::thread::sleep(Duration::from_millis(50));
                Err(match status {
                    Some(status) => format!("the environment server exited ({status}): {}", server.last_words()),
                    None => format!(
                        "the environment server did not get ready within {ready_within:?}: {}",
                        server.last_words()
                    ),
                })
            }
        }
    }

    /// Where it listens.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// Its last lines on standard error, for a message about why it failed.
    pub fn last_words(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_empty() {
            "(nothing on its standard error)".into()
        } else {
            kept.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let ServerAddress::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A fresh socket path for server `index` of this process, in the system's temporary folder (short
/// enough for the 108-byte limit of Unix socket paths).
pub fn socket_path(index: usize) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("drlaas-env-{}-{n}-{index}.sock", std::process::id()))
}
