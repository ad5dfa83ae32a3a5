//! The consortium's trust rules against a real anvil: every oracle action is a vote and only a
//! quorum of agreeing oracles acts; an oracle votes once per round; a change of the oracle set voids
//! open votes; governed changes wait for the governance delay; a task keeps the terms it was posted
//! under; stake is bonded per task held; cheap tasks earn no reputation.

mod common;

use common::{World, eth, profile, world, world_of};
use drlaas_chain::{
    Change, Contract, MarketParams, TaskStatus, Terms, VoteKind,
    alloy::{
        primitives::{U256, keccak256},
        providers::Provider,
        sol_types::SolEvent,
    },
    bindings::TMC,
    devnet::ORACLE,
};

/// Accounts 1, 9 and 10 as oracles, 2 of 3 needed.
async fn two_of_three(params: MarketParams) -> World {
    world_of(params, &[ORACLE, 9, 10], 2).await
}

fn name<T: std::fmt::Debug>(r: Result<T, drlaas_chain::ChainError>) -> String {
    r.unwrap_err().revert_name().expect("a decoded revert").to_string()
}

#[tokio::test]
async fn a_quorum_of_agreeing_votes_assigns_and_completes_and_each_oracle_votes_once() {
    let w = two_of_three(MarketParams::default()).await;
    let m = &w.market;
    let [o0, o1, o2] = [w.oracles[0], w.oracles[1], w.oracles[2]];
    let worker = w.workers[1]; // price 2 ETH
    let info = m.consortium().await.unwrap();
    assert_eq!(
        (info.oracles.clone(), info.quorum, info.epoch),
        (w.oracles.clone(), 2, 1)
    );
    assert_eq!(m.seat_of(o2).await.unwrap(), Some(2));

    let (id, _) = m.post_task(w.requester, &w.new_task("5").await).await.unwrap();
    m.assign(o0, id, worker, eth("2")).await.unwrap();
    let t = m.task(id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Posted, "one vote of two is not a decision");
    assert_eq!(t.votes.cast(0, info.epoch), Some(VoteKind::Assign));
    assert_eq!(t.votes.cast(1, info.epoch), None);
    assert_eq!(m.assign_support(id, worker, eth("2")).await.unwrap(), 0b001);
    let err = m.assign(o0, id, worker, eth("2")).await.unwrap_err();
    assert_eq!(err.revert_name(), Some("AlreadyVoted"), "a proposal is backed once");
    assert!(err.to_string().contains("already cast this vote"), "{err}");
    // An oracle may back another proposal too (a fallback worker).
    m.assign(o0, id, w.workers[0], eth("1")).await.unwrap();

    // Votes count only for the same worker and maximum price.
    m.assign(o1, id, worker, eth("3")).await.unwrap();
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Posted);
    let proposals = m.assign_proposals(id, 1).await.unwrap();
    assert_eq!(
        proposals
            .iter()
            .map(|p| (p.worker, p.max_price, p.oracle, p.support))
            .collect::<Vec<_>>(),
        [
            (worker, eth("2"), o0, 0b001),
            (w.workers[0], eth("1"), o0, 0b001),
            (worker, eth("3"), o1, 0b010)
        ],
        "three proposals of one vote each, in the order proposed"
    );
    assert!(
        m.assign_proposals(id, 2).await.unwrap().is_empty(),
        "none for a later attempt"
    );
    let agreed = m.assign(o2, id, worker, eth("2")).await.unwrap();
    let t = m.task(id).await.unwrap();
    assert_eq!((t.status, t.worker, t.price), (TaskStatus::Assigned, worker, eth("2")));
    let receipt = m
        .provider()
        .get_transaction_receipt(agreed.hash)
        .await
        .unwrap()
        .unwrap();
    let voted = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| TMC::Voted::decode_log(&l.inner).ok())
        .expect("a Voted event");
    assert_eq!((voted.oracle, voted.votes, voted.maxPrice), (o2, 2, eth("2")));
    assert!(
        receipt
            .inner
            .logs()
            .iter()
            .any(|l| TMC::TaskAssigned::decode_log(&l.inner).is_ok()),
        "the vote that reaches the quorum assigns"
    );

    m.submit_result(worker, id, "bafy", keccak256(b"r")).await.unwrap();
    m.complete(o0, id).await.unwrap();
    assert_eq!(name(m.fail(o0, id, true).await), "AlreadyVoted");
    m.fail(o1, id, true).await.unwrap();
    let t = m.task(id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Submitted, "one vote each way decides nothing");
    assert_eq!(
        (t.votes.cast(0, 1), t.votes.cast(1, 1), t.votes.cast(2, 1)),
        (Some(VoteKind::Complete), Some(VoteKind::Fail), None)
    );
    m.complete(o2, id).await.unwrap();
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Completed);
    assert_eq!(m.credits(worker).await.unwrap().tmc, eth("2"));
    assert_eq!(m.credits(w.requester).await.unwrap().tmc, eth("3"));
    assert_eq!(m.worker(worker).await.unwrap().unwrap().reputation.0, 100_000);
}

