// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./utils/Test.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Consortium} from "../contracts/Consortium.sol";
import {UMC} from "../contracts/UMC.sol";
import {TMC} from "../contracts/TMC.sol";
import {MMC} from "../contracts/MMC.sol";

/// @title Handler
/// @notice Drives random but mostly valid actions across UMC, TMC and MMC for a fixed set of actors
///         (every actor can request, work, list and buy; the first five are registered workers from the
///         start) and three oracles with a quorum of two, one of them dishonest. Inputs are bounded and
///         targets are searched for, so a call seldom reverts: an action that needs a task in some state
///         creates one first when there is none (e.g. `complete` posts, assigns and submits), and
///         time-gated actions warp to when they are allowed. Ghost counters record what happened.
///         A worker's result is good or junk (chosen when it submits, kept as a ghost). The two honest
///         oracles vote by it (complete a good result, fail junk) and always vote in pairs; the dishonest
///         one votes the other way on results, fails assigned tasks and votes to assign anyone at any
///         price, alone or before the honest pair.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
contract Handler is Test {
    uint256 public constant ACTORS = 8;
    uint256 public constant INITIAL_WORKERS = 5;
    uint256 public constant ACTOR_FUNDS = 10_000 ether;

    UMC public immutable umc;
    TMC public immutable tmc;
    MMC public immutable mmc;
    /// @notice The honest oracles (seats 0 and 1) and the dishonest one (seat 2).
    address public immutable honest0;
    address public immutable honest1;
    address public immutable dishonest;
    uint32 internal constant DISHONEST_SEAT = 4; // bit of seat 2

    address[] internal _actors;
    /// @notice The campaign's clock; every action starts by warping to it (time only moves forward).
    uint256 public currentTime;

    // ghost counters (of successful actions; a reverted call rolls its own increments back)
    uint256 public calls;
    uint256 public posted;
    uint256 public cancelled;
    uint256 public withdrawnPosted;
    uint256 public withdrawnAssigned;
    uint256 public assigned;
    uint256 public submitted;
    uint256 public completed;
    uint256 public failedReopened;
    uint256 public failedRefunded;
    uint256 public abandoned;
    uint256 public expired;
    uint256 public registered;
    uint256 public stakeAdds;
    uint256 public unstakeRequests;
    uint256 public stakeWithdrawals;
    uint256 public profileUpdates;
    uint256 public withdrawals;
    uint256 public listed;
    uint256 public delisted;
    uint256 public repriced;
    uint256 public purchased;
    uint256 public rated;
    uint256 public skipped;
    uint256 public dishonestVotes;

    // ghosts of what the oracles and workers did
    /// @notice Whether `worker` submitted a result for the task, and whether it was good.
    mapping(uint256 taskId => mapping(address worker => bool)) public submittedBy;
    mapping(uint256 taskId => mapping(address worker => bool)) public goodResult;
    /// @notice Oracle seats (bit i = seat i) that voted to complete the task's current result.
    mapping(uint256 taskId => uint32 seats) public completeVoters;
    /// @notice How many times the handler saw the task become Completed.
    mapping(uint256 taskId => uint256) public completions;
    /// @notice Wei each account withdrew from TMC.
    mapping(address account => uint256) public withdrawnTmc;

    constructor(UMC umc_, TMC tmc_, MMC mmc_, address[] memory oracles_) {
        umc = umc_;
        tmc = tmc_;
        mmc = mmc_;
        honest0 = oracles_[0];
        honest1 = oracles_[1];
        dishonest = oracles_[2];
        currentTime = block.timestamp;
        for (uint256 i; i < ACTORS; ++i) {
            address a = makeAddr(string.concat("actor", vm.toString(i)));
            _actors.push(a);
            vm.deal(a, ACTOR_FUNDS);
            if (i < INITIAL_WORKERS) {
                vm.prank(a);
                umc.registerWorker{value: 2 ether}(
                    bytes32(i), UMC.Hardware(1, 8, 32), uint96((i + 1) * 0.02 ether), "worker"
                );
            }
        }
    }

    modifier useTime() {
        calls++;
        vm.warp(currentTime);
        _;
    }

    // ================================================================ views for the invariants

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function totalFunds() external pure returns (uint256) {
        return ACTORS * ACTOR_FUNDS;
    }

    function settled() external view returns (uint256) {
        return cancelled + withdrawnPosted + withdrawnAssigned + completed + failedReopened + failedRefunded + expired;
    }

    // ================================================================ time

    function warp(uint256 seconds_) external {
        calls++;
        currentTime += bound(seconds_, 0, 2 days);
        vm.warp(currentTime);
    }

    function _warpTo(uint256 t) internal {
        if (t > currentTime) {
            currentTime = t;
            vm.warp(t);
        }
    }

    // ================================================================ TMC

    function postTask(uint256 actorSeed, uint256 budget, uint256 duration) external useTime {
        _post(_actor(actorSeed), budget, duration);
    }

    function cancel(uint256 taskSeed) external useTime {
        uint256 id = _findTask(taskSeed, TMC.Status.Posted, false);
        if (id == 0) id = _post(_actor(taskSeed), taskSeed >> 64, taskSeed >> 128);
        vm.prank(tmc.getTask(id).requester);
        tmc.cancel(id);
        cancelled++;
    }

    /// @notice The requester withdraws a task: an Assigned one before its deadline (worker released with
    ///         the fee) or a Posted one, which is looked for first depends on the seed's parity; a task is
    ///         assigned first when there is neither.
    function withdrawTask(uint256 taskSeed, uint256 workerSeed) external useTime {
        uint256 id;
        if (taskSeed % 2 == 0) id = _findTask(taskSeed, TMC.Status.Assigned, true);
        if (id == 0) id = _findTask(taskSeed, TMC.Status.Posted, false);
        if (id == 0) id = _findTask(taskSeed, TMC.Status.Assigned, true);
        if (id == 0) id = _assignSome(taskSeed, workerSeed);
        if (id == 0) return;
        TMC.Task memory t = tmc.getTask(id);
        vm.prank(t.requester);
        tmc.withdrawTask(id);
        if (t.status == TMC.Status.Assigned) withdrawnAssigned++;
        else withdrawnPosted++;
    }

    function assign(uint256 taskSeed, uint256 workerSeed) external useTime {
        _assignSome(taskSeed, workerSeed);
    }

    function submit(uint256 taskSeed, uint256 workerSeed, uint256 quality) external useTime {
        _submitSome(taskSeed, workerSeed, quality);
    }

    /// @notice The oracles settle a submitted result (one is submitted first when there is none): the
    ///         honest pair by the result's quality, the dishonest oracle against it, first when
    ///         `dishonestFirst`. Good results complete, junk fails (reopened when `reopen`).
    function complete(uint256 taskSeed, uint256 workerSeed, bool dishonestFirst, bool reopen) external useTime {
        uint256 id = _findSettleable(taskSeed);
        if (id == 0) id = _submitSome(taskSeed, workerSeed, workerSeed >> 128);
        if (id == 0) return;
        bool good = goodResult[id][tmc.getTask(id).worker];
        if (dishonestFirst) _dishonestVote(id, good, reopen);
        _honestVote(honest0, id, good, reopen);
        _honestVote(honest1, id, good, reopen);
        _count(id);
    }

    /// @notice The honest oracles fail an assigned task (its worker crashed); one is assigned first when
    ///         there is none.
    function fail(uint256 taskSeed, uint256 workerSeed, bool reopen) external useTime {
        uint256 id = _findTask(taskSeed, TMC.Status.Assigned, true);
        if (id == 0) id = _assignSome(taskSeed, workerSeed);
        if (id == 0) return;
        _honestVote(honest0, id, false, reopen);
        _honestVote(honest1, id, false, reopen);
        _count(id);
    }

    /// @notice The assigned worker gives up its attempt (its trainer failed): no vote needed.
    function abandon(uint256 taskSeed, uint256 workerSeed) external useTime {
        uint256 id = _findTask(taskSeed, TMC.Status.Assigned, true);
        if (id == 0) id = _assignSome(taskSeed, workerSeed);
        if (id == 0) return;
        vm.prank(tmc.getTask(id).worker);
        tmc.abandon(id);
        abandoned++;
        _count(id);
    }

    /// @notice The dishonest oracle votes alone: against the truth on a submitted result, to fail an
    ///         assigned task, or to assign any actor at any price (up to the budget) on a posted one.
    function dishonestVote(uint256 taskSeed, uint256 workerSeed, uint256 maxPrice, bool reopen) external useTime {
        uint256 id = _findTask(taskSeed, TMC.Status.Submitted, false);
        if (id != 0 && _hasVoted(id, tmc.getTask(id).completeVotes | tmc.getTask(id).failVotes)) id = 0;
        if (id != 0 && !_windowOpen(id)) id = 0;
        if (id != 0) {
            _dishonestVote(id, goodResult[id][tmc.getTask(id).worker], reopen);
            return;
        }
        id = _findTask(taskSeed, TMC.Status.Assigned, true);
        if (id != 0 && !_hasVoted(id, tmc.getTask(id).failVotes)) {
            vm.prank(dishonest);
            tmc.fail(id, reopen);
            dishonestVotes++;
            return;
        }
        id = _findTask(taskSeed, TMC.Status.Posted, true);
        if (id == 0 || _hasVoted(id, tmc.getTask(id).assignVotes)) {
            skipped++;
            return;
        }
        TMC.Task memory t = tmc.getTask(id);
        address w = _actor(workerSeed);
        if (w == t.requester || tmc.failedBefore(id, w)) {
            skipped++;
            return;
        }
        vm.prank(dishonest);
        tmc.assign(id, w, bound(maxPrice, 0, t.budget));
        dishonestVotes++;
    }

    function expire(uint256 taskSeed) external useTime {
        uint256 id = _findTask(taskSeed, TMC.Status.Posted, false);
        if (id == 0) id = _findTask(taskSeed, TMC.Status.Assigned, false);
        if (id == 0) id = _findTask(taskSeed, TMC.Status.Submitted, false);
        if (id == 0) id = _post(_actor(taskSeed), taskSeed >> 64, taskSeed >> 128);
        TMC.Task memory t = tmc.getTask(id);
        uint256 availableAt =
            uint256(t.deadline) + (t.status == TMC.Status.Submitted ? tmc.termsOf(id).verificationWindow : 0) + 1;
        _warpTo(availableAt);
        tmc.expire(id);
        expired++;
    }

    function withdrawTmc(uint256 actorSeed) external useTime {
        _withdraw(tmc, actorSeed);
    }

    // ================================================================ UMC

    function registerWorker(uint256 actorSeed, uint256 stake, uint96 price) external useTime {
        address a = _findActor(actorSeed, _isUnregistered);
        if (a == address(0)) return;
        stake = bound(stake, umc.minStake(), 5 ether);
        price = uint96(bound(price, 0, 0.5 ether));
        vm.prank(a);
        umc.registerWorker{value: stake}(bytes32(actorSeed), UMC.Hardware(2, 16, 64), price, "late worker");
        registered++;
    }

    function addStake(uint256 actorSeed, uint256 amount) external useTime {
        address a = _findActor(actorSeed, _isRegistered);
        if (a == address(0)) return;
        amount = bound(amount, 1, 2 ether);
        vm.prank(a);
        umc.addStake{value: amount}();
        stakeAdds++;
    }

    function requestUnstake(uint256 actorSeed, uint256 amount) external useTime {
        address a = _findActor(actorSeed, _hasStake);
        if (a == address(0)) return;
        amount = bound(amount, 1, umc.stakeOf(a));
        vm.prank(a);
        umc.requestUnstake(uint96(amount));
        unstakeRequests++;
    }

    function withdrawStake(uint256 actorSeed) external useTime {
        address a = _findActor(actorSeed, _canWithdrawStake);
        if (a == address(0)) return;
        _warpTo(umc.getWorker(a).unstakeAvailableAt);
        vm.prank(a);
        umc.withdrawStake();
        stakeWithdrawals++;
    }

    function updateWorker(uint256 actorSeed, uint96 price) external useTime {
        address a = _findActor(actorSeed, _isRegistered);
        if (a == address(0)) return;
        price = uint96(bound(price, 0, 2 ether));
        vm.prank(a);
        umc.updateWorker(bytes32(actorSeed), UMC.Hardware(4, 32, 128), price, "updated");
        profileUpdates++;
    }

    function withdrawUmc(uint256 actorSeed) external useTime {
        _withdraw(umc, actorSeed);
    }

    // ================================================================ MMC

    function list(uint256 actorSeed, uint96 price, uint256 parentSeed, uint16 royaltyBps) external useTime {
        _list(_actor(actorSeed), price, parentSeed, royaltyBps);
    }

    function delist(uint256 listingSeed) external useTime {
        uint256 id = _findActiveListing(listingSeed);
        if (id == 0) return;
        vm.prank(mmc.getListing(id).owner);
        mmc.delist(id);
        delisted++;
    }

    function setListingPrice(uint256 listingSeed, uint96 price) external useTime {
        uint256 n = mmc.listingCount();
        if (n == 0) return;
        uint256 id = listingSeed % n + 1;
        vm.prank(mmc.getListing(id).owner);
        mmc.setPrice(id, uint96(bound(price, 0, 3 ether)));
        repriced++;
    }

    function purchase(uint256 listingSeed, uint256 buyerSeed) external useTime {
        _purchaseSome(listingSeed, buyerSeed);
    }

    function rate(uint256 listingSeed, uint256 buyerSeed, uint8 stars) external useTime {
        (uint256 id, address buyer) = _findPurchase(listingSeed, buyerSeed, MMC.Purchase.Bought);
        if (id == 0) (id, buyer) = _purchaseSome(listingSeed, buyerSeed);
        if (id == 0) return;
        vm.prank(buyer);
        mmc.rate(id, uint8(bound(stars, 1, 5)));
        rated++;
    }

    function withdrawMmc(uint256 actorSeed) external useTime {
        _withdraw(mmc, actorSeed);
    }

    // ================================================================ internal: tasks

    function _post(address requester, uint256 budget, uint256 duration) internal returns (uint256 id) {
        budget = bound(budget, 0.01 ether, 20 ether);
        duration = bound(duration, 1 hours, 10 days);
        vm.prank(requester);
        id = tmc.postTask{value: budget}("spec", TMC.Kind.Training, 100_000, uint40(currentTime + duration));
        posted++;
    }

    /// @dev A Posted task that can still be assigned (one is posted if none), assigned to a worker that
    ///      fits; 0 if no worker fits.
    function _assignSome(uint256 taskSeed, uint256 workerSeed) internal returns (uint256 id) {
        id = _findTask(taskSeed, TMC.Status.Posted, true);
        if (id == 0) id = _post(_actor(taskSeed), taskSeed >> 64, taskSeed >> 128);
        address w = _pickWorker(workerSeed, id, tmc.getTask(id));
        if (w == address(0)) {
            skipped++;
            return 0;
        }
        // The honest pair agrees on the worker at its current price; the dishonest oracle may have voted
        // the same already, then the first honest vote assigns.
        uint256 price = umc.getWorker(w).pricePerTask;
        vm.prank(honest0);
        tmc.assign(id, w, price);
        if (tmc.getTask(id).status == TMC.Status.Posted) {
            vm.prank(honest1);
            tmc.assign(id, w, price);
        }
        assigned++;
    }

    /// @dev An assigned task's worker submits a result, good when `quality` is odd.
    function _submitSome(uint256 taskSeed, uint256 workerSeed, uint256 quality) internal returns (uint256 id) {
        id = _findTask(taskSeed, TMC.Status.Assigned, true);
        if (id == 0) id = _assignSome(taskSeed, workerSeed);
        if (id == 0) return 0;
        address w = tmc.getTask(id).worker;
        bool good = quality % 2 == 1;
        vm.prank(w);
        tmc.submitResult(id, "model", keccak256(abi.encode(id, good)));
        submittedBy[id][w] = true;
        goodResult[id][w] = good;
        completeVoters[id] = 0;
        submitted++;
    }

    /// @dev A submitted task whose verification window is open and that the honest oracles have not
    ///      voted on (they always vote in pairs, so such a task is unsettled).
    function _findSettleable(uint256 seed) internal view returns (uint256) {
        uint256 n = tmc.taskCount();
        if (n == 0) return 0;
        uint256 start = seed % n;
        for (uint256 i; i < n; ++i) {
            uint256 id = _cycle(start, i, n) + 1;
            if (tmc.getTask(id).status == TMC.Status.Submitted && _windowOpen(id)) return id;
        }
        return 0;
    }

    function _windowOpen(uint256 id) internal view returns (bool) {
        return currentTime <= uint256(tmc.getTask(id).deadline) + tmc.termsOf(id).verificationWindow;
    }

    /// @dev Whether the dishonest oracle's seat is in `mask` (votes of the current oracle set only).
    function _hasVoted(uint256 id, uint32 mask) internal view returns (bool) {
        return tmc.getTask(id).voteEpoch == tmc.oracleEpoch() && mask & DISHONEST_SEAT != 0;
    }

    /// @dev An honest vote on task `id` if it is still open: on a submitted result by its quality, on an
    ///      assigned task to fail it.
    function _honestVote(address o, uint256 id, bool good, bool reopen) internal {
        TMC.Status s = tmc.getTask(id).status;
        if (s != TMC.Status.Submitted && s != TMC.Status.Assigned) return;
        vm.prank(o);
        if (s == TMC.Status.Submitted && good) {
            tmc.complete(id);
            completeVoters[id] |= o == honest0 ? 1 : 2;
        } else {
            tmc.fail(id, reopen);
        }
    }

    /// @dev The dishonest oracle votes against the truth on a submitted result (unless it already did).
    function _dishonestVote(uint256 id, bool good, bool reopen) internal {
        TMC.Task memory t = tmc.getTask(id);
        if (t.status != TMC.Status.Submitted || _hasVoted(id, t.completeVotes | t.failVotes)) return;
        vm.prank(dishonest);
        if (good) {
            tmc.fail(id, reopen);
        } else {
            tmc.complete(id);
            completeVoters[id] |= DISHONEST_SEAT;
        }
        dishonestVotes++;
    }

    /// @dev Count how the settlement of task `id` ended.
    function _count(uint256 id) internal {
        TMC.Status s = tmc.getTask(id).status;
        if (s == TMC.Status.Completed) {
            completions[id]++;
            completed++;
        } else if (s == TMC.Status.Posted) {
            failedReopened++;
        } else if (s == TMC.Status.Failed) {
            failedRefunded++;
        }
    }

    /// @dev First task from `seed` (cyclically) in `status`; with `live`, also not past its deadline.
    function _findTask(uint256 seed, TMC.Status status, bool live) internal view returns (uint256) {
        uint256 n = tmc.taskCount();
        if (n == 0) return 0;
        uint256 start = seed % n;
        for (uint256 i; i < n; ++i) {
            uint256 id = _cycle(start, i, n) + 1;
            TMC.Task memory t = tmc.getTask(id);
            if (t.status == status && (!live || currentTime <= t.deadline)) return id;
        }
        return 0;
    }

    /// @dev A registered worker other than the requester, bonded for one more task, whose price fits the
    ///      budget and that has not failed this task.
    function _pickWorker(uint256 seed, uint256 id, TMC.Task memory t) internal view returns (address) {
        uint256 minStake = umc.minStake();
        for (uint256 i; i < ACTORS; ++i) {
            address a = _actors[_cycle(seed, i, ACTORS)];
            if (a == t.requester || tmc.failedBefore(id, a)) continue;
            UMC.Worker memory w = umc.getWorker(a);
            if (w.registeredAt != 0 && w.stake >= minStake * (umc.activeTasksOf(a) + 1) && w.pricePerTask <= t.budget) {
                return a;
            }
        }
        return address(0);
    }

    // ================================================================ internal: listings

    function _list(address owner, uint256 price, uint256 parentSeed, uint256 royaltyBps) internal returns (uint256 id) {
        uint256 parent = parentSeed % (mmc.listingCount() + 1); // 0: no parent
        vm.prank(owner);
        id = mmc.list(
            "model",
            uint8(parentSeed),
            keccak256(abi.encode(parentSeed)),
            uint96(bound(price, 0, 3 ether)),
            uint64(parent),
            uint16(bound(royaltyBps, 0, 3_000))
        );
        listed++;
    }

    function _findActiveListing(uint256 seed) internal view returns (uint256) {
        uint256 n = mmc.listingCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = _cycle(seed, i, n) + 1;
            if (mmc.getListing(id).active) return id;
        }
        return 0;
    }

    /// @dev A (listing, buyer) pair where the buyer is in `state` for an active listing it does not own.
    function _findPurchase(uint256 listingSeed, uint256 buyerSeed, MMC.Purchase state)
        internal
        view
        returns (uint256, address)
    {
        uint256 n = mmc.listingCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = _cycle(listingSeed, i, n) + 1;
            MMC.Listing memory l = mmc.getListing(id);
            if (state == MMC.Purchase.None && !l.active) continue;
            for (uint256 j; j < ACTORS; ++j) {
                address b = _actors[_cycle(buyerSeed, j, ACTORS)];
                if (b != l.owner && mmc.purchaseOf(id, b) == state) return (id, b);
            }
        }
        return (0, address(0));
    }

    function _purchaseSome(uint256 listingSeed, uint256 buyerSeed) internal returns (uint256 id, address buyer) {
        (id, buyer) = _findPurchase(listingSeed, buyerSeed, MMC.Purchase.None);
        if (id == 0) {
            id = _list(_actor(listingSeed), listingSeed >> 64, listingSeed >> 128, listingSeed >> 192);
            buyer = _actors[_cycle(listingSeed, 1 + buyerSeed % (ACTORS - 1), ACTORS)]; // never the owner
        }
        uint256 price = mmc.getListing(id).price;
        vm.prank(buyer);
        mmc.purchase{value: price}(id);
        purchased++;
    }

    // ================================================================ internal: actors

    function _actor(uint256 seed) internal view returns (address) {
        return _actors[seed % ACTORS];
    }

    /// @dev The `i`-th index after `seed` in a cycle of `n`, without overflowing on huge seeds.
    function _cycle(uint256 seed, uint256 i, uint256 n) internal pure returns (uint256) {
        return (seed % n + i) % n;
    }

    function _findActor(uint256 seed, function(address) view returns (bool) pred) internal returns (address) {
        for (uint256 i; i < ACTORS; ++i) {
            address a = _actors[_cycle(seed, i, ACTORS)];
            if (pred(a)) return a;
        }
        skipped++;
        return address(0);
    }

    function _isRegistered(address a) internal view returns (bool) {
        return umc.isWorker(a);
    }

    function _isUnregistered(address a) internal view returns (bool) {
        return !umc.isWorker(a);
    }

    function _hasStake(address a) internal view returns (bool) {
        return umc.stakeOf(a) != 0;
    }

    function _canWithdrawStake(address a) internal view returns (bool) {
        return umc.getWorker(a).unstakeAmount != 0 && umc.activeTasksOf(a) == 0;
    }

    function _withdraw(Consortium c, uint256 seed) internal {
        for (uint256 i; i < ACTORS; ++i) {
            address a = _actors[_cycle(seed, i, ACTORS)];
            if (c.credits(a) != 0) {
                vm.prank(a);
                uint256 amount = c.withdraw();
                if (address(c) == address(tmc)) withdrawnTmc[a] += amount;
                withdrawals++;
                return;
            }
        }
        skipped++;
    }
}

