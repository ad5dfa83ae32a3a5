//! Whole task lifecycles against a real anvil, with every balance checked to the wei.

mod common;

use common::{eth, world};
use drlaas_chain::{
    ChainEvent, Contract, EnvKind, MarketEvent, NewListing, TaskKind, TaskStatus,
    alloy::{
        primitives::{U256, keccak256},
        providers::Provider,
        sol_types::SolEvent,
    },
    bindings::TMC,
};

#[tokio::test]
async fn training_task_pays_worker_refunds_difference_and_raises_reputation() {
    let w = world().await;
    let (m, requester, worker) = (&w.market, w.requester, w.workers[1]); // worker price 2 ETH
    let req_start = m.balance(requester).await.unwrap();
    let worker_start = m.balance(worker).await.unwrap();

    let task = w.new_task("5").await;
    let (id, post) = m.post_task(requester, &task).await.unwrap();
    assert_eq!(id, 1);
    assert_eq!(m.escrow(id).await.unwrap(), eth("5"));
    assert_eq!(m.task_spec_cid(id).await.unwrap(), task.spec_cid);

    m.assign(w.oracle, id, worker, eth("2")).await.unwrap();
    let t = m.task(id).await.unwrap();
    assert_eq!(
        (t.status, t.worker, t.attempts, t.price),
        (TaskStatus::Assigned, worker, 1, eth("2"))
    );
    assert_eq!(t.votes.assign, 0, "the assignment round is over");
    assert_eq!(
        m.escrow(id).await.unwrap(),
        eth("5"),
        "the whole budget stays in escrow until settlement"
    );

    let result_json = br#"{"modelCid":"bafy-model","meanReturn":500.0}"#;
    let submit = m
        .submit_result(worker, id, "bafy-model", keccak256(result_json))
        .await
        .unwrap();
    assert_eq!(m.task(id).await.unwrap().submitted_block, Some(submit.block));
    assert_eq!(
        m.task_result(id).await.unwrap(),
        Some(("bafy-model".to_string(), keccak256(result_json)))
    );
    m.complete(w.oracle, id).await.unwrap();
    assert_eq!(
        m.credits(requester).await.unwrap().tmc,
        eth("3"),
        "the budget left over goes back"
    );

    let t = m.task(id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(m.escrow(id).await.unwrap(), U256::ZERO);
    let info = m.worker(worker).await.unwrap().unwrap();
    assert_eq!(info.reputation.0, 100_000, "0 + 0.1 * (1 - 0): reputation starts at 0");
    assert_eq!((info.active_tasks, info.completed_tasks, info.failed_tasks), (0, 1, 0));

    let req_withdraw = m.withdraw_all(requester).await.unwrap();
    let worker_withdraw = m.withdraw_all(worker).await.unwrap();
    assert_eq!((req_withdraw.len(), worker_withdraw.len()), (1, 1));
    let req_fees = post.fee + req_withdraw[0].fee;
    let worker_fees = submit.fee + worker_withdraw[0].fee;
    assert_eq!(m.balance(requester).await.unwrap(), req_start - eth("2") - req_fees);
    assert_eq!(m.balance(worker).await.unwrap(), worker_start + eth("2") - worker_fees);
    assert_eq!(
        m.balance(m.deployment().tmc).await.unwrap(),
        U256::ZERO,
        "nothing left in TMC"
    );
}

#[tokio::test]
async fn model_sharing_task_and_market_purchase_pay_owner_and_parent_royalty() {
    let w = world().await;
    let m = &w.market;
    let (parent_owner, owner, buyer) = (w.workers[0], w.workers[2], w.requester);

    // Lineage: `owner`'s model was warm-started from `parent_owner`'s, which asks 10 % royalty.
    let descriptor = keccak256(br#"{"kind":"maze-cleaning","grid":16,"agents":4}"#);
    let listing = |cid: &str, price: &str, parent, royalty| NewListing {
        model_cid: cid.into(),
        env_kind: EnvKind::MazeCleaning,
        env_descriptor_hash: descriptor,
        price: eth(price),
        parent,
        royalty_bps: royalty,
    };
    let (parent_id, _) = m
        .list_model(parent_owner, &listing("bafy-parent", "1", None, 1_000))
        .await
        .unwrap();
    let (child_id, _) = m
        .list_model(owner, &listing("bafy-child", "3", Some(parent_id), 0))
        .await
        .unwrap();
    assert_eq!(m.listing(child_id).await.unwrap().parent, Some(parent_id));

    let buyer_start = m.balance(buyer).await.unwrap();
    let bought = m.purchase(buyer, child_id).await.unwrap();
    assert_eq!(m.credits(owner).await.unwrap().mmc, eth("2.7"));
    assert_eq!(m.credits(parent_owner).await.unwrap().mmc, eth("0.3"));
    assert_eq!(m.balance(buyer).await.unwrap(), buyer_start - eth("3") - bought.fee);
    let rated = m.rate(buyer, child_id, 5).await.unwrap();
    let l = m.listing(child_id).await.unwrap();
    assert_eq!((l.purchases, l.mean_rating()), (1, Some(5.0)));
    assert_eq!(
        m.worker(owner).await.unwrap().unwrap().reputation.0,
        0,
        "ratings do not move reputation"
    );

    // The escrowed way: a ModelSharing task the owner fulfils with its listed model.
    let mut task = w.new_task("4").await;
    task.kind = TaskKind::ModelSharing;
    let (id, post) = m.post_task(buyer, &task).await.unwrap();
    assert_eq!(m.task(id).await.unwrap().kind, TaskKind::ModelSharing);
    m.assign(w.oracle, id, owner, eth("3")).await.unwrap(); // owner's price is 3 ETH: 1 ETH goes back to the buyer
    m.submit_result(owner, id, "bafy-child", keccak256(b"result"))
        .await
        .unwrap();
    m.complete(w.oracle, id).await.unwrap();

    let owner_balance = m.balance(owner).await.unwrap();
    let owner_credits = m.credits(owner).await.unwrap();
    assert_eq!(owner_credits.total(), eth("5.7"), "3 ETH task + 2.7 ETH sale");
    let fees: U256 = m.withdraw_all(owner).await.unwrap().iter().map(|t| t.fee).sum();
    assert_eq!(m.balance(owner).await.unwrap(), owner_balance + eth("5.7") - fees);
    let buyer_fees: U256 = m.withdraw_all(buyer).await.unwrap().iter().map(|t| t.fee).sum();
    assert_eq!(
        m.balance(buyer).await.unwrap(),
        buyer_start - eth("3") - eth("3") - bought.fee - rated.fee - post.fee - buyer_fees
    );
    m.withdraw(parent_owner, Contract::Mmc).await.unwrap();
    for c in [m.deployment().tmc, m.deployment().mmc] {
        assert_eq!(m.balance(c).await.unwrap(), U256::ZERO);
    }
}

#[tokio::test]
async fn double_completion_reverts_and_pays_once() {
    let w = world().await;
    let m = &w.market;
    let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    m.assign(w.oracle, id, w.workers[0], eth("1")).await.unwrap();
    m.submit_result(w.workers[0], id, "bafy-model", keccak256(b"r"))
        .await
        .unwrap();
    m.complete(w.oracle, id).await.unwrap();
    let err = m.complete(w.oracle, id).await.unwrap_err();
    assert_eq!(err.revert_name(), Some("InvalidStatus"));
    assert_eq!(
        err.to_string(),
        "TMC reverted: InvalidStatus(taskId: 1, current: Completed)"
    );
    assert_eq!(m.credits(w.workers[0]).await.unwrap().tmc, eth("1"));
    let err = m.fail(w.oracle, id, false).await.unwrap_err();
    assert_eq!(
        err.revert_name(),
        Some("InvalidStatus"),
        "a settled task cannot be failed either"
    );
}

#[tokio::test]
async fn expiry_refunds_requester_and_slashes_a_worker_that_abandoned_the_task() {
    let w = world().await;
    let m = &w.market;
    let worker = w.workers[0];
    // Reputation to lose first: one completed task.
    let (done, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    m.assign(w.oracle, done, worker, eth("1")).await.unwrap();
    m.submit_result(worker, done, "bafy", keccak256(b"r")).await.unwrap();
    m.complete(w.oracle, done).await.unwrap();
    assert_eq!(m.worker(worker).await.unwrap().unwrap().reputation.0, 100_000);

    let task = w.new_task("1").await;
    let (id, _) = m.post_task(w.requester, &task).await.unwrap();
    m.assign(w.oracle, id, worker, eth("1")).await.unwrap();

    let early = m.expire(w.others[0], id).await.unwrap_err();
    assert_eq!(early.revert_name(), Some("NotExpired"));
    w.devnet.warp(3601).await.unwrap();
    let late = m.submit_result(worker, id, "bafy", keccak256(b"r")).await.unwrap_err();
    assert_eq!(late.revert_name(), Some("DeadlinePassed"));

    let expired = m.expire(w.others[0], id).await.unwrap(); // anyone may expire
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Expired);
    assert_eq!(m.credits(w.requester).await.unwrap().tmc, eth("1"));
    let info = m.worker(worker).await.unwrap().unwrap();
    assert_eq!(
        (info.reputation.0, info.active_tasks, info.failed_tasks),
        (90_000, 0, 1),
        "0.1 - 0.1 * 0.1"
    );
    assert_eq!(
        (info.stake, m.credits(w.requester).await.unwrap().umc),
        (eth("1.8"), eth("0.2")),
        "an abandoned task is slashed like a failed one, to the requester"
    );
    let receipt = m
        .provider()
        .get_transaction_receipt(expired.hash)
        .await
        .unwrap()
        .unwrap();
    let failed = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| TMC::TaskFailed::decode_log(&l.inner).ok())
        .expect("expire of an assigned task emits TaskFailed");
    assert_eq!(
        (failed.worker, failed.slashed, failed.reopened),
        (worker, eth("0.2"), false)
    );
}

#[tokio::test]
async fn failed_attempt_slashes_to_requester_and_reopens_for_another_worker() {
    let w = world().await;
    let m = &w.market;
    let (bad, good, pricey) = (w.workers[0], w.workers[1], w.workers[2]);
    let (id, _) = m.post_task(w.requester, &w.new_task("2").await).await.unwrap();
    m.assign(w.oracle, id, bad, eth("1")).await.unwrap(); // price 1 of a 2 ETH budget
    m.submit_result(bad, id, "bafy-bad", keccak256(b"bad")).await.unwrap();
    m.fail(w.oracle, id, true).await.unwrap();

    let t = m.task(id).await.unwrap();
    assert_eq!((t.status, t.attempts), (TaskStatus::Posted, 1));
    let info = m.worker(bad).await.unwrap().unwrap();
    assert_eq!(
        (info.stake, info.reputation.0, info.failed_tasks),
        (eth("1.8"), 0, 1),
        "10 % of 2 ETH slashed (reputation was 0 already)"
    );
    assert_eq!(
        m.credits(w.requester).await.unwrap().umc,
        eth("0.2"),
        "the slash goes to the requester"
    );

    // The whole budget is still in escrow: a pricier worker fits, one above the budget does not.
    assert_eq!(m.escrow(id).await.unwrap(), eth("2"));
    assert!(m.failed_before(id, bad).await.unwrap());
    assert_eq!(
        m.assign(w.oracle, id, bad, eth("1")).await.unwrap_err().revert_name(),
        Some("WorkerFailedTask"),
        "a worker that failed the task is not given it again"
    );
    let err = m.assign(w.oracle, id, pricey, eth("3")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "TMC reverted: PriceAboveBudget(taskId: {id}, price: {}, budget: {})",
            eth("3"),
            eth("2")
        )
    );
    let err = m.assign(w.oracle, id, pricey, eth("2")).await.unwrap_err();
    assert_eq!(
        err.revert_name(),
        Some("PriceAboveMax"),
        "a maximum below the worker's price: {err}"
    );
    m.assign(w.oracle, id, good, eth("2")).await.unwrap(); // price 2
    m.submit_result(good, id, "bafy-good", keccak256(b"good"))
        .await
        .unwrap();
    m.complete(w.oracle, id).await.unwrap();
    assert_eq!(m.credits(good).await.unwrap().tmc, eth("2"));
    assert_eq!(
        m.credits(w.requester).await.unwrap().tmc,
        U256::ZERO,
        "the second worker took the whole budget"
    );
    assert_eq!(m.task(id).await.unwrap().attempts, 2);
    assert_eq!(
        m.credits(bad).await.unwrap().total(),
        U256::ZERO,
        "the failed worker is paid nothing"
    );
}

