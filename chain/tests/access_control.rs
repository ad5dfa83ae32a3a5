//! Every role check, through the Rust client against anvil: the wrong account gets a decoded custom
//! error that names the call's problem, and nothing changes.

mod common;

use common::{eth, profile, world};
use drlaas_chain::{
    ChainError, Change, Contract, EnvKind, Market, NewListing, RetryPolicy, TaskStatus, TxConfig,
    alloy::{
        primitives::{B256, U256, keccak256},
        providers::Provider,
    },
    bindings::{TMC, UMC},
    devnet::http_provider,
};

fn name(r: Result<impl std::fmt::Debug, ChainError>) -> String {
    r.unwrap_err().revert_name().expect("a decoded revert").to_string()
}

#[tokio::test]
async fn roles_are_enforced_with_readable_errors() {
    let w = world().await;
    let m = &w.market;
    let (stranger, worker) = (w.others[0], w.workers[0]);
    let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();

    // Only oracles vote.
    let err = m.assign(stranger, id, worker, eth("1")).await.unwrap_err();
    assert_eq!(err.to_string(), format!("TMC reverted: NotOracle(caller: {stranger})"));
    assert_eq!(
        err.decode_revert::<TMC::TMCErrors>(),
        Some(TMC::TMCErrors::NotOracle(TMC::NotOracle { caller: stranger }))
    );
    // Only the requester cancels.
    assert_eq!(name(m.cancel_task(stranger, id).await), "NotRequester");
    // Only the admin schedules changes of the oracles and parameters, and hands the role over in two
    // steps; governed functions refuse every direct call, the admin's too.
    assert_eq!(name(m.set_oracles(stranger, &[stranger], 1).await), "NotAdmin");
    assert_eq!(name(m.set_params(stranger, Default::default()).await), "NotAdmin");
    assert_eq!(name(m.transfer_admin(stranger, stranger).await), "NotAdmin");
    let tmc = TMC::new(m.deployment().tmc, m.provider().clone());
    let err = tmc
        .setOracles(vec![stranger], 1)
        .from(w.admin)
        .call()
        .await
        .unwrap_err();
    assert_eq!(
        drlaas_chain::Revert::decode("TMC", err.as_revert_data().unwrap()).name,
        "NotGovernance"
    );
    assert_eq!(
        name(m.bind_market(w.admin).await),
        "NotGovernance",
        "the registry is bound once; moving it is governed"
    );
    let successor = w.others[1];
    assert!(
        matches!(
            m.transfer_admin(w.admin, successor).await.unwrap(),
            Change::Executed(ref txs) if txs.len() == 6
        ),
        "no governance delay: scheduled and executed at once in each contract"
    );
    assert_eq!(name(m.accept_admin(stranger).await), "NotPendingAdmin");
    m.set_oracles(w.admin, &[w.oracle], 1)
        .await
        .expect("still admin until the successor accepts");
    m.accept_admin(successor).await.unwrap();
    assert_eq!(m.admin(Contract::Mmc).await.unwrap(), successor);
    assert_eq!(name(m.set_oracles(w.admin, &[stranger], 1).await), "NotAdmin");
    // Unregistered workers cannot be assigned; requesters cannot work on their own task.
    assert_eq!(name(m.assign(w.oracle, id, stranger, eth("1")).await), "NotRegistered");
    m.register_worker(w.requester, &profile("0.1"), eth("1")).await.unwrap();
    assert_eq!(
        name(m.assign(w.oracle, id, w.requester, eth("1")).await),
        "SelfAssignment"
    );

    m.assign(w.oracle, id, worker, eth("1")).await.unwrap();
    // Only the assigned worker submits; not before assignment or twice.
    assert_eq!(
        name(m.submit_result(w.workers[1], id, "bafy", keccak256(b"r")).await),
        "NotAssignedWorker"
    );
    assert_eq!(name(m.submit_result(worker, id, "", keccak256(b"r")).await), "EmptyCid");
    assert_eq!(
        name(m.submit_result(worker, id, "bafy", B256::ZERO).await),
        "ZeroResultHash"
    );
    assert_eq!(
        name(m.complete(w.oracle, id).await),
        "InvalidStatus",
        "nothing submitted yet"
    );
    assert_eq!(name(m.complete(stranger, id).await), "NotOracle");
    assert_eq!(name(m.fail(stranger, id, false).await), "NotOracle");
    m.submit_result(worker, id, "bafy", keccak256(b"r")).await.unwrap();
    assert_eq!(
        name(m.submit_result(worker, id, "bafy", keccak256(b"r")).await),
        "InvalidStatus"
    );
    // An oracle left out of a new oracle set is an oracle no more.
    m.set_oracles(successor, &[w.others[2]], 1).await.unwrap();
    assert_eq!(name(m.complete(w.oracle, id).await), "NotOracle");
    assert_eq!(
        m.task(id).await.unwrap().status,
        TaskStatus::Submitted,
        "nothing changed"
    );

    // Only the market moves reputation: calling UMC's hooks directly is refused.
    let umc = UMC::new(m.deployment().umc, m.provider().clone());
    let err = umc
        .onTaskSucceeded(worker, true)
        .from(stranger)
        .call()
        .await
        .unwrap_err();
    let data = err.as_revert_data().expect("revert data");
    assert_eq!(drlaas_chain::Revert::decode("UMC", data).name, "NotMarket");

    // Workers: no double registration, withdrawing needs credits, unstake needs a request.
    assert_eq!(
        name(m.register_worker(worker, &profile("1"), eth("2")).await),
        "AlreadyRegistered"
    );
    assert_eq!(
        name(m.register_worker(stranger, &profile("1"), eth("0.5")).await),
        "InsufficientStake"
    );
    assert_eq!(name(m.update_worker(stranger, &profile("1")).await), "NotRegistered");
    assert_eq!(name(m.withdraw_stake(worker).await), "NoUnstakeRequest");
    assert_eq!(name(m.request_unstake(worker, eth("3")).await), "AmountExceedsStake");
    assert_eq!(
        name(m.withdraw(stranger, drlaas_chain::Contract::Tmc).await),
        "NothingToWithdraw"
    );

    // Market: only owners delist or reprice; no self purchase; rating needs a purchase.
    let listing = NewListing {
        model_cid: "bafy-model".into(),
        env_kind: EnvKind::Cartpole,
        env_descriptor_hash: keccak256(b"cartpole"),
        price: eth("1"),
        parent: None,
        royalty_bps: 500,
    };
    let (lid, _) = m.list_model(worker, &listing).await.unwrap();
    assert_eq!(name(m.delist(stranger, lid).await), "NotListingOwner");
    assert_eq!(name(m.set_price(stranger, lid, U256::ZERO).await), "NotListingOwner");
    assert_eq!(name(m.purchase(worker, lid).await), "SelfPurchase");
    assert_eq!(name(m.rate(stranger, lid, 5).await), "NotPurchased");
    m.purchase(stranger, lid).await.unwrap();
    assert_eq!(name(m.purchase(stranger, lid).await), "AlreadyPurchased");
    assert_eq!(name(m.rate(stranger, lid, 6).await), "InvalidRating");
    m.rate(stranger, lid, 4).await.unwrap();
    assert_eq!(name(m.rate(stranger, lid, 4).await), "AlreadyRated");
    let too_much_royalty = NewListing {
        royalty_bps: 3_001,
        ..listing.clone()
    };
    let err = m.list_model(worker, &too_much_royalty).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "MMC reverted: ValueOutOfRange(field: \"royaltyBps\", value: 3001, max: 3000)"
    );
    let orphan = NewListing {
        parent: Some(99),
        ..listing
    };
    assert_eq!(name(m.list_model(worker, &orphan).await), "ListingNotFound");
}