/// @title Invariants of the drlaas contracts under random use
/// @notice Every wei a contract holds is accounted for (escrow, stake or someone's credits), nothing is
///         created or lost overall, reputation stays in [0, 1), UMC's per-worker task counters match
///         TMC's tasks, and with one dishonest oracle of three (quorum two): junk is never completed, a good
///         result is never failed, a completed task had a quorum of complete votes, and each task pays out
///         exactly once.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
contract InvariantTest is Fixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @dev Successful handler calls from which a run is judged by `afterInvariant` (depth is 64).
    uint256 internal constant MIN_CALLS = 48;

    Handler internal handler;

    function setUp() public override {
        super.setUp();
        _deploy2of3(); // oracle3 (seat 2) is the handler's dishonest oracle
        handler = new Handler(umc, tmc, mmc, oracleSet);
        vm.label(address(handler), "Handler");
    }

    // ---------------------------------------------------------------- what the fuzzer calls

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory s = new bytes4[](24);
        s[0] = Handler.warp.selector;
        s[1] = Handler.postTask.selector;
        s[2] = Handler.cancel.selector;
        s[3] = Handler.assign.selector;
        s[4] = Handler.submit.selector;
        s[5] = Handler.complete.selector;
        s[6] = Handler.fail.selector;
        s[7] = Handler.expire.selector;
        s[8] = Handler.withdrawTmc.selector;
        s[9] = Handler.registerWorker.selector;
        s[10] = Handler.addStake.selector;
        s[11] = Handler.requestUnstake.selector;
        s[12] = Handler.withdrawStake.selector;
        s[13] = Handler.updateWorker.selector;
        s[14] = Handler.withdrawUmc.selector;
        s[15] = Handler.list.selector;
        s[16] = Handler.delist.selector;
        s[17] = Handler.setListingPrice.selector;
        s[18] = Handler.purchase.selector;
        s[19] = Handler.rate.selector;
        s[20] = Handler.withdrawMmc.selector;
        s[21] = Handler.withdrawTask.selector;
        s[22] = Handler.dishonestVote.selector;
        s[23] = Handler.abandon.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: s});
    }

    // ---------------------------------------------------------------- invariants

    /// @notice TMC holds exactly the escrow of its open tasks plus everyone's credits.
    function invariant_tmcSolvent() public view {
        uint256 escrow;
        uint256 n = tmc.taskCount();
        for (uint256 id = 1; id <= n; ++id) {
            escrow += tmc.escrowOf(id);
        }
        assertEq(address(tmc).balance, escrow + _sumCredits(tmc), "TMC balance != escrow + credits");
    }

    /// @notice UMC holds exactly the bonded stakes plus everyone's credits (slashes to requesters).
    function invariant_umcSolvent() public view {
        address[] memory a = handler.actors();
        uint256 stakes;
        for (uint256 i; i < a.length; ++i) {
            stakes += umc.stakeOf(a[i]);
        }
        assertEq(address(umc).balance, stakes + _sumCredits(umc), "UMC balance != stakes + credits");
    }

    /// @notice MMC holds exactly everyone's credits.
    function invariant_mmcSolvent() public view {
        assertEq(address(mmc).balance, _sumCredits(mmc), "MMC balance != credits");
    }

    /// @notice No wei is created or destroyed: actors plus contracts hold what the actors started with.
    function invariant_etherConserved() public view {
        address[] memory a = handler.actors();
        uint256 total = address(tmc).balance + address(umc).balance + address(mmc).balance;
        for (uint256 i; i < a.length; ++i) {
            total += a[i].balance;
        }
        assertEq(total, handler.totalFunds(), "ether created or lost");
    }

    /// @notice Reputation is a fraction in [0, 1) (ppm): registered workers start at 0 and never reach 1;
    ///         a worker that never completed a task at or above the reputation floor has none.
    function invariant_reputationInRange() public view {
        address[] memory a = handler.actors();
        for (uint256 i; i < a.length; ++i) {
            uint256 r = umc.reputationOf(a[i]);
            assertLt(r, 1_000_000, "reputation reached 1");
            if (!umc.isWorker(a[i])) assertEq(r, 0, "reputation of a non-worker");
            if (umc.getWorker(a[i]).completedTasks == 0) assertEq(r, 0, "reputation without a completed task");
        }
    }

    /// @notice A worker's active task counter equals its tasks in Assigned or Submitted.
    function invariant_activeTasksMatchTmc() public view {
        address[] memory a = handler.actors();
        uint256[] memory active = new uint256[](a.length);
        uint256 n = tmc.taskCount();
        for (uint256 id = 1; id <= n; ++id) {
            TMC.Task memory t = tmc.getTask(id);
            if (t.status != TMC.Status.Assigned && t.status != TMC.Status.Submitted) continue;
            bool found;
            for (uint256 i; i < a.length; ++i) {
                if (a[i] == t.worker) {
                    active[i]++;
                    found = true;
                    break;
                }
            }
            assertTrue(found, "task assigned to an unknown worker");
        }
        for (uint256 i; i < a.length; ++i) {
            assertEq(umc.activeTasksOf(a[i]), active[i], "activeTasks != open tasks in TMC");
        }
    }

    /// @notice With one dishonest oracle of three: a junk result is never Completed and a good one never
    ///         Failed; a Completed task had at least `quorum` complete votes on its result, one of them
    ///         honest.
    function invariant_oraclesSettleByTheTruth() public view {
        address[] memory a = handler.actors();
        uint256 n = tmc.taskCount();
        uint256 q = tmc.quorum();
        for (uint256 id = 1; id <= n; ++id) {
            TMC.Task memory t = tmc.getTask(id);
            if (t.status == TMC.Status.Completed) {
                assertTrue(handler.submittedBy(id, t.worker), "completed without a result");
                assertTrue(handler.goodResult(id, t.worker), "junk completed");
                uint32 voters = handler.completeVoters(id);
                assertGe(_popcount(voters), q, "completed without a quorum of complete votes");
                assertTrue(voters & 3 != 0, "completed without an honest vote");
            }
            for (uint256 i; i < a.length; ++i) {
                if (tmc.failedBefore(id, a[i]) && handler.submittedBy(id, a[i])) {
                    assertFalse(handler.goodResult(id, a[i]), "good result failed");
                }
            }
        }
    }

    /// @notice Each task pays out exactly once: for every account, what TMC credited it plus what it
    ///         withdrew equals what the tasks' final states owe it (price / rest of the budget on
    ///         completion, the fee / rest on withdrawal, the budget otherwise), and each Completed task was
    ///         completed once.
    function invariant_eachTaskPaysOnce() public view {
        address[] memory a = handler.actors();
        uint256[] memory owed = new uint256[](a.length);
        uint256 n = tmc.taskCount();
        for (uint256 id = 1; id <= n; ++id) {
            TMC.Task memory t = tmc.getTask(id);
            assertEq(handler.completions(id), t.status == TMC.Status.Completed ? 1 : 0, "completed more than once");
            uint256 toWorker;
            if (t.status == TMC.Status.Completed) {
                toWorker = t.price;
            } else if (t.status == TMC.Status.Cancelled && t.worker != address(0)) {
                toWorker = uint256(t.price) * tmc.WITHDRAWAL_FEE_BPS() / 10_000;
            } else if (
                t.status != TMC.Status.Failed && t.status != TMC.Status.Expired && t.status != TMC.Status.Cancelled
            ) {
                continue; // still in escrow
            }
            for (uint256 i; i < a.length; ++i) {
                if (a[i] == t.worker) owed[i] += toWorker;
                if (a[i] == t.requester) owed[i] += t.budget - toWorker;
            }
        }
        for (uint256 i; i < a.length; ++i) {
            assertEq(tmc.credits(a[i]) + handler.withdrawnTmc(a[i]), owed[i], "paid other than once");
        }
    }

    function _popcount(uint32 mask) internal pure returns (uint256 c) {
        for (; mask != 0; mask &= mask - 1) {
            ++c;
        }
    }

    /// @notice Task and listing counts match the handler's ghosts: the handler really drove the contracts.
    function invariant_callSummary() public view {
        assertEq(tmc.taskCount(), handler.posted(), "tasks posted");
        assertEq(mmc.listingCount(), handler.listed(), "models listed");
        assertLe(handler.assigned(), handler.posted() * MAX_ATTEMPTS, "more assignments than attempts");
        assertLe(handler.completed(), handler.submitted(), "completed without submission");
    }

    /// @notice After each run: the run was not vacuous (tasks were posted and reached an end state).
    /// @dev Only judged for runs of at least `MIN_CALLS` successful handler calls (a full-depth run has
    ///      about 64): when a real invariant fails, forge shrinks the sequence and replays this hook on
    ///      every shorter candidate, and an unconditional check would turn the real failure into "nothing
    ///      happened". A campaign whose calls all revert is caught by `test_handler_everyActionSucceeds`.
    function afterInvariant() public view {
        if (handler.calls() < MIN_CALLS) return;
        assertGt(handler.posted(), 0, "no task posted in this run");
        assertGt(handler.settled(), 0, "no task settled in this run");
        assertGt(handler.assigned(), 0, "no task assigned in this run");
    }

    // ---------------------------------------------------------------- the handler itself

    /// @notice Every handler action, driven deterministically, succeeds and does what it counts: the
    ///         invariant campaign (which ignores reverts) really exercises the contracts.
    function test_handler_everyActionSucceeds() public {
        for (uint256 i; i < 12; ++i) {
            uint256 seed = uint256(keccak256(abi.encode("walk", i)));
            handler.postTask(seed, seed >> 8, seed >> 16);
            handler.assign(seed, seed >> 32);
            handler.dishonestVote(seed, seed >> 8, seed >> 16, i % 3 == 0);
            handler.submit(seed, seed >> 40, i);
            handler.complete(seed, seed >> 48, i % 4 < 2, i % 3 == 1);
            handler.fail(seed, seed >> 56, i % 2 == 0);
            handler.abandon(seed >> 4, seed >> 12);
            handler.withdrawTask(seed, seed >> 24);
            handler.cancel(seed);
            handler.registerWorker(seed, seed >> 8, uint96(seed >> 16));
            handler.addStake(seed, seed >> 8);
            handler.updateWorker(seed, uint96(seed >> 8));
            handler.requestUnstake(seed, seed >> 8);
            handler.list(seed, uint96(seed >> 8), seed >> 16, uint16(seed >> 24));
            handler.purchase(seed, seed >> 8);
            handler.rate(seed, seed >> 8, uint8(seed >> 16));
            handler.setListingPrice(seed, uint96(seed >> 8));
            handler.delist(seed);
            handler.expire(seed);
            handler.withdrawStake(seed);
            handler.withdrawTmc(seed);
            handler.withdrawUmc(seed);
            handler.withdrawMmc(seed);
            handler.warp(seed);
            _checkAll();
        }
        assertEq(handler.calls(), 12 * 24);
        assertGt(handler.posted(), 0, "posted");
        assertGt(handler.cancelled(), 0, "cancelled");
        assertGt(handler.withdrawnAssigned(), 0, "withdrawn after assignment");
        assertGt(handler.withdrawnPosted(), 0, "withdrawn before assignment");
        assertGt(handler.assigned(), 0, "assigned");
        assertGt(handler.submitted(), 0, "submitted");
        assertGt(handler.completed(), 0, "completed");
        assertGt(handler.failedReopened(), 0, "failed and reopened");
        assertGt(handler.failedRefunded(), 0, "failed and refunded");
        assertGt(handler.abandoned(), 0, "abandoned by the worker");
        assertGt(handler.expired(), 0, "expired");
        assertGt(handler.registered(), 0, "registered");
        assertGt(handler.stakeAdds(), 0, "stake added");
        assertGt(handler.unstakeRequests(), 0, "unstake requested");
        assertGt(handler.stakeWithdrawals(), 0, "stake withdrawn");
        assertGt(handler.profileUpdates(), 0, "profile updated");
        assertGt(handler.listed(), 0, "listed");
        assertGt(handler.delisted(), 0, "delisted");
        assertGt(handler.repriced(), 0, "repriced");
        assertGt(handler.purchased(), 0, "purchased");
        assertGt(handler.rated(), 0, "rated");
        assertGt(handler.withdrawals(), 0, "withdrawn");
        assertGt(handler.dishonestVotes(), 0, "dishonest votes");
    }

    function _checkAll() internal view {
        invariant_tmcSolvent();
        invariant_umcSolvent();
        invariant_mmcSolvent();
        invariant_etherConserved();
        invariant_reputationInRange();
        invariant_activeTasksMatchTmc();
        invariant_callSummary();
        invariant_oraclesSettleByTheTruth();
        invariant_eachTaskPaysOnce();
    }

    function _sumCredits(Consortium c) internal view returns (uint256 sum) {
        address[] memory a = handler.actors();
        for (uint256 i; i < a.length; ++i) {
            sum += c.credits(a[i]);
        }
        // Nobody outside the actor set can hold credits: the oracles and admin never receive any.
        sum += c.credits(oracle) + c.credits(oracle2) + c.credits(oracle3) + c.credits(admin)
        + c.credits(address(handler));
    }
}