#[tokio::test]
async fn cancel_before_assignment_refunds_and_worker_exits_after_cooldown() {
    let w = world().await;
    let m = &w.market;
    let (id, _) = m.post_task(w.requester, &w.new_task("1").await).await.unwrap();
    m.cancel_task(w.requester, id).await.unwrap();
    assert_eq!(m.task(id).await.unwrap().status, TaskStatus::Cancelled);
    assert_eq!(m.credits(w.requester).await.unwrap().tmc, eth("1"));
    assert_eq!(
        m.assign(w.oracle, id, w.workers[0], eth("1"))
            .await
            .unwrap_err()
            .revert_name(),
        Some("InvalidStatus")
    );

    let worker = w.workers[2];
    m.request_unstake(worker, eth("2")).await.unwrap();
    assert_eq!(
        m.withdraw_stake(worker).await.unwrap_err().revert_name(),
        Some("CooldownNotOver")
    );
    w.devnet.warp(7 * 24 * 3600).await.unwrap();
    let before = m.balance(worker).await.unwrap();
    let tx = m.withdraw_stake(worker).await.unwrap();
    assert_eq!(m.balance(worker).await.unwrap(), before + eth("2") - tx.fee);
    assert_eq!(m.worker(worker).await.unwrap().unwrap().stake, U256::ZERO);
    let (id, _) = m.post_task(w.requester, &w.new_task("5").await).await.unwrap();
    let err = m.assign(w.oracle, id, worker, eth("3")).await.unwrap_err();
    assert_eq!(
        err.revert_name(),
        Some("InsufficientStake"),
        "an unbonded worker cannot be assigned"
    );
    assert_eq!(
        m.worker(worker).await.unwrap().unwrap().unstake_available_at,
        0,
        "the request is used up"
    );
}