#[tokio::test]
async fn a_failing_quorum_reopens_unless_one_vote_says_not_to() {
    let w = two_of_three(MarketParams::default()).await;
    let m = &w.market;
    let [o0, o1, o2] = [w.oracles[0], w.oracles[1], w.oracles[2]];
    let worker = w.workers[0]; // price 1 ETH, stake 2 ETH
    let assign = |id| async move {
        m.assign(o0, id, worker, eth("1")).await.unwrap();
        m.assign(o1, id, worker, eth("1")).await.unwrap();
        assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Assigned);
    };

    let (reopened, _) = m.post_task(w.requester, &w.new_task("2").await).await.unwrap();
    assign(reopened).await;
    m.fail(o0, reopened, true).await.unwrap();
    m.fail(o2, reopened, true).await.unwrap();
    let t = m.task(reopened).await.unwrap();
    assert_eq!(
        (t.status, t.attempts),
        (TaskStatus::Posted, 1),
        "offered to another worker"
    );
    assert_eq!(
        (t.votes.assign, t.votes.complete, t.votes.fail),
        (0, 0, 0),
        "a new round"
    );

    let (closed, _) = m.post_task(w.requester, &w.new_task("2").await).await.unwrap();
    m.assign(o0, closed, w.workers[1], eth("2")).await.unwrap();
    m.assign(o2, closed, w.workers[1], eth("2")).await.unwrap();
    m.fail(o0, closed, false).await.unwrap();
    m.fail(o1, closed, true).await.unwrap();
    assert_eq!(m.task(closed).await.unwrap().status, TaskStatus::Failed);
    assert_eq!(m.escrow(closed).await.unwrap(), U256::ZERO);
    assert_eq!(
        m.credits(w.requester).await.unwrap(),
        drlaas_chain::Credits {
            tmc: eth("2"),
            umc: eth("0.4"),
            mmc: U256::ZERO
        },
        "the budget back, and 10 % of each failed worker's 2 ETH stake"
    );
}

