//! Retries against a flaky RPC endpoint: a proxy in front of anvil forwards the first
//! `eth_sendRawTransaction` to the node and then drops the connection without answering, so the client
//! cannot know whether its transaction arrived. The client must resend the same signed bytes, find the
//! receipt, and the chain must hold exactly one task.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use common::world;
use drlaas_chain::{Market, RetryPolicy, TxConfig, alloy::providers::Provider, devnet::http_provider};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// Serve HTTP/1.1 JSON-RPC on a free port, forwarding to `upstream`; the first request whose body
/// contains `drop_after_forwarding` is forwarded and then left unanswered (connection closed).
async fn flaky_proxy(upstream: reqwest::Url, drop_after_forwarding: &'static str) -> (reqwest::Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let seen = dropped.clone();
    tokio::spawn(async move {
        let client = drlaas_http::client();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (client, upstream, seen) = (client.clone(), upstream.clone(), seen.clone());
            tokio::spawn(serve(socket, client, upstream, seen, drop_after_forwarding));
        }
    });
    (url, dropped)
}

async fn serve(
    socket: TcpStream,
    client: reqwest::Client,
    upstream: reqwest::Url,
    dropped: Arc<AtomicUsize>,
    trigger: &str,
) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return; // client closed
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        let answer = client
            .post(upstream.clone())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if String::from_utf8_lossy(&body).contains(trigger) && dropped.fetch_add(1, Ordering::SeqCst) == 0 {
            return; // the node has it; the client never hears back
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        let socket = reader.get_mut();
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&answer).await.unwrap();
    }
}

#[tokio::test]
async fn a_lost_send_is_resent_byte_for_byte_and_posts_once() {
    let w = world().await;
    let (url, dropped) = flaky_proxy(w.devnet.endpoint(), "eth_sendRawTransaction").await;
    let retry = RetryPolicy {
        initial_delay: std::time::Duration::from_millis(20),
        ..Default::default()
    };
    let flaky =
        Market::connect(http_provider(url), w.devnet.wallet(), *w.market.deployment()).with_tx_config(TxConfig {
            retry,
            ..Default::default()
        });

    let task = w.new_task("1").await;
    let (id, tx) = flaky.post_task(w.requester, &task).await.unwrap();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the first send was lost and the same bytes were sent again"
    );
    assert_eq!(id, 1);
    assert_eq!(w.market.task_count().await.unwrap(), 1, "one task on chain, not two");
    assert_eq!(w.market.escrow(id).await.unwrap(), task.budget);
    let receipt = w
        .market
        .provider()
        .get_transaction_receipt(tx.hash)
        .await
        .unwrap()
        .expect("mined");
    assert!(receipt.status());
}
