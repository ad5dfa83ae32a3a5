//! The clients over real sockets: plain HTTP without any process-wide TLS provider, and HTTPS through
//! a TLS proxy with a private CA, trusted only when `SSL_CERT_FILE` names it. The `https` checks run
//! their client in a child process, the only way to give it an environment of its own.

use std::io::{Read, Write};
use std::net::TcpListener;

use drlaas_http::testing::{TestCa, TlsProxy, report, run_child};
use drlaas_http::{CERTIFICATE_HINT, client, describe};

/// A plain HTTP server on `127.0.0.1` that answers every request `200 ok`; returns `HOST:PORT`.
fn ok_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
    addr
}

/// Runs [`child_get`] on `urls` with `env`; one result per URL.
fn get_in_child(urls: &[String], env: &[(&str, &str)]) -> Vec<String> {
    let urls = urls.join(" ");
    let mut env = env.to_vec();
    env.push(("DRLAAS_TEST_URLS", &urls));
    run_child("child_get", &env).split(" | ").map(str::to_string).collect()
}

#[tokio::test]
async fn plain_http_needs_no_process_wide_provider() {
    let server = ok_server();
    let response = client().get(format!("http://{server}/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "nothing installed a process-wide rustls provider"
    );
}

#[test]
fn https_is_verified_against_the_ca_that_ssl_cert_file_names() {
    let ca = TestCa::new();
    let proxy = TlsProxy::start(&ca, &ok_server());
    let ca_file = ca.ca_file().display().to_string();

    let trusted = get_in_child(&[proxy.url(), proxy.localhost_url()], &[("SSL_CERT_FILE", &ca_file)]);
    assert_eq!(trusted, ["200 ok", "200 ok"], "by IP address and by name");
    assert_eq!(proxy.handshakes(), 2);

    let untrusted = get_in_child(&[proxy.url()], &[]);
    assert!(
        untrusted[0].contains("invalid peer certificate: UnknownIssuer") && untrusted[0].contains(CERTIFICATE_HINT),
        "{untrusted:?}"
    );
    assert_eq!(proxy.handshakes(), 2, "the refused handshake did not complete");
}

#[test]
fn without_any_root_plain_http_works_and_https_says_why_it_cannot() {
    let ca = TestCa::new();
    let server = ok_server();
    let proxy = TlsProxy::start(&ca, &server);
    let missing = ca.dir().join("missing.pem").display().to_string();
    let results = get_in_child(
        &[format!("http://{server}/"), proxy.url()],
        &[("SSL_CERT_FILE", &missing)],
    );
    assert_eq!(results[0], "200 ok");
    assert!(
        results[1].contains("no CA certificates to verify the server with") && results[1].contains(CERTIFICATE_HINT),
        "{results:?}"
    );
}

/// The client side of the tests above: GETs each of `$DRLAAS_TEST_URLS` and reports what came back.
#[tokio::test]
#[ignore = "run by the tests above in a child process with its own SSL_CERT_FILE"]
async fn child_get() {
    let Ok(urls) = std::env::var("DRLAAS_TEST_URLS") else {
        return;
    };
    let client = client();
    let mut results = Vec::new();
    for url in urls.split(' ') {
        results.push(match client.get(url).send().await {
            Ok(response) => format!("{} {}", response.status().as_u16(), response.text().await.unwrap()),
            Err(e) => format!("error: {}", describe(&e)),
        });
    }
    report(&results.join(" | "));
}
