//! A small client of the Kubo RPC API (`/api/v0/…`): the calls drlaas needs, each with a timeout,
//! bounded retries of what is safe to repeat, and the differences of js-ipfs tolerated (sizes as
//! numbers, CIDv1 printed in base58, parts that need a content type, missing blocks that hang).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Response, Url};
use serde::Deserialize;

use crate::cid::{self, Cid, Version};
use crate::error::{Result, StoreError};
use crate::import::ImportOptions;
use crate::ipfs::endpoint::parse_api_address;

/// How the client talks to the node. Defaults suit a node in the same cluster or on this machine.
#[derive(Debug, Clone)]
pub struct IpfsConfig {
    /// Base URL of the RPC API, ending in `/api/v0/` (see [`parse_api_address`]).
    pub api: Url,
    /// Longest wait for a whole small call, and for the next bytes of a streaming one. A block the
    /// node does not have makes js-ipfs wait forever, so this is also how long a missing block takes
    /// to report. Default 30 s.
    pub timeout: Duration,
    /// Longest wait for a TCP connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Extra attempts for calls that are safe to repeat, when the node was unreachable. Default 3.
    pub retries: u32,
    /// Wait before the first retry; it doubles for each further one. Default 100 ms.
    pub backoff: Duration,
}

impl IpfsConfig {
    /// Defaults for the API at `address` (a URL or a multiaddr such as `/ip4/127.0.0.1/tcp/5001`).
    pub fn new(address: &str) -> Result<Self> {
        Ok(IpfsConfig {
            api: parse_api_address(address)?,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(100),
        })
    }
}

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's peer id.
    pub peer_id: String,
    /// `kubo/0.x` or `js-ipfs/0.x`.
    pub agent_version: String,
}

/// A Kubo RPC client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct KuboClient {
    http: reqwest::Client,
    /// For `add`: reqwest's read timeout runs from the start of a request until its answer, so an
    /// upload longer than the timeout would fail however steadily it moves. Uploads instead time out
    /// when the node stops taking bytes, or stops answering once it has them all (see
    /// [`IpfsStore`](crate::IpfsStore)).
    uploads: reqwest::Client,
    config: IpfsConfig,
}

impl KuboClient {
    /// A client with the given settings.
    pub fn new(config: IpfsConfig) -> Result<Self> {
        // The node is in the cluster or on this machine: never send its traffic to a proxy. An
        // `https://` node is verified against the system's roots or SSL_CERT_FILE (drlaas_http).
        let builder = || {
            drlaas_http::client_builder()
                .connect_timeout(config.connect_timeout)
                .no_proxy()
        };
        let build_error = |e: reqwest::Error| StoreError::Config {
            field: "ipfs client",
            message: e.to_string(),
        };
        let http = builder().read_timeout(config.timeout).build().map_err(build_error)?;
        let uploads = builder().build().map_err(build_error)?;
        Ok(KuboClient { http, uploads, config })
    }

    /// A client with default settings for the API at `address`.
    pub fn connect(address: &str) -> Result<Self> {
        KuboClient::new(IpfsConfig::new(address)?)
    }

    /// The settings in use.
    pub fn config(&self) -> &IpfsConfig {
        &self.config
    }

    /// The node's API root as people write it (`http://HOST:PORT`), for messages.
    pub fn node_url(&self) -> String {
        node_url(&self.config.api)
    }

