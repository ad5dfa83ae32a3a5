//! The chain client over `https://`: a TLS proxy with a private CA in front of anvil. With
//! `SSL_CERT_FILE` naming the CA the client reads the chain and sends a signed transaction through
//! it; without, every call fails saying the server's certificate is not trusted. The client runs in
//! a child process ([`run_child`]): `SSL_CERT_FILE` is read when a client is built.

use drlaas_chain::alloy::primitives::{Address, hex};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::devnet::{ADMIN, Devnet, http_provider, wallet};
use drlaas_chain::{Deployment, Market, MarketParams, RetryPolicy, TxConfig};
use drlaas_http::CERTIFICATE_HINT;
use drlaas_http::testing::{TestCa, TlsProxy, report, run_child};

/// An account the child makes the oracle, over https.
const NEW_ORACLE: Address = Address::repeat_byte(0x42);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_client_reaches_an_https_endpoint_whose_ca_ssl_cert_file_names() {
    let devnet = Devnet::spawn(2).expect("anvil starts (run tools/setup.sh)");
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    let ca = TestCa::new();
    let proxy = TlsProxy::in_front_of(&ca, &devnet.endpoint());
    let deployment = serde_json::to_string(market.deployment()).unwrap();
    let admin_key = hex::encode(devnet.signers()[ADMIN].to_bytes());
    let ca_file = ca.ca_file().display().to_string();
    let rpc = proxy.url();
    let env = |trusted: bool| {
        let mut env = vec![
            ("DRLAAS_TEST_RPC", rpc.as_str()),
            ("DRLAAS_TEST_DEPLOYMENT", deployment.as_str()),
            ("DRLAAS_TEST_KEY", admin_key.as_str()),
        ];
        if trusted {
            env.push(("SSL_CERT_FILE", ca_file.as_str()));
        }
        env
    };

    // The child runs while this runtime's other worker keeps the proxy's upstream (anvil) busy.
    let trusted = tokio::task::block_in_place(|| run_child("https_child", &env(true)));
    assert_eq!(trusted, "chain 31337; verified; oracle allowed");
    assert!(proxy.handshakes() >= 1);
    assert!(
        market.is_oracle(NEW_ORACLE).await.unwrap(),
        "the transaction sent over https is on chain"
    );

    let handshakes = proxy.handshakes();
    let untrusted = tokio::task::block_in_place(|| run_child("https_child", &env(false)));
    let (chain_id, verify) = untrusted.split_once("; ").unwrap();
    for said in [chain_id, verify] {
        assert!(
            said.contains(&format!("error sending request for url ({rpc}/)"))
                && said.contains("invalid peer certificate: UnknownIssuer")
                && said.contains(CERTIFICATE_HINT),
            "{untrusted}"
        );
    }
    assert!(verify.starts_with("RPC error: eth_chainId: "), "a ChainError: {verify}");
    assert_eq!(proxy.handshakes(), handshakes, "no handshake completed");
}

/// The client side of the test above, on `$DRLAAS_TEST_RPC`: reads the chain id, verifies the
/// deployment and makes [`NEW_ORACLE`] the oracle with the admin's key (no governance delay); reports each step or where it failed.
#[tokio::test]
#[ignore = "run by the test above in a child process with its own SSL_CERT_FILE"]
async fn https_child() {
    let Ok(rpc) = std::env::var("DRLAAS_TEST_RPC") else {
        return;
    };
    let deployment: Deployment = serde_json::from_str(&std::env::var("DRLAAS_TEST_DEPLOYMENT").unwrap()).unwrap();
    let admin: PrivateKeySigner = std::env::var("DRLAAS_TEST_KEY").unwrap().parse().unwrap();
    let admin_address = admin.address();
    let provider = http_provider(rpc.parse().unwrap());
    let chain_id = match provider.get_chain_id().await {
        Ok(id) => format!("chain {id}"),
        Err(e) => drlaas_http::describe(&e),
    };
    let market = Market::connect(provider, wallet([admin]), deployment).with_tx_config(TxConfig {
        retry: RetryPolicy::NONE,
        ..TxConfig::default()
    });
    let rest = match market.verify().await {
        Err(e) => e.to_string(),
        Ok(()) => match market.set_oracles(admin_address, &[NEW_ORACLE], 1).await {
            Ok(_) => "verified; oracle allowed".to_string(),
            Err(e) => format!("verified; {e}"),
        },
    };
    report(&format!("{chain_id}; {rest}"));
}