#[tokio::test]
async fn a_client_that_lost_its_receipt_finds_its_task_and_seeds_from_block_hashes() {
    let w = world().await;
    let m = &w.market;
    let before = m.block(None).await.unwrap();
    let task = w.new_task("1").await;
    let (first, _) = m.post_task(w.requester, &task).await.unwrap();
    let mut other = task.clone();
    other.spec_cid = "bafkreiee3cmhp4guaqppw27zdilpajepf7kxhzvpaxaz7fv63opyql3yqi".into();
    m.post_task(w.requester, &other).await.unwrap();
    let (second, posted) = m.post_task(w.requester, &task).await.unwrap();
    m.post_task(w.workers[0], &task).await.unwrap();

    assert_eq!(
        m.tasks_posted_by(w.requester, &task.spec_cid, before.number)
            .await
            .unwrap(),
        vec![first, second],
        "only this requester's tasks with this spec, oldest first"
    );
    assert_eq!(
        m.tasks_posted_by(w.requester, &task.spec_cid, posted.block)
            .await
            .unwrap(),
        vec![second]
    );

    let block = m.block(Some(posted.block)).await.unwrap();
    assert_eq!(block.number, posted.block);
    assert!(block.timestamp >= before.timestamp);
    assert_ne!(block.hash, before.hash);
    assert_eq!(
        m.task_limits().await.unwrap(),
        (24 * 3600, 3),
        "the defaults of MarketParams"
    );
    let latest = m.block(None).await.unwrap();
    assert_eq!(latest.number, m.block_number().await.unwrap());
    let err = m.block(Some(latest.number + 100)).await.unwrap_err();
    assert!(err.to_string().contains("does not exist yet"), "{err}");
}

