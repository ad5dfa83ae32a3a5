//! Test support (feature `testing`): a private CA and a TLS-terminating proxy, to test the clients
//! over `https://` against the servers tests run (anvil, a js-ipfs node), which speak plain HTTP;
//! and one test of the running test binary run in a child process with an environment of its own
//! (`SSL_CERT_FILE` is read when a client is built, and a running test process must not change its
//! environment).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A private CA, its certificate in `ca.pem` of a temporary directory, and a server certificate
/// it signed for `localhost` and `127.0.0.1`.
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A new CA and server certificate.
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestCa {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "drlaas test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("a key")).expect("the CA certificate");

        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("valid names");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &ca).expect("the server certificate");

        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca.pem written");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("a valid certificate and key");
        TestCa {
            dir,
            server: Arc::new(server),
        }
    }

    /// The CA certificate, PEM: what `SSL_CERT_FILE` names to trust it.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The temporary directory `ca.pem` is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A TLS-terminating TCP proxy on `127.0.0.1` in front of a plain server, with the server
/// certificate of a [`TestCa`]. Runs on a thread of its own (any test, async or not, can use it);
/// stops when dropped.
#[derive(Debug)]
pub struct TlsProxy {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsProxy {
    /// Starts a proxy to `upstream` (`HOST:PORT`).
    pub fn start(ca: &TestCa, upstream: &str) -> TlsProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bound address");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&ca.server));
        let upstream = upstream.to_string();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let (acceptor, upstream, counted) = (acceptor.clone(), upstream.clone(), Arc::clone(&counted));
                        tokio::spawn(async move {
                            // A client that refuses the certificate ends the handshake: nothing to proxy.
                            let Ok(mut tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            counted.fetch_add(1, Ordering::SeqCst);
                            let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = serve => {}
                }
            });
        });
        TlsProxy {
            addr,
            handshakes,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Starts a proxy to the server at `url` (`http://HOST:PORT/...`).
    pub fn in_front_of(ca: &TestCa, url: &reqwest::Url) -> TlsProxy {
        let host = url.host_str().expect("a host");
        let port = url.port_or_known_default().expect("a port");
        TlsProxy::start(ca, &format!("{host}:{port}"))
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// `https://localhost:PORT` (the certificate names both).
    pub fn localhost_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// TLS handshakes completed so far: a client that refused the certificate completed none.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `command` with no CA or proxy settings from the test's own environment (`SSL_CERT_FILE`,
/// `SSL_CERT_DIR`, `*_PROXY`), trusting `ca_file` (a PEM bundle) when given.
pub fn trusting<'a>(command: &'a mut Command, ca_file: Option<&Path>) -> &'a mut Command {
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(var);
    }
    if let Some(ca_file) = ca_file {
        command.env("SSL_CERT_FILE", ca_file);
    }
    command
}

/// The prefix of the line a child test prints its result on ([`report`]).
const RESULT: &str = "CHILD-RESULT: ";

/// In a child test: prints `result` for the parent ([`run_child`]), on one line.
pub fn report(result: &str) {
    println!("{RESULT}{}", result.replace('\n', " "));
}

/// Runs the `#[ignore]`d test `test` of the running test binary in a child process, with no
/// `SSL_CERT_FILE`, `SSL_CERT_DIR` or proxy settings but those in `env`; checks that it ran and
/// passed, and returns what it printed with [`report`].
pub fn run_child(test: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args([test, "--exact", "--ignored", "--nocapture", "--test-threads", "1"]);
    trusting(&mut command, None).envs(env.iter().copied());
    let out = command.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {test} with {env:?} did not pass:\n{stdout}\n{stderr}"
    );
    stdout
        .lines()
        .find_map(|line| line.split_once(RESULT).map(|(_, result)| result))
        .unwrap_or_else(|| panic!("child test {test} reported nothing:\n{stdout}\n{stderr}"))
        .to_string()
}