#[tokio::test]
async fn a_new_oracle_set_voids_open_votes() {
    let w = two_of_three(MarketParams::default()).await;
    let m = &w.market;
    let [o0, o1, o2] = [w.oracles[0], w.oracles[1], w.oracles[2]];
    let worker = w.workers[0];
    let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    m.assign(o0, id, worker, eth("1")).await.unwrap();

    // The same members, set again: a new epoch, in which o0's vote no longer counts.
    assert!(matches!(
        m.set_oracles(w.admin, &w.oracles, 2).await.unwrap(),
        Change::Executed(ref txs) if txs.len() == 2
    ));
    let epoch = m.consortium().await.unwrap().epoch;
    assert_eq!(epoch, 2);
    let t = m.task(id).await.unwrap();
    assert_eq!((t.votes.epoch, t.votes.cast(0, epoch)), (1, None));
    assert_eq!(m.assign_support(id, worker, eth("1")).await.unwrap(), 0);
    assert!(
        m.assign_proposals(id, 1).await.unwrap().is_empty(),
        "the old set's proposal has no votes left"
    );
    m.assign(o1, id, worker, eth("1")).await.unwrap();
    assert_eq!(
        m.task(id).await.unwrap().status,
        TaskStatus::Posted,
        "o0's vote of the old set did not count"
    );
    m.assign(o0, id, worker, eth("1")).await.unwrap();
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Assigned);

    // A set without o0 and o1: they vote no more; o2 alone decides (1 of 1).
    m.set_oracles(w.admin, &[o2], 1).await.unwrap();
    assert_eq!(m.seat_of(o0).await.unwrap(), None);
    assert_eq!(name(m.fail(o0, id, true).await), "NotOracle");
    m.fail(o2, id, false).await.unwrap();
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Failed);

    // Invalid sets are refused before anything is sent.
    for (oracles, quorum) in [(vec![o0, o1], 1), (vec![o0, o0], 2), (vec![], 1), (vec![o0, o1, o2], 4)] {
        let err = m.set_oracles(w.admin, &oracles, quorum).await.unwrap_err();
        assert!(
            matches!(err, drlaas_chain::ChainError::InvalidInput { .. }),
            "{oracles:?} {quorum}: {err}"
        );
    }
}

#[tokio::test]
async fn a_worker_that_raised_its_price_after_the_first_vote_is_refused() {
    let w = two_of_three(MarketParams::default()).await;
    let m = &w.market;
    let worker = w.workers[0]; // price 1 ETH
    let (id, _) = m.post_task(w.requester, &w.new_task("5").await).await.unwrap();
    m.assign(w.oracles[0], id, worker, eth("1")).await.unwrap();
    m.update_worker(worker, &profile("1.5")).await.unwrap();
    let err = m.assign(w.oracles[1], id, worker, eth("1")).await.unwrap_err();
    assert_eq!(err.revert_name(), Some("PriceAboveMax"), "{err}");
    assert!(err.to_string().contains("raised its price"), "{err}");
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Posted);
}

