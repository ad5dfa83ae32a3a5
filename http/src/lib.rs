//! HTTP clients for the endpoints drlaas reaches outside its process: a chain's JSON-RPC and a Kubo
//! RPC API, over `http://` or `https://`.
//!
//! Every client is reqwest with rustls on *ring*, the one TLS crypto provider in the binaries (kube's
//! too). The provider is set in each client's TLS configuration ([`tls_config`]), never installed as
//! rustls's process-wide default, so no code path depends on someone having installed it first.
//! Servers are verified against the system's roots (rustls-platform-verifier; on Linux the CA bundle
//! openssl would read). `SSL_CERT_FILE` (a PEM bundle) or `SSL_CERT_DIR` replace those roots: that is
//! how a private CA is trusted (a bundle that should trust public CAs too must hold them as well).
//!
//! reqwest is built with `rustls-no-provider`, so a client made any other way
//! (`reqwest::Client::new()`, `reqwest::get`, alloy's `connect_http`) would panic: build every client
//! from [`client_builder`] or [`client`] (the workspace's `clippy.toml` forbids the others).

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[cfg(feature = "testing")]
pub mod testing;

/// What [`describe`] adds to an error that is a rejected server certificate.
pub const CERTIFICATE_HINT: &str = "the server's certificate is not trusted: its CA must be among the system's \
                                    roots, or in the PEM file that SSL_CERT_FILE names";

/// The TLS configuration of every client: rustls with the ring provider, TLS 1.2 and 1.3, the
/// server verified against the system's roots as they are now (read on each call), HTTP/1.1.
///
/// When no root can be read (a minimal image without a CA bundle, an `SSL_CERT_FILE` that does not
/// exist), plain `http://` still works and every `https://` handshake fails saying so.
pub fn tls_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match rustls_platform_verifier::Verifier::new(Arc::clone(&provider)) {
        Ok(verifier) => Arc::new(verifier),
        Err(e) => {
            tracing::debug!(error = %e, "no CA certificates: https endpoints will be refused");
            let reason = match e {
                rustls::Error::General(message) => message,
                other => other.to_string(),
            };
            Arc::new(NoRoots {
                reason,
                provider: Arc::clone(&provider),
            })
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .dangerous() // a custom verifier: the platform's, which verifies
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // reqwest is built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A reqwest client builder with [`tls_config`]: add timeouts, proxies and the like, then build.
#[allow(clippy::disallowed_methods)] // the one place a builder gets its TLS configuration
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(tls_config())
}

/// A reqwest client with [`tls_config`] and reqwest's defaults otherwise.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("a client with a preconfigured rustls configuration always builds")
}

/// `err` and its causes, one after another (`error sending request for url (https://…): client error
/// (Connect): invalid peer certificate: UnknownIssuer`), skipping a cause its wrapper already
/// quotes; with [`CERTIFICATE_HINT`] when the server's certificate was refused. reqwest's own
/// message names only the URL: the cause is in the chain.
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    let mut last = String::new();
    for e in chain(err) {
        let message = e.to_string();
        if !last.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        last = message;
    }
    if certificate_refused(err) {
        let _ = write!(text, " ({CERTIFICATE_HINT})");
    }
    text
}

/// Whether `err` or one of its causes is this client refusing the server's certificate (an unknown
/// CA, a name it does not cover, expired; or no CA at all to check it with). Retrying will not help.
pub fn certificate_refused(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|mut e| {
        // hyper-rustls reports a failed handshake as an io::Error around an io::Error around the
        // rustls::Error, and io::Error's source() skips what it wraps: unwrap them by hand.
        while let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            e = inner;
        }
        match e.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidCertificate(_)) => true,
            Some(rustls::Error::General(message)) => message.starts_with(NO_ROOTS),
            _ => false,
        }
    })
}

/// `err` and its causes.
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

const NO_ROOTS: &str = "no CA certificates to verify the server with";

/// The verifier when no root could be read: refuses every server, saying why.
#[derive(Debug)]
struct NoRoots {
    reason: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoRoots {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(format!("{NO_ROOTS} ({})", self.reason)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