#[tokio::test]
async fn withdrawing_an_assigned_task_pays_the_worker_a_fee_and_refunds_the_rest() {
    let w = world().await;
    let m = &w.market;
    let (requester, worker) = (w.requester, w.workers[1]); // worker price 2 ETH
    let req_start = m.balance(requester).await.unwrap();
    let worker_start = m.balance(worker).await.unwrap();
    let before = m.worker(worker).await.unwrap().unwrap();

    let (id, post) = m.post_task(requester, &w.new_task("5").await).await.unwrap();
    m.assign(w.oracle, id, worker, eth("2")).await.unwrap();
    assert_eq!(
        m.worker(worker).await.unwrap().unwrap().active_tasks,
        before.active_tasks + 1
    );

    let withdrawn = m.withdraw_task(requester, id).await.unwrap();
    let (fee, refund) = (eth("0.2"), eth("4.8")); // 10 % of the 2 ETH price; 5 ETH budget less the fee

    // The receipt carries TaskWithdrawn, decoded like every TMC event.
    let receipt = m
        .provider()
        .get_transaction_receipt(withdrawn.hash)
        .await
        .unwrap()
        .unwrap();
    let events: Vec<ChainEvent> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| ChainEvent::decode(m.deployment(), l).unwrap())
        .collect();
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    assert_eq!(names, ["TaskWithdrawn", "Credited", "Credited", "TaskEnded"]);
    assert_eq!(
        events[0].event,
        MarketEvent::Tmc(TMC::TMCEvents::TaskWithdrawn(TMC::TaskWithdrawn {
            taskId: U256::from(id),
            worker,
            fee,
            refund,
        }))
    );

    let t = m.task(id).await.unwrap();
    assert_eq!((t.status, t.worker, t.price), (TaskStatus::Cancelled, worker, eth("2")));
    assert_eq!(m.escrow(id).await.unwrap(), U256::ZERO);
    assert_eq!(
        m.credits(worker).await.unwrap().tmc,
        fee,
        "the worker is paid 10 % of its price"
    );
    assert_eq!(fee, t.price / U256::from(10u8));
    assert_eq!(
        m.credits(requester).await.unwrap().tmc,
        refund,
        "the requester gets the rest"
    );
    assert_eq!(fee + refund, t.budget);
    assert_eq!(m.credits(requester).await.unwrap().umc, U256::ZERO, "nothing slashed");
    let after = m.worker(worker).await.unwrap().unwrap();
    assert_eq!(after.stake, before.stake, "no slash");
    assert_eq!(after.reputation, before.reputation, "no reputation change");
    assert_eq!(
        (after.active_tasks, after.completed_tasks, after.failed_tasks),
        (before.active_tasks, before.completed_tasks, before.failed_tasks),
        "released: the worker's task counters are back where they were"
    );

    // Withdrawn once: the task is settled.
    let err = m.withdraw_task(requester, id).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "TMC reverted: InvalidStatus(taskId: 1, current: Cancelled)"
    );

    let req_withdraw = m.withdraw_all(requester).await.unwrap();
    let worker_withdraw = m.withdraw_all(worker).await.unwrap();
    assert_eq!((req_withdraw.len(), worker_withdraw.len()), (1, 1));
    assert_eq!(
        m.balance(requester).await.unwrap(),
        req_start - fee - post.fee - withdrawn.fee - req_withdraw[0].fee,
        "the requester is out the fee and gas only"
    );
    assert_eq!(
        m.balance(worker).await.unwrap(),
        worker_start + fee - worker_withdraw[0].fee
    );
    assert_eq!(m.balance(m.deployment().tmc).await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn withdrawing_is_cancel_before_assignment_and_refused_once_submitted_or_late() {
    let w = world().await;
    let m = &w.market;
    let (requester, worker, stranger) = (w.requester, w.workers[0], w.others[0]);

    // Posted: the whole budget back, as `cancel` does.
    let (posted, _) = m.post_task(requester, &w.new_task("1").await).await.unwrap();
    assert_eq!(
        m.withdraw_task(stranger, posted).await.unwrap_err().revert_name(),
        Some("NotRequester")
    );
    let tx = m.withdraw_task(requester, posted).await.unwrap();
    let receipt = m.provider().get_transaction_receipt(tx.hash).await.unwrap().unwrap();
    let cancelled = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| TMC::TaskCancelled::decode_log(&l.inner).ok())
        .expect("TaskCancelled");
    assert_eq!(cancelled.refund, eth("1"));
    assert_eq!(m.task(posted).await.unwrap().status, TaskStatus::Cancelled);
    assert_eq!(m.credits(requester).await.unwrap().tmc, eth("1"));

    // Assigned: only its requester, not the oracle nor the worker.
    let (assigned, _) = m.post_task(requester, &w.new_task("1").await).await.unwrap();
    m.assign(w.oracle, assigned, worker, eth("1")).await.unwrap();
    for other in [stranger, w.oracle, worker] {
        assert_eq!(
            m.withdraw_task(other, assigned).await.unwrap_err().revert_name(),
            Some("NotRequester")
        );
    }

    // Submitted: the result is public, verification decides.
    let (submitted, _) = m.post_task(requester, &w.new_task("1").await).await.unwrap();
    m.assign(w.oracle, submitted, worker, eth("1")).await.unwrap();
    m.submit_result(worker, submitted, "bafy", keccak256(b"r"))
        .await
        .unwrap();
    let err = m.withdraw_task(requester, submitted).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("TMC reverted: InvalidStatus(taskId: {submitted}, current: Submitted)")
    );

    // Past the deadline an assigned task only expires.
    w.devnet.warp(3601).await.unwrap();
    assert_eq!(
        m.withdraw_task(requester, assigned).await.unwrap_err().revert_name(),
        Some("DeadlinePassed")
    );
    assert_eq!(m.task(assigned).await.unwrap().status, TaskStatus::Assigned);
    assert_eq!(m.credits(worker).await.unwrap().tmc, U256::ZERO, "no fee was paid");
    assert_eq!(
        m.worker(worker).await.unwrap().unwrap().active_tasks,
        2,
        "both tasks are still the worker's"
    );
}