#[tokio::test]
async fn bad_task_input_is_rejected_before_or_by_the_contract() {
    let w = world().await;
    let m = &w.market;
    let mut t = w.new_task("1").await;
    t.budget = U256::ZERO;
    assert_eq!(name(m.post_task(w.requester, &t).await), "ZeroBudget");
    let mut t = w.new_task("1").await;
    t.deadline = 1;
    let err = m.post_task(w.requester, &t).await.unwrap_err();
    assert_eq!(err.to_string(), "TMC reverted: DeadlineInPast(deadline: 1)");
    let mut t = w.new_task("1").await;
    t.spec_cid.clear();
    let err = m.post_task(w.requester, &t).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid specCid: must not be empty");
    let mut t = w.new_task("1").await;
    t.deadline = 1 << 41;
    assert!(matches!(
        m.post_task(w.requester, &t).await,
        Err(ChainError::InvalidInput { field: "deadline", .. })
    ));
    assert!(
        m.task(99)
            .await
            .unwrap_err()
            .to_string()
            .contains("task 99 does not exist")
    );
    assert_eq!(name(m.cancel_task(w.requester, 99).await), "TaskNotFound");
}

#[tokio::test]
async fn unreachable_rpc_gives_a_clear_error_after_bounded_retries() {
    let w = world().await;
    let deployment = *w.market.deployment();
    // A port nothing listens on.
    let dead = http_provider("http://127.0.0.1:9".parse().unwrap());
    let fast = RetryPolicy {
        attempts: 3,
        initial_delay: std::time::Duration::from_millis(10),
        ..Default::default()
    };
    let market = Market::connect(dead, w.devnet.wallet(), deployment).with_tx_config(TxConfig {
        retry: fast,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let err = market.task(1).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("gave up after 3 attempts"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let err = market.post_task(w.requester, &w.new_task("1").await).await.unwrap_err();
    assert!(matches!(err, ChainError::Rpc(_)), "{err:?}");
    // The live chain saw nothing.
    assert_eq!(w.market.task_count().await.unwrap(), 0);
    assert!(w.devnet.provider().get_block_number().await.is_ok());
}

#[tokio::test]
async fn verify_detects_wrong_chain_or_missing_contracts() {
    let w = world().await;
    w.market.verify().await.unwrap();
    let mut wrong = *w.market.deployment();
    wrong.chain_id += 1;
    let err = Market::connect(w.devnet.provider(), w.devnet.wallet(), wrong)
        .verify()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("but the deployment is on chain"), "{err}");
    let mut missing = *w.market.deployment();
    missing.mmc = w.others[0];
    let err = Market::connect(w.devnet.provider(), w.devnet.wallet(), missing)
        .verify()
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("no MMC contract at"), "{err}");
}
