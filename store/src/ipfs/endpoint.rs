//! The address of a Kubo RPC API, as people write it: a URL (`http://127.0.0.1:5001`) or the
//! multiaddr a node writes to `$IPFS_PATH/api` (`/ip4/127.0.0.1/tcp/5001/http`).

use reqwest::Url;

use crate::error::{Result, StoreError};

/// Parses an API address into the base URL of its RPC endpoints (ending in `/api/v0/`).
pub fn parse_api_address(text: &str) -> Result<Url> {
    let text = text.trim();
    let base = if text.starts_with('/') {
        multiaddr_to_url(text)?
    } else {
        text.to_string()
    };
    let mut url = Url::parse(&base).map_err(|e| bad(text, &e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(text, "the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(bad(text, "a host is required"));
    }
    // Accept the API root given with or without `/api/v0`.
    let path = url.path().trim_end_matches('/').trim_end_matches("/api/v0").to_string();
    url.set_path(&format!("{path}/api/v0/"));
    url.set_query(None);
    Ok(url)
}

/// `/ip4/H/tcp/P[/http|/https]`, `/ip6/H/tcp/P…` or `/dns{,4,6}/H/tcp/P…` to `scheme://H:P`.
fn multiaddr_to_url(text: &str) -> Result<String> {
    let parts: Vec<&str> = text.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [proto, host, "tcp", port, rest @ ..] => {
            let host = match *proto {
                "ip4" | "dns" | "dns4" | "dns6" => host.to_string(),
                "ip6" => format!("[{host}]"),
                other => return Err(bad(text, &format!("unsupported multiaddr protocol /{other}"))),
            };
            let scheme = match rest {
                [] | ["http"] => "http",
                ["https"] | ["tls", "http"] => "https",
                _ => return Err(bad(text, "only /http or /https may follow the port")),
            };
            port.parse::<u16>()
                .map_err(|_| bad(text, &format!("port {port:?} is not a number")))?;
            Ok(format!("{scheme}://{host}:{port}"))
        }
        _ => Err(bad(
            text,
            "expected /ip4/HOST/tcp/PORT (or /ip6, /dns), optionally ending in /http",
        )),
    }
}

fn bad(text: &str, why: &str) -> StoreError {
    StoreError::Config {
        field: "ipfs api address",
        message: format!("{text:?}: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_multiaddrs_give_the_rpc_root() {
        for (input, want) in [
            ("http://127.0.0.1:5001", "http://127.0.0.1:5001/api/v0/"),
            ("http://127.0.0.1:5001/api/v0", "http://127.0.0.1:5001/api/v0/"),
            ("https://ipfs.internal/", "https://ipfs.internal/api/v0/"),
            ("/ip4/127.0.0.1/tcp/45005/http", "http://127.0.0.1:45005/api/v0/"),
            ("/ip4/10.0.0.1/tcp/5001", "http://10.0.0.1:5001/api/v0/"),
            ("/dns4/kubo.drlaas.svc/tcp/5001", "http://kubo.drlaas.svc:5001/api/v0/"),
            ("/ip6/::1/tcp/5001", "http://[::1]:5001/api/v0/"),
        ] {
            assert_eq!(parse_api_address(input).unwrap().as_str(), want, "{input}");
        }
    }

    #[test]
    fn bad_addresses_say_what_was_expected() {
        for (input, says) in [
            ("ftp://x:1", "scheme"),
            ("/ip4/127.0.0.1/udp/5001", "expected /ip4/HOST/tcp/PORT"),
            ("/ip4/127.0.0.1/tcp/port", "not a number"),
            ("localhost", "relative URL"),
        ] {
            let err = parse_api_address(input).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("ipfs api address"), "{input}: {err}");
        }
    }
}
