// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Consortium} from "./Consortium.sol";
import {UMC} from "./UMC.sol";

/// @title TMC: the drlaas task lifecycle with escrowed payment
/// @notice A requester posts a task with its budget as `msg.value` (escrow). A consortium oracle assigns the
///         best worker at that worker's price (which must fit the budget). The worker submits its model CID
///         and a hash of its result; an oracle verifies it off chain and either completes the task (worker
///         paid its price, the rest of the budget refunded, reputation up) or fails it (reputation down,
///         stake slashed to the requester, and the task reopened for another worker with the whole budget
///         still in escrow, or refunded). The requester can take a task back with `withdrawTask`: before
///         assignment for the whole budget, after it (before the deadline) for the budget less a fee
///         (`WITHDRAWAL_FEE_BPS` of the worker's price) credited to the released worker, who keeps its stake
///         and reputation. Anyone can expire a task past its deadline (refund). CIDs live in events
///         (`TaskPosted`, `ResultSubmitted`), which only this contract can emit; storage keeps what the
///         contract itself decides on, plus the result hash the worker is bound to.
/// @dev    Task life: Posted -> Assigned -> Submitted -> Completed, with {Posted, Assigned} -> Cancelled
///         (cancel or withdraw by the requester; Assigned only before the deadline),
///         {Assigned, Submitted} -> Failed | Posted (reopened), {Posted, Assigned, Submitted} -> Expired.
///         Escrow of a task = `budget` while Posted/Assigned/Submitted, else 0.
contract TMC is Consortium {
    /// @notice What the requester buys.
    enum Kind {
        Training,
        ModelSharing
    }

    /// @notice Where a task is in its life.
    enum Status {
        None,
        Posted,
        Assigned,
        Submitted,
        Completed,
        Failed,
        Cancelled,
        Expired
    }

    /// @notice A task, packed into three slots.
    struct Task {
        // slot 0
        address requester;
        uint96 budget;
        // slot 1
        address worker;
        uint40 deadline;
        Status status;
        Kind kind;
        uint8 attempts;
        int32 targetMilli;
        // slot 2
        uint96 price;
        uint64 submittedBlock;
    }

    /// @notice Share of the worker's agreed price, in basis points (10 %), that the worker is credited when
    ///         the requester withdraws the task after assignment: compensation for compute already started.
    uint16 public constant WITHDRAWAL_FEE_BPS = 1_000;

    /// @notice The worker registry.
    UMC public immutable umc;
    /// @notice Accounts allowed to assign, complete and fail tasks (the consortium's operators).
    mapping(address oracle => bool) public isOracle;
    /// @notice Seconds after the deadline during which oracles may still settle a submitted result.
    uint40 public verificationWindow;
    /// @notice Attempts (assignments) a task gets before a failure refunds it.
    uint8 public maxAttempts;
    /// @dev Id of the next task. Starts at 1 (set in the constructor) so the first post pays for a
    ///      non-zero to non-zero write, like every later one.
    uint256 private _nextTaskId;

    mapping(uint256 taskId => Task) internal _tasks;

    /// @notice A requester posted task `taskId` with `budget` wei in escrow.
    event TaskPosted(
        uint256 indexed taskId,
        address indexed requester,
        Kind kind,
        uint256 budget,
        int32 targetMilli,
        uint40 deadline,
        string specCid
    );
    /// @notice The requester cancelled an unassigned task (`cancel`, or `withdrawTask` while Posted); `refund` (the
    ///         whole budget) was credited to them.
    event TaskCancelled(uint256 indexed taskId, uint256 refund);
    /// @notice The requester withdrew an assigned task: `worker` was released (no slash, no reputation
    ///         change) and credited `fee`; `refund` (the budget less `fee`) was credited to the requester.
    event TaskWithdrawn(uint256 indexed taskId, address indexed worker, uint256 fee, uint256 refund);
    /// @notice An oracle assigned `worker` at `price` on attempt `attempt` (1-based).
    event TaskAssigned(uint256 indexed taskId, address indexed worker, uint256 price, uint8 attempt);
    /// @notice The assigned worker submitted its model CID and result hash.
    event ResultSubmitted(uint256 indexed taskId, address indexed worker, string modelCid, bytes32 resultHash);
    /// @notice An oracle accepted the result; `payment` was credited to the worker and `refund` (the budget
    ///         left over) to the requester.
    event TaskCompleted(uint256 indexed taskId, address indexed worker, uint256 payment, uint256 refund);
    /// @notice An oracle failed the worker's attempt; `slashed` stake went to the requester. When
    ///         `reopened` the task is Posted again for another worker, else the escrow was refunded.
    event TaskFailed(uint256 indexed taskId, address indexed worker, uint256 slashed, bool reopened);
    /// @notice The task passed its deadline unsettled; `refund` was credited to the requester.
    event TaskExpired(uint256 indexed taskId, Status previous, uint256 refund);
    /// @notice The admin allowed or revoked an oracle.
    event OracleSet(address indexed oracle, bool allowed);
    /// @notice The admin changed the lifecycle parameters.
    event ParametersSet(uint40 verificationWindow, uint8 maxAttempts);

    /// @notice No task has id `taskId`.
    error TaskNotFound(uint256 taskId);
    /// @notice Task `taskId` is `current`, which does not allow this call.
    error InvalidStatus(uint256 taskId, Status current);
    /// @notice The caller is not an oracle.
    error NotOracle(address caller);
    /// @notice The caller is not the task's requester.
    error NotRequester(uint256 taskId, address caller);
    /// @notice The caller is not the task's assigned worker.
    error NotAssignedWorker(uint256 taskId, address caller);
    /// @notice A task needs a budget above zero.
    error ZeroBudget();
    /// @notice The deadline `deadline` is not in the future.
    error DeadlineInPast(uint256 deadline);
    /// @notice The task's deadline `deadline` has passed.
    error DeadlinePassed(uint256 taskId, uint256 deadline);
    /// @notice The task cannot expire before `availableAt`.
    error NotExpired(uint256 taskId, uint256 availableAt);
    /// @notice The verification window of the submitted result closed at `closedAt`: only `expire` remains.
    error VerificationWindowClosed(uint256 taskId, uint256 closedAt);
    /// @notice A CID argument (`field`) was empty.
    error EmptyCid(string field);
    /// @notice The result hash was zero.
    error ZeroResultHash();
    /// @notice The worker's price exceeds the task's budget.
    error PriceAboveBudget(uint256 taskId, uint256 price, uint256 budget);
    /// @notice A requester cannot work on their own task.
    error SelfAssignment(uint256 taskId, address worker);
    /// @notice `field` must not be zero.
    error ZeroValue(string field);

    modifier onlyOracle() {
        if (!isOracle[msg.sender]) revert NotOracle(msg.sender);
        _;
    }

    /// @param admin_ The consortium account.
    /// @param umc_ The worker registry (this contract must be set as a market there).
    /// @param verificationWindow_ Seconds after the deadline during which a submitted result can be settled.
    /// @param maxAttempts_ Assignments a task gets before a failure refunds it (≥ 1).
    constructor(address admin_, UMC umc_, uint40 verificationWindow_, uint8 maxAttempts_) Consortium(admin_) {
        if (address(umc_) == address(0)) revert ZeroAddress();
        umc = umc_;
        _nextTaskId = 1;
        _setParameters(verificationWindow_, maxAttempts_);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Allow or revoke an oracle.
    /// @param oracle The account.
    /// @param allowed Whether it may assign, complete and fail tasks.
    function setOracle(address oracle, bool allowed) external onlyAdmin {
        if (oracle == address(0)) revert ZeroAddress();
        isOracle[oracle] = allowed;
        emit OracleSet(oracle, allowed);
    }

    /// @notice Change the lifecycle parameters.
    /// @param verificationWindow_ Seconds after the deadline during which a submitted result can be settled.
    /// @param maxAttempts_ Assignments a task gets before a failure refunds it (≥ 1).
    function setParameters(uint40 verificationWindow_, uint8 maxAttempts_) external onlyAdmin {
        _setParameters(verificationWindow_, maxAttempts_);
    }

    // ------------------------------------------------------------------ requesters

    /// @notice Post a task; `msg.value` is the budget, held in escrow.
    /// @param specCid IPFS CID of the task spec JSON.
    /// @param kind Training or ModelSharing.
    /// @param targetMilli Mean return the model must reach, in thousandths.
    /// @param deadline Unix time by which the result must be submitted.
    /// @return taskId The new task's id.
    function postTask(string calldata specCid, Kind kind, int32 targetMilli, uint40 deadline)
        external
        payable
        returns (uint256 taskId)
    {
        if (msg.value == 0) revert ZeroBudget();
        if (msg.value > type(uint96).max) revert ValueOutOfRange("budget", msg.value, type(uint96).max);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (bytes(specCid).length == 0) revert EmptyCid("specCid");
        taskId = _nextTaskId++;
        Task storage t = _tasks[taskId];
        t.requester = msg.sender;
        t.budget = uint96(msg.value);
        t.deadline = deadline;
        t.status = Status.Posted;
        t.kind = kind;
        t.targetMilli = targetMilli;
        emit TaskPosted(taskId, msg.sender, kind, msg.value, targetMilli, deadline, specCid);
    }

    /// @notice Cancel an unassigned task; the escrow is credited back to the requester.
    /// @param taskId The task.
    function cancel(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.requester) revert NotRequester(taskId, msg.sender);
        _expectStatus(taskId, t, Status.Posted);
        _cancelPosted(taskId, t);
    }

    /// @notice Withdraw a task the requester no longer wants; it ends Cancelled either way.
    ///         - Posted: exactly `cancel` (the whole budget is credited back, `TaskCancelled`).
    ///         - Assigned, up to its deadline: the worker is released with no slash and no reputation
    ///           change, and credited `WITHDRAWAL_FEE_BPS` of its agreed price for the compute it already
    ///           started; the requester is credited the rest of the budget (`TaskWithdrawn`).
    ///         A submitted result cannot be withdrawn: it is public on chain and verification settles it.
    ///         Past the deadline an assigned task cannot be withdrawn either: `expire` settles it then.
    /// @dev    Named apart from Consortium's `withdraw()` (the pull of credits), which it does not pay out:
    ///         credits are pull payments, and UMC (a trusted contract) is called last.
    /// @param taskId The task.
    function withdrawTask(uint256 taskId) external {
        Task storage t = _task(taskId);
        address requester = t.requester;
        if (msg.sender != requester) revert NotRequester(taskId, msg.sender);
        Status s = t.status;
        if (s == Status.Posted) {
            _cancelPosted(taskId, t);
            return;
        }
        if (s != Status.Assigned) revert InvalidStatus(taskId, s);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        address worker = t.worker;
        // price <= budget (checked by `assign`), so fee <= budget; widened so the product cannot overflow.
        uint256 fee = uint256(t.price) * WITHDRAWAL_FEE_BPS / 10_000;
        uint256 refund = t.budget - fee;
        t.status = Status.Cancelled;
        emit TaskWithdrawn(taskId, worker, fee, refund);
        _credit(worker, fee);
        _credit(requester, refund);
        umc.onTaskReleased(worker);
    }

    // ------------------------------------------------------------------ oracles

    /// @notice Assign a posted task to `worker` at the worker's current price, which is fixed for this
    ///         attempt. The whole budget stays in escrow until settlement.
    /// @param taskId The task.
    /// @param worker A registered, bonded worker whose price fits the budget.
    function assign(uint256 taskId, address worker) external onlyOracle {
        Task storage t = _task(taskId);
        _expectStatus(taskId, t, Status.Posted);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        if (worker == t.requester) revert SelfAssignment(taskId, worker);
        uint8 attempt = t.attempts + 1;
        t.worker = worker;
        t.status = Status.Assigned;
        t.attempts = attempt;
        (uint96 price,) = umc.onTaskAssigned(worker);
        if (price > t.budget) revert PriceAboveBudget(taskId, price, t.budget);
        t.price = price;
        emit TaskAssigned(taskId, worker, price, attempt);
    }

    /// @notice Accept the submitted result: the worker is credited its price and the requester the rest
    ///         of the budget; the worker's reputation rises.
    /// @param taskId The task.
    function complete(uint256 taskId) external onlyOracle {
        Task storage t = _task(taskId);
        _expectStatus(taskId, t, Status.Submitted);
        _expectVerificationWindowOpen(taskId, t);
        t.status = Status.Completed;
        address worker = t.worker;
        uint256 price = t.price;
        uint256 refund = t.budget - price;
        emit TaskCompleted(taskId, worker, price, refund);
        _credit(worker, price);
        _credit(t.requester, refund);
        umc.onTaskSucceeded(worker);
    }

    /// @notice Fail the current attempt (a result that fails verification, or a worker that crashed before
    ///         its deadline): the worker's reputation drops and its stake is slashed to the requester. With
    ///         `reopen`, attempts left and the deadline not passed, the task goes back to Posted for another
    ///         worker; otherwise the escrow is refunded. A worker that simply missed its deadline is not
    ///         failed but expired (reputation only), so the outcome never depends on who calls first.
    /// @param taskId The task.
    /// @param reopen Whether to offer the task to another worker.
    function fail(uint256 taskId, bool reopen) external onlyOracle {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s == Status.Assigned) {
            if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        } else if (s == Status.Submitted) {
            _expectVerificationWindowOpen(taskId, t);
        } else {
            revert InvalidStatus(taskId, s);
        }
        address worker = t.worker;
        address requester = t.requester;
        reopen = reopen && t.attempts < maxAttempts && block.timestamp <= t.deadline;
        if (reopen) {
            t.status = Status.Posted;
            t.worker = address(0);
            t.price = 0;
            t.submittedBlock = 0;
        } else {
            t.status = Status.Failed;
            _credit(requester, t.budget);
        }
        uint256 slashed = umc.onTaskFailed(worker, requester, true);
        emit TaskFailed(taskId, worker, slashed, reopen);
    }

    // ------------------------------------------------------------------ workers

    /// @notice Submit the result of an assigned task, before its deadline. The block number is recorded:
    ///         verifiers derive their evaluation seeds from a later block's hash, which the worker could
    ///         not know when it trained.
    /// @param taskId The task.
    /// @param modelCid IPFS CID of the trained (or shared) model.
    /// @param resultHash keccak256 of the trainer's result JSON (binding: it is in the event log).
    function submitResult(uint256 taskId, string calldata modelCid, bytes32 resultHash) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.worker) revert NotAssignedWorker(taskId, msg.sender);
        _expectStatus(taskId, t, Status.Assigned);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        if (bytes(modelCid).length == 0) revert EmptyCid("modelCid");
        if (resultHash == bytes32(0)) revert ZeroResultHash();
        t.status = Status.Submitted;
        t.submittedBlock = uint64(block.number);
        emit ResultSubmitted(taskId, msg.sender, modelCid, resultHash);
    }

    // ------------------------------------------------------------------ anyone

    /// @notice Expire a task that missed its deadline (for a submitted result: its deadline plus the
    ///         verification window). The escrow is refunded; a worker that missed the deadline loses
    ///         reputation (no slash), one whose result the oracles never settled loses nothing.
    /// @param taskId The task.
    function expire(uint256 taskId) external {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Posted && s != Status.Assigned && s != Status.Submitted) revert InvalidStatus(taskId, s);
        uint256 availableAt = uint256(t.deadline) + (s == Status.Submitted ? verificationWindow : 0) + 1;
        if (block.timestamp < availableAt) revert NotExpired(taskId, availableAt);
        t.status = Status.Expired;
        emit TaskExpired(taskId, s, t.budget);
        _credit(t.requester, t.budget);
        if (s == Status.Assigned) umc.onTaskFailed(t.worker, t.requester, false);
        else if (s == Status.Submitted) umc.onTaskReleased(t.worker);
    }

    // ------------------------------------------------------------------ views

    /// @notice Number of tasks ever posted; task ids are 1..taskCount.
    function taskCount() external view returns (uint256) {
        return _nextTaskId - 1;
    }

    /// @notice The record of task `taskId` (all zero when it does not exist).
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @notice Wei held in escrow for task `taskId` (0 once settled).
    function escrowOf(uint256 taskId) public view returns (uint256) {
        Task storage t = _tasks[taskId];
        Status s = t.status;
        return (s == Status.Posted || s == Status.Assigned || s == Status.Submitted) ? t.budget : 0;
    }

    // ------------------------------------------------------------------ internal

    function _task(uint256 taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert TaskNotFound(taskId);
    }

    /// @dev A Posted task goes to Cancelled and its whole budget is credited back to the requester.
    function _cancelPosted(uint256 taskId, Task storage t) internal {
        t.status = Status.Cancelled;
        emit TaskCancelled(taskId, t.budget);
        _credit(t.requester, t.budget);
    }

    function _expectStatus(uint256 taskId, Task storage t, Status expected) internal view {
        if (t.status != expected) revert InvalidStatus(taskId, t.status);
    }

    function _expectVerificationWindowOpen(uint256 taskId, Task storage t) internal view {
        uint256 closedAt = uint256(t.deadline) + verificationWindow;
        if (block.timestamp > closedAt) revert VerificationWindowClosed(taskId, closedAt);
    }

    function _setParameters(uint40 verificationWindow_, uint8 maxAttempts_) internal {
        if (maxAttempts_ == 0) revert ZeroValue("maxAttempts");
        verificationWindow = verificationWindow_;
        maxAttempts = maxAttempts_;
        emit ParametersSet(verificationWindow_, maxAttempts_);
    }
}
