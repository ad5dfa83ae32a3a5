// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {Receiver} from "./utils/Receiver.sol";
import {Consortium} from "../contracts/Consortium.sol";
import {UMC} from "../contracts/UMC.sol";
import {TMC} from "../contracts/TMC.sol";

/// @title TMC unit and fuzz tests
/// @notice The task lifecycle with escrow, against a real UMC, with the fixture's 1-of-1 oracle set (the
///         2-of-3 voting rules are in Audit.t.sol): `worker` (price 0.3 ether) and `worker2` (price
///         0.5 ether) are registered with 2 ether of stake each.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
contract TMCTest is Fixture {
    uint256 internal constant STAKE = 2 ether;
    uint96 internal constant PRICE = 0.3 ether;
    uint96 internal constant PRICE2 = 0.5 ether;
    uint256 internal constant BUDGET = 1 ether;
    uint256 internal constant DEADLINE = START + 3 days;

    function setUp() public override {
        super.setUp();
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

    // ================================================================ constructor and governance

    function test_constructor_setsState() public view {
        assertEq(tmc.admin(), admin);
        assertEq(tmc.governanceDelay(), GOVERNANCE_DELAY);
        assertEq(address(tmc.umc()), address(umc));
        assertEq(tmc.taskCount(), 0);
        assertTrue(tmc.isOracle(oracle));
        assertFalse(tmc.isOracle(stranger));
        assertEq(tmc.seatOf(oracle), 0);
        assertEq(tmc.oracles().length, 1);
        assertEq(tmc.oracles()[0], oracle);
        assertEq(tmc.quorum(), 1);
        assertEq(tmc.oracleEpoch(), 1);
        assertEq(tmc.termsVersion(), 1);
        TMC.Terms memory terms = tmc.termsAt(1);
        assertEq(terms.verificationWindow, VERIFICATION_WINDOW);
        assertEq(terms.maxAttempts, MAX_ATTEMPTS);
        assertEq(terms.slashBps, SLASH_BPS);
        assertEq(terms.reputationFloor, REPUTATION_FLOOR);
        assertEq(tmc.MAX_ORACLES(), 32);
        assertEq(tmc.MAX_SLASH_BPS(), 5_000);
    }

    function test_constructor_emitsEvents() public {
        address[] memory one = new address[](1);
        one[0] = oracle;
        vm.expectEmit();
        emit Consortium.AdminTransferred(address(0), admin);
        vm.expectEmit();
        emit Consortium.GovernanceDelaySet(GOVERNANCE_DELAY);
        vm.expectEmit();
        emit TMC.OraclesSet(one, 1, 1);
        vm.expectEmit();
        emit TMC.TermsSet(1, VERIFICATION_WINDOW, MAX_ATTEMPTS, SLASH_BPS, REPUTATION_FLOOR);
        new TMC(admin, GOVERNANCE_DELAY, umc, one, 1, _terms());
    }

    function test_constructor_revertsOnZeroAdmin() public {
        vm.expectRevert(Consortium.ZeroAddress.selector);
        new TMC(address(0), GOVERNANCE_DELAY, umc, oracleSet, 1, _terms());
    }

    function test_constructor_revertsOnZeroUmc() public {
        vm.expectRevert(Consortium.ZeroAddress.selector);
        new TMC(admin, GOVERNANCE_DELAY, UMC(address(0)), oracleSet, 1, _terms());
    }

    function test_constructor_revertsOnZeroMaxAttempts() public {
        TMC.Terms memory terms = _terms();
        terms.maxAttempts = 0;
        vm.expectRevert(abi.encodeWithSelector(TMC.ZeroValue.selector, "maxAttempts"));
        new TMC(admin, GOVERNANCE_DELAY, umc, oracleSet, 1, terms);
    }

    function test_constructor_revertsOnSlashAboveMax() public {
        TMC.Terms memory terms = _terms();
        terms.slashBps = 5_001;
        vm.expectRevert(abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "slashBps", 5_001, 5_000));
        new TMC(admin, GOVERNANCE_DELAY, umc, oracleSet, 1, terms);
    }

    function test_constructor_revertsOnGovernanceDelayAboveMax() public {
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "governanceDelay", 30 days + 1, 30 days)
        );
        new TMC(admin, 30 days + 1, umc, oracleSet, 1, _terms());
    }

    function test_setOracles_replacesTheSet() public {
        address[] memory next = new address[](1);
        next[0] = stranger;
        bytes memory call = abi.encodeCall(TMC.setOracles, (next, 1));
        vm.warp(_schedule(tmc, call));
        vm.expectEmit(address(tmc));
        emit TMC.OraclesSet(next, 1, 2);
        tmc.executeChange(call);
        assertTrue(tmc.isOracle(stranger));
        assertFalse(tmc.isOracle(oracle));
        assertEq(tmc.oracleEpoch(), 2);

        uint256 taskId = _post(requester, BUDGET, vm.getBlockTimestamp() + 1 days);
        vm.expectRevert(abi.encodeWithSelector(TMC.NotOracle.selector, oracle));
        _voteAssign(oracle, taskId, worker, PRICE);
        _voteAssign(stranger, taskId, worker, PRICE);
        assertTrue(_status(taskId) == TMC.Status.Assigned);
    }

    function test_setOracles_revertsWhenCalledDirectly() public {
        address[] memory next = new address[](1);
        next[0] = stranger;
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        tmc.setOracles(next, 1);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, oracle));
        vm.prank(oracle);
        tmc.setOracles(next, 1);
    }

    function test_setOracles_revertsOnZeroAddress() public {
        address[] memory next = new address[](1);
        bytes memory call = abi.encodeCall(TMC.setOracles, (next, 1));
        vm.prank(admin);
        tmc.scheduleChange(call);
        vm.warp(START + GOVERNANCE_DELAY);
        vm.expectRevert(Consortium.ZeroAddress.selector);
        tmc.executeChange(call);
        assertTrue(tmc.isOracle(oracle), "the set is unchanged");
    }

    function test_setTerms_newVersionForNewTasks() public {
        TMC.Terms memory terms =
            TMC.Terms({verificationWindow: 2 days, maxAttempts: 1, slashBps: 0, reputationFloor: 1 ether});
        bytes memory call = abi.encodeCall(TMC.setTerms, (terms));
        vm.warp(_schedule(tmc, call));
        vm.expectEmit(address(tmc));
        emit TMC.TermsSet(2, 2 days, 1, 0, 1 ether);
        tmc.executeChange(call);
        assertEq(tmc.termsVersion(), 2);
        assertEq(tmc.termsAt(2).verificationWindow, 2 days);
        assertEq(tmc.termsAt(2).maxAttempts, 1);
        assertEq(tmc.termsAt(1).maxAttempts, MAX_ATTEMPTS, "earlier versions are kept");
        uint256 taskId = _post(requester, BUDGET, vm.getBlockTimestamp() + 1 days);
        assertEq(tmc.getTask(taskId).terms, 2);
        assertEq(tmc.termsOf(taskId).reputationFloor, 1 ether);
    }

    function test_setTerms_revertsWhenCalledDirectly() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        tmc.setTerms(_terms());
    }

    function test_setTerms_revertsOnZeroMaxAttempts() public {
        TMC.Terms memory terms = _terms();
        terms.maxAttempts = 0;
        bytes memory call = abi.encodeCall(TMC.setTerms, (terms));
        vm.prank(admin);
        tmc.scheduleChange(call);
        vm.warp(START + GOVERNANCE_DELAY);
        vm.expectRevert(abi.encodeWithSelector(TMC.ZeroValue.selector, "maxAttempts"));
        tmc.executeChange(call);
        assertEq(tmc.termsVersion(), 1);
    }

    // ================================================================ postTask

    function test_postTask_escrowsBudget() public {
        vm.expectEmit(address(tmc));
        emit TMC.TaskPosted(1, requester, TMC.Kind.Training, BUDGET, 195_000, uint40(DEADLINE), SPEC_CID);
        uint256 taskId = _posted();

        assertEq(taskId, 1);
        assertEq(tmc.taskCount(), 1);
        TMC.Task memory t = tmc.getTask(taskId);
        assertEq(t.requester, requester);
        assertEq(t.budget, BUDGET);
        assertEq(t.worker, address(0));
        assertEq(t.deadline, DEADLINE);
        assertTrue(t.status == TMC.Status.Posted);
        assertTrue(t.kind == TMC.Kind.Training);
        assertEq(t.attempts, 0);
        assertTrue(t.targetMilli == 195_000);
        assertEq(t.price, 0);
        assertEq(t.submittedBlock, 0);
        assertEq(t.terms, 1, "posted under the current terms");

        assertEq(tmc.escrowOf(taskId), BUDGET);
        assertEq(address(tmc).balance, BUDGET);
        assertEq(requester.balance, 1_000 ether - BUDGET);
    }

    function test_postTask_idsIncrementAndFieldsAreKept() public {
        _posted();
        vm.expectEmit(address(tmc));
        emit TMC.TaskPosted(2, requester2, TMC.Kind.ModelSharing, 5 wei, -1_500, uint40(START + 1), "cid2");
        vm.prank(requester2);
        uint256 taskId = tmc.postTask{value: 5 wei}("cid2", TMC.Kind.ModelSharing, -1_500, uint40(START + 1));
        assertEq(taskId, 2);
        assertEq(tmc.taskCount(), 2);
        TMC.Task memory t = tmc.getTask(taskId);
        assertEq(t.requester, requester2);
        assertTrue(t.kind == TMC.Kind.ModelSharing);
        assertTrue(t.targetMilli == -1_500);
        assertEq(address(tmc).balance, BUDGET + 5);
    }

    function test_postTask_revertsOnZeroBudget() public {
        vm.expectRevert(TMC.ZeroBudget.selector);
        _post(requester, 0, DEADLINE);
    }

    function test_postTask_revertsWhenBudgetExceedsUint80() public {
        uint256 tooMuch = uint256(type(uint80).max) + 1;
        vm.deal(requester, tooMuch);
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "budget", tooMuch, uint256(type(uint80).max))
        );
        _post(requester, tooMuch, DEADLINE);
    }

    function test_postTask_acceptsUint80MaxBudget() public {
        vm.deal(requester, type(uint80).max);
        uint256 taskId = _post(requester, type(uint80).max, DEADLINE);
        assertEq(tmc.escrowOf(taskId), type(uint80).max);
    }

    function test_postTask_revertsOnDeadlineNow() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlineInPast.selector, START));
        _post(requester, BUDGET, START);
    }

    function test_postTask_revertsOnDeadlineInPast() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlineInPast.selector, START - 1));
        _post(requester, BUDGET, START - 1);
    }

    function test_postTask_revertsOnEmptySpecCid() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.EmptyCid.selector, "specCid"));
        vm.prank(requester);
        tmc.postTask{value: BUDGET}("", TMC.Kind.Training, 0, uint40(DEADLINE));
    }

    function testFuzz_postTask(uint256 budget, uint256 deadlineOffset) public {
        budget = bound(budget, 1, type(uint80).max);
        deadlineOffset = bound(deadlineOffset, 1, type(uint40).max - START);
        vm.deal(requester, budget);
        uint256 taskId = _post(requester, budget, START + deadlineOffset);

        TMC.Task memory t = tmc.getTask(taskId);
        assertEq(t.budget, budget);
        assertEq(t.deadline, START + deadlineOffset);
        assertTrue(t.status == TMC.Status.Posted);
        assertEq(tmc.escrowOf(taskId), budget);
        assertEq(address(tmc).balance, budget);
        assertEq(requester.balance, 0);
    }

    function testFuzz_postTask_rejectsPastDeadline(uint256 deadline) public {
        deadline = bound(deadline, 0, START);
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlineInPast.selector, deadline));
        _post(requester, BUDGET, deadline);
    }

    // ================================================================ cancel

    function test_cancel_refundsRequester() public {
        uint256 taskId = _posted();
        vm.expectEmit(address(tmc));
        emit TMC.TaskCancelled(taskId, BUDGET);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET);
        vm.prank(requester);
        tmc.cancel(taskId);

        assertTrue(_status(taskId) == TMC.Status.Cancelled);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(address(tmc).balance, BUDGET);

        vm.prank(requester);
        tmc.withdraw();
        assertEq(requester.balance, 1_000 ether);
        assertEq(address(tmc).balance, 0);
    }

    function test_cancel_afterDeadlineStillAllowed() public {
        uint256 taskId = _posted();
        vm.warp(DEADLINE + 1 days);
        vm.prank(requester);
        tmc.cancel(taskId);
        assertEq(tmc.credits(requester), BUDGET);
    }

    function test_cancel_revertsForNonRequester() public {
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.NotRequester.selector, taskId, stranger));
        vm.prank(stranger);
        tmc.cancel(taskId);
    }

    function test_cancel_revertsWhenAssigned() public {
        uint256 taskId = _assigned();
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Assigned));
        vm.prank(requester);
        tmc.cancel(taskId);
    }

    function test_cancel_revertsTwice() public {
        uint256 taskId = _posted();
        vm.prank(requester);
        tmc.cancel(taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Cancelled));
        vm.prank(requester);
        tmc.cancel(taskId);
    }

    function test_cancel_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 0));
        vm.prank(requester);
        tmc.cancel(0);
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 99));
        vm.prank(requester);
        tmc.cancel(99);
    }

    function test_cancel_reopenedTaskRefundsWholeBudget() public {
        uint256 taskId = _assigned();
        _fail(taskId, true);
        vm.prank(requester);
        tmc.cancel(taskId);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(umc.credits(requester), 0.2 ether, "the slash stays the requester's");
    }

    // ================================================================ withdraw a task (requester)

    /// @dev The fee TMC credits the worker of an assigned task its requester withdraws.
    function _fee(uint256 price) internal pure returns (uint256) {
        return price * 1_000 / 10_000;
    }

    function _withdrawTask(address from, uint256 taskId) internal {
        vm.prank(from);
        tmc.withdrawTask(taskId);
    }

    function test_withdrawTask_feeIsTenPercent() public view {
        assertEq(tmc.WITHDRAWAL_FEE_BPS(), 1_000);
        assertEq(_fee(PRICE), 0.03 ether);
    }

    function test_withdrawTask_postedIsCancel() public {
        uint256 taskId = _posted();
        vm.expectEmit(address(tmc));
        emit TMC.TaskCancelled(taskId, BUDGET);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET);
        vm.recordLogs();
        _withdrawTask(requester, taskId);
        assertEq(vm.getRecordedLogs().length, 2, "TaskCancelled and Credited only");

        assertTrue(_status(taskId) == TMC.Status.Cancelled);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(address(tmc).balance, BUDGET);

        vm.prank(requester);
        tmc.withdraw();
        assertEq(requester.balance, 1_000 ether);
        assertEq(address(tmc).balance, 0);
    }

    function test_withdrawTask_postedAfterDeadlineLikeCancel() public {
        uint256 taskId = _posted();
        vm.warp(DEADLINE + 1 days);
        _withdrawTask(requester, taskId);
        assertTrue(_status(taskId) == TMC.Status.Cancelled);
        assertEq(tmc.credits(requester), BUDGET);
    }

    function test_withdrawTask_assignedPaysFeeAndReleasesWorker() public {
        uint256 taskId = _assigned();
        uint256 fee = _fee(PRICE);
        UMC.Worker memory before = umc.getWorker(worker);
        assertEq(before.activeTasks, 1);

        vm.expectEmit(address(tmc));
        emit TMC.TaskWithdrawn(taskId, worker, fee, BUDGET - fee);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(worker, fee);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET - fee);
        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Released, 0);
        vm.recordLogs();
        _withdrawTask(requester, taskId);
        // TaskWithdrawn, two Credited, TaskEnded: no ReputationChanged, no StakeSlashed.
        assertEq(vm.getRecordedLogs().length, 4);

        TMC.Task memory t = tmc.getTask(taskId);
        assertTrue(t.status == TMC.Status.Cancelled);
        assertEq(t.worker, worker, "the record keeps who was released");
        assertEq(t.price, PRICE);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(worker), fee);
        assertEq(tmc.credits(requester), BUDGET - fee);
        assertEq(tmc.credits(worker) + tmc.credits(requester), BUDGET);
        assertEq(address(tmc).balance, BUDGET);

        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.stake, before.stake, "no slash");
        assertEq(w.reputation, before.reputation, "no reputation change");
        assertEq(w.activeTasks, 0, "released");
        assertEq(w.completedTasks, before.completedTasks);
        assertEq(w.failedTasks, before.failedTasks);
        assertEq(umc.credits(requester), 0, "nothing slashed to the requester");

        uint256 workerBefore = worker.balance;
        vm.prank(worker);
        assertEq(tmc.withdraw(), fee);
        vm.prank(requester);
        assertEq(tmc.withdraw(), BUDGET - fee);
        assertEq(worker.balance, workerBefore + fee);
        assertEq(requester.balance, 1_000 ether - fee);
        assertEq(address(tmc).balance, 0);
    }

    function test_withdrawTask_assignedAtDeadline() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE);
        _withdrawTask(requester, taskId);
        assertTrue(_status(taskId) == TMC.Status.Cancelled);
        assertEq(tmc.credits(worker), _fee(PRICE));
    }

    function test_withdrawTask_assignedAfterDeadlineRevertsSoOnlyExpiryApplies() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlinePassed.selector, taskId, DEADLINE));
        _withdrawTask(requester, taskId);
        assertTrue(_status(taskId) == TMC.Status.Assigned);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        tmc.expire(taskId);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(tmc.credits(worker), 0);
    }

    function test_withdrawTask_feeIsOnTheAgreedPrice() public {
        uint256 taskId = _assigned();
        _setPrice(worker, 0.9 ether);
        _withdrawTask(requester, taskId);
        assertEq(tmc.credits(worker), _fee(PRICE));
        assertEq(tmc.credits(requester), BUDGET - _fee(PRICE));
    }

    function test_withdrawTask_freeWorkerGetsNoFee() public {
        _setPrice(worker, 0);
        uint256 taskId = _assigned();
        vm.expectEmit(address(tmc));
        emit TMC.TaskWithdrawn(taskId, worker, 0, BUDGET);
        vm.recordLogs();
        _withdrawTask(requester, taskId);
        // TaskWithdrawn, Credited(requester), TaskEnded: no zero Credited for the worker.
        assertEq(vm.getRecordedLogs().length, 3);
        assertEq(tmc.credits(worker), 0);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(umc.getWorker(worker).activeTasks, 0);
    }

    function test_withdrawTask_releasesOnlyThatTask() public {
        uint256 a = _assigned();
        uint256 b = _post(requester2, 2 ether, DEADLINE);
        _assign(b, worker);
        assertEq(umc.getWorker(worker).activeTasks, 2);
        _withdrawTask(requester, a);
        assertEq(umc.getWorker(worker).activeTasks, 1);
        assertTrue(_status(b) == TMC.Status.Assigned);
        assertEq(tmc.escrowOf(b), 2 ether);
        _submit(b, worker);
        _complete(b);
        assertEq(tmc.credits(worker), _fee(PRICE) + PRICE);
        assertEq(umc.getWorker(worker).activeTasks, 0);
    }

    function test_withdrawTask_releasedWorkerCanUnstake() public {
        _preset(umc, abi.encodeCall(UMC.setParameters, (MIN_STAKE, 1 hours)));
        uint256 taskId = _assigned();
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        vm.warp(START + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(UMC.HasActiveTasks.selector, worker, 1));
        vm.prank(worker);
        umc.withdrawStake();
        _withdrawTask(requester, taskId);
        vm.prank(worker);
        assertEq(umc.withdrawStake(), STAKE, "the whole stake: nothing was slashed");
    }

    function test_withdrawTask_reopenedTask() public {
        uint256 taskId = _assigned();
        _fail(taskId, true);
        _assign(taskId, worker2);
        vm.expectEmit(address(tmc));
        emit TMC.TaskWithdrawn(taskId, worker2, _fee(PRICE2), BUDGET - _fee(PRICE2));
        _withdrawTask(requester, taskId);
        assertEq(tmc.credits(worker2), _fee(PRICE2));
        assertEq(tmc.credits(worker), 0, "the failed worker earns nothing");
        assertEq(tmc.credits(requester), BUDGET - _fee(PRICE2));
        assertEq(umc.credits(requester), 0.2 ether, "the earlier slash stays the requester's");
        assertEq(umc.getWorker(worker2).activeTasks, 0);
    }

    // ---------------------------------------------------------------- withdraw a task: attacks

    function test_withdrawTask_revertsForNonRequester() public {
        uint256 posted = _posted();
        uint256 assigned = _assigned();
        address[4] memory others = [stranger, oracle, worker, admin];
        for (uint256 i; i < others.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(TMC.NotRequester.selector, posted, others[i]));
            _withdrawTask(others[i], posted);
            vm.expectRevert(abi.encodeWithSelector(TMC.NotRequester.selector, assigned, others[i]));
            _withdrawTask(others[i], assigned);
        }
        vm.expectRevert(abi.encodeWithSelector(TMC.NotRequester.selector, assigned, requester2));
        _withdrawTask(requester2, assigned);
        assertTrue(_status(posted) == TMC.Status.Posted);
        assertTrue(_status(assigned) == TMC.Status.Assigned);
        assertEq(address(tmc).balance, 2 * BUDGET);
        assertEq(tmc.credits(worker), 0);
    }

    function test_withdrawTask_revertsWhenSubmitted() public {
        uint256 taskId = _submitted();
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Submitted));
        _withdrawTask(requester, taskId);
        // Verification still decides.
        _complete(taskId);
        assertEq(tmc.credits(worker), PRICE);
    }

    function test_withdrawTask_revertsTwice() public {
        uint256 taskId = _assigned();
        _withdrawTask(requester, taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Cancelled));
        _withdrawTask(requester, taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Cancelled));
        vm.prank(requester);
        tmc.cancel(taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Cancelled));
        _fail(taskId, false);
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Cancelled));
        tmc.expire(taskId);
        assertEq(tmc.credits(worker), _fee(PRICE), "paid once");
        assertEq(tmc.credits(requester), BUDGET - _fee(PRICE), "refunded once");

        uint256 posted = _post(requester, BUDGET, DEADLINE + 2 days);
        _withdrawTask(requester, posted);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, posted, TMC.Status.Cancelled));
        _withdrawTask(requester, posted);
    }

    function test_withdrawTask_revertsWhenSettled() public {
        uint256 completed = _submitted();
        _complete(completed);
        uint256 failed = _assigned();
        _fail(failed, false);
        uint256 expired = _posted();
        vm.warp(DEADLINE + 1);
        tmc.expire(expired);

        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, completed, TMC.Status.Completed));
        _withdrawTask(requester, completed);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, failed, TMC.Status.Failed));
        _withdrawTask(requester, failed);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, expired, TMC.Status.Expired));
        _withdrawTask(requester, expired);
    }

    function test_withdrawTask_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 0));
        _withdrawTask(requester, 0);
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 99));
        _withdrawTask(requester, 99);
    }

    // ---------------------------------------------------------------- withdraw a task: fuzz

    function testFuzz_withdrawTask_feePlusRefundIsBudget(uint256 budget, uint256 price) public {
        budget = bound(budget, 1, type(uint80).max);
        price = bound(price, 0, budget);
        vm.deal(requester, budget);
        _setPrice(worker, uint96(price));
        uint256 taskId = _post(requester, budget, DEADLINE);
        _assign(taskId, worker);
        _withdrawTask(requester, taskId);

        uint256 fee = tmc.credits(worker);
        assertEq(fee, price * tmc.WITHDRAWAL_FEE_BPS() / 10_000);
        assertLe(fee, price);
        assertEq(fee + tmc.credits(requester), budget, "fee + refund == budget");
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(address(tmc).balance, budget);
        assertEq(umc.getWorker(worker).activeTasks, 0);
        assertEq(umc.stakeOf(worker), STAKE);
        assertEq(umc.reputationOf(worker), 0, "a withdrawal moves no reputation");

        if (fee != 0) {
            vm.prank(worker);
            tmc.withdraw();
        }
        if (fee != budget) {
            vm.prank(requester);
            tmc.withdraw();
        }
        assertEq(address(tmc).balance, 0);
        assertEq(requester.balance, budget - fee);
    }

    /// @dev An assigned task, withdrawn at any time around its deadline: allowed up to it, then only expiry.
    function testFuzz_withdrawTask_deadline(uint256 warpBy) public {
        uint256 taskId = _assigned();
        uint256 t = bound(warpBy, START, DEADLINE + 2);
        vm.warp(t);
        if (t > DEADLINE) {
            vm.expectRevert(abi.encodeWithSelector(TMC.DeadlinePassed.selector, taskId, DEADLINE));
            _withdrawTask(requester, taskId);
            assertEq(tmc.escrowOf(taskId), BUDGET);
        } else {
            _withdrawTask(requester, taskId);
            assertEq(tmc.escrowOf(taskId), 0);
            assertEq(tmc.credits(worker), _fee(PRICE));
        }
    }

    // ================================================================ assign

    function test_assign_fixesWorkerAndPrice() public {
        uint256 taskId = _posted();
        // One oracle: its vote is the outcome, and TaskAssigned says so (no Voted event).
        vm.expectEmit(address(umc));
        emit UMC.TaskStarted(worker, 1);
        vm.expectEmit(address(tmc));
        emit TMC.TaskAssigned(taskId, worker, PRICE, 1);
        _assign(taskId, worker);

        TMC.Task memory t = tmc.getTask(taskId);
        assertTrue(t.status == TMC.Status.Assigned);
        assertEq(t.worker, worker);
        assertEq(t.price, PRICE);
        assertEq(t.attempts, 1);
        assertEq(tmc.escrowOf(taskId), BUDGET, "whole budget stays in escrow until settlement");
        assertEq(tmc.credits(requester), 0);
        assertEq(address(tmc).balance, BUDGET);
        assertEq(umc.getWorker(worker).activeTasks, 1);
    }

    function test_assign_atDeadline() public {
        uint256 taskId = _posted();
        vm.warp(DEADLINE);
        _assign(taskId, worker);
        assertTrue(_status(taskId) == TMC.Status.Assigned);
    }

    function test_assign_priceEqualToBudget() public {
        _setPrice(worker, uint96(BUDGET));
        uint256 taskId = _assigned();
        assertEq(tmc.getTask(taskId).price, BUDGET);
    }

    function test_assign_priceIsFixedForTheAttempt() public {
        uint256 taskId = _assigned();
        _setPrice(worker, 0.9 ether);
        _submit(taskId, worker);
        _complete(taskId);
        assertEq(tmc.credits(worker), PRICE);
        assertEq(tmc.credits(requester), BUDGET - PRICE);
    }

    function test_assign_revertsForNonOracle() public {
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.NotOracle.selector, requester));
        vm.prank(requester);
        tmc.assign(taskId, worker, PRICE);
    }

    function test_assign_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 7));
        _assign(7, worker);
    }

    function test_assign_revertsWhenAlreadyAssigned() public {
        uint256 taskId = _assigned();
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Assigned));
        _assign(taskId, worker2);
    }

    function test_assign_revertsAfterDeadline() public {
        uint256 taskId = _posted();
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlinePassed.selector, taskId, DEADLINE));
        _assign(taskId, worker);
    }

    function test_assign_revertsOnSelfAssignment() public {
        _register(requester, STAKE, PRICE);
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.SelfAssignment.selector, taskId, requester));
        _assign(taskId, requester);
    }

    function test_assign_revertsWhenPriceAboveBudget() public {
        _setPrice(worker, uint96(BUDGET + 1));
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.PriceAboveBudget.selector, taskId, BUDGET + 1, BUDGET));
        _assign(taskId, worker);
        // The whole call reverted, UMC's counter included.
        assertEq(umc.getWorker(worker).activeTasks, 0);
        assertTrue(_status(taskId) == TMC.Status.Posted);
    }

    function test_assign_revertsWhenPriceAboveMax() public {
        _setPrice(worker, uint96(BUDGET));
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.PriceAboveMax.selector, taskId, BUDGET, PRICE));
        _assignAt(taskId, worker, PRICE);
        assertEq(umc.getWorker(worker).activeTasks, 0);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        // At (or below) the maximum the oracles accepted, it goes through at the worker's price.
        _setPrice(worker, PRICE - 1);
        _assignAt(taskId, worker, PRICE);
        assertEq(tmc.getTask(taskId).price, PRICE - 1);
    }

    function test_assign_revertsForUnregisteredWorker() public {
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        _assign(taskId, stranger);
    }

    function test_assign_revertsForUnderstakedWorker() public {
        _preset(umc, abi.encodeCall(UMC.setParameters, (3 ether, COOLDOWN)));
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, STAKE, 3 ether));
        _assign(taskId, worker);
    }

    function test_assign_revertsWhenTmcIsNotMarket() public {
        _preset(umc, abi.encodeCall(UMC.setMarket, (stranger)));
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, address(tmc)));
        _assign(taskId, worker);
    }

    // ================================================================ submitResult

    function test_submitResult_recordsBlock() public {
        uint256 taskId = _assigned();
        vm.roll(4_242);
        vm.expectEmit(address(tmc));
        emit TMC.ResultSubmitted(taskId, worker, MODEL_CID, RESULT_HASH);
        _submit(taskId, worker);
        TMC.Task memory t = tmc.getTask(taskId);
        assertTrue(t.status == TMC.Status.Submitted);
        assertEq(t.submittedBlock, 4_242);
        assertEq(tmc.escrowOf(taskId), BUDGET);
    }

    function test_submitResult_atDeadline() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE);
        _submit(taskId, worker);
        assertTrue(_status(taskId) == TMC.Status.Submitted);
    }

    function test_submitResult_revertsForOtherAccount() public {
        uint256 taskId = _assigned();
        vm.expectRevert(abi.encodeWithSelector(TMC.NotAssignedWorker.selector, taskId, worker2));
        _submit(taskId, worker2);
    }

    function test_submitResult_revertsOnUnassignedTask() public {
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.NotAssignedWorker.selector, taskId, worker));
        _submit(taskId, worker);
    }

    function test_submitResult_revertsTwice() public {
        uint256 taskId = _submitted();
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Submitted));
        _submit(taskId, worker);
    }

    function test_submitResult_revertsAfterCompletion() public {
        uint256 taskId = _submitted();
        _complete(taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Completed));
        _submit(taskId, worker);
    }

    function test_submitResult_revertsForWorkerFailedAndReopened() public {
        uint256 taskId = _assigned();
        _fail(taskId, true);
        vm.expectRevert(abi.encodeWithSelector(TMC.NotAssignedWorker.selector, taskId, worker));
        _submit(taskId, worker);
    }

    function test_submitResult_revertsAfterDeadline() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlinePassed.selector, taskId, DEADLINE));
        _submit(taskId, worker);
    }

    function test_submitResult_revertsOnEmptyModelCid() public {
        uint256 taskId = _assigned();
        vm.expectRevert(abi.encodeWithSelector(TMC.EmptyCid.selector, "modelCid"));
        vm.prank(worker);
        tmc.submitResult(taskId, "", RESULT_HASH);
    }

    function test_submitResult_revertsOnZeroResultHash() public {
        uint256 taskId = _assigned();
        vm.expectRevert(TMC.ZeroResultHash.selector);
        vm.prank(worker);
        tmc.submitResult(taskId, MODEL_CID, bytes32(0));
    }

    function test_submitResult_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 3));
        _submit(3, worker);
    }

    // ================================================================ complete

    function test_complete_paysWorkerAndRefundsRest() public {
        uint256 taskId = _submitted();
        vm.expectEmit(address(tmc));
        emit TMC.TaskCompleted(taskId, worker, PRICE, BUDGET - PRICE);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(worker, PRICE);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET - PRICE);
        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Succeeded, 0);
        vm.expectEmit(address(umc));
        emit UMC.ReputationChanged(worker, 0, 100_000);
        _complete(taskId);

        assertTrue(_status(taskId) == TMC.Status.Completed);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(worker), PRICE);
        assertEq(tmc.credits(requester), BUDGET - PRICE);
        assertEq(address(tmc).balance, BUDGET);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.reputation, 100_000);
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 1);
        assertEq(w.stake, STAKE);
    }

    function test_complete_priceEqualToBudgetRefundsNothing() public {
        _setPrice(worker, uint96(BUDGET));
        uint256 taskId = _submitted();
        vm.recordLogs();
        _complete(taskId);
        // TaskCompleted, Credited(worker), TaskEnded, ReputationChanged: no zero Credited for the
        // requester (and no Voted: one oracle's vote is the outcome).
        assertEq(vm.getRecordedLogs().length, 4);
        assertEq(tmc.credits(worker), BUDGET);
        assertEq(tmc.credits(requester), 0);
    }

    function test_complete_freeWorkerRefundsAll() public {
        _setPrice(worker, 0);
        uint256 taskId = _submitted();
        _complete(taskId);
        assertEq(tmc.credits(worker), 0);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(umc.reputationOf(worker), 0, "below the reputation floor: no reputation");
        assertEq(umc.getWorker(worker).completedTasks, 1);
    }

    function test_complete_reputationFloorIsInclusive() public {
        _setPrice(worker, REPUTATION_FLOOR - 1);
        uint256 below = _submitted();
        _complete(below);
        assertEq(umc.reputationOf(worker), 0);
        _setPrice(worker, REPUTATION_FLOOR);
        uint256 at = _submitted();
        _complete(at);
        assertEq(umc.reputationOf(worker), 100_000);
    }

    function test_complete_withinVerificationWindow() public {
        uint256 taskId = _submitted();
        vm.warp(DEADLINE + VERIFICATION_WINDOW);
        _complete(taskId);
        assertTrue(_status(taskId) == TMC.Status.Completed);
    }

    function test_complete_revertsAfterVerificationWindow() public {
        uint256 taskId = _submitted();
        vm.warp(DEADLINE + VERIFICATION_WINDOW + 1);
        vm.expectRevert(
            abi.encodeWithSelector(TMC.VerificationWindowClosed.selector, taskId, DEADLINE + VERIFICATION_WINDOW)
        );
        _complete(taskId);
        vm.expectRevert(
            abi.encodeWithSelector(TMC.VerificationWindowClosed.selector, taskId, DEADLINE + VERIFICATION_WINDOW)
        );
        _fail(taskId, false);
        // Only expiry remains: the requester is refunded, the worker keeps its stake and record.
        tmc.expire(taskId);
        assertTrue(_status(taskId) == TMC.Status.Expired);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(umc.stakeOf(worker), STAKE);
        assertEq(umc.getWorker(worker).failedTasks, 0);
    }

    function test_complete_revertsForNonOracle() public {
        uint256 taskId = _submitted();
        vm.expectRevert(abi.encodeWithSelector(TMC.NotOracle.selector, worker));
        vm.prank(worker);
        tmc.complete(taskId);
    }

    function test_complete_revertsWithoutSubmission() public {
        uint256 taskId = _assigned();
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Assigned));
        _complete(taskId);
    }

    function test_complete_revertsTwice() public {
        uint256 taskId = _submitted();
        _complete(taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Completed));
        _complete(taskId);
        assertEq(tmc.credits(worker), PRICE, "paid once");
    }

    function test_complete_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 1));
        _complete(1);
    }

    function test_complete_notBlockedByRefusingRequester() public {
        Receiver r = new Receiver();
        vm.deal(address(r), BUDGET);
        r.setMode(Receiver.Mode.Refuse);
        bytes memory ret = r.exec(
            address(tmc), BUDGET, abi.encodeCall(TMC.postTask, (SPEC_CID, TMC.Kind.Training, 0, uint40(DEADLINE)))
        );
        uint256 taskId = abi.decode(ret, (uint256));
        _assign(taskId, worker);
        _submit(taskId, worker);
        _complete(taskId);
        assertEq(tmc.credits(address(r)), BUDGET - PRICE);

        vm.prank(worker);
        tmc.withdraw();
        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), BUDGET - PRICE));
        r.exec(address(tmc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(tmc.credits(address(r)), BUDGET - PRICE);
        assertEq(address(tmc).balance, BUDGET - PRICE);
    }

    // ================================================================ full lifecycle

    function test_lifecycle_balancesToTheWei() public {
        uint256 requesterStart = requester.balance;
        uint256 workerStart = worker.balance;

        uint256 taskId = _posted();
        assertEq(requester.balance, requesterStart - BUDGET);
        assertEq(address(tmc).balance, BUDGET);

        _assign(taskId, worker);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        _submit(taskId, worker);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        _complete(taskId);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(worker) + tmc.credits(requester), BUDGET);

        vm.expectEmit(address(tmc));
        emit Consortium.Withdrawn(worker, PRICE);
        vm.prank(worker);
        assertEq(tmc.withdraw(), PRICE);
        vm.prank(requester);
        assertEq(tmc.withdraw(), BUDGET - PRICE);

        assertEq(worker.balance, workerStart + PRICE);
        assertEq(requester.balance, requesterStart - PRICE);
        assertEq(address(tmc).balance, 0);
        assertEq(tmc.credits(worker), 0);
        assertEq(tmc.credits(requester), 0);
    }

    function test_lifecycle_concurrentTasksOfOneWorker() public {
        uint256 a = _assigned();
        uint256 b = _post(requester2, 2 ether, DEADLINE);
        _assign(b, worker);
        assertEq(umc.getWorker(worker).activeTasks, 2);
        _submit(b, worker);
        _complete(b);
        _submit(a, worker);
        _fail(a, false);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 1);
        assertEq(w.failedTasks, 1);
        assertEq(w.reputation, 90_000); // 0 -> 100000 -> 90000
        assertEq(tmc.credits(worker), PRICE);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(tmc.credits(requester2), 2 ether - PRICE);
        assertEq(address(tmc).balance, BUDGET + 2 ether);
    }

    function testFuzz_lifecycleConservesValue(uint256 budget, uint256 price) public {
        budget = bound(budget, 1, type(uint80).max);
        price = bound(price, 0, budget);
        vm.deal(requester, budget);
        _setPrice(worker, uint96(price));

        uint256 taskId = _post(requester, budget, DEADLINE);
        _assign(taskId, worker);
        _submit(taskId, worker);
        _complete(taskId);

        assertEq(tmc.credits(worker), price);
        assertEq(tmc.credits(requester), budget - price);
        assertEq(tmc.credits(worker) + tmc.credits(requester), budget, "credits == budget");
        assertEq(address(tmc).balance, budget);

        if (price != 0) {
            vm.prank(worker);
            tmc.withdraw();
        }
        if (price != budget) {
            vm.prank(requester);
            tmc.withdraw();
        }
        assertEq(address(tmc).balance, 0);
        assertEq(requester.balance, budget - price);
    }

    function testFuzz_failThenCompleteConservesValue(uint256 budget, uint256 price1, uint256 price2) public {
        budget = bound(budget, 1, 100 ether);
        price1 = bound(price1, 0, budget);
        price2 = bound(price2, 0, budget);
        vm.deal(requester, budget);
        _setPrice(worker, uint96(price1));
        _setPrice(worker2, uint96(price2));

        uint256 taskId = _post(requester, budget, DEADLINE);
        _assign(taskId, worker);
        _submit(taskId, worker);
        _fail(taskId, true);
        assertEq(tmc.escrowOf(taskId), budget);
        _assign(taskId, worker2);
        _submit(taskId, worker2);
        _complete(taskId);

        assertEq(tmc.credits(worker), 0, "the failed worker earns nothing");
        assertEq(tmc.credits(worker2) + tmc.credits(requester), budget);
        assertEq(tmc.credits(worker2), price2);
        assertEq(umc.credits(requester), STAKE * SLASH_BPS / 10_000);
        assertEq(umc.stakeOf(worker) + umc.credits(requester), STAKE);
    }

    // ================================================================ fail

    function test_fail_reopenKeepsEscrowAndSlashes() public {
        uint256 taskId = _submitted();
        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Failed, 0);
        vm.expectEmit(address(umc));
        emit UMC.ReputationChanged(worker, 0, 0);
        vm.expectEmit(address(umc));
        emit UMC.StakeSlashed(worker, requester, 0.2 ether, 1.8 ether);
        vm.expectEmit(address(umc));
        emit Consortium.Credited(requester, 0.2 ether);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, true);
        _fail(taskId, true);

        TMC.Task memory t = tmc.getTask(taskId);
        assertTrue(t.status == TMC.Status.Posted);
        assertEq(t.worker, address(0));
        assertEq(t.price, 0);
        assertEq(t.submittedBlock, 0);
        assertEq(t.attempts, 1);
        assertEq(t.budget, BUDGET);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        assertEq(tmc.credits(requester), 0);
        assertEq(address(tmc).balance, BUDGET);

        assertEq(umc.credits(requester), 0.2 ether, "slash goes to the requester's UMC credits");
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.stake, 1.8 ether);
        assertEq(w.reputation, 0);
        assertEq(w.activeTasks, 0);
        assertEq(w.failedTasks, 1);
        assertTrue(tmc.failedBefore(taskId, worker));

        // Another worker takes the second attempt and is paid from the same escrow.
        vm.expectEmit(address(tmc));
        emit TMC.TaskAssigned(taskId, worker2, PRICE2, 2);
        _assign(taskId, worker2);
        _submit(taskId, worker2);
        _complete(taskId);
        assertEq(tmc.credits(worker2), PRICE2);
        assertEq(tmc.credits(requester), BUDGET - PRICE2);
        assertEq(tmc.credits(worker), 0);

        uint256 before = requester.balance;
        vm.prank(requester);
        umc.withdraw();
        vm.prank(requester);
        tmc.withdraw();
        assertEq(requester.balance, before + 0.2 ether + BUDGET - PRICE2);
    }

    // ---------------------------------------------------------------- abandon (the worker gives up)

    function test_abandon_failsTheAttemptWithoutAVoteAndReopens() public {
        uint256 taskId = _assigned();
        vm.expectEmit(address(tmc));
        emit TMC.TaskAbandoned(taskId, worker, 1);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, true);
        vm.prank(worker);
        tmc.abandon(taskId);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        assertEq(umc.credits(requester), 0.2 ether, "slashed as a failure");
        assertEq(umc.getWorker(worker).failedTasks, 1);
        assertTrue(tmc.failedBefore(taskId, worker));
        vm.expectRevert(abi.encodeWithSelector(TMC.WorkerFailedTask.selector, taskId, worker));
        _assign(taskId, worker);
        _assign(taskId, worker2);
        assertEq(tmc.getTask(taskId).attempts, 2);
    }

    function test_abandon_lastAttemptRefunds() public {
        TMC.Terms memory once = _terms();
        once.maxAttempts = 1;
        _preset(tmc, abi.encodeCall(TMC.setTerms, (once)));
        uint256 taskId = _assigned();
        vm.prank(worker);
        tmc.abandon(taskId);
        assertTrue(_status(taskId) == TMC.Status.Failed);
        assertEq(tmc.credits(requester), BUDGET);
    }

    function test_abandon_onlyTheAssignedWorkerWhileAssignedBeforeTheDeadline() public {
        uint256 taskId = _assigned();
        for (uint256 i; i < 3; ++i) {
            address caller = [stranger, requester, oracle][i];
            vm.expectRevert(abi.encodeWithSelector(TMC.NotAssignedWorker.selector, taskId, caller));
            vm.prank(caller);
            tmc.abandon(taskId);
        }
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlinePassed.selector, taskId, DEADLINE));
        vm.prank(worker);
        tmc.abandon(taskId);

        uint256 submitted = _post(requester, BUDGET, DEADLINE + 1 days);
        _assign(submitted, worker);
        _submit(submitted, worker);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, submitted, TMC.Status.Submitted));
        vm.prank(worker);
        tmc.abandon(submitted);
    }

    function test_fail_fromAssigned() public {
        uint256 taskId = _assigned();
        _fail(taskId, true);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        assertEq(umc.credits(requester), 0.2 ether);
    }

    function test_fail_assignedPastDeadlineRevertsSoOnlyExpiryApplies() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.DeadlinePassed.selector, taskId, DEADLINE));
        _fail(taskId, false);
        tmc.expire(taskId);
        // Abandonment is slashed as a failure is, whoever calls first: the outcome is the same.
        assertEq(umc.stakeOf(worker), 1.8 ether);
        assertEq(umc.credits(requester), 0.2 ether);
        assertEq(umc.getWorker(worker).failedTasks, 1);
    }

    function test_fail_submittedPastDeadlineWithinWindowRefunds() public {
        uint256 taskId = _submitted();
        vm.warp(DEADLINE + 1);
        _fail(taskId, true); // reopen is denied past the deadline
        assertTrue(_status(taskId) == TMC.Status.Failed);
        assertEq(tmc.credits(requester), BUDGET);
    }

    function test_fail_sameWorkerIsNotReassigned() public {
        uint256 taskId = _assigned();
        _fail(taskId, true);
        assertTrue(tmc.failedBefore(taskId, worker));
        vm.expectRevert(abi.encodeWithSelector(TMC.WorkerFailedTask.selector, taskId, worker));
        _assign(taskId, worker);
        // Another worker can take it; the failed one can still work on other tasks.
        _assign(taskId, worker2);
        assertEq(tmc.getTask(taskId).attempts, 2);
        uint256 other = _post(requester, BUDGET, DEADLINE);
        _assign(other, worker);
        assertEq(umc.getWorker(worker).activeTasks, 1);
    }

    function test_fail_withoutReopenRefunds() public {
        uint256 taskId = _submitted();
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, false);
        _fail(taskId, false);

        assertTrue(_status(taskId) == TMC.Status.Failed);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(tmc.credits(worker), 0);
        assertEq(umc.credits(requester), 0.2 ether);
        assertEq(umc.getWorker(worker).activeTasks, 0);
    }

    function test_fail_reopenDeniedAfterMaxAttempts() public {
        address worker3 = makeAddr("worker3");
        vm.deal(worker3, STAKE);
        _register(worker3, STAKE, PRICE);
        uint256 taskId = _posted();
        address[3] memory ws = [worker, worker2, worker3];
        for (uint256 i; i < 3; ++i) {
            _assign(taskId, ws[i]);
            _fail(taskId, true);
        }
        TMC.Task memory t = tmc.getTask(taskId);
        assertEq(t.attempts, 3);
        assertTrue(t.status == TMC.Status.Failed, "the third failure refunds");
        assertEq(tmc.credits(requester), BUDGET);
        // Slashes: 10 % of each worker's 2 ether.
        assertEq(umc.credits(requester), 3 * 0.2 ether);
        assertEq(umc.stakeOf(worker), 1.8 ether);
        assertEq(umc.stakeOf(worker3), 1.8 ether);
    }

    function test_fail_reopenDeniedAfterDeadline() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE);
        _submit(taskId, worker);
        vm.warp(DEADLINE + 1);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, false);
        _fail(taskId, true);
        assertTrue(_status(taskId) == TMC.Status.Failed);
        assertEq(tmc.credits(requester), BUDGET);
    }

    function test_fail_reopenAtDeadline() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE);
        _fail(taskId, true);
        assertTrue(_status(taskId) == TMC.Status.Posted);
        _assign(taskId, worker2);
    }

    function test_fail_slashBelowMinStakeBlocksReassignment() public {
        address poor = makeAddr("poor");
        vm.deal(poor, MIN_STAKE);
        _register(poor, MIN_STAKE, PRICE);
        uint256 taskId = _posted();
        _assign(taskId, poor);
        _fail(taskId, true);
        assertEq(umc.stakeOf(poor), 0.9 ether);
        uint256 other = _post(requester2, BUDGET, DEADLINE);
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, 0.9 ether, MIN_STAKE));
        _assign(other, poor);
    }

    function test_fail_revertsForNonOracle() public {
        uint256 taskId = _submitted();
        vm.expectRevert(abi.encodeWithSelector(TMC.NotOracle.selector, requester));
        vm.prank(requester);
        tmc.fail(taskId, false);
    }

    function test_fail_revertsWhenPosted() public {
        uint256 taskId = _posted();
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Posted));
        _fail(taskId, false);
    }

    function test_fail_revertsWhenSettled() public {
        uint256 taskId = _submitted();
        _complete(taskId);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, taskId, TMC.Status.Completed));
        _fail(taskId, false);

        uint256 failed = _assigned();
        _fail(failed, false);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, failed, TMC.Status.Failed));
        _fail(failed, false);
    }

    function test_fail_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 5));
        _fail(5, true);
    }

    // ================================================================ expire

    function test_expire_posted() public {
        uint256 taskId = _posted();
        vm.warp(DEADLINE);
        vm.expectRevert(abi.encodeWithSelector(TMC.NotExpired.selector, taskId, DEADLINE + 1));
        tmc.expire(taskId);

        vm.warp(DEADLINE + 1);
        vm.expectEmit(address(tmc));
        emit TMC.TaskExpired(taskId, TMC.Status.Posted, BUDGET);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET);
        vm.prank(stranger); // anyone
        tmc.expire(taskId);

        assertTrue(_status(taskId) == TMC.Status.Expired);
        assertEq(tmc.escrowOf(taskId), 0);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(tmc.credits(stranger), 0);
    }

    function test_expire_assignedIsAbandonmentAndSlashed() public {
        uint256 taskId = _assigned();
        vm.warp(DEADLINE + 1);
        vm.expectEmit(address(tmc));
        emit TMC.TaskExpired(taskId, TMC.Status.Assigned, BUDGET);
        vm.expectEmit(address(tmc));
        emit Consortium.Credited(requester, BUDGET);
        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Failed, 0);
        vm.expectEmit(address(umc));
        emit UMC.ReputationChanged(worker, 0, 0);
        vm.expectEmit(address(umc));
        emit UMC.StakeSlashed(worker, requester, 0.2 ether, 1.8 ether);
        vm.expectEmit(address(tmc));
        emit TMC.TaskFailed(taskId, worker, 0.2 ether, false);
        tmc.expire(taskId);

        assertTrue(_status(taskId) == TMC.Status.Expired);
        assertEq(tmc.credits(requester), BUDGET);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.stake, 1.8 ether, "abandonment is slashed like a failure");
        assertEq(w.activeTasks, 0);
        assertEq(w.failedTasks, 1);
        assertEq(umc.credits(requester), 0.2 ether);
    }

    function test_expire_submittedOnlyAfterVerificationWindow() public {
        uint256 taskId = _submitted();
        uint256 availableAt = DEADLINE + VERIFICATION_WINDOW + 1;
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.NotExpired.selector, taskId, availableAt));
        tmc.expire(taskId);
        vm.warp(availableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(TMC.NotExpired.selector, taskId, availableAt));
        tmc.expire(taskId);

        vm.warp(availableAt);
        vm.expectEmit(address(tmc));
        emit TMC.TaskExpired(taskId, TMC.Status.Submitted, BUDGET);
        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Released, 0);
        tmc.expire(taskId);

        assertTrue(_status(taskId) == TMC.Status.Expired);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(tmc.credits(worker), 0);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.reputation, 0, "the oracles' delay is not the worker's fault");
        assertEq(w.stake, STAKE);
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 0);
        assertEq(w.failedTasks, 0);
    }

    function test_expire_reopenedTaskRefundsWholeBudget() public {
        uint256 taskId = _assigned();
        _fail(taskId, true);
        vm.warp(DEADLINE + 1);
        tmc.expire(taskId);
        assertEq(tmc.credits(requester), BUDGET);
        assertEq(umc.credits(requester), 0.2 ether);
    }

    function test_expire_revertsForSettledTasks() public {
        uint256 completed = _submitted();
        _complete(completed);
        uint256 cancelled = _posted();
        vm.prank(requester);
        tmc.cancel(cancelled);
        uint256 failed = _assigned();
        _fail(failed, false);
        uint256 expired = _posted();
        vm.warp(DEADLINE + VERIFICATION_WINDOW + 1);
        tmc.expire(expired);

        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, completed, TMC.Status.Completed));
        tmc.expire(completed);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, cancelled, TMC.Status.Cancelled));
        tmc.expire(cancelled);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, failed, TMC.Status.Failed));
        tmc.expire(failed);
        vm.expectRevert(abi.encodeWithSelector(TMC.InvalidStatus.selector, expired, TMC.Status.Expired));
        tmc.expire(expired);
    }

    function test_expire_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(TMC.TaskNotFound.selector, 1));
        tmc.expire(1);
    }

    /// @dev Tasks 1, 2, 3 are Posted, Assigned and Submitted; time lands anywhere from just before the
    ///      deadline to just after the verification window, so both sides of each boundary are fuzzed.
    function testFuzz_expire(uint256 warpBy) public {
        uint256 posted = _posted();
        uint256 assigned = _assigned();
        uint256 submitted = _submitted();
        uint256 t = bound(warpBy, DEADLINE - 1, DEADLINE + VERIFICATION_WINDOW + 2);
        vm.warp(t);

        _expectExpiry(posted, DEADLINE + 1, t);
        _expectExpiry(assigned, DEADLINE + 1, t);
        _expectExpiry(submitted, DEADLINE + VERIFICATION_WINDOW + 1, t);

        uint256 escrow = tmc.escrowOf(posted) + tmc.escrowOf(assigned) + tmc.escrowOf(submitted);
        assertEq(escrow + tmc.credits(requester), 3 * BUDGET);
        assertEq(address(tmc).balance, 3 * BUDGET);
        bool assignedExpired = t > DEADLINE;
        assertEq(umc.getWorker(worker).failedTasks, assignedExpired ? 1 : 0);
        assertEq(
            umc.getWorker(worker).activeTasks, (assignedExpired ? 0 : 1) + (t > DEADLINE + VERIFICATION_WINDOW ? 0 : 1)
        );
        assertEq(umc.stakeOf(worker), assignedExpired ? 1.8 ether : STAKE, "abandonment is slashed");
        assertEq(umc.stakeOf(worker) + umc.credits(requester), STAKE);
    }

    function _expectExpiry(uint256 taskId, uint256 availableAt, uint256 t) internal {
        if (t < availableAt) {
            vm.expectRevert(abi.encodeWithSelector(TMC.NotExpired.selector, taskId, availableAt));
            tmc.expire(taskId);
            assertEq(tmc.escrowOf(taskId), BUDGET);
        } else {
            tmc.expire(taskId);
            assertTrue(_status(taskId) == TMC.Status.Expired);
            assertEq(tmc.escrowOf(taskId), 0);
        }
    }

    // ================================================================ withdraw

    function test_withdraw_revertsWithoutCredits() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NothingToWithdraw.selector, worker));
        vm.prank(worker);
        tmc.withdraw();
    }

    function test_withdraw_reentrantRequesterGetsPaidOnce() public {
        Receiver r = new Receiver();
        vm.deal(address(r), BUDGET);
        bytes memory ret = r.exec(
            address(tmc), BUDGET, abi.encodeCall(TMC.postTask, (SPEC_CID, TMC.Kind.Training, 0, uint40(DEADLINE)))
        );
        uint256 taskId = abi.decode(ret, (uint256));
        r.exec(address(tmc), 0, abi.encodeCall(TMC.cancel, (taskId)));
        uint256 other = _posted(); // someone else's escrow sits in the same contract

        r.setReentry(Receiver.Mode.Reenter, address(tmc), abi.encodeCall(Consortium.withdraw, ()));
        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), BUDGET));
        r.exec(address(tmc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(tmc.credits(address(r)), BUDGET);
        assertEq(address(tmc).balance, 2 * BUDGET);

        r.setReentry(Receiver.Mode.ReenterAndCatch, address(tmc), abi.encodeCall(Consortium.withdraw, ()));
        r.exec(address(tmc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(r.reentryReturnData(), abi.encodeWithSelector(Consortium.Reentrancy.selector));
        assertEq(address(r).balance, BUDGET);
        assertEq(address(tmc).balance, BUDGET);
        assertEq(tmc.escrowOf(other), BUDGET);
    }

    // ================================================================ views

    function test_views_unknownTask() public view {
        TMC.Task memory t = tmc.getTask(42);
        assertEq(t.requester, address(0));
        assertTrue(t.status == TMC.Status.None);
        assertEq(tmc.escrowOf(42), 0);
    }

    function test_escrowOf_followsStatus() public {
        uint256 taskId = _posted();
        assertEq(tmc.escrowOf(taskId), BUDGET);
        _assign(taskId, worker);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        _submit(taskId, worker);
        assertEq(tmc.escrowOf(taskId), BUDGET);
        _complete(taskId);
        assertEq(tmc.escrowOf(taskId), 0);
    }
}
