// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Vm.sol";
import {Consortium} from "../contracts/Consortium.sol";
import {UMC} from "../contracts/UMC.sol";
import {TMC} from "../contracts/TMC.sol";
import {MMC} from "../contracts/MMC.sol";

/// @title RogueMarket
/// @notice What a market pointed at UMC by a hostile admin would do: start a task for a worker and fail it
///         at the highest slash, over and over, crediting the slashes to its owner.
contract RogueMarket {
    function drain(UMC umc, address victim, address to, uint256 rounds) external {
        for (uint256 i; i < rounds; ++i) {
            umc.onTaskAssigned(victim);
            umc.onTaskFailed(victim, to, umc.MAX_SLASH_BPS());
        }
    }
}

/// @title Audit regression tests
/// @notice One test (or a few) per finding of the audit, each performing the attack as the audit describes
///         and showing that it is now refused (the exact custom error) or harmless (balances, stake and
///         reputation unchanged); then the quorum and governance rules the fixes rest on. Most tests run
///         with three oracles and a quorum of two, `oracle` being the dishonest one.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants
contract AuditTest is Fixture {
    uint256 internal constant STAKE = 2 ether;
    uint96 internal constant PRICE = 0.3 ether;
    uint96 internal constant PRICE2 = 0.5 ether;
    uint256 internal constant BUDGET = 1 ether;
    uint256 internal constant DEADLINE = START + 10 days;
    bytes32 internal constant JUNK = keccak256("junk.json");

    function setUp() public override {
        super.setUp();
        _deploy2of3();
        _register(worker, STAKE, PRICE);
        _register(worker2, STAKE, PRICE2);
    }

    function _posted() internal returns (uint256) {
        return _post(requester, BUDGET, DEADLINE);
    }

    function _assigned() internal returns (uint256 taskId) {
        taskId = _posted();
        _assign(taskId, worker);
    }

    function _submitted() internal returns (uint256 taskId) {
        taskId = _assigned();
        _submit(taskId, worker);
    }

    /// @dev `worker` earns some reputation: one task at its price (above the floor), completed.
    function _earnReputation(address who) internal {
        uint256 taskId = _post(requester2, BUDGET, DEADLINE);
        _assign(taskId, who);
        _submit(taskId, who);
        _complete(taskId);
    }

    // ================================================================ finding 1: one oracle, admin powers

    /// @notice Finding 1: one oracle alone assigns a task at the full budget and completes a junk result.
    ///         Now each is one vote of two needed: nothing happens and nothing is paid.
    function test_F1_oneOracleCannotSettleJunkAtFullBudget() public {
        uint256 taskId = _posted();
        _voteAssign(oracle, taskId, worker, BUDGET);
        assertTrue(_status(taskId) == TMC.Status.Posted, "one vote does not assign");
        assertEq(umc.activeTasksOf(worker), 0);

        // The honest oracles assign at the worker's price; the dishonest vote stays a minority.
        _voteAssign(oracle2, taskId, worker, PRICE);
        _voteAssign(oracle3, taskId, worker, PRICE);
        assertEq(tmc.getTask(taskId).price, PRICE);

        vm.prank(worker);
        tmc.submitResult(taskId, MODEL_CID, JUNK);
        _voteComplete(oracle, taskId);
        assertTrue(_status(taskId) == TMC.Status.Submitted, "one vote does not complete");
        assertEq(tmc.credits(worker), 0);
        assertEq(tmc.escrowOf(taskId), BUDGET);
    }

    /// @notice Finding 1: the admin makes itself oracle. It cannot do it at once; the change it schedules
    ///         is announced and waits the delay, during which the requester takes its escrow back.
    function test_F1_adminCannotMakeItselfOracle() public {
        uint256 taskId = _posted();
        address[] memory rogue = new address[](1);
        rogue[0] = admin;
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        tmc.setOracles(rogue, 1);

        bytes memory call = abi.encodeCall(TMC.setOracles, (rogue, 1));
        vm.expectEmit(address(tmc));
        emit Consortium.ChangeScheduled(keccak256(call), call, START + GOVERNANCE_DELAY);
        uint256 readyAt = _schedule(tmc, call);
        vm.expectRevert(abi.encodeWithSelector(TMC.NotOracle.selector, admin));
        vm.prank(admin);
        tmc.assign(taskId, worker, BUDGET);
        vm.warp(readyAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Consortium.ChangeNotReady.selector, keccak256(call), readyAt));
        tmc.executeChange(call);

        // The announcement gave the requester the delay to leave with the whole budget.
        vm.prank(requester);
        tmc.cancel(taskId);
        assertEq(tmc.credits(requester), BUDGET);
    }

    /// @notice Finding 1: the admin points UMC at a rogue market that slashes stakes. It cannot bind a
    ///         second market nor set one at once; the scheduled change waits the delay, during which a
    ///         worker leaves without waiting out its cooldown, and a cancelled change never lands.
    function test_F1_adminCannotPointUmcAtRogueMarket() public {
        RogueMarket rogue = new RogueMarket();
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        umc.bindMarket(address(rogue));
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        umc.setMarket(address(rogue));
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, address(rogue)));
        rogue.drain(umc, worker, admin, 1);

        // A cancelled change never lands.
        bytes memory call = abi.encodeCall(UMC.setMarket, (address(rogue)));
        uint256 readyAt = _schedule(umc, call);
        vm.prank(admin);
        umc.cancelChange(keccak256(call));
        vm.warp(readyAt);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotScheduled.selector, keccak256(call)));
        umc.executeChange(call);
        assertEq(umc.market(), address(tmc));

        // Announced again: the 7-day cooldown is longer than the 2-day delay, yet a worker leaves at
        // once while the change is pending.
        assertGt(umc.unstakeCooldown(), umc.governanceDelay());
        readyAt = _schedule(umc, call);
        assertEq(umc.pendingChanges(), 1);
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        vm.prank(worker);
        assertEq(umc.withdrawStake(), STAKE);
        vm.warp(readyAt);
        umc.executeChange(call);
        assertEq(umc.pendingChanges(), 0);
        assertEq(umc.stakeOf(worker), 0);
        assertEq(worker.balance, 1_000 ether, "the worker that left lost nothing");
        // A worker that stayed through the announced change is exposed to it: the delay is the defence.
        rogue.drain(umc, worker2, admin, 2);
        assertEq(umc.stakeOf(worker2), 0.5 ether);
    }

    /// @notice Finding 1, the defence's other half: while a change of the market (TMC) is pending, for
    ///         example a new oracle set that could fail every task, a worker with no task leaves at once
    ///         instead of waiting out a cooldown longer than the delay; without a pending change it waits.
    function test_F1_workersLeaveWhileAMarketChangeIsPending() public {
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        uint256 availableAt = vm.getBlockTimestamp() + COOLDOWN;
        vm.expectRevert(abi.encodeWithSelector(UMC.CooldownNotOver.selector, availableAt));
        vm.prank(worker);
        umc.withdrawStake();

        address[] memory takeover = new address[](1);
        takeover[0] = admin;
        bytes memory call = abi.encodeCall(TMC.setOracles, (takeover, 1));
        _schedule(tmc, call);
        assertEq(tmc.pendingChanges(), 1);
        vm.prank(worker);
        assertEq(umc.withdrawStake(), STAKE);

        vm.prank(admin);
        tmc.cancelChange(keccak256(call));
        assertEq(tmc.pendingChanges(), 0);
        vm.prank(worker2);
        umc.requestUnstake(uint96(STAKE));
        vm.expectRevert(abi.encodeWithSelector(UMC.CooldownNotOver.selector, vm.getBlockTimestamp() + COOLDOWN));
        vm.prank(worker2);
        umc.withdrawStake();
    }

    /// @notice Finding 1: the admin revokes TMC's market role to freeze escrow and stakes. Now the market
    ///         moves only by governance, and then refunds still go through (`RegistryUnreachable`) and
    ///         the old market's task counters no longer hold stake.
    function test_F1_replacedMarketFreezesNeitherEscrowNorStake() public {
        uint256 posted = _posted();
        uint256 assigned = _assigned();
        uint256 submitted = _submitted();
        uint256 withdrawn = _post(requester2, BUDGET, DEADLINE);
        _assign(withdrawn, worker2);
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));

        _govern(umc, abi.encodeCall(UMC.setMarket, (stranger)));
        assertEq(umc.activeTasksOf(worker), 0);

        // Settlement needs the registry; refunds do not.
        _voteComplete(oracle2, submitted);
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, address(tmc)));
        _voteComplete(oracle3, submitted);

        vm.expectEmit(address(tmc));
        emit TMC.RegistryUnreachable(withdrawn, worker2);
        vm.prank(requester2);
        tmc.withdrawTask(withdrawn);

        vm.warp(DEADLINE + 1);
        vm.expectEmit(address(tmc));
        emit TMC.RegistryUnreachable(assigned, worker);
        tmc.expire(assigned);
        tmc.expire(posted);
        vm.warp(DEADLINE + VERIFICATION_WINDOW + 1);
        vm.expectEmit(address(tmc));
        emit TMC.RegistryUnreachable(submitted, worker);
        tmc.expire(submitted);

        assertEq(tmc.credits(requester), 3 * BUDGET, "every escrow refunded");
        assertEq(tmc.credits(requester2) + tmc.credits(worker2), BUDGET);
        assertEq(address(tmc).balance, 4 * BUDGET);
        vm.prank(worker);
        assertEq(umc.withdrawStake(), STAKE, "stake not frozen");
    }

    // ================================================================ finding 2: retroactive parameters

    /// @notice Finding 2: after the deadline, governance sets the verification window to 0 so a valid
    ///         submitted result can no longer be paid. The task keeps the terms it was posted under.
    function test_F2_verificationWindowChangeCannotStrandAResult() public {
        uint256 taskId = _post(requester, BUDGET, START + 1 days);
        _assign(taskId, worker);
        _submit(taskId, worker);
        TMC.Terms memory terms = _terms();
        terms.verificationWindow = 0;
        _govern(tmc, abi.encodeCall(TMC.setTerms, (terms))); // now START + 2 days: past the deadline
        assertEq(tmc.termsAt(tmc.termsVersion()).verificationWindow, 0);
        assertEq(tmc.termsOf(taskId).verificationWindow, VERIFICATION_WINDOW);
        vm.warp(START + 1 days + VERIFICATION_WINDOW);
        _complete(taskId);
        assertEq(tmc.credits(worker), PRICE, "the valid result is paid");
    }

    /// @notice Finding 2: governance sets the longest cooldown to push a pending unstake out. The request
    ///         keeps the cooldown it was given.
    function test_F2_cooldownChangeCannotPushOutAPendingUnstake() public {
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        _govern(umc, abi.encodeCall(UMC.setParameters, (MIN_STAKE, 90 days)));
        vm.warp(START + COOLDOWN);
        vm.prank(worker);
        assertEq(umc.withdrawStake(), STAKE);
    }

    /// @notice Finding 2: a higher slash set while a task is open applies to it. It does not: the task's
    ///         slash is the one it was posted under; tasks posted later get the new one.
    function test_F2_slashChangeIsNotRetroactive() public {
        uint256 taskId = _assigned();
        TMC.Terms memory terms = _terms();
        terms.slashBps = 5_000;
        _govern(tmc, abi.encodeCall(TMC.setTerms, (terms)));
        _fail(taskId, false);
        assertEq(umc.stakeOf(worker), 1.8 ether, "10 %, as posted");

        uint256 later = _post(requester, BUDGET, DEADLINE);
        _assign(later, worker2);
        _fail(later, false);
        assertEq(umc.stakeOf(worker2), 1 ether, "50 % for a task posted under the new terms");
    }

    /// @notice Finding 2: fewer attempts set while a task is open cut its retries. They do not.
    function test_F2_maxAttemptsChangeIsNotRetroactive() public {
        uint256 taskId = _assigned();
        TMC.Terms memory terms = _terms();
        terms.maxAttempts = 1;
        _govern(tmc, abi.encodeCall(TMC.setTerms, (terms)));
        _fail(taskId, true);
        assertTrue(_status(taskId) == TMC.Status.Posted, "reopened: 3 attempts, as posted");
        _assign(taskId, worker2);
        assertEq(tmc.getTask(taskId).attempts, 2);
    }

    /// @notice Finding 2: a higher minimum stake set while a worker holds a task. Its task goes on and is
    ///         paid; the new minimum applies to assignments made from then on.
    function test_F2_minStakeChangeAppliesAtAssignmentOnly() public {
        uint256 taskId = _submitted();
        _govern(umc, abi.encodeCall(UMC.setParameters, (5 ether, COOLDOWN)));
        _complete(taskId);
        assertEq(tmc.credits(worker), PRICE);
        uint256 next = _post(requester, BUDGET, DEADLINE);
        vm.prank(oracle);
        tmc.assign(next, worker, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, STAKE, 5 ether));
        vm.prank(oracle2);
        tmc.assign(next, worker, PRICE);
    }

    // ================================================================ finding 3: bought reputation

    /// @notice Finding 3: 50 accounts buy a 1-wei model and rate it 5 stars. The listing records the
    ///         ratings; the owner's reputation does not move.
    function test_F3_fiftyFiveStarRatingsBuyNoReputation() public {
        vm.prank(worker);
        uint256 id = mmc.list(MODEL_CID, 0, bytes32(0), 1, 0, 0);
        for (uint256 i; i < 50; ++i) {
            address sybil = makeAddr(string.concat("sybil", vm.toString(i)));
            vm.deal(sybil, 1);
            vm.startPrank(sybil);
            mmc.purchase{value: 1}(id);
            mmc.rate(id, 5);
            vm.stopPrank();
        }
        assertEq(mmc.getListing(id).ratingCount, 50);
        assertEq(mmc.getListing(id).ratingSum, 250);
        assertEq(umc.reputationOf(worker), 0);
    }

    /// @notice Finding 3: 30 one-star ratings of a rival's model sink its reputation. They do not.
    function test_F3_thirtyOneStarRatingsCannotSinkARival() public {
        _earnReputation(worker2);
        uint32 before = umc.reputationOf(worker2);
        assertEq(before, 100_000);
        vm.prank(worker2);
        uint256 id = mmc.list(MODEL_CID, 0, bytes32(0), 1, 0, 0);
        for (uint256 i; i < 30; ++i) {
            address sybil = makeAddr(string.concat("sybil", vm.toString(i)));
            vm.deal(sybil, 1);
            vm.startPrank(sybil);
            mmc.purchase{value: 1}(id);
            mmc.rate(id, 1);
            vm.stopPrank();
        }
        assertEq(umc.reputationOf(worker2), before);
    }

    /// @notice Finding 3 (the task route): tasks bought for next to nothing from one's own requester
    ///         account earn no reputation: the price must reach the terms' reputation floor.
    function test_F3_cheapTasksEarnNoReputation() public {
        _setPrice(worker, 1);
        for (uint256 i; i < 5; ++i) {
            uint256 taskId = _post(requester, 1, DEADLINE);
            _assign(taskId, worker);
            _submit(taskId, worker);
            _complete(taskId);
        }
        assertEq(umc.getWorker(worker).completedTasks, 5);
        assertEq(umc.reputationOf(worker), 0);
    }

    // ================================================================ finding 4: price front-running

    /// @notice Finding 4: the chosen worker raises its price to the budget just before the assignment
    ///         lands. The assignment is refused (`PriceAboveMax`) and the escrow is untouched.
    function test_F4_priceRaisedBeforeAssignmentIsRefused() public {
        uint256 taskId = _posted();
        _voteAssign(oracle2, taskId, worker, PRICE);
        _setPrice(worker, uint96(BUDGET)); // front-runs the second vote
        vm.expectRevert(abi.encodeWithSelector(TMC.PriceAboveMax.selector, taskId, BUDGET, PRICE));
        _voteAssign(oracle3, taskId, worker, PRICE);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        assertEq(umc.activeTasksOf(worker), 0);

        // 1-of-1 as well.
        _deploy(_one(), 1);
        _register(worker, STAKE, PRICE);
        taskId = _posted();
        _setPrice(worker, uint96(BUDGET));
        vm.expectRevert(abi.encodeWithSelector(TMC.PriceAboveMax.selector, taskId, BUDGET, PRICE));
        _voteAssign(oracle, taskId, worker, PRICE);
    }

    function _one() internal view returns (address[] memory o) {
        o = new address[](1);
        o[0] = oracle;
    }

    // ================================================================ finding 5: identity and capacity

    /// @notice Finding 5: a worker with a failure behind it registers a new address to start above its
    ///         record. A new address starts at 0, never above a worker with a record.
    function test_F5_newIdentityStartsAtZero() public {
        _earnReputation(worker);
        uint256 taskId = _assigned();
        _fail(taskId, false);
        assertEq(umc.reputationOf(worker), 90_000);
        address fresh = makeAddr("fresh");
        vm.deal(fresh, STAKE);
        _register(fresh, STAKE, PRICE);
        assertEq(umc.reputationOf(fresh), 0);
        assertLt(umc.reputationOf(fresh), umc.reputationOf(worker));
    }

    /// @notice Finding 5: one minimum stake backs many concurrent tasks. Each task held needs its own.
    function test_F5_oneMinStakeCannotBackManyTasks() public {
        address thin = makeAddr("thin");
        vm.deal(thin, MIN_STAKE);
        _register(thin, MIN_STAKE, PRICE);
        uint256 a = _posted();
        _assign(a, thin);
        uint256 b = _posted();
        _voteAssign(oracle, b, thin, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, MIN_STAKE, 2 * MIN_STAKE));
        _voteAssign(oracle2, b, thin, PRICE);
        assertEq(umc.activeTasksOf(thin), 1);
    }

    /// @notice Finding 5: a worker that failed a task is assigned it again. It is refused.
    function test_F5_failedWorkerIsNotAssignedTheTaskAgain() public {
        uint256 taskId = _submitted();
        _fail(taskId, true);
        vm.expectRevert(abi.encodeWithSelector(TMC.WorkerFailedTask.selector, taskId, worker));
        _voteAssign(oracle, taskId, worker, PRICE);
        vm.expectRevert(abi.encodeWithSelector(TMC.WorkerFailedTask.selector, taskId, worker));
        _voteAssign(oracle2, taskId, worker, PRICE);
    }

    /// @notice Finding 5: holding a task until its deadline without submitting costs no stake. Expiry of
    ///         an assigned task now fails and slashes the worker like a failed result.
    function test_F5_abandoningUntilTheDeadlineIsSlashed() public {
        _earnReputation(worker);
        uint256 taskId = _assigned();
        vm.warp(DEADLINE + 1);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, false);
        vm.prank(worker); // even the worker calling it
        tmc.expire(taskId);
        assertEq(umc.stakeOf(worker), STAKE - 0.2 ether);
        assertEq(umc.credits(requester), 0.2 ether);
        assertEq(umc.reputationOf(worker), 90_000);
        assertEq(tmc.credits(requester), BUDGET);
    }

    /// @notice Finding 5 / 1: the refunds' calls to UMC are try/catch; a caller that gives `expire` or
    ///         `withdrawTask` just enough gas for the refund but not for UMC must not skip the slash or
    ///         leave the worker's task counter (and stake) locked. Every gas limit either reverts or
    ///         records the outcome in UMC.
    function test_F5_limitedGasCannotSkipTheRegistry() public {
        uint256 abandoned = _assigned();
        uint256 withdrawn = _post(requester, BUDGET, DEADLINE + 1 days);
        _assign(withdrawn, worker2);
        for (uint256 g = 30_000; g <= 250_000; g += 500) {
            (bool ok, uint256 failed, uint256 active) = _probe(withdrawn, worker2, g, false);
            assertTrue(!ok || (failed == 0 && active == 0), "withdrawTask skipped the release");
        }
        vm.warp(DEADLINE + 1);
        for (uint256 g = 30_000; g <= 250_000; g += 500) {
            (bool ok, uint256 failed, uint256 active) = _probe(abandoned, worker, g, true);
            assertTrue(!ok || (failed == 1 && active == 0), "expire skipped the slash");
        }
    }

    function _probe(uint256 taskId, address who, uint256 g, bool expire)
        internal
        returns (bool ok, uint256 failed, uint256 active)
    {
        try this.probe(taskId, who, g, expire) {}
        catch (bytes memory r) {
            (ok, failed, active) = abi.decode(r, (bool, uint256, uint256));
        }
    }

    /// @dev Runs the call with `g` gas, then reverts with what UMC recorded (so every probe starts afresh).
    function probe(uint256 taskId, address who, uint256 g, bool expire) external {
        bool ok;
        if (expire) {
            (ok,) = address(tmc).call{gas: g}(abi.encodeCall(TMC.expire, (taskId)));
        } else {
            vm.prank(requester);
            (ok,) = address(tmc).call{gas: g}(abi.encodeCall(TMC.withdrawTask, (taskId)));
        }
        UMC.Worker memory w = umc.getWorker(who);
        bytes memory r = abi.encode(ok, uint256(w.failedTasks), uint256(w.activeTasks));
        assembly ("memory-safe") {
            revert(add(r, 0x20), mload(r))
        }
    }

    // ================================================================ quorum

    /// @notice 2-of-3: one vote does nothing, the second executes, the worker is paid exactly once.
    function test_quorum_happyPath() public {
        uint256 taskId = _posted();
        vm.expectEmit(address(tmc));
        emit TMC.Voted(taskId, oracle, TMC.Ballot.Assign, 1, worker, PRICE, 1);
        _voteAssign(oracle, taskId, worker, PRICE);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        assertEq(tmc.assignSupport(taskId, worker, PRICE), 1);
        vm.expectEmit(address(tmc));
        emit TMC.Voted(taskId, oracle3, TMC.Ballot.Assign, 1, worker, PRICE, 2);
        vm.expectEmit(address(tmc));
        emit TMC.TaskAssigned(taskId, worker, PRICE, 1);
        _voteAssign(oracle3, taskId, worker, PRICE);
        assertTrue(_status(taskId) == TMC.Status.Assigned);

        _submit(taskId, worker);
        _voteComplete(oracle2, taskId);
        assertTrue(_status(taskId) == TMC.Status.Submitted);
        assertEq(tmc.credits(worker), 0);
        assertEq(tmc.getTask(taskId).completeVotes, 2, "seat 1");

        vm.recordLogs();
        _voteComplete(oracle, taskId);
        Vm.Log[] memory logs = _logs();
        uint256 completedEvents;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == TMC.TaskCompleted.selector) completedEvents++;
        }
        assertEq(completedEvents, 1);
        assertTrue(_status(taskId) == TMC.Status.Completed);
        assertEq(tmc.credits(worker), PRICE);
        assertEq(tmc.credits(requester), BUDGET - PRICE);

        // The third oracle's late vote changes nothing.
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Completed));
        _voteComplete(oracle3, taskId);
        assertEq(tmc.credits(worker), PRICE, "paid once");
    }

    /// @notice 2-of-3 with `oracle` dishonest: it votes to complete a junk result, the two honest oracles
    ///         vote to fail it. The task fails, the requester is refunded, the worker slashed, and the
    ///         dissent is on the record as a `Voted` event.
    function test_quorum_dishonestCompleteIsOutvoted() public {
        uint256 taskId = _assigned();
        vm.prank(worker);
        tmc.submitResult(taskId, MODEL_CID, JUNK);

        vm.expectEmit(address(tmc));
        emit TMC.Voted(taskId, oracle, TMC.Ballot.Complete, 1, worker, PRICE, 1);
        _voteComplete(oracle, taskId);
        _voteFail(oracle2, taskId, false);
        assertTrue(_status(taskId) == TMC.Status.Submitted, "one fail vote is not enough either");
        vm.expectEmit(address(tmc));
        emit TMC.Voted(taskId, oracle3, TMC.Ballot.Fail, 1, worker, PRICE, 2);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, false);
        _voteFail(oracle3, taskId, false);

        assertTrue(_status(taskId) == TMC.Status.Failed);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(tmc.credits(worker), 0);
        assertEq(umc.credits(requester), 0.2 ether);
        assertEq(umc.stakeOf(worker), 1.8 ether);
    }

    /// @notice One `reopen = false` among the fail votes keeps the task closed.
    function test_quorum_anyFailVoteCanKeepTheTaskClosed() public {
        uint256 taskId = _submitted();
        _voteFail(oracle, taskId, false);
        _voteFail(oracle2, taskId, true);
        assertTrue(_status(taskId) == TMC.Status.Failed);
        uint256 other = _post(requester, BUDGET, DEADLINE);
        _assign(other, worker2);
        _voteFail(oracle, other, true);
        _voteFail(oracle2, other, true);
        assertTrue(_status(other) == TMC.Status.Posted, "reopened when all agree");
    }

    function test_quorum_alreadyVoted() public {
        uint256 taskId = _posted();
        _voteAssign(oracle, taskId, worker, PRICE);
        vm.expectRevert(abi.encodeWithSelector(TMC.AlreadyVoted.selector, taskId, oracle));
        _voteAssign(oracle, taskId, worker, PRICE);
        // Another proposal may be backed too (the first may no longer be assignable); the first one
        // to reach the quorum is carried out.
        _voteAssign(oracle, taskId, worker2, PRICE2);
        assertEq(tmc.assignSupport(taskId, worker2, PRICE2), 1);
        _voteAssign(oracle2, taskId, worker, PRICE);
        assertEq(tmc.getTask(taskId).worker, worker);
        _submit(taskId, worker);
        _voteComplete(oracle, taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.AlreadyVoted.selector, taskId, oracle));
        _voteComplete(oracle, taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.AlreadyVoted.selector, taskId, oracle));
        _voteFail(oracle, taskId, true);
    }

    /// @notice Different proposals (worker or maximum) do not add up.
    function test_quorum_differentProposalsDoNotAddUp() public {
        uint256 taskId = _posted();
        _voteAssign(oracle, taskId, worker, PRICE);
        _voteAssign(oracle2, taskId, worker, BUDGET);
        _voteAssign(oracle3, taskId, worker2, PRICE2);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        assertEq(tmc.assignSupport(taskId, worker, PRICE), 1);
        assertEq(tmc.assignSupport(taskId, worker, BUDGET), 2);
    }

    /// @notice Votes cast under a replaced oracle set no longer count.
    function test_quorum_votesOfAReplacedSetDoNotCount() public {
        uint256 taskId = _submitted();
        uint256 posted = _posted();
        _voteComplete(oracle, taskId);
        _voteAssign(oracle, posted, worker2, PRICE2);
        address oracle4 = makeAddr("oracle4");
        address[] memory next = new address[](3);
        next[0] = oracle4;
        next[1] = oracle2;
        next[2] = oracle;
        _govern(tmc, abi.encodeCall(TMC.setOracles, (next, 2)));

        vm.expectEmit(address(tmc));
        emit TMC.Voted(taskId, oracle2, TMC.Ballot.Complete, 1, worker, PRICE, 1);
        _voteComplete(oracle2, taskId);
        assertTrue(_status(taskId) == TMC.Status.Submitted, "the old vote did not count");
        assertEq(tmc.assignSupport(posted, worker2, PRICE2), 0);
        _voteAssign(oracle2, posted, worker2, PRICE2);
        assertTrue(_status(posted) == TMC.Status.Posted, "the old vote did not count");

        // `oracle` sits in the new set too and may vote again, with its new seat.
        _voteComplete(oracle, taskId);
        assertTrue(_status(taskId) == TMC.Status.Completed);
        assertEq(tmc.credits(worker), PRICE);
    }

    function test_quorum_validation() public {
        address[] memory none = new address[](0);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidOracleSet.selector, "1 to 32 oracles"));
        new TMC(admin, GOVERNANCE_DELAY, umc, none, 1, _terms());
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidOracleSet.selector, "1 to 32 oracles"));
        new TMC(admin, GOVERNANCE_DELAY, umc, _many(33), 17, _terms());

        string memory majority = "the quorum must be a majority of the oracles";
        uint8[6] memory sizes = [1, 2, 3, 3, 4, 32];
        uint8[6] memory bad = [0, 1, 1, 4, 2, 16];
        for (uint256 i; i < sizes.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(TMC.InvalidOracleSet.selector, majority));
            new TMC(admin, GOVERNANCE_DELAY, umc, _many(sizes[i]), bad[i], _terms());
        }
        uint8[5] memory good = [1, 2, 2, 3, 17];
        uint8[5] memory goodSizes = [1, 2, 3, 4, 32];
        for (uint256 i; i < good.length; ++i) {
            TMC t = new TMC(admin, GOVERNANCE_DELAY, umc, _many(goodSizes[i]), good[i], _terms());
            assertEq(t.quorum(), good[i]);
            assertEq(t.oracles().length, goodSizes[i]);
        }
        assertEq(new TMC(admin, GOVERNANCE_DELAY, umc, _many(32), 32, _terms()).seatOf(_many(32)[31]), 31);

        address[] memory twice = _many(3);
        twice[2] = twice[0];
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidOracleSet.selector, "an oracle is listed twice"));
        new TMC(admin, GOVERNANCE_DELAY, umc, twice, 2, _terms());
        address[] memory zero = _many(3);
        zero[1] = address(0);
        vm.expectRevert(Consortium.ZeroAddress.selector);
        new TMC(admin, GOVERNANCE_DELAY, umc, zero, 2, _terms());

        // The same rules through governance.
        bytes memory call = abi.encodeCall(TMC.setOracles, (_many(4), 2));
        vm.warp(_schedule(tmc, call));
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidOracleSet.selector, majority));
        tmc.executeChange(call);
        assertEq(tmc.quorum(), 2);
        assertEq(tmc.oracleEpoch(), 1);
    }

    function _many(uint256 n) internal pure returns (address[] memory o) {
        o = new address[](n);
        for (uint256 i; i < n; ++i) {
            o[i] = address(uint160(0x1000 + i));
        }
    }

    // ================================================================ governance

    function test_governance_governedFunctionsRevertWhenCalledDirectly() public {
        address[4] memory callers = [admin, stranger, oracle, address(this)];
        for (uint256 i; i < callers.length; ++i) {
            address c = callers[i];
            vm.startPrank(c);
            vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, c));
            tmc.setOracles(_three(), 2);
            vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, c));
            tmc.setTerms(_terms());
            vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, c));
            umc.setMarket(c);
            vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, c));
            umc.setParameters(0, 0);
            vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, c));
            mmc.setGovernanceDelay(0);
            vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, c));
            tmc.transferAdmin(c);
            vm.stopPrank();
        }
    }

    function test_governance_scheduleWaitExecute() public {
        bytes memory call = abi.encodeCall(UMC.setParameters, (3 ether, 1 days));
        bytes32 id = keccak256(call);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotAdmin.selector, stranger));
        vm.prank(stranger);
        umc.scheduleChange(call);

        vm.expectEmit(address(umc));
        emit Consortium.ChangeScheduled(id, call, START + GOVERNANCE_DELAY);
        vm.prank(admin);
        (bytes32 got, uint256 readyAt) = umc.scheduleChange(call);
        assertEq(got, id);
        assertEq(readyAt, START + GOVERNANCE_DELAY);
        assertEq(umc.scheduledChanges(id), readyAt);
        vm.expectRevert(abi.encodeWithSelector(Consortium.AlreadyScheduled.selector, id));
        vm.prank(admin);
        umc.scheduleChange(call);

        vm.warp(readyAt - 1);
        vm.expectRevert(abi.encodeWithSelector(Consortium.ChangeNotReady.selector, id, readyAt));
        vm.prank(admin);
        umc.executeChange(call);

        vm.warp(readyAt);
        vm.expectEmit(address(umc));
        emit Consortium.ChangeExecuted(id, call);
        vm.expectEmit(address(umc));
        emit UMC.ParametersSet(3 ether, 1 days);
        vm.prank(worker); // anyone
        umc.executeChange(call);
        assertEq(umc.minStake(), 3 ether);
        assertEq(umc.scheduledChanges(id), 0);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotScheduled.selector, id));
        umc.executeChange(call);
    }

    function test_governance_cancel() public {
        bytes memory call = abi.encodeCall(TMC.setTerms, (_terms()));
        bytes32 id = keccak256(call);
        uint256 readyAt = _schedule(tmc, call);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotAdmin.selector, stranger));
        vm.prank(stranger);
        tmc.cancelChange(id);
        vm.expectEmit(address(tmc));
        emit Consortium.ChangeCancelled(id);
        vm.prank(admin);
        tmc.cancelChange(id);
        assertEq(tmc.scheduledChanges(id), 0);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotScheduled.selector, id));
        vm.prank(admin);
        tmc.cancelChange(id);
        vm.warp(readyAt);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotScheduled.selector, id));
        tmc.executeChange(call);
        assertEq(tmc.termsVersion(), 1);
        // Scheduled again, it waits a full delay from then.
        vm.prank(admin);
        (, uint256 again) = tmc.scheduleChange(call);
        assertEq(again, readyAt + GOVERNANCE_DELAY);
    }

    // ================================================================ log helpers

    function _logs() internal returns (Vm.Log[] memory logs) {
        logs = vm.getRecordedLogs();
    }
}
