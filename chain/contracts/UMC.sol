// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Consortium} from "./Consortium.sol";

/// @title UMC: the drlaas user/worker registry
/// @notice Workers register here with a stake, their expertise, a hardware summary, a price per task and a
///         metadata CID. Reputation is fixed point (`REPUTATION_ONE` = 1.0), starts at 0.5 and is changed
///         only by the market contracts (TMC on settlement, MMC on ratings):
///         success `R += eta * (1 - R)`, failure `R -= eta * R`.
///         Stake is slashed on failed tasks (credited to the wronged requester) and can be withdrawn only
///         after a cooldown and while the worker has no active task.
contract UMC is Consortium {
    /// @notice Fixed-point 1.0 for reputation (parts per million).
    uint32 public constant REPUTATION_ONE = 1_000_000;
    /// @notice Reputation a new worker starts with (0.5).
    uint32 public constant INITIAL_REPUTATION = 500_000;
    /// @notice Learning rate of task settlements (0.1), in parts per million.
    uint32 public constant ETA_TASK = 100_000;
    /// @notice Learning rate of model ratings (0.02), in parts per million: ratings are cheap to give.
    uint32 public constant ETA_RATING = 20_000;
    /// @notice Highest slash fraction the admin may configure (50 %).
    uint16 public constant MAX_SLASH_BPS = 5_000;

    /// @notice Summary of the compute a worker contributes (its node pool).
    struct Hardware {
        uint16 gpus;
        uint16 cpuCores;
        uint32 memoryGiB;
    }

    /// @notice Everything the registry knows about a worker. Packed into three slots plus the CID.
    struct Worker {
        // slot 0
        uint96 stake;
        uint96 pricePerTask;
        uint32 reputation;
        uint32 activeTasks;
        // slot 1
        uint32 completedTasks;
        uint32 failedTasks;
        uint40 registeredAt;
        uint40 unstakeRequestedAt;
        uint96 unstakeAmount;
        Hardware hardware;
        // slot 2: one level byte (0 = none, 255 = best) per environment kind, kind i at byte i.
        bytes32 expertise;
        string metadataCid;
    }

    /// @notice Stake a worker must keep bonded to be assigned tasks.
    uint96 public minStake;
    /// @notice Seconds between `requestUnstake` and `withdrawStake`.
    uint40 public unstakeCooldown;
    /// @notice Fraction of the bonded stake slashed on a failed task, in basis points.
    uint16 public slashBps;
    /// @notice Contracts allowed to change reputation and task counters (TMC, MMC).
    mapping(address market => bool) public isMarket;

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
    /// @notice The admin allowed or revoked a market contract.
    event MarketSet(address indexed market, bool allowed);
    /// @notice The admin changed the staking parameters.
    event ParametersSet(uint96 minStake, uint40 unstakeCooldown, uint16 slashBps);

    /// @notice `account` is already registered.
    error AlreadyRegistered(address account);
    /// @notice `account` is not a registered worker.
    error NotRegistered(address account);
    /// @notice The stake sent (`sent`) is below the minimum (`required`).
    error InsufficientStake(uint256 sent, uint256 required);
    /// @notice The caller is not an allowed market contract.
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

    modifier onlyMarket() {
        if (!isMarket[msg.sender]) revert NotMarket(msg.sender);
        _;
    }

    /// @param admin_ The consortium account.
    /// @param minStake_ Stake a worker must keep bonded to be assigned tasks.
    /// @param unstakeCooldown_ Seconds between `requestUnstake` and `withdrawStake`.
    /// @param slashBps_ Fraction of bonded stake slashed per failed task, in basis points (≤ MAX_SLASH_BPS).
    constructor(address admin_, uint96 minStake_, uint40 unstakeCooldown_, uint16 slashBps_) Consortium(admin_) {
        _setParameters(minStake_, unstakeCooldown_, slashBps_);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Allow or revoke a market contract (TMC, MMC) to move reputation and task counters.
    /// @param market The contract address.
    /// @param allowed Whether it may.
    function setMarket(address market, bool allowed) external onlyAdmin {
        if (market == address(0)) revert ZeroAddress();
        isMarket[market] = allowed;
        emit MarketSet(market, allowed);
    }

    /// @notice Change the staking parameters.
    /// @param minStake_ Stake a worker must keep bonded to be assigned tasks.
    /// @param unstakeCooldown_ Seconds between `requestUnstake` and `withdrawStake`.
    /// @param slashBps_ Slash per failed task in basis points (≤ MAX_SLASH_BPS).
    function setParameters(uint96 minStake_, uint40 unstakeCooldown_, uint16 slashBps_) external onlyAdmin {
        _setParameters(minStake_, unstakeCooldown_, slashBps_);
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
    /// @param amount Wei to withdraw once the cooldown is over.
    function requestUnstake(uint96 amount) external {
        Worker storage w = _registered(msg.sender);
        if (amount == 0) revert NoUnstakeRequest(msg.sender);
        if (amount > w.stake) revert AmountExceedsStake(amount, w.stake);
        w.unstakeAmount = amount;
        w.unstakeRequestedAt = uint40(block.timestamp);
        emit UnstakeRequested(msg.sender, amount, block.timestamp + unstakeCooldown);
    }

    /// @notice Withdraw the stake requested with `requestUnstake`, once the cooldown is over and no task is
    ///         active. If stake was slashed meanwhile, what is left of the request is paid.
    /// @return amount The wei sent.
    function withdrawStake() external nonReentrant returns (uint256 amount) {
        Worker storage w = _registered(msg.sender);
        if (w.unstakeAmount == 0) revert NoUnstakeRequest(msg.sender);
        uint256 availableAt = uint256(w.unstakeRequestedAt) + unstakeCooldown;
        if (block.timestamp < availableAt) revert CooldownNotOver(availableAt);
        if (w.activeTasks != 0) revert HasActiveTasks(msg.sender, w.activeTasks);
        amount = w.unstakeAmount < w.stake ? w.unstakeAmount : w.stake;
        // forge-lint: disable-next-line(unsafe-typecast) -- amount <= w.stake, a uint96
        w.stake -= uint96(amount);
        w.unstakeAmount = 0;
        w.unstakeRequestedAt = 0;
        emit StakeWithdrawn(msg.sender, amount, w.stake);
        _send(msg.sender, amount);
    }

    // ------------------------------------------------------------------ markets

    /// @notice A market assigns `worker` a task. Reverts unless the worker is registered and bonded.
    /// @param worker The worker.
    /// @return pricePerTask The worker's price, which the market pays on success.
    /// @return reputation The worker's reputation at assignment.
    function onTaskAssigned(address worker) external onlyMarket returns (uint96 pricePerTask, uint32 reputation) {
        Worker storage w = _registered(worker);
        if (w.stake < minStake) revert InsufficientStake(w.stake, minStake);
        uint32 active = w.activeTasks + 1;
        w.activeTasks = active;
        emit TaskStarted(worker, active);
        return (w.pricePerTask, w.reputation);
    }

    /// @notice A market settled `worker`'s task as successful: reputation up by ETA_TASK.
    /// @param worker The worker.
    function onTaskSucceeded(address worker) external onlyMarket {
        (Worker storage w, uint32 active) = _endTask(worker);
        w.completedTasks += 1;
        emit TaskEnded(worker, Outcome.Succeeded, active);
        _moveReputation(worker, w, true, ETA_TASK);
    }

    /// @notice A market settled `worker`'s task as failed: reputation down by ETA_TASK and, when `slash`,
    ///         `slashBps` of the bonded stake credited to `beneficiary` (the wronged requester).
    /// @param worker The worker.
    /// @param beneficiary Who receives the slashed stake.
    /// @param slash Whether to slash (a missed deadline only costs reputation).
    /// @return slashed Wei slashed.
    function onTaskFailed(address worker, address beneficiary, bool slash)
        external
        onlyMarket
        returns (uint256 slashed)
    {
        (Worker storage w, uint32 active) = _endTask(worker);
        w.failedTasks += 1;
        emit TaskEnded(worker, Outcome.Failed, active);
        _moveReputation(worker, w, false, ETA_TASK);
        if (slash) {
            slashed = uint256(w.stake) * slashBps / 10_000;
            if (slashed != 0) {
                // forge-lint: disable-next-line(unsafe-typecast) -- slashed <= w.stake * 0.5
                w.stake -= uint96(slashed);
                emit StakeSlashed(worker, beneficiary, slashed, w.stake);
                _credit(beneficiary, slashed);
            }
        }
    }

    /// @notice A market ended `worker`'s task through no fault of the worker (e.g. the oracles never
    ///         settled a submitted result in time): the task counter drops, reputation stays.
    /// @param worker The worker.
    function onTaskReleased(address worker) external onlyMarket {
        (, uint32 active) = _endTask(worker);
        emit TaskEnded(worker, Outcome.Released, active);
    }

    /// @notice A market reports a buyer's rating of `worker`'s model: reputation moves by ETA_RATING,
    ///         up for 4-5 stars, down for 1-2, unchanged for 3.
    /// @param worker The model's owner. Owners that are not registered workers are ignored.
    /// @param stars 1 to 5.
    function onModelRated(address worker, uint8 stars) external onlyMarket {
        Worker storage w = _workers[worker];
        if (w.registeredAt == 0 || stars == 3) return;
        _moveReputation(worker, w, stars > 3, ETA_RATING);
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

    // ------------------------------------------------------------------ internal

    function _endTask(address worker) internal returns (Worker storage w, uint32 active) {
        w = _registered(worker);
        if (w.activeTasks == 0) revert NoActiveTask(worker);
        active = w.activeTasks - 1;
        w.activeTasks = active;
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

    function _setParameters(uint96 minStake_, uint40 unstakeCooldown_, uint16 slashBps_) internal {
        if (slashBps_ > MAX_SLASH_BPS) revert ValueOutOfRange("slashBps", slashBps_, MAX_SLASH_BPS);
        minStake = minStake_;
        unstakeCooldown = unstakeCooldown_;
        slashBps = slashBps_;
        emit ParametersSet(minStake_, unstakeCooldown_, slashBps_);
    }
}