    /// The node's version string (`0.18.1` for js-ipfs, `0.3x.y` for Kubo).
    pub async fn version(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Version")]
            version: String,
        }
        let answer: Answer = self.json("version", &[]).await?;
        Ok(answer.version)
    }

    /// The node's identity.
    pub async fn id(&self) -> Result<NodeInfo> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "ID")]
            id: String,
            #[serde(rename = "AgentVersion", default)]
            agent_version: String,
        }
        let answer: Answer = self.json("id", &[]).await?;
        Ok(NodeInfo {
            peer_id: answer.id,
            agent_version: answer.agent_version,
        })
    }

    /// Adds one file from `body` with the given import settings and pins it; returns the root CID
    /// the node computed. Sent once: the body is consumed, so retrying is up to the caller. No
    /// timeout applies but the connect timeout: the caller bounds how long the node may stall.
    pub async fn add(&self, body: Body, options: ImportOptions) -> Result<Cid> {
        const OP: &str = "add";
        options.validate()?;
        let v0 = options.cid_version == Version::V0;
        let mut query = vec![
            ("cid-version", (if v0 { "0" } else { "1" }).to_string()),
            ("raw-leaves", options.raw_leaves.to_string()),
            ("chunker", format!("size-{}", options.chunk_size)),
            ("hash", "sha2-256".to_string()),
            ("pin", "true".to_string()),
            ("progress", "false".to_string()),
        ];
        // js-ipfs prints CIDv1 in base58 unless asked, and refuses the option for CIDv0.
        if !v0 {
            query.push(("cid-base", "base32".to_string()));
        }
        // js-ipfs rejects a part without a content type.
        let part = Part::stream(body)
            .file_name("content")
            .mime_str("application/octet-stream")
            .expect("a constant MIME type parses");
        let url = self.config.api.join(OP).expect("RPC command names are valid URL paths");
        let request = self
            .uploads
            .post(url)
            .query(&query)
            .multipart(Form::new().part("file", part));
        let response = self.send(OP, request).await?;
        let text = response.text().await.map_err(|e| self.transport(OP, e))?;
        // One JSON object per line (progress lines first, when asked for); the file's is the last.
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        let entry: AddEntry = serde_json::from_str(last).map_err(|e| StoreError::Protocol {
            op: OP,
            reason: format!("{e} in {last:?}"),
        })?;
        cid::parse(&entry.hash)
    }

    /// The content of `cid` as the node assembles it, unverified. Prefer the store's get, which
    /// verifies every block.
    pub async fn cat(&self, cid: &Cid) -> Result<BoxStream<'static, Result<Bytes>>> {
        const OP: &str = "cat";
        let response = self
            .retrying(OP, || self.send(OP, self.post(OP).query(&[arg(cid)])))
            .await?;
        let url = self.node_url();
        Ok(response
            .bytes_stream()
            .map_err(move |e| transport_error(&url, OP, e, None))
            .boxed())
    }

    /// The raw bytes of one block, unverified (the reader verifies them).
    pub async fn block_get(&self, cid: &Cid) -> Result<Bytes> {
        const OP: &str = "block/get";
        self.retrying(OP, || async {
            let response = self
                .send(OP, self.post(OP).query(&[arg(cid)]).timeout(self.config.timeout))
                .await?;
            response.bytes().await.map_err(|e| self.transport(OP, e))
        })
        .await
    }

    /// Pins `cid` recursively (fetching what the node lacks, within the timeout).
    pub async fn pin_add(&self, cid: &Cid) -> Result<()> {
        const OP: &str = "pin/add";
        let query = [arg(cid), ("recursive", "true".to_string())];
        self.retrying(OP, || {
            self.send(OP, self.post(OP).query(&query).timeout(self.config.timeout))
        })
        .await?;
        Ok(())
    }

    /// Removes the recursive pin of `cid`; returns whether there was one.
    pub async fn pin_rm(&self, cid: &Cid) -> Result<bool> {
        const OP: &str = "pin/rm";
        let query = [arg(cid), ("recursive", "true".to_string())];
        let call = self.retrying(OP, || {
            self.send(OP, self.post(OP).query(&query).timeout(self.config.timeout))
        });
        not_pinned_is_false(call.await.map(|_| true))
    }

    /// Whether `cid` is pinned recursively. Kubo's recursive pin means every block is on the node.
    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool> {
        const OP: &str = "pin/ls";
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Keys", default)]
            keys: std::collections::HashMap<String, serde_json::Value>,
        }
        let query = [arg(cid), ("type", "recursive".to_string())];
        let answer = self.json::<Answer>(OP, &query).await.map(|a| {
            // Keys may come back in another base (js-ipfs prints CIDv1 in base58): compare parsed.
            a.keys
                .keys()
                .filter_map(|k| cid::parse(k).ok())
                .any(|k| k.hash() == cid.hash())
        });
        not_pinned_is_false(answer)
    }

    fn post(&self, op: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.config.api.join(op).expect("RPC command names are valid URL paths"))
    }

    /// A small call that answers JSON, retried when the node was unreachable.
    async fn json<T: serde::de::DeserializeOwned>(&self, op: &'static str, query: &[(&str, String)]) -> Result<T> {
        self.retrying(op, || async {
            let request = self.post(op).query(query).timeout(self.config.timeout);
            let response = self.send(op, request).await?;
            let text = response.text().await.map_err(|e| self.transport(op, e))?;
            serde_json::from_str(&text).map_err(|e| StoreError::Protocol {
                op,
                reason: format!("{e} in {text:?}"),
            })
        })
        .await
    }

    /// Sends a request; an HTTP error status becomes [`StoreError::Api`] with the node's message.
    async fn send(&self, op: &'static str, request: reqwest::RequestBuilder) -> Result<Response> {
        let response = request.send().await.map_err(|e| self.transport(op, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.message)
            .unwrap_or(text);
        Err(StoreError::Api {
            op,
            status: status.as_u16(),
            message,
        })
    }

    /// Runs `call` again (with doubling backoff) while it fails in a way a retry can fix.
    pub(crate) async fn retrying<T, F, Fut>(&self, op: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut wait = self.config.backoff;
        let mut attempt = 0;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.config.retries => {
                    attempt += 1;
                    tracing::debug!(op, attempt, error = %e, "retrying IPFS call");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                other => return other,
            }
        }
    }

    fn transport(&self, op: &'static str, e: reqwest::Error) -> StoreError {
        transport_error(&self.node_url(), op, e, Some(self.config.timeout))
    }
}

/// Maps a transport failure to an error that says whether the node was away or slow.
fn transport_error(url: &str, op: &'static str, e: reqwest::Error, timeout: Option<Duration>) -> StoreError {
    let url = url.to_string();
    if e.is_timeout() {
        return StoreError::Timeout {
            url,
            op,
            after: timeout.unwrap_or_default(),
        };
    }
    // The innermost cause says it best ("Connection refused (os error 111)", "invalid peer
    // certificate: UnknownIssuer").
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        reason = inner.to_string();
        source = inner.source();
    }
    if drlaas_http::certificate_refused(&e) {
        let reason = format!("{reason}; {}", drlaas_http::CERTIFICATE_HINT);
        return StoreError::Untrusted { url, op, reason };
    }
    StoreError::Unreachable { url, op, reason }
}

/// `http://HOST:PORT/api/v0/` without the RPC path.
fn node_url(api: &Url) -> String {
    api.as_str()
        .trim_end_matches('/')
        .trim_end_matches("/api/v0")
        .to_string()
}

/// `pin/rm` and `pin/ls` answer "not pinned" as an error; it is an answer, not a failure.
fn not_pinned_is_false(result: Result<bool>) -> Result<bool> {
    match result {
        Err(StoreError::Api { message, .. }) if message.contains("not pinned") => Ok(false),
        other => other,
    }
}

fn arg(cid: &Cid) -> (&'static str, String) {
    ("arg", cid::to_text(cid))
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct AddEntry {
    #[serde(rename = "Hash")]
    hash: String,
}