#[tokio::test]
async fn governed_changes_wait_for_the_delay_and_tasks_keep_their_terms() {
    let params = MarketParams {
        governance_delay: 3600,
        ..MarketParams::default()
    };
    let w = world_of(params, &[ORACLE], 1).await;
    let m = &w.market;
    let stranger = w.others[0];
    for c in Contract::ALL {
        assert_eq!(m.governance_delay(c).await.unwrap(), 3600, "{c}");
    }
    assert_eq!(m.params().await.unwrap(), params);

    // Scheduled, not executed: nothing changes until the delay is over, then anyone executes it.
    let new_set = [w.oracle, w.others[1], w.others[2]];
    let Change::Scheduled(scheduled) = m.set_oracles(w.admin, &new_set, 2).await.unwrap() else {
        panic!("a delayed change is only scheduled");
    };
    let [s] = &scheduled[..] else { panic!("one call") };
    let now = w.devnet.now().await.unwrap();
    assert_eq!((s.contract, s.ready_at), (Contract::Tmc, now + 3600));
    assert_eq!(s.id, keccak256(&s.data));
    assert_eq!(m.scheduled_at(Contract::Tmc, s.id).await.unwrap(), Some(s.ready_at));
    assert_eq!(m.pending_changes(Contract::Tmc).await.unwrap(), 1);
    assert_eq!(m.consortium().await.unwrap().quorum, 1);
    let err = m.execute(stranger, s.contract, s.data.clone()).await.unwrap_err();
    assert_eq!(err.revert_name(), Some("ChangeNotReady"), "{err}");
    assert_eq!(
        name(m.schedule(w.admin, s.contract, s.data.clone()).await),
        "AlreadyScheduled"
    );
    w.devnet.warp(3600).await.unwrap();
    m.execute(stranger, s.contract, s.data.clone()).await.unwrap();
    let info = m.consortium().await.unwrap();
    assert_eq!((info.oracles, info.quorum, info.epoch), (new_set.to_vec(), 2, 2));
    assert_eq!(m.scheduled_at(Contract::Tmc, s.id).await.unwrap(), None);
    assert_eq!(m.pending_changes(Contract::Tmc).await.unwrap(), 0);
    assert_eq!(
        name(m.execute(stranger, s.contract, s.data.clone()).await),
        "NotScheduled"
    );

    // New terms apply to tasks posted after they take effect; earlier tasks keep theirs.
    let (before, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    let stricter = MarketParams {
        max_attempts: 1,
        slash_bps: 5_000,
        reputation_floor: eth("2"),
        min_stake: eth("1.5"),
        ..params
    };
    let Change::Scheduled(calls) = m.set_params(w.admin, stricter).await.unwrap() else {
        panic!("delayed");
    };
    assert_eq!(
        calls.iter().map(|c| c.contract).collect::<Vec<_>>(),
        [Contract::Umc, Contract::Tmc]
    );
    w.devnet.warp(3600).await.unwrap();
    for c in &calls {
        m.execute(stranger, c.contract, c.data.clone()).await.unwrap();
    }
    let (after, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    let old_terms = Terms {
        verification_window: 24 * 3600,
        max_attempts: 3,
        slash_bps: 1_000,
        reputation_floor: eth("0.01"),
    };
    assert_eq!(m.task_terms(before).await.unwrap(), old_terms);
    assert_eq!(
        m.task_terms(after).await.unwrap(),
        Terms {
            max_attempts: 1,
            slash_bps: 5_000,
            reputation_floor: eth("2"),
            ..old_terms
        }
    );
    assert_eq!(m.task_limits().await.unwrap(), (24 * 3600, 1));
    assert_eq!(m.params().await.unwrap(), stricter);

    // The admin can withdraw a scheduled change; admin transfers are governed too.
    let Change::Scheduled(transfer) = m.transfer_admin(w.admin, stranger).await.unwrap() else {
        panic!("delayed");
    };
    assert_eq!(transfer.len(), 3);
    for t in &transfer {
        assert_eq!(name(m.cancel_change(stranger, t.contract, t.id).await), "NotAdmin");
        m.cancel_change(w.admin, t.contract, t.id).await.unwrap();
        assert_eq!(m.scheduled_at(t.contract, t.id).await.unwrap(), None);
    }
    w.devnet.warp(3600).await.unwrap();
    assert_eq!(
        name(
            m.execute(stranger, transfer[0].contract, transfer[0].data.clone())
                .await
        ),
        "NotScheduled"
    );
    assert_eq!(name(m.accept_admin(stranger).await), "NotPendingAdmin");
}

#[tokio::test]
async fn stake_is_bonded_per_task_and_cheap_tasks_earn_no_reputation() {
    let w = world().await;
    let m = &w.market;
    let worker = w.workers[0]; // 2 ETH stake, 1 ETH minimum per task
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(m.post_task(w.requester, &w.new_task("1").await).await.unwrap().0);
    }
    m.assign(w.oracle, ids[0], worker, eth("1")).await.unwrap();
    m.assign(w.oracle, ids[1], worker, eth("1")).await.unwrap();
    let err = m.assign(w.oracle, ids[2], worker, eth("1")).await.unwrap_err();
    let expected = format!(
        "TMC reverted: InsufficientStake(stake: {}, required: {}): ",
        eth("2"),
        eth("3")
    );
    assert!(
        err.to_string().starts_with(&expected),
        "a third task needs 3 ETH bonded: {err}"
    );
    assert_eq!(m.worker(worker).await.unwrap().unwrap().active_tasks, 2);

    // A task paid below the reputation floor (0.01 ETH) pays but earns no reputation.
    let cheap = w.workers[1];
    m.update_worker(cheap, &profile("0.001")).await.unwrap();
    m.assign(w.oracle, ids[2], cheap, eth("0.001")).await.unwrap();
    m.submit_result(cheap, ids[2], "bafy", keccak256(b"r")).await.unwrap();
    m.complete(w.oracle, ids[2]).await.unwrap();
    let info = m.worker(cheap).await.unwrap().unwrap();
    assert_eq!((info.completed_tasks, info.reputation.0), (1, 0));
    assert_eq!(m.credits(cheap).await.unwrap().tmc, eth("0.001"));
}
