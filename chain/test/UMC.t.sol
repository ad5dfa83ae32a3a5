// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {Receiver} from "./utils/Receiver.sol";
import {Consortium} from "../contracts/Consortium.sol";
import {UMC} from "../contracts/UMC.sol";

/// @title UMC unit and fuzz tests
/// @notice Covers the worker registry and, through it, the shared Consortium base (governance with a
///         delay, two-step admin, pull payments, reentrancy guard). Governance makes a plain account
///         `market` UMC's market (in place of TMC) so the market hooks can be called directly.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
contract UMCTest is Fixture {
    uint256 internal constant STAKE = 2 ether;
    uint96 internal constant PRICE = 0.3 ether;

    address internal market;

    function setUp() public override {
        super.setUp();
        market = makeAddr("market");
        _preset(umc, abi.encodeCall(UMC.setMarket, (market)));
    }

    // ================================================================ constructor

    function test_constructor_setsState() public view {
        assertEq(umc.admin(), admin);
        assertEq(umc.pendingAdmin(), address(0));
        assertEq(umc.governanceDelay(), GOVERNANCE_DELAY);
        assertEq(umc.minStake(), MIN_STAKE);
        assertEq(umc.unstakeCooldown(), COOLDOWN);
        assertEq(umc.market(), market);
        assertEq(umc.marketEpoch(), 2, "bound to TMC, then moved to `market`");
        assertEq(umc.REPUTATION_ONE(), 1_000_000);
        assertEq(umc.INITIAL_REPUTATION(), 0);
        assertEq(umc.ETA_TASK(), 100_000);
        assertEq(umc.MAX_SLASH_BPS(), 5_000);
        assertEq(umc.MAX_UNSTAKE_COOLDOWN(), 90 days);
        assertEq(umc.MAX_GOVERNANCE_DELAY(), 30 days);
    }

    function test_constructor_emitsEvents() public {
        vm.expectEmit();
        emit Consortium.AdminTransferred(address(0), admin);
        vm.expectEmit();
        emit Consortium.GovernanceDelaySet(GOVERNANCE_DELAY);
        vm.expectEmit();
        emit UMC.ParametersSet(MIN_STAKE, COOLDOWN);
        UMC fresh = new UMC(admin, GOVERNANCE_DELAY, MIN_STAKE, COOLDOWN);
        assertEq(fresh.market(), address(0));
        assertEq(fresh.marketEpoch(), 0);
    }

    function test_constructor_revertsOnZeroAdmin() public {
        vm.expectRevert(Consortium.ZeroAddress.selector);
        new UMC(address(0), GOVERNANCE_DELAY, MIN_STAKE, COOLDOWN);
    }

    function test_constructor_revertsOnCooldownAboveMax() public {
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "unstakeCooldown", 90 days + 1, 90 days)
        );
        new UMC(admin, GOVERNANCE_DELAY, MIN_STAKE, 90 days + 1);
    }

    function test_constructor_revertsOnGovernanceDelayAboveMax() public {
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "governanceDelay", 30 days + 1, 30 days)
        );
        new UMC(admin, 30 days + 1, MIN_STAKE, COOLDOWN);
    }

    // ================================================================ admin (Consortium)

    function test_transferAdmin_setsPendingAdmin() public {
        bytes memory call = abi.encodeCall(Consortium.transferAdmin, (stranger));
        vm.warp(_schedule(umc, call));
        vm.expectEmit(address(umc));
        emit Consortium.AdminTransferStarted(admin, stranger);
        umc.executeChange(call);
        assertEq(umc.pendingAdmin(), stranger);
        assertEq(umc.admin(), admin, "admin unchanged until accepted");
    }

    function test_transferAdmin_revertsWhenCalledDirectly() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, stranger));
        vm.prank(stranger);
        umc.transferAdmin(stranger);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        umc.transferAdmin(stranger);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotAdmin.selector, stranger));
        vm.prank(stranger);
        umc.scheduleChange(abi.encodeCall(Consortium.transferAdmin, (stranger)));
    }

    function test_transferAdmin_revertsOnZeroAddress() public {
        bytes memory call = abi.encodeCall(Consortium.transferAdmin, (address(0)));
        vm.warp(_schedule(umc, call));
        vm.expectRevert(Consortium.ZeroAddress.selector);
        umc.executeChange(call);
        assertEq(umc.scheduledChanges(keccak256(call)), START + GOVERNANCE_DELAY, "a failed execution stays scheduled");
    }

    function test_acceptAdmin_transfersRole() public {
        _govern(umc, abi.encodeCall(Consortium.transferAdmin, (stranger)));

        vm.expectEmit(address(umc));
        emit Consortium.AdminTransferred(admin, stranger);
        vm.prank(stranger);
        umc.acceptAdmin();

        assertEq(umc.admin(), stranger);
        assertEq(umc.pendingAdmin(), address(0));

        // The old admin lost its rights, the new one has them.
        bytes memory call = abi.encodeCall(UMC.setParameters, (0, 0));
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotAdmin.selector, admin));
        vm.prank(admin);
        umc.scheduleChange(call);
        vm.prank(stranger);
        umc.scheduleChange(call);
        assertGt(umc.scheduledChanges(keccak256(call)), 0);
    }

    function test_acceptAdmin_revertsForNonPendingAdmin() public {
        _govern(umc, abi.encodeCall(Consortium.transferAdmin, (stranger)));
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotPendingAdmin.selector, worker));
        vm.prank(worker);
        umc.acceptAdmin();
    }

    function test_acceptAdmin_revertsWithoutTransfer() public {
        // pendingAdmin is zero; no real account can be it.
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotPendingAdmin.selector, admin));
        vm.prank(admin);
        umc.acceptAdmin();
    }

    function test_acceptAdmin_cannotBeAcceptedTwice() public {
        _govern(umc, abi.encodeCall(Consortium.transferAdmin, (stranger)));
        vm.prank(stranger);
        umc.acceptAdmin();
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotPendingAdmin.selector, stranger));
        vm.prank(stranger);
        umc.acceptAdmin();
    }

    function test_transferAdmin_laterProposalReplacesEarlier() public {
        _govern(umc, abi.encodeCall(Consortium.transferAdmin, (stranger)));
        _govern(umc, abi.encodeCall(Consortium.transferAdmin, (worker)));
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotPendingAdmin.selector, stranger));
        vm.prank(stranger);
        umc.acceptAdmin();
        vm.prank(worker);
        umc.acceptAdmin();
        assertEq(umc.admin(), worker);
    }

    function test_setGovernanceDelay_governed() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        umc.setGovernanceDelay(0);
        bytes memory call = abi.encodeCall(Consortium.setGovernanceDelay, (30 days));
        vm.warp(_schedule(umc, call));
        vm.expectEmit(address(umc));
        emit Consortium.GovernanceDelaySet(30 days);
        umc.executeChange(call);
        assertEq(umc.governanceDelay(), 30 days);
        // Later changes wait the new delay.
        (, uint256 readyAt) = _scheduleAndGet(abi.encodeCall(UMC.setParameters, (0, 0)));
        assertEq(readyAt, vm.getBlockTimestamp() + 30 days);
    }

    function test_setGovernanceDelay_revertsAboveMax() public {
        bytes memory call = abi.encodeCall(Consortium.setGovernanceDelay, (30 days + 1));
        vm.warp(_schedule(umc, call));
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "governanceDelay", 30 days + 1, 30 days)
        );
        umc.executeChange(call);
    }

    function _scheduleAndGet(bytes memory call) internal returns (bytes32 id, uint256 readyAt) {
        vm.prank(admin);
        (id, readyAt) = umc.scheduleChange(call);
    }

    // ================================================================ market

    function test_bindMarket_onlyOnceAndOnlyAdmin() public {
        UMC fresh = new UMC(admin, GOVERNANCE_DELAY, MIN_STAKE, COOLDOWN);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotAdmin.selector, stranger));
        vm.prank(stranger);
        fresh.bindMarket(stranger);
        vm.expectRevert(Consortium.ZeroAddress.selector);
        vm.prank(admin);
        fresh.bindMarket(address(0));

        vm.expectEmit(address(fresh));
        emit UMC.MarketSet(market, 1);
        vm.prank(admin);
        fresh.bindMarket(market);
        assertEq(fresh.market(), market);
        assertEq(fresh.marketEpoch(), 1);

        // Once bound, only governance moves it.
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        fresh.bindMarket(stranger);
        assertEq(fresh.market(), market);
    }

    function test_setMarket_replacesMarketAndBumpsEpoch() public {
        bytes memory call = abi.encodeCall(UMC.setMarket, (stranger));
        vm.warp(_schedule(umc, call));
        vm.expectEmit(address(umc));
        emit UMC.MarketSet(stranger, 3);
        umc.executeChange(call);
        assertEq(umc.market(), stranger);
        assertEq(umc.marketEpoch(), 3);
    }

    function test_setMarket_revertsWhenCalledDirectly() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        umc.setMarket(stranger);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, market));
        vm.prank(market);
        umc.setMarket(stranger);
    }

    function test_setMarket_revertsOnZeroAddress() public {
        bytes memory call = abi.encodeCall(UMC.setMarket, (address(0)));
        vm.warp(_schedule(umc, call));
        vm.expectRevert(Consortium.ZeroAddress.selector);
        umc.executeChange(call);
        assertEq(umc.market(), market);
    }

    function test_setMarket_oldMarketsTasksNoLongerHoldStake() public {
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        umc.onTaskAssigned(worker);
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        _govern(umc, abi.encodeCall(UMC.setMarket, (stranger)));
        assertEq(umc.activeTasksOf(worker), 0, "the old market's task no longer counts");
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, market));
        vm.prank(market);
        umc.onTaskSucceeded(worker, true);
        // The new market cannot end a task it did not start.
        vm.expectRevert(abi.encodeWithSelector(UMC.NoActiveTask.selector, worker));
        vm.prank(stranger);
        umc.onTaskFailed(worker, stranger, 5_000);
        vm.warp(START + COOLDOWN);
        vm.prank(worker);
        assertEq(umc.withdrawStake(), STAKE);
    }

    function test_setParameters_updates() public {
        bytes memory call = abi.encodeCall(UMC.setParameters, (5 ether, 1 days));
        vm.warp(_schedule(umc, call));
        vm.expectEmit(address(umc));
        emit UMC.ParametersSet(5 ether, 1 days);
        umc.executeChange(call);
        assertEq(umc.minStake(), 5 ether);
        assertEq(umc.unstakeCooldown(), 1 days);
    }

    function test_setParameters_revertsWhenCalledDirectly() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        umc.setParameters(5 ether, 1 days);
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, stranger));
        vm.prank(stranger);
        umc.setParameters(5 ether, 1 days);
    }

    function test_setParameters_revertsOnCooldownAboveMax() public {
        bytes memory call = abi.encodeCall(UMC.setParameters, (5 ether, 90 days + 1));
        vm.warp(_schedule(umc, call));
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "unstakeCooldown", 90 days + 1, 90 days)
        );
        umc.executeChange(call);
        assertEq(umc.unstakeCooldown(), COOLDOWN);
    }

    // ================================================================ registerWorker

    function test_registerWorker_storesProfile() public {
        vm.expectEmit(address(umc));
        emit UMC.WorkerRegistered(worker, STAKE, PRICE, EXPERTISE, _hardware(), WORKER_CID);
        _register(worker, STAKE, PRICE);

        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.stake, STAKE);
        assertEq(w.pricePerTask, PRICE);
        assertEq(w.reputation, 0, "reputation is earned");
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 0);
        assertEq(w.failedTasks, 0);
        assertEq(w.registeredAt, START);
        assertEq(w.unstakeAvailableAt, 0);
        assertEq(w.marketEpoch, 2);
        assertEq(w.unstakeAmount, 0);
        assertEq(w.hardware.gpus, 8);
        assertEq(w.hardware.cpuCores, 64);
        assertEq(w.hardware.memoryGiB, 512);
        assertEq(w.expertise, EXPERTISE);
        assertEq(w.metadataCid, WORKER_CID);

        assertTrue(umc.isWorker(worker));
        assertEq(umc.reputationOf(worker), 0);
        assertEq(umc.stakeOf(worker), STAKE);
        assertEq(address(umc).balance, STAKE);
        assertEq(worker.balance, 1_000 ether - STAKE);
    }

    function test_registerWorker_acceptsExactMinStake() public {
        _register(worker, MIN_STAKE, PRICE);
        assertEq(umc.stakeOf(worker), MIN_STAKE);
    }

    function test_registerWorker_revertsWhenAlreadyRegistered() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.AlreadyRegistered.selector, worker));
        _register(worker, STAKE, PRICE);
    }

    function test_registerWorker_revertsBelowMinStake() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, MIN_STAKE - 1, MIN_STAKE));
        _register(worker, MIN_STAKE - 1, PRICE);
    }

    function test_registerWorker_revertsWhenStakeExceedsUint96() public {
        uint256 tooMuch = uint256(type(uint96).max) + 1;
        vm.deal(worker, tooMuch);
        vm.expectRevert(
            abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "stake", tooMuch, uint256(type(uint96).max))
        );
        _register(worker, tooMuch, PRICE);
    }

    function test_registerWorker_withZeroMinStake() public {
        _preset(umc, abi.encodeCall(UMC.setParameters, (0, COOLDOWN)));
        _register(worker, 0, PRICE);
        assertTrue(umc.isWorker(worker));
        assertEq(umc.stakeOf(worker), 0);
    }

    function testFuzz_registerWorker(uint256 stake, uint96 price) public {
        stake = bound(stake, MIN_STAKE, type(uint96).max);
        vm.deal(worker, stake);
        _register(worker, stake, price);
        assertEq(umc.stakeOf(worker), stake);
        assertEq(umc.getWorker(worker).pricePerTask, price);
        assertEq(address(umc).balance, stake);
    }

    // ================================================================ updateWorker

    function test_updateWorker_updatesProfileOnly() public {
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        umc.onTaskAssigned(worker);

        UMC.Hardware memory hw = UMC.Hardware({gpus: 1, cpuCores: 2, memoryGiB: 3});
        bytes32 expertise = bytes32(uint256(7));
        vm.expectEmit(address(umc));
        emit UMC.WorkerUpdated(worker, 1 ether, expertise, hw, "bafnew");
        vm.prank(worker);
        umc.updateWorker(expertise, hw, 1 ether, "bafnew");

        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.pricePerTask, 1 ether);
        assertEq(w.expertise, expertise);
        assertEq(w.hardware.gpus, 1);
        assertEq(w.hardware.cpuCores, 2);
        assertEq(w.hardware.memoryGiB, 3);
        assertEq(w.metadataCid, "bafnew");
        // Not the worker's to set:
        assertEq(w.stake, STAKE);
        assertEq(w.reputation, 0);
        assertEq(w.activeTasks, 1);
        assertEq(w.registeredAt, START);
    }

    function test_updateWorker_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        _setPrice(stranger, 1);
    }

    // ================================================================ addStake

    function test_addStake_increasesStake() public {
        _register(worker, STAKE, PRICE);
        vm.expectEmit(address(umc));
        emit UMC.StakeAdded(worker, 3 ether, STAKE + 3 ether);
        vm.prank(worker);
        umc.addStake{value: 3 ether}();
        assertEq(umc.stakeOf(worker), STAKE + 3 ether);
        assertEq(address(umc).balance, STAKE + 3 ether);
    }

    function test_addStake_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(stranger);
        umc.addStake{value: 1 ether}();
    }

    function test_addStake_revertsWhenStakeExceedsUint96() public {
        _register(worker, STAKE, PRICE);
        uint256 more = uint256(type(uint96).max) - STAKE + 1;
        vm.deal(worker, more);
        vm.expectRevert(
            abi.encodeWithSelector(
                Consortium.ValueOutOfRange.selector, "stake", uint256(type(uint96).max) + 1, uint256(type(uint96).max)
            )
        );
        vm.prank(worker);
        umc.addStake{value: more}();
    }

    function test_addStake_upToUint96Max() public {
        _register(worker, STAKE, PRICE);
        uint256 more = uint256(type(uint96).max) - STAKE;
        vm.deal(worker, more);
        vm.prank(worker);
        umc.addStake{value: more}();
        assertEq(umc.stakeOf(worker), type(uint96).max);
    }

    // ================================================================ requestUnstake

    function test_requestUnstake_recordsRequest() public {
        _register(worker, STAKE, PRICE);
        vm.expectEmit(address(umc));
        emit UMC.UnstakeRequested(worker, 1 ether, START + COOLDOWN);
        vm.prank(worker);
        umc.requestUnstake(1 ether);

        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.unstakeAmount, 1 ether);
        assertEq(w.unstakeAvailableAt, START + COOLDOWN);
        assertEq(w.stake, STAKE, "stake stays bonded during the cooldown");
    }

    function test_requestUnstake_newRequestReplacesAndRestartsCooldown() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(1 ether);
        vm.warp(START + 3 days);
        vm.prank(worker);
        umc.requestUnstake(0.5 ether);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.unstakeAmount, 0.5 ether);
        assertEq(w.unstakeAvailableAt, START + 3 days + COOLDOWN);

        vm.warp(START + COOLDOWN);
        vm.expectRevert(abi.encodeWithSelector(UMC.CooldownNotOver.selector, START + 3 days + COOLDOWN));
        vm.prank(worker);
        umc.withdrawStake();
    }

    function test_requestUnstake_cooldownIsFixedAtRequest() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(1 ether);
        _preset(umc, abi.encodeCall(UMC.setParameters, (MIN_STAKE, 90 days)));
        assertEq(umc.getWorker(worker).unstakeAvailableAt, START + COOLDOWN, "a later change does not move it");
        vm.warp(START + COOLDOWN);
        vm.prank(worker);
        assertEq(umc.withdrawStake(), 1 ether);
        // A new request gets the cooldown in force when it is made.
        vm.prank(worker);
        umc.requestUnstake(1 ether);
        assertEq(umc.getWorker(worker).unstakeAvailableAt, START + COOLDOWN + 90 days);
    }

    function test_requestUnstake_wholeStake() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        assertEq(umc.getWorker(worker).unstakeAmount, STAKE);
    }

    function test_requestUnstake_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(stranger);
        umc.requestUnstake(1);
    }

    function test_requestUnstake_revertsOnZeroAmount() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.NoUnstakeRequest.selector, worker));
        vm.prank(worker);
        umc.requestUnstake(0);
    }

    function test_requestUnstake_revertsAboveStake() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.AmountExceedsStake.selector, STAKE + 1, STAKE));
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE + 1));
    }

    // ================================================================ withdrawStake

    function test_withdrawStake_afterCooldown() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(0.5 ether);
        vm.warp(START + COOLDOWN); // exactly availableAt

        uint256 balanceBefore = worker.balance;
        vm.expectEmit(address(umc));
        emit UMC.StakeWithdrawn(worker, 0.5 ether, STAKE - 0.5 ether);
        vm.prank(worker);
        uint256 amount = umc.withdrawStake();

        assertEq(amount, 0.5 ether);
        assertEq(worker.balance, balanceBefore + 0.5 ether);
        assertEq(address(umc).balance, STAKE - 0.5 ether);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.stake, STAKE - 0.5 ether);
        assertEq(w.unstakeAmount, 0);
        assertEq(w.unstakeAvailableAt, 0);
        assertTrue(umc.isWorker(worker), "still registered");
    }

    function test_withdrawStake_wholeStakeLeavesWorkerUnassignable() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        vm.warp(START + COOLDOWN);
        vm.prank(worker);
        umc.withdrawStake();
        assertEq(umc.stakeOf(worker), 0);
        assertEq(address(umc).balance, 0);

        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, 0, MIN_STAKE));
        vm.prank(market);
        umc.onTaskAssigned(worker);
    }

    function test_withdrawStake_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(stranger);
        umc.withdrawStake();
    }

    function test_withdrawStake_revertsWithoutRequest() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.NoUnstakeRequest.selector, worker));
        vm.prank(worker);
        umc.withdrawStake();
    }

    function test_withdrawStake_revertsTwice() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(1 ether);
        vm.warp(START + COOLDOWN);
        vm.prank(worker);
        umc.withdrawStake();
        vm.expectRevert(abi.encodeWithSelector(UMC.NoUnstakeRequest.selector, worker));
        vm.prank(worker);
        umc.withdrawStake();
    }

    function test_withdrawStake_revertsBeforeCooldown() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(1 ether);
        vm.warp(START + COOLDOWN - 1);
        vm.expectRevert(abi.encodeWithSelector(UMC.CooldownNotOver.selector, START + COOLDOWN));
        vm.prank(worker);
        umc.withdrawStake();
    }

    function test_withdrawStake_revertsWithActiveTasks() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(1 ether);
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskAssigned(worker);
        vm.stopPrank();
        vm.warp(START + COOLDOWN);
        vm.expectRevert(abi.encodeWithSelector(UMC.HasActiveTasks.selector, worker, 2));
        vm.prank(worker);
        umc.withdrawStake();

        // Once the tasks end, the stake can leave.
        vm.startPrank(market);
        umc.onTaskSucceeded(worker, true);
        umc.onTaskReleased(worker);
        vm.stopPrank();
        vm.prank(worker);
        assertEq(umc.withdrawStake(), 1 ether);
    }

    function test_withdrawStake_paysWhatIsLeftAfterSlash() public {
        _register(worker, STAKE, PRICE);
        vm.prank(worker);
        umc.requestUnstake(uint96(STAKE));
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskFailed(worker, requester, 5_000); // 50 % slash: stake 2 -> 1 ether
        vm.stopPrank();

        vm.warp(START + COOLDOWN);
        uint256 balanceBefore = worker.balance;
        vm.prank(worker);
        uint256 amount = umc.withdrawStake();
        assertEq(amount, 1 ether);
        assertEq(worker.balance, balanceBefore + 1 ether);
        assertEq(umc.stakeOf(worker), 0);
        assertEq(umc.credits(requester), 1 ether);
        assertEq(address(umc).balance, 1 ether, "only the requester's credit is left");
    }

    function test_withdrawStake_revertsWhenWorkerRefusesEth() public {
        Receiver r = _registeredReceiver();
        r.exec(address(umc), 0, abi.encodeCall(UMC.requestUnstake, (1 ether)));
        vm.warp(START + COOLDOWN);
        r.setMode(Receiver.Mode.Refuse);
        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), 1 ether));
        r.exec(address(umc), 0, abi.encodeCall(UMC.withdrawStake, ()));
        assertEq(umc.stakeOf(address(r)), STAKE, "nothing moved");
        assertEq(umc.getWorker(address(r)).unstakeAmount, 1 ether, "request kept");
    }

    function test_withdrawStake_reentryIsBlocked() public {
        Receiver r = _registeredReceiver();
        r.exec(address(umc), 0, abi.encodeCall(UMC.requestUnstake, (1 ether)));
        vm.warp(START + COOLDOWN);

        // Re-entering withdrawStake from the payment hits the guard; caught, the first withdrawal pays once.
        r.setReentry(Receiver.Mode.ReenterAndCatch, address(umc), abi.encodeCall(UMC.withdrawStake, ()));
        r.exec(address(umc), 0, abi.encodeCall(UMC.withdrawStake, ()));
        assertFalse(r.reentrySucceeded());
        assertEq(r.reentryReturnData(), abi.encodeWithSelector(Consortium.Reentrancy.selector));
        assertEq(r.received(), 1 ether);
        assertEq(umc.stakeOf(address(r)), STAKE - 1 ether);
        assertEq(address(umc).balance, 2 * STAKE - 1 ether, "worker's stake plus what r left bonded");
    }

    function test_withdrawStake_reentryIntoWithdrawIsBlocked() public {
        Receiver r = _registeredReceiver();
        // Give the receiver credits too, so a re-entrant `withdraw` would have something to take.
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskFailed(worker, address(r), SLASH_BPS); // 0.2 ether credited to r
        vm.stopPrank();
        r.exec(address(umc), 0, abi.encodeCall(UMC.requestUnstake, (1 ether)));
        vm.warp(START + COOLDOWN);

        // Propagating the guard's revert makes the payment fail: the whole call reverts.
        r.setReentry(Receiver.Mode.Reenter, address(umc), abi.encodeCall(Consortium.withdraw, ()));
        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), 1 ether));
        r.exec(address(umc), 0, abi.encodeCall(UMC.withdrawStake, ()));
        assertEq(umc.stakeOf(address(r)), STAKE);
        assertEq(umc.credits(address(r)), 0.2 ether);
        assertEq(address(umc).balance, 2 * STAKE);
        assertEq(r.received(), 0);
    }

    function _registeredReceiver() internal returns (Receiver r) {
        _register(worker, STAKE, PRICE);
        r = new Receiver();
        vm.deal(address(r), STAKE);
        r.exec(address(umc), STAKE, abi.encodeCall(UMC.registerWorker, (EXPERTISE, _hardware(), PRICE, WORKER_CID)));
    }

    // ================================================================ withdraw (Consortium)

    function test_withdraw_paysCredits() public {
        _register(worker, STAKE, PRICE);
        _slash(worker, requester); // 10 % of 2 ether
        assertEq(umc.credits(requester), 0.2 ether);

        uint256 balanceBefore = requester.balance;
        vm.expectEmit(address(umc));
        emit Consortium.Withdrawn(requester, 0.2 ether);
        vm.prank(requester);
        uint256 amount = umc.withdraw();

        assertEq(amount, 0.2 ether);
        assertEq(requester.balance, balanceBefore + 0.2 ether);
        assertEq(umc.credits(requester), 0);
        assertEq(address(umc).balance, umc.stakeOf(worker));
    }

    function test_withdraw_revertsWithoutCredits() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NothingToWithdraw.selector, requester));
        vm.prank(requester);
        umc.withdraw();
    }

    function test_withdraw_revertsTwice() public {
        _register(worker, STAKE, PRICE);
        _slash(worker, requester);
        vm.prank(requester);
        umc.withdraw();
        vm.expectRevert(abi.encodeWithSelector(Consortium.NothingToWithdraw.selector, requester));
        vm.prank(requester);
        umc.withdraw();
    }

    function test_withdraw_revertsWhenRecipientRefusesEth() public {
        Receiver r = new Receiver();
        r.setMode(Receiver.Mode.Refuse);
        _register(worker, STAKE, PRICE);
        _slash(worker, address(r));

        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), 0.2 ether));
        r.exec(address(umc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(umc.credits(address(r)), 0.2 ether, "credit kept for a later withdrawal");

        r.setMode(Receiver.Mode.Accept);
        r.exec(address(umc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(r.received(), 0.2 ether);
        assertEq(umc.credits(address(r)), 0);
    }

    function test_withdraw_reentrantRecipientGetsPaidOnce() public {
        Receiver r = new Receiver();
        _register(worker, STAKE, PRICE);
        _slash(worker, address(r));
        uint256 umcBalance = address(umc).balance;

        // The guard's Reentrancy revert, propagated by the recipient, surfaces as TransferFailed.
        r.setReentry(Receiver.Mode.Reenter, address(umc), abi.encodeCall(Consortium.withdraw, ()));
        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), 0.2 ether));
        r.exec(address(umc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(umc.credits(address(r)), 0.2 ether);
        assertEq(address(umc).balance, umcBalance);

        // Caught by the recipient, the inner call reverted with Reentrancy and the outer one paid once.
        r.setReentry(Receiver.Mode.ReenterAndCatch, address(umc), abi.encodeCall(Consortium.withdraw, ()));
        r.exec(address(umc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertFalse(r.reentrySucceeded());
        assertEq(r.reentryReturnData(), abi.encodeWithSelector(Consortium.Reentrancy.selector));
        assertEq(r.received(), 0.2 ether);
        assertEq(address(r).balance, 0.2 ether);
        assertEq(umc.credits(address(r)), 0);
        assertEq(address(umc).balance, umcBalance - 0.2 ether);
    }

    function test_withdraw_reentryIntoWithdrawStakeIsBlocked() public {
        // A worker contract with both credits and an unstake request cannot take both in one call.
        Receiver r = _registeredReceiver();
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskFailed(worker, address(r), SLASH_BPS);
        vm.stopPrank();
        r.exec(address(umc), 0, abi.encodeCall(UMC.requestUnstake, (1 ether)));
        vm.warp(START + COOLDOWN);

        r.setReentry(Receiver.Mode.ReenterAndCatch, address(umc), abi.encodeCall(UMC.withdrawStake, ()));
        r.exec(address(umc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(r.reentryReturnData(), abi.encodeWithSelector(Consortium.Reentrancy.selector));
        assertEq(r.received(), 0.2 ether);
        assertEq(umc.stakeOf(address(r)), STAKE, "stake untouched");

        // The guard is released after the call (transient storage): a separate call works.
        r.setMode(Receiver.Mode.Accept);
        r.exec(address(umc), 0, abi.encodeCall(UMC.withdrawStake, ()));
        assertEq(r.received(), 1.2 ether);
    }

    function _slash(address who, address beneficiary) internal returns (uint256 slashed) {
        vm.startPrank(market);
        umc.onTaskAssigned(who);
        slashed = umc.onTaskFailed(who, beneficiary, SLASH_BPS);
        vm.stopPrank();
    }

    // ================================================================ onTaskAssigned

    function test_onTaskAssigned_countsActiveTask() public {
        _register(worker, STAKE, PRICE);
        vm.expectEmit(address(umc));
        emit UMC.TaskStarted(worker, 1);
        vm.prank(market);
        (uint96 price, uint32 reputation) = umc.onTaskAssigned(worker);
        assertEq(price, PRICE);
        assertEq(reputation, 0);
        assertEq(umc.getWorker(worker).activeTasks, 1);

        vm.expectEmit(address(umc));
        emit UMC.TaskStarted(worker, 2);
        vm.prank(market);
        umc.onTaskAssigned(worker);
        assertEq(umc.getWorker(worker).activeTasks, 2);
    }

    function test_onTaskAssigned_revertsForNonMarket() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, stranger));
        vm.prank(stranger);
        umc.onTaskAssigned(worker);
    }

    function test_onTaskAssigned_needsMinStakePerTaskHeld() public {
        _register(worker, STAKE, PRICE); // 2 * MIN_STAKE: two tasks at once
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskAssigned(worker);
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, STAKE, 3 * MIN_STAKE));
        umc.onTaskAssigned(worker);
        vm.stopPrank();
        vm.prank(worker);
        umc.addStake{value: MIN_STAKE}();
        vm.prank(market);
        umc.onTaskAssigned(worker);
        assertEq(umc.activeTasksOf(worker), 3);
    }

    function test_onTaskAssigned_revertsForReplacedMarket() public {
        _register(worker, STAKE, PRICE);
        _preset(umc, abi.encodeCall(UMC.setMarket, (stranger)));
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, market));
        vm.prank(market);
        umc.onTaskAssigned(worker);
    }

    function test_onTaskAssigned_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(market);
        umc.onTaskAssigned(stranger);
    }

    function test_onTaskAssigned_revertsWhenStakeBelowMinimum() public {
        _register(worker, STAKE, PRICE);
        _preset(umc, abi.encodeCall(UMC.setParameters, (3 ether, COOLDOWN)));
        vm.expectRevert(abi.encodeWithSelector(UMC.InsufficientStake.selector, STAKE, 3 ether));
        vm.prank(market);
        umc.onTaskAssigned(worker);

        // Topping up the stake makes the worker assignable again.
        vm.prank(worker);
        umc.addStake{value: 1 ether}();
        vm.prank(market);
        umc.onTaskAssigned(worker);
    }

    // ================================================================ onTaskSucceeded

    function test_onTaskSucceeded_raisesReputation() public {
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        umc.onTaskAssigned(worker);

        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Succeeded, 0);
        vm.expectEmit(address(umc));
        emit UMC.ReputationChanged(worker, 0, 100_000);
        vm.prank(market);
        umc.onTaskSucceeded(worker, true);

        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.reputation, 100_000, "R += 0.1 (1 - R)");
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 1);
        assertEq(w.failedTasks, 0);
        assertEq(w.stake, STAKE);
    }

    function test_onTaskSucceeded_belowFloorEarnsNoReputation() public {
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        umc.onTaskAssigned(worker);
        vm.recordLogs();
        vm.prank(market);
        umc.onTaskSucceeded(worker, false);
        assertEq(vm.getRecordedLogs().length, 1, "TaskEnded only: no ReputationChanged");
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.reputation, 0);
        assertEq(w.completedTasks, 1);
        assertEq(w.activeTasks, 0);
    }

    function test_onTaskSucceeded_revertsForNonMarket() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, stranger));
        vm.prank(stranger);
        umc.onTaskSucceeded(worker, true);
    }

    function test_onTaskSucceeded_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(market);
        umc.onTaskSucceeded(stranger, true);
    }

    function test_onTaskEnd_revertsWithoutActiveTask() public {
        _register(worker, STAKE, PRICE);
        vm.startPrank(market);
        vm.expectRevert(abi.encodeWithSelector(UMC.NoActiveTask.selector, worker));
        umc.onTaskSucceeded(worker, true);
        vm.expectRevert(abi.encodeWithSelector(UMC.NoActiveTask.selector, worker));
        umc.onTaskFailed(worker, market, SLASH_BPS);
        vm.expectRevert(abi.encodeWithSelector(UMC.NoActiveTask.selector, worker));
        umc.onTaskReleased(worker);
        vm.stopPrank();
        assertEq(umc.reputationOf(worker), 0);
        assertEq(umc.stakeOf(worker), STAKE);
    }

    function test_onTaskFailed_lowersReputationAndSlashes() public {
        _register(worker, STAKE, PRICE);
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskSucceeded(worker, true); // 0 -> 100000
        umc.onTaskAssigned(worker);
        vm.stopPrank();

        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Failed, 0);
        vm.expectEmit(address(umc));
        emit UMC.ReputationChanged(worker, 100_000, 90_000);
        vm.expectEmit(address(umc));
        emit UMC.StakeSlashed(worker, requester, 0.2 ether, 1.8 ether);
        vm.expectEmit(address(umc));
        emit Consortium.Credited(requester, 0.2 ether);
        vm.prank(market);
        uint256 slashed = umc.onTaskFailed(worker, requester, SLASH_BPS);

        assertEq(slashed, 0.2 ether);
        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.reputation, 90_000, "R -= 0.1 R");
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 1);
        assertEq(w.failedTasks, 1);
        assertEq(w.stake, 1.8 ether);
        assertEq(umc.credits(requester), 0.2 ether);
        assertEq(address(umc).balance, STAKE, "slash moves wei from stake to credits, not out");
    }

    function test_onTaskFailed_zeroSlashBpsSlashesNothing() public {
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        umc.onTaskAssigned(worker);
        vm.recordLogs();
        vm.prank(market);
        uint256 slashed = umc.onTaskFailed(worker, requester, 0);
        assertEq(vm.getRecordedLogs().length, 2, "TaskEnded and ReputationChanged only: no StakeSlashed nor Credited");
        assertEq(slashed, 0);
        assertEq(umc.stakeOf(worker), STAKE);
        assertEq(umc.credits(requester), 0);
        assertEq(umc.getWorker(worker).failedTasks, 1);
    }

    function test_onTaskFailed_slashRoundsDown() public {
        _preset(umc, abi.encodeCall(UMC.setParameters, (0, COOLDOWN)));
        _register(worker, 19, PRICE); // 19 * 1000 / 10000 = 1.9 -> 1
        vm.prank(market);
        umc.onTaskAssigned(worker);
        vm.prank(market);
        assertEq(umc.onTaskFailed(worker, requester, 1_000), 1);
        assertEq(umc.stakeOf(worker), 18);
    }

    function test_onTaskFailed_revertsOnSlashAboveMax() public {
        _register(worker, STAKE, PRICE);
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        vm.expectRevert(abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "slashBps", 5_001, 5_000));
        umc.onTaskFailed(worker, requester, 5_001);
        assertEq(umc.onTaskFailed(worker, requester, 5_000), 1 ether);
        vm.stopPrank();
    }

    function test_onTaskFailed_revertsForNonMarket() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, stranger));
        vm.prank(stranger);
        umc.onTaskFailed(worker, stranger, SLASH_BPS);
    }

    function test_onTaskFailed_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(market);
        umc.onTaskFailed(stranger, requester, SLASH_BPS);
    }

    function testFuzz_onTaskFailed_slash(uint256 stake, uint16 bps) public {
        stake = bound(stake, MIN_STAKE, type(uint96).max);
        bps = uint16(bound(bps, 0, 5_000));
        vm.deal(worker, stake);
        _register(worker, stake, PRICE);

        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        uint256 slashed = umc.onTaskFailed(worker, requester, bps);
        vm.stopPrank();
        assertEq(slashed, stake * bps / 10_000);
        assertEq(umc.stakeOf(worker) + umc.credits(requester), stake, "slash conserves value");
        assertEq(address(umc).balance, stake);
    }

    // ================================================================ onTaskReleased

    function test_onTaskReleased_keepsReputation() public {
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        umc.onTaskAssigned(worker);
        vm.expectEmit(address(umc));
        emit UMC.TaskEnded(worker, UMC.Outcome.Released, 0);
        vm.recordLogs();
        vm.prank(market);
        umc.onTaskReleased(worker);
        assertEq(vm.getRecordedLogs().length, 1, "no ReputationChanged");

        UMC.Worker memory w = umc.getWorker(worker);
        assertEq(w.reputation, 0);
        assertEq(w.activeTasks, 0);
        assertEq(w.completedTasks, 0);
        assertEq(w.failedTasks, 0);
        assertEq(w.stake, STAKE);
    }

    function test_onTaskReleased_revertsForNonMarket() public {
        _register(worker, STAKE, PRICE);
        vm.expectRevert(abi.encodeWithSelector(UMC.NotMarket.selector, stranger));
        vm.prank(stranger);
        umc.onTaskReleased(worker);
    }

    function test_onTaskReleased_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(UMC.NotRegistered.selector, stranger));
        vm.prank(market);
        umc.onTaskReleased(stranger);
    }

    // ================================================================ reputation math

    function test_noModelRatingHook() public {
        // Ratings no longer reach the registry: there is no hook a market could call.
        _register(worker, STAKE, PRICE);
        vm.prank(market);
        (bool ok,) = address(umc).call(abi.encodeWithSignature("onModelRated(address,uint8)", worker, 5));
        assertFalse(ok);
        assertEq(umc.reputationOf(worker), 0);
    }

    function test_reputation_exactSequence() public {
        _register(worker, STAKE, PRICE);
        vm.startPrank(market);
        umc.onTaskAssigned(worker);
        umc.onTaskSucceeded(worker, true); // 0 + 100000
        assertEq(umc.reputationOf(worker), 100_000);
        umc.onTaskAssigned(worker);
        umc.onTaskSucceeded(worker, true); // 100000 + 90000
        assertEq(umc.reputationOf(worker), 190_000);
        umc.onTaskAssigned(worker);
        umc.onTaskFailed(worker, requester, 0); // 190000 - 19000
        assertEq(umc.reputationOf(worker), 171_000);
        umc.onTaskAssigned(worker);
        umc.onTaskFailed(worker, requester, 0); // 171000 - 17100
        assertEq(umc.reputationOf(worker), 153_900);
        umc.onTaskAssigned(worker);
        umc.onTaskSucceeded(worker, false); // below the floor: unchanged
        assertEq(umc.reputationOf(worker), 153_900);
        umc.onTaskAssigned(worker);
        umc.onTaskSucceeded(worker, true); // 153900 + floor(846100 / 10) = 153900 + 84610
        assertEq(umc.reputationOf(worker), 238_510);
        vm.stopPrank();
    }

    function test_reputation_saturatesBelowOne() public {
        _register(worker, STAKE, PRICE);
        vm.startPrank(market);
        for (uint256 i; i < 200; ++i) {
            umc.onTaskAssigned(worker);
            umc.onTaskSucceeded(worker, true);
        }
        vm.stopPrank();
        // Integer rounding stops the climb at 1e6 - 9 (the step (1e6 - R) / 10 rounds to 0 there).
        assertEq(umc.reputationOf(worker), 999_991);
        assertEq(umc.getWorker(worker).completedTasks, 200);
    }

    function test_reputation_decaysTowardZero() public {
        _register(worker, STAKE, PRICE);
        vm.startPrank(market);
        for (uint256 i; i < 200; ++i) {
            umc.onTaskAssigned(worker);
            umc.onTaskSucceeded(worker, true);
        }
        for (uint256 i; i < 200; ++i) {
            umc.onTaskAssigned(worker);
            umc.onTaskFailed(worker, requester, 0);
        }
        vm.stopPrank();
        // The step R / 10 rounds to 0 below 10.
        assertEq(umc.reputationOf(worker), 9);
        assertEq(umc.getWorker(worker).failedTasks, 200);
    }

    /// @dev Each bit of `outcomes` picks success (1) or failure (0); each bit of `floors` whether a success
    ///      was paid at least the reputation floor.
    function testFuzz_reputation_staysInRangeAndMatchesModel(uint256 outcomes, uint256 floors) public {
        _register(worker, STAKE, PRICE);
        uint256 expected = 0;
        vm.startPrank(market);
        for (uint256 i; i < 64; ++i) {
            umc.onTaskAssigned(worker);
            if ((outcomes >> i) & 1 == 1) {
                bool earns = (floors >> i) & 1 == 1;
                umc.onTaskSucceeded(worker, earns);
                if (earns) expected += (1_000_000 - expected) * 100_000 / 1_000_000;
            } else {
                umc.onTaskFailed(worker, requester, 0);
                expected -= expected * 100_000 / 1_000_000;
            }
            uint256 r = umc.reputationOf(worker);
            assertEq(r, expected);
            assertLe(r, 1_000_000);
        }
        vm.stopPrank();
        assertEq(umc.getWorker(worker).activeTasks, 0);
    }

    // ================================================================ views

    function test_views_unregistered() public view {
        UMC.Worker memory w = umc.getWorker(stranger);
        assertEq(w.registeredAt, 0);
        assertEq(w.stake, 0);
        assertEq(w.reputation, 0);
        assertFalse(umc.isWorker(stranger));
        assertEq(umc.reputationOf(stranger), 0);
        assertEq(umc.stakeOf(stranger), 0);
        assertEq(umc.credits(stranger), 0);
    }
}
