// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Consortium} from "./Consortium.sol";

/// @title UMC: the drlaas user/worker registry
/// @notice Workers register here with a stake, their expertise, a hardware summary, a price per task and a
///         metadata CID. Reputation is fixed point (`REPUTATION_ONE` = 1.0), starts at 0 (it is earned,
///         so a fresh identity is never above one with a record) and is changed only by the task market
///         (TMC) when a quorum of oracles settles a task: success `R += eta * (1 - R)` (only for tasks
///         paid at least the market's reputation floor), failure `R -= eta * R`. Model ratings do not move
///         it: a rating costs its giver nothing the owner does not get back.
///         Stake is slashed on failed and abandoned tasks (credited to the wronged requester); a worker
///         must keep `minStake` bonded for every task it holds at once, and can withdraw stake only after
///         the cooldown that applied when it asked, and while it has no active task.
contract UMC is Consortium {
    /// @notice Fixed-point 1.0 for reputation (parts per million).
    uint32 public constant REPUTATION_ONE = 1_000_000;
    /// @notice Reputation a new worker starts with (0): reputation is earned, so a worker cannot shed a
    ///         poor record by registering a new address.
    uint32 public constant INITIAL_REPUTATION = 0;
    /// @notice Learning rate of task settlements (0.1), in parts per million.
    uint32 public constant ETA_TASK = 100_000;
    /// @notice Highest slash fraction a task may be settled with (50 %).
    uint16 public constant MAX_SLASH_BPS = 5_000;

    /// @notice Summary of the compute a worker contributes (its node pool).
    struct Hardware {
        uint16 gpus;
        uint16 cpuCores;
        uint32 memoryGiB;
    }

    /// @notice Everything the registry knows about a worker. Packed into four slots plus the CID.
    struct Worker {
        // slot 0
        uint96 stake;
        uint96 pricePerTask;
        uint32 reputation;
        uint16 activeTasks;
        // The market epoch `activeTasks` was counted under (in this slot, which every market call
        // reads anyway).
        uint16 marketEpoch;
        // slot 1
        uint32 completedTasks;
        uint32 failedTasks;
        uint40 registeredAt;
        uint40 unstakeAvailableAt;
        uint96 unstakeAmount;
        // slot 2
        Hardware hardware;
        // slot 3: one level byte (0 = none, 255 = best) per environment kind, kind i at byte i.
        bytes32 expertise;
        string metadataCid;
    }

    /// @notice Stake a worker must keep bonded per task it holds at once (read when a task is assigned).
    uint96 public minStake;
    /// @notice Seconds between `requestUnstake` and `withdrawStake` (fixed for a request when it is made).
    uint40 public unstakeCooldown;
    /// @notice The task market (TMC): the one contract allowed to change reputation, task counters and stake.
    address public market;
    /// @notice Bumped whenever the market changes: task counters kept under an earlier market no longer
    ///         hold a worker's stake (that market can no longer end their tasks).
    uint16 public marketEpoch;

    mapping(address => Worker) internal _workers;

    /// @notice A worker registered.
    event WorkerRegistered(
        address indexed worker,
        uint256 stake,
        uint256 pricePerTask,
        bytes32 expertise,
        Hardware hardware,
        string metadataCid
    );
    /// @notice A worker changed its profile.
    event WorkerUpdated(
        address indexed worker, uint256 pricePerTask, bytes32 expertise, Hardware hardware, string metadataCid
    );
    /// @notice A worker added stake; `stake` is the new bonded total.
    event StakeAdded(address indexed worker, uint256 amount, uint256 stake);
    /// @notice A worker asked to withdraw `amount`; it can do so at `availableAt`.
    event UnstakeRequested(address indexed worker, uint256 amount, uint256 availableAt);
    /// @notice A worker withdrew `amount` of stake; `stake` is what remains bonded.
    event StakeWithdrawn(address indexed worker, uint256 amount, uint256 stake);
    /// @notice `amount` of a worker's stake was slashed and credited to `beneficiary`.
    event StakeSlashed(address indexed worker, address indexed beneficiary, uint256 amount, uint256 stake);
    /// @notice A worker's reputation changed from `previous` to `current` (parts per million).
    event ReputationChanged(address indexed worker, uint32 previous, uint32 current);
    /// @notice A worker took on a task; `activeTasks` is its new count.
    event TaskStarted(address indexed worker, uint32 activeTasks);
    /// @notice How a worker's task ended, as far as the registry is concerned.
    enum Outcome {
        Succeeded,
        Failed,
        Released
    }

    /// @notice A worker's task ended with `outcome`; `activeTasks` is its new count.
    event TaskEnded(address indexed worker, Outcome outcome, uint32 activeTasks);
    /// @notice Governance set the task market; task counters of earlier markets are void from `epoch` on.
    event MarketSet(address indexed market, uint16 epoch);
    /// @notice Governance changed the staking parameters.
    event ParametersSet(uint96 minStake, uint40 unstakeCooldown);

    /// @notice `account` is already registered.
    error AlreadyRegistered(address account);
    /// @notice `account` is not a registered worker.
    error NotRegistered(address account);
    /// @notice The stake (`stake`) is below what is required (`required`: `minStake` per task held).
    error InsufficientStake(uint256 stake, uint256 required);
    /// @notice The caller is not the task market.
    error NotMarket(address caller);
    /// @notice The worker has `active` tasks; stake cannot leave while work is in flight.
    error HasActiveTasks(address worker, uint32 active);
    /// @notice A market reported the end of a task `worker` was not on (a market bug; nothing changes).
    error NoActiveTask(address worker);
    /// @notice No unstake was requested, or it was for zero wei.
    error NoUnstakeRequest(address worker);
    /// @notice The unstake cooldown ends at `availableAt`.
    error CooldownNotOver(uint256 availableAt);
    /// @notice The amount asked for (`requested`) exceeds the bonded stake (`stake`).
    error AmountExceedsStake(uint256 requested, uint256 stake);

    /// @notice Longest unstake cooldown that can be set (90 days).
    uint40 public constant MAX_UNSTAKE_COOLDOWN = 90 days;

    modifier onlyMarket() {
        if (msg.sender != market || market == address(0)) revert NotMarket(msg.sender);
        _;
    }

    /// @param admin_ The consortium account.
    /// @param governanceDelay_ Seconds between scheduling a change and executing it.
    /// @param minStake_ Stake a worker must keep bonded per task it holds.
    /// @param unstakeCooldown_ Seconds between `requestUnstake` and `withdrawStake` (≤ MAX_UNSTAKE_COOLDOWN).
    constructor(address admin_, uint40 governanceDelay_, uint96 minStake_, uint40 unstakeCooldown_)
        Consortium(admin_, governanceDelay_)
    {
        _setParameters(minStake_, unstakeCooldown_);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Set the task market once, right after deployment (the market's address is not known when
    ///         this registry is deployed). Every later change goes through `setMarket`, with the delay.
    /// @param market_ The task market (TMC).
    function bindMarket(address market_) external onlyAdmin {
        if (market != address(0)) revert NotGovernance(msg.sender);
        _setMarket(market_);
    }

    /// @notice Governed: replace the task market. Tasks the old market started no longer hold their
    ///         workers' stake; workers and requesters have the governance delay to finish or leave.
    /// @param market_ The new task market.
    function setMarket(address market_) external onlyGovernance {
        _setMarket(market_);
    }

    /// @notice Governed: change the staking parameters. A pending unstake keeps the cooldown it was
    ///         given; `minStake` applies to assignments made from then on.
    /// @param minStake_ Stake a worker must keep bonded per task it holds.
    /// @param unstakeCooldown_ Seconds between `requestUnstake` and `withdrawStake` (≤ MAX_UNSTAKE_COOLDOWN).
    function setParameters(uint96 minStake_, uint40 unstakeCooldown_) external onlyGovernance {
        _setParameters(minStake_, unstakeCooldown_);
    }

    // ------------------------------------------------------------------ workers

    /// @notice Register the caller as a worker; `msg.value` is the initial stake.
    /// @param expertise One level byte per environment kind (kind i at byte i, 0 = none).
    /// @param hardware The node pool's GPUs, CPU cores and memory.
    /// @param pricePerTask Wei the worker charges per task.
    /// @param metadataCid IPFS CID of the worker's public profile.
    function registerWorker(
        bytes32 expertise,
        Hardware calldata hardware,
        uint96 pricePerTask,
        string calldata metadataCid
    ) external payable {
        Worker storage w = _workers[msg.sender];
        if (w.registeredAt != 0) revert AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert InsufficientStake(msg.value, minStake);
        if (msg.value > type(uint96).max) revert ValueOutOfRange("stake", msg.value, type(uint96).max);
        w.stake = uint96(msg.value);
        w.pricePerTask = pricePerTask;
        w.reputation = INITIAL_REPUTATION;
        w.registeredAt = uint40(block.timestamp);
        w.marketEpoch = marketEpoch;
        w.hardware = hardware;
        w.expertise = expertise;
        w.metadataCid = metadataCid;
        emit WorkerRegistered(msg.sender, msg.value, pricePerTask, expertise, hardware, metadataCid);
    }

    /// @notice Update the caller's profile (reputation, stake and counters are not the worker's to set).
    /// @param expertise One level byte per environment kind.
    /// @param hardware The node pool's GPUs, CPU cores and memory.
    /// @param pricePerTask Wei the worker charges per task.
    /// @param metadataCid IPFS CID of the worker's public profile.
    function updateWorker(
        bytes32 expertise,
        Hardware calldata hardware,
        uint96 pricePerTask,
        string calldata metadataCid
    ) external {
        Worker storage w = _registered(msg.sender);
        w.pricePerTask = pricePerTask;
        w.hardware = hardware;
        w.expertise = expertise;
        w.metadataCid = metadataCid;
        emit WorkerUpdated(msg.sender, pricePerTask, expertise, hardware, metadataCid);
    }

    /// @notice Add `msg.value` to the caller's bonded stake.
    function addStake() external payable {
        Worker storage w = _registered(msg.sender);
        uint256 stake = uint256(w.stake) + msg.value;
        if (stake > type(uint96).max) revert ValueOutOfRange("stake", stake, type(uint96).max);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by the check above
        w.stake = uint96(stake);
        emit StakeAdded(msg.sender, msg.value, stake);
    }

    /// @notice Start the cooldown to withdraw `amount` of stake. The stake stays bonded (and slashable)
    ///         until `withdrawStake`. A new request replaces the previous one and restarts the cooldown.
    ///         The cooldown is the one in force now: a later change of `unstakeCooldown` does not move it.
    /// @param amount Wei to withdraw once the cooldown is over.
    function requestUnstake(uint96 amount) external {
        Worker storage w = _registered(msg.sender);
        if (amount == 0) revert NoUnstakeRequest(msg.sender);
        if (amount > w.stake) revert AmountExceedsStake(amount, w.stake);
        uint40 availableAt = uint40(block.timestamp) + unstakeCooldown;
        w.unstakeAmount = amount;
        w.unstakeAvailableAt = availableAt;
        emit UnstakeRequested(msg.sender, amount, availableAt);
    }

    /// @notice Withdraw the stake requested with `requestUnstake`, once the cooldown is over and no task is
    ///         active. If stake was slashed meanwhile, what is left of the request is paid. While a
    ///         governance change of this registry or of its market is pending, the cooldown is waived:
    ///         a worker that does not accept an announced change can leave before it lands, even when
    ///         the cooldown is longer than the governance delay.
    /// @return amount The wei sent.
    function withdrawStake() external nonReentrant returns (uint256 amount) {
        Worker storage w = _registered(msg.sender);
        if (w.unstakeAmount == 0) revert NoUnstakeRequest(msg.sender);
        uint256 availableAt = w.unstakeAvailableAt;
        if (block.timestamp < availableAt && !_changePending()) revert CooldownNotOver(availableAt);
        uint32 active = _activeTasks(w);
        if (active != 0) revert HasActiveTasks(msg.sender, active);
        amount = w.unstakeAmount < w.stake ? w.unstakeAmount : w.stake;
        // forge-lint: disable-next-line(unsafe-typecast) -- amount <= w.stake, a uint96
        w.stake -= uint96(amount);
        w.unstakeAmount = 0;
        w.unstakeAvailableAt = 0;
        emit StakeWithdrawn(msg.sender, amount, w.stake);
        _send(msg.sender, amount);
    }

    // ------------------------------------------------------------------ markets

    /// @notice The market assigns `worker` a task. Reverts unless the worker is registered and has
    ///         `minStake` bonded for this task and for each one it already holds.
    /// @param worker The worker.
    /// @return pricePerTask The worker's price, which the market pays on success.
    /// @return reputation The worker's reputation at assignment.
    function onTaskAssigned(address worker) external onlyMarket returns (uint96 pricePerTask, uint32 reputation) {
        Worker storage w = _registered(worker);
        uint32 active = _activeTasks(w) + 1;
        if (active > type(uint16).max) revert ValueOutOfRange("activeTasks", active, type(uint16).max);
        uint256 required = uint256(minStake) * active;
        if (w.stake < required) revert InsufficientStake(w.stake, required);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded by the check above
        w.activeTasks = uint16(active);
        w.marketEpoch = marketEpoch;
        emit TaskStarted(worker, active);
        return (w.pricePerTask, w.reputation);
    }

    /// @notice The market settled `worker`'s task as successful: reputation up by ETA_TASK when
    ///         `earnsReputation` (the task was paid at least the market's reputation floor).
    /// @param worker The worker.
    /// @param earnsReputation Whether the task moves reputation.
    function onTaskSucceeded(address worker, bool earnsReputation) external onlyMarket {
        (Worker storage w, uint32 active) = _endTask(worker);
        w.completedTasks += 1;
        emit TaskEnded(worker, Outcome.Succeeded, active);
        if (earnsReputation) _moveReputation(worker, w, true, ETA_TASK);
    }

    /// @notice The market settled `worker`'s task as failed (a failed result, or a task abandoned until
    ///         its deadline): reputation down by ETA_TASK and `slashBps` of the bonded stake credited to
    ///         `beneficiary` (the wronged requester).
    /// @param worker The worker.
    /// @param beneficiary Who receives the slashed stake.
    /// @param slashBps Share of the bonded stake to slash, in basis points (≤ MAX_SLASH_BPS): the market
    ///        passes the value the task was posted under.
    /// @return slashed Wei slashed.
    function onTaskFailed(address worker, address beneficiary, uint16 slashBps)
        external
        onlyMarket
        returns (uint256 slashed)
    {
        if (slashBps > MAX_SLASH_BPS) revert ValueOutOfRange("slashBps", slashBps, MAX_SLASH_BPS);
        (Worker storage w, uint32 active) = _endTask(worker);
        w.failedTasks += 1;
        emit TaskEnded(worker, Outcome.Failed, active);
        _moveReputation(worker, w, false, ETA_TASK);
        slashed = uint256(w.stake) * slashBps / 10_000;
        if (slashed != 0) {
            // forge-lint: disable-next-line(unsafe-typecast) -- slashed <= w.stake * 0.5
            w.stake -= uint96(slashed);
            emit StakeSlashed(worker, beneficiary, slashed, w.stake);
            _credit(beneficiary, slashed);
        }
    }

    /// @notice A market ended `worker`'s task through no fault of the worker (e.g. the oracles never
    ///         settled a submitted result in time): the task counter drops, reputation stays.
    /// @param worker The worker.
    function onTaskReleased(address worker) external onlyMarket {
        (, uint32 active) = _endTask(worker);
        emit TaskEnded(worker, Outcome.Released, active);
    }

    // ------------------------------------------------------------------ views

    /// @notice The full record of `worker` (all zero when not registered).
    function getWorker(address worker) external view returns (Worker memory) {
        return _workers[worker];
    }

    /// @notice Whether `account` is a registered worker.
    function isWorker(address account) external view returns (bool) {
        return _workers[account].registeredAt != 0;
    }

    /// @notice `worker`'s reputation in parts per million (0 when not registered).
    function reputationOf(address worker) external view returns (uint32) {
        return _workers[worker].reputation;
    }

    /// @notice `worker`'s bonded stake in wei.
    function stakeOf(address worker) external view returns (uint96) {
        return _workers[worker].stake;
    }

    /// @notice Tasks `worker` holds under the current market.
    function activeTasksOf(address worker) external view returns (uint32) {
        return _activeTasks(_workers[worker]);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Whether a governance change of this registry or of its market is scheduled and not yet
    ///      executed or cancelled.
    function _changePending() internal view returns (bool) {
        if (pendingChanges != 0) return true;
        address m = market;
        if (m == address(0)) return false;
        // A low-level call: a market without the view (not a drlaas market) counts as no change.
        (bool ok, bytes memory pending) = m.staticcall(abi.encodeWithSelector(Consortium(m).pendingChanges.selector));
        return ok && pending.length == 32 && abi.decode(pending, (uint256)) != 0;
    }

    /// @dev Counters kept under an earlier market do not count: that market can no longer end them.
    function _activeTasks(Worker storage w) internal view returns (uint32) {
        return w.marketEpoch == marketEpoch ? w.activeTasks : 0;
    }

    function _endTask(address worker) internal returns (Worker storage w, uint32 active) {
        w = _registered(worker);
        uint32 current = _activeTasks(w);
        if (current == 0) revert NoActiveTask(worker);
        active = current - 1;
        // forge-lint: disable-next-line(unsafe-typecast) -- below the uint16 it was read from
        w.activeTasks = uint16(active);
    }

    function _registered(address account) internal view returns (Worker storage w) {
        w = _workers[account];
        if (w.registeredAt == 0) revert NotRegistered(account);
    }

    function _moveReputation(address worker, Worker storage w, bool up, uint32 eta) internal {
        uint32 previous = w.reputation;
        uint32 current = up
            ? previous + uint32((uint64(REPUTATION_ONE - previous) * eta) / REPUTATION_ONE)
            : previous - uint32((uint64(previous) * eta) / REPUTATION_ONE);
        w.reputation = current;
        emit ReputationChanged(worker, previous, current);
    }

    function _setMarket(address market_) internal {
        if (market_ == address(0)) revert ZeroAddress();
        market = market_;
        uint16 epoch = marketEpoch + 1;
        marketEpoch = epoch;
        emit MarketSet(market_, epoch);
    }

    function _setParameters(uint96 minStake_, uint40 unstakeCooldown_) internal {
        if (unstakeCooldown_ > MAX_UNSTAKE_COOLDOWN) {
            revert ValueOutOfRange("unstakeCooldown", unstakeCooldown_, MAX_UNSTAKE_COOLDOWN);
        }
        minStake = minStake_;
        unstakeCooldown = unstakeCooldown_;
        emit ParametersSet(minStake_, unstakeCooldown_);
    }
}
