//! Opening a marketplace the one way every program does (`reach`, `Market::open`,
//! `Market::open_as_oracle`, `deploy_marketplace`), against anvil: a dead or malformed endpoint, a
//! deployment that is not on the chain and an account that is no oracle are each told apart.

use std::time::Duration;

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::devnet::{ADMIN, Devnet, ORACLE, wallet};
use drlaas_chain::{ChainError, DeployError, Market, MarketParams, OpenError, ReachError, deploy_marketplace, reach};

#[tokio::test]
async fn a_deployed_marketplace_opens_and_a_wrong_one_is_told_apart() {
    let devnet = Devnet::spawn(4).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let url = devnet.endpoint().to_string();

    let (provider, chain_id) = reach(&url, Duration::from_secs(5)).await.unwrap();
    let market = deploy_marketplace(
        provider.clone(),
        devnet.wallet(),
        accounts[ADMIN],
        MarketParams::default(),
        &[accounts[ORACLE], accounts[3]],
        2,
    )
    .await
    .unwrap();
    let consortium = market.consortium().await.unwrap();
    assert_eq!(
        (consortium.oracles, consortium.quorum, consortium.epoch),
        (vec![accounts[ORACLE], accounts[3]], 2, 1),
        "the oracles by seat, 2 of 2"
    );
    assert_eq!(market.seat_of(accounts[3]).await.unwrap(), Some(1));
    assert_eq!(market.seat_of(accounts[2]).await.unwrap(), None);
    let deployment = *market.deployment();
    assert_eq!(deployment.chain_id, chain_id);

    // An oracle set whose quorum is no majority is refused before anything is sent.
    let err = deploy_marketplace(
        provider.clone(),
        devnet.wallet(),
        accounts[ADMIN],
        MarketParams::default(),
        &[accounts[ORACLE], accounts[3]],
        1,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &err,
            DeployError::Contracts(ChainError::InvalidInput { field: "quorum", .. })
        ),
        "{err:?}"
    );

    // Anyone reads; the oracles open as oracles; another account is refused as one.
    let reader = Market::open(provider.clone(), wallet([]), deployment).await.unwrap();
    assert!(reader.is_oracle(accounts[3]).await.unwrap());
    let signers = devnet.signers();
    Market::open_as_oracle(provider.clone(), signers[ORACLE].clone(), deployment)
        .await
        .unwrap();
    let err = Market::open_as_oracle(provider.clone(), signers[2].clone(), deployment)
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::NotOracle { oracle, tmc } if oracle == accounts[2] && tmc == deployment.tmc),
        "{err:?}"
    );

    // A deployment of another chain, or with no contract at an address, does not match.
    let other_chain = drlaas_chain::Deployment {
        chain_id: chain_id + 1,
        ..deployment
    };
    let err = Market::open(provider.clone(), wallet([]), other_chain)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OpenError::Mismatch(m) if m.contains("but the deployment is on chain")),
        "{err:?}"
    );
    let no_code = drlaas_chain::Deployment {
        tmc: Address::repeat_byte(7),
        ..deployment
    };
    let err = Market::open(provider, wallet([]), no_code).await.unwrap_err();
    assert!(
        matches!(&err, OpenError::Mismatch(m) if m.starts_with("no TMC contract at")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_dead_or_malformed_endpoint_is_said_as_such() {
    let err = reach("not a url", Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, ReachError::NotAUrl(_)), "{err:?}");
    assert!(err.to_string().starts_with("not a URL: "), "{err}");
    // A port nothing listens on.
    let err = reach("http://127.0.0.1:9", Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, ReachError::Unreachable(_)), "{err:?}");
}
