// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Consortium} from "./Consortium.sol";
import {UMC} from "./UMC.sol";

/// @title TMC: the drlaas task lifecycle with escrowed payment
/// @notice A requester posts a task with its budget as `msg.value` (escrow). The consortium's oracles agree
///         on a worker and the highest price they accept for it; the worker is assigned at its current
///         price, which must not exceed that maximum nor the budget. The worker submits its model CID and a
///         hash of its result; each oracle verifies it off chain on its own and votes. When `quorum` of the
///         oracles voted the same way the task is completed (worker paid its price, the rest of the budget
///         refunded, reputation up) or failed (reputation down, stake slashed to the requester, and the task
///         reopened for another worker with the whole budget still in escrow, or refunded).
///         No single oracle can assign, pay or fail anything unless the quorum is 1 (a one-member
///         consortium); the quorum must be a majority of the oracles, so two outcomes can never both
///         reach it. The oracle set and quorum change only through governance (with its delay), and the
///         lifecycle terms (verification window, attempts, slash, reputation floor) a task is settled
///         under are the ones in force when it was posted. The requester can take a task back with `withdrawTask`: before
///         assignment for the whole budget, after it (before the deadline) for the budget less a fee
///         (`WITHDRAWAL_FEE_BPS` of the worker's price) credited to the released worker, who keeps its stake
///         and reputation. Anyone can expire a task past its deadline (refund). CIDs live in events
///         (`TaskPosted`, `ResultSubmitted`), which only this contract can emit; storage keeps what the
///         contract itself decides on. Refunds (expire, withdraw) never depend on the worker registry
///         accepting the call, so a registry that stops listening cannot freeze escrow.
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
        uint80 budget;
        // Version of the lifecycle terms the task was posted under (`termsAt`).
        uint16 terms;
        // slot 1
        address worker;
        uint40 deadline;
        Status status;
        Kind kind;
        uint8 attempts;
        int32 targetMilli;
        // slot 2
        uint96 price;
        uint40 submittedBlock;
        // Oracle seats (bit i = seat i) that voted for some proposal in the current assignment round.
        uint32 assignVotes;
        // Seats that voted to complete / to fail the current attempt.
        uint32 completeVotes;
        uint32 failVotes;
        // `oracleEpoch` the votes above were cast under; votes of an earlier oracle set do not count.
        uint16 voteEpoch;
        // Some fail vote asked not to reopen the task.
        bool keepClosed;
    }

    /// @notice The lifecycle terms a task is settled under, fixed when it is posted.
    struct Terms {
        // Seconds after the deadline during which oracles may still settle a submitted result.
        uint40 verificationWindow;
        // Attempts (assignments) a task gets before a failure refunds it.
        uint8 maxAttempts;
        // Share of the worker's bonded stake slashed on a failed or abandoned attempt, in basis points.
        uint16 slashBps;
        // Lowest price at which a completed task raises the worker's reputation.
        uint96 reputationFloor;
    }

    /// @notice How an oracle voted.
    enum Ballot {
        Assign,
        Complete,
        Fail
    }

    /// @notice Share of the worker's agreed price, in basis points (10 %), that the worker is credited when
    ///         the requester withdraws the task after assignment: compensation for compute already started.
    uint16 public constant WITHDRAWAL_FEE_BPS = 1_000;
    /// @notice Most oracles a consortium can have (one bit each in a vote mask).
    uint256 public constant MAX_ORACLES = 32;
    /// @notice Highest slash a task can be posted under (50 %).
    uint16 public constant MAX_SLASH_BPS = 5_000;

    /// @notice The worker registry.
    UMC public immutable umc;
    /// @notice The oracles, by seat: seat i votes with bit i.
    address[] internal _oracles;

    /// @notice What a vote needs to know of its oracle, in one slot (one read per vote): its seat plus
    ///         one (0 for accounts that are not oracles), the quorum and the oracle set's epoch.
    struct Member {
        uint8 seatPlusOne;
        uint8 quorum;
        uint16 epoch;
    }

    /// @notice Each oracle's membership record; rewritten for every oracle when the set changes.
    mapping(address account => Member) internal _members;
    /// @notice Votes that must agree before a task is assigned, completed or failed (a majority of the
    ///         oracles).
    uint8 public quorum;
    /// @notice Bumped whenever the oracle set changes: open votes of an earlier set no longer count.
    uint16 public oracleEpoch;
    /// @notice Version of the terms new tasks are posted under.
    uint16 public termsVersion;
    /// @dev Id of the next task. Starts at 1 (set in the constructor) so the first post pays for a
    ///      non-zero to non-zero write, like every later one. In the slot of the quorum and the terms
    ///      version, which a post and a vote read anyway.
    uint64 private _nextTaskId;
    /// @notice Every version of the lifecycle terms.
    mapping(uint16 version => Terms) internal _terms;

    mapping(uint256 taskId => Task) internal _tasks;
    /// @notice Seats that voted for each assignment proposal, keyed by `keccak256(attempt, oracle epoch,
    ///         worker, maxPrice)`.
    mapping(uint256 taskId => mapping(bytes32 proposal => uint32 seats)) internal _assignSupport;
    /// @notice Workers whose attempt at a task failed: they are not assigned it again.
    mapping(uint256 taskId => mapping(address worker => bool)) public failedBefore;

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
    /// @notice `oracle` voted `ballot` on attempt `attempt` of the task (for `Assign`: `worker` at most
    ///         `maxPrice`); `votes` agree so far. The vote that reaches the quorum also carries it out.
    ///         Only where the quorum is above 1: a one-member consortium's vote is the outcome, and the
    ///         outcome's event (`TaskAssigned`, `TaskCompleted`, `TaskFailed`) says so.
    event Voted(
        uint256 indexed taskId,
        address indexed oracle,
        Ballot ballot,
        uint8 attempt,
        address worker,
        uint256 maxPrice,
        uint8 votes
    );
    /// @notice The oracles assigned `worker` at `price` on attempt `attempt` (1-based).
    event TaskAssigned(uint256 indexed taskId, address indexed worker, uint256 price, uint8 attempt);
    /// @notice The assigned worker gave up attempt `attempt` before its deadline; `TaskFailed` follows.
    event TaskAbandoned(uint256 indexed taskId, address indexed worker, uint8 attempt);
    /// @notice The assigned worker submitted its model CID and result hash.
    event ResultSubmitted(uint256 indexed taskId, address indexed worker, string modelCid, bytes32 resultHash);
    /// @notice The oracles accepted the result; `payment` was credited to the worker and `refund` (the
    ///         budget left over) to the requester.
    event TaskCompleted(uint256 indexed taskId, address indexed worker, uint256 payment, uint256 refund);
    /// @notice The oracles failed the worker's attempt (or it was abandoned until the deadline); `slashed`
    ///         stake went to the requester. When `reopened` the task is Posted again for another worker,
    ///         else the escrow was refunded.
    event TaskFailed(uint256 indexed taskId, address indexed worker, uint256 slashed, bool reopened);
    /// @notice The task passed its deadline unsettled; `refund` was credited to the requester.
    event TaskExpired(uint256 indexed taskId, Status previous, uint256 refund);
    /// @notice The worker registry refused to record the end of `worker`'s task (it no longer takes this
    ///         market's calls); the refund went ahead regardless.
    event RegistryUnreachable(uint256 indexed taskId, address indexed worker);
    /// @notice Governance set the oracles and the quorum; open votes of earlier sets no longer count.
    event OraclesSet(address[] oracles, uint8 quorum, uint16 epoch);
    /// @notice Governance set the lifecycle terms that tasks posted from now on are settled under.
    event TermsSet(
        uint16 indexed version, uint40 verificationWindow, uint8 maxAttempts, uint16 slashBps, uint96 reputationFloor
    );

    /// @notice No task has id `taskId`.
    error TaskNotFound(uint256 taskId);
    /// @notice Task `taskId` is `current`, which does not allow this call.
    error InvalidStatus(uint256 taskId, Status current);
    /// @notice The caller is not an oracle.
    error NotOracle(address caller);
    /// @notice The oracle already voted on this round of the task.
    error AlreadyVoted(uint256 taskId, address oracle);
    /// @notice The oracle set is not valid: `reason` says why.
    error InvalidOracleSet(string reason);
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
    /// @notice The price (`price`) exceeds the task's budget (`budget`).
    error PriceAboveBudget(uint256 taskId, uint256 price, uint256 budget);
    /// @notice The worker's current price (`price`) exceeds the most the oracles accepted (`maxPrice`): it
    ///         changed after they chose it.
    error PriceAboveMax(uint256 taskId, uint256 price, uint256 maxPrice);
    /// @notice A requester cannot work on their own task.
    error SelfAssignment(uint256 taskId, address worker);
    /// @notice The worker already failed an attempt at this task.
    error WorkerFailedTask(uint256 taskId, address worker);
    /// @notice `field` must not be zero.
    error ZeroValue(string field);

    /// @param admin_ The consortium account.
    /// @param governanceDelay_ Seconds between scheduling a change and executing it.
    /// @param umc_ The worker registry (this contract must be its market).
    /// @param oracles_ The oracles (1 to MAX_ORACLES distinct accounts).
    /// @param quorum_ Votes that must agree: a majority of `oracles_` (`2 * quorum > oracles`).
    /// @param terms_ The lifecycle terms of the first tasks.
    constructor(
        address admin_,
        uint40 governanceDelay_,
        UMC umc_,
        address[] memory oracles_,
        uint8 quorum_,
        Terms memory terms_
    ) Consortium(admin_, governanceDelay_) {
        if (address(umc_) == address(0)) revert ZeroAddress();
        umc = umc_;
        _nextTaskId = 1;
        _setOracles(oracles_, quorum_);
        _setTerms(terms_);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Governed: replace the oracle set and the quorum. Votes already cast on open tasks no longer
    ///         count; the new oracles vote again.
    /// @param oracles_ The oracles (1 to MAX_ORACLES distinct accounts).
    /// @param quorum_ Votes that must agree: a majority of `oracles_`.
    function setOracles(address[] calldata oracles_, uint8 quorum_) external onlyGovernance {
        _setOracles(oracles_, quorum_);
    }

    /// @notice Governed: set the lifecycle terms of tasks posted from now on (tasks already posted keep
    ///         theirs).
    /// @param terms_ The terms.
    function setTerms(Terms calldata terms_) external onlyGovernance {
        _setTerms(terms_);
    }

    // ------------------------------------------------------------------ requesters

    /// @notice Post a task; `msg.value` is the budget, held in escrow. The task is settled under the
    ///         current terms (`termsVersion`), whatever governance sets later.
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
        if (msg.value > type(uint80).max) revert ValueOutOfRange("budget", msg.value, type(uint80).max);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (bytes(specCid).length == 0) revert EmptyCid("specCid");
        taskId = _nextTaskId++;
        Task storage t = _tasks[taskId];
        t.requester = msg.sender;
        t.budget = uint80(msg.value);
        t.terms = termsVersion;
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
        try umc.onTaskReleased(worker) {}
        catch {
            emit RegistryUnreachable(taskId, worker);
        }
    }

    // ------------------------------------------------------------------ oracles

    /// @notice Vote to assign a posted task to `worker`, at its current price but at most `maxPrice` (the
    ///         price the oracle saw when it chose the worker). When `quorum` oracles voted for the same
    ///         worker and maximum, the worker is assigned at its price then, which is fixed for this attempt;
    ///         a worker that raised its price above the maximum meanwhile is refused (`PriceAboveMax`). The
    ///         whole budget stays in escrow until settlement. An oracle may back several proposals in a
    ///         round (another worker, when the one it backed can no longer be assigned), never one twice;
    ///         the first proposal `quorum` oracles back is carried out.
    /// @param taskId The task.
    /// @param worker A registered worker, bonded for one more task, that has not failed this task.
    /// @param maxPrice The most the task may pay this worker (≤ the budget).
    function assign(uint256 taskId, address worker, uint256 maxPrice) external {
        Member memory m = _member();
        Task storage t = _task(taskId);
        _expectStatus(taskId, t, Status.Posted);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        if (worker == t.requester) revert SelfAssignment(taskId, worker);
        if (maxPrice > t.budget) revert PriceAboveBudget(taskId, maxPrice, t.budget);
        uint8 attempt = t.attempts + 1;
        // Nobody failed the task before its first attempt.
        if (attempt > 1 && failedBefore[taskId][worker]) revert WorkerFailedTask(taskId, worker);
        if (m.quorum > 1) {
            // One vote of several: a one-member consortium's vote is the outcome, with nothing to tally.
            uint32 seat = _openBallot(taskId, t, m, 0);
            bytes32 proposal = keccak256(abi.encode(attempt, m.epoch, worker, maxPrice));
            uint32 support = _assignSupport[taskId][proposal];
            if (support & seat != 0) revert AlreadyVoted(taskId, msg.sender);
            support |= seat;
            uint8 votes = _count(support);
            emit Voted(taskId, msg.sender, Ballot.Assign, attempt, worker, maxPrice, votes);
            if (votes < m.quorum) {
                t.assignVotes |= seat;
                _assignSupport[taskId][proposal] = support;
                return;
            }
            t.assignVotes = 0;
        }
        t.worker = worker;
        t.status = Status.Assigned;
        t.attempts = attempt;
        (uint96 price,) = umc.onTaskAssigned(worker);
        if (price > maxPrice) revert PriceAboveMax(taskId, price, maxPrice);
        t.price = price;
        emit TaskAssigned(taskId, worker, price, attempt);
    }

    /// @notice Vote to accept the submitted result. When `quorum` oracles voted so, the worker is credited
    ///         its price and the requester the rest of the budget; the worker's reputation rises if the price
    ///         was at least the task's reputation floor.
    /// @param taskId The task.
    function complete(uint256 taskId) external {
        Member memory m = _member();
        Task storage t = _task(taskId);
        _expectStatus(taskId, t, Status.Submitted);
        Terms storage terms = _terms[t.terms];
        _expectVerificationWindowOpen(taskId, t, terms);
        address worker = t.worker;
        if (m.quorum > 1) {
            uint32 seat = _openBallot(taskId, t, m, t.completeVotes | t.failVotes);
            uint32 votes = t.completeVotes | seat;
            uint8 count = _count(votes);
            emit Voted(taskId, msg.sender, Ballot.Complete, t.attempts, worker, t.price, count);
            if (count < m.quorum) {
                t.completeVotes = votes;
                return;
            }
        }
        t.status = Status.Completed;
        uint256 price = t.price;
        uint256 refund = t.budget - price;
        emit TaskCompleted(taskId, worker, price, refund);
        _credit(worker, price);
        _credit(t.requester, refund);
        umc.onTaskSucceeded(worker, price >= terms.reputationFloor);
    }

    /// @notice Vote to fail the current attempt (a result that fails verification, or a worker that crashed
    ///         before its deadline). When `quorum` oracles voted so, the worker's reputation drops, its stake
    ///         is slashed to the requester and it is not assigned this task again. The task goes back to
    ///         Posted for another worker when no fail vote said `reopen = false`, attempts are left and the
    ///         deadline has not passed; otherwise the escrow is refunded. A worker that simply misses its
    ///         deadline is expired instead, with the same slash.
    /// @param taskId The task.
    /// @param reopen Whether this oracle would offer the task to another worker.
    function fail(uint256 taskId, bool reopen) external {
        Member memory m = _member();
        Task storage t = _task(taskId);
        Status s = t.status;
        Terms storage terms = _terms[t.terms];
        if (s == Status.Assigned) {
            if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        } else if (s == Status.Submitted) {
            _expectVerificationWindowOpen(taskId, t, terms);
        } else {
            revert InvalidStatus(taskId, s);
        }
        address worker = t.worker;
        bool keepClosed = !reopen;
        if (m.quorum > 1) {
            uint32 seat = _openBallot(taskId, t, m, t.completeVotes | t.failVotes);
            uint32 votes = t.failVotes | seat;
            uint8 count = _count(votes);
            emit Voted(taskId, msg.sender, Ballot.Fail, t.attempts, worker, t.price, count);
            keepClosed = keepClosed || t.keepClosed;
            if (count < m.quorum) {
                t.failVotes = votes;
                t.keepClosed = keepClosed;
                return;
            }
        }
        _failAttempt(taskId, t, terms, worker, keepClosed);
    }

    // ------------------------------------------------------------------ workers

    /// @notice Give up an assigned attempt before its deadline (the worker's trainer failed): the attempt
    ///         fails as if the oracles had failed it (stake slashed to the requester, reputation down,
    ///         never assigned this task again) and the task goes back to Posted for another worker while
    ///         attempts are left, else the escrow is refunded. The worker answers for its own attempt, so
    ///         no oracle vote is needed: in a consortium only the member hosting the worker sees its
    ///         trainer fail, and the others would otherwise wait for the deadline.
    /// @param taskId The task.
    function abandon(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.worker) revert NotAssignedWorker(taskId, msg.sender);
        _expectStatus(taskId, t, Status.Assigned);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline);
        emit TaskAbandoned(taskId, msg.sender, t.attempts);
        _failAttempt(taskId, t, _terms[t.terms], msg.sender, false);
    }

    /// @notice Submit the result of an assigned task, before its deadline. The block number is recorded:
    ///         verifiers derive their evaluation seeds from a later block's hash, which the worker could
    ///         not know when it trained. Votes cast on the attempt before the result existed are cleared.
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
        t.submittedBlock = uint40(block.number);
        _clearVotes(t);
        emit ResultSubmitted(taskId, msg.sender, modelCid, resultHash);
    }

    // ------------------------------------------------------------------ anyone

    /// @notice Expire a task that missed its deadline (for a submitted result: its deadline plus the
    ///         verification window). The escrow is refunded. A worker that held the task to its deadline
    ///         without submitting abandoned it: it is failed and slashed as for a failed result. A worker
    ///         whose result the oracles never settled loses nothing.
    /// @param taskId The task.
    function expire(uint256 taskId) external {
        Task storage t = _task(taskId);
        Status s = t.status;
        if (s != Status.Posted && s != Status.Assigned && s != Status.Submitted) revert InvalidStatus(taskId, s);
        Terms storage terms = _terms[t.terms];
        uint256 availableAt = uint256(t.deadline) + (s == Status.Submitted ? terms.verificationWindow : 0) + 1;
        if (block.timestamp < availableAt) revert NotExpired(taskId, availableAt);
        t.status = Status.Expired;
        address requester = t.requester;
        address worker = t.worker;
        emit TaskExpired(taskId, s, t.budget);
        _credit(requester, t.budget);
        if (s == Status.Assigned) {
            try umc.onTaskFailed(worker, requester, terms.slashBps) returns (uint256 slashed) {
                emit TaskFailed(taskId, worker, slashed, false);
            } catch {
                emit RegistryUnreachable(taskId, worker);
            }
        } else if (s == Status.Submitted) {
            try umc.onTaskReleased(worker) {}
            catch {
                emit RegistryUnreachable(taskId, worker);
            }
        }
    }

    // ------------------------------------------------------------------ views

    /// @notice Number of tasks ever posted; task ids are 1..taskCount.
    function taskCount() external view returns (uint256) {
        return _nextTaskId - 1;
    }

    /// @notice The record of task `taskId` (all zero when it does not exist). Vote masks are as stored:
    ///         votes of an earlier oracle set (`voteEpoch != oracleEpoch`) no longer count.
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @notice Wei held in escrow for task `taskId` (0 once settled).
    function escrowOf(uint256 taskId) public view returns (uint256) {
        Task storage t = _tasks[taskId];
        Status s = t.status;
        return (s == Status.Posted || s == Status.Assigned || s == Status.Submitted) ? t.budget : 0;
    }

    /// @notice The oracles, by seat.
    function oracles() external view returns (address[] memory) {
        return _oracles;
    }

    /// @notice Whether `account` is an oracle.
    function isOracle(address account) external view returns (bool) {
        return _members[account].seatPlusOne != 0;
    }

    /// @notice `account`'s seat (bit `seat` in the vote masks); reverts for an account that is no oracle.
    function seatOf(address account) external view returns (uint8) {
        uint8 plusOne = _members[account].seatPlusOne;
        if (plusOne == 0) revert NotOracle(account);
        return plusOne - 1;
    }

    /// @notice The terms of version `version`.
    function termsAt(uint16 version) external view returns (Terms memory) {
        return _terms[version];
    }

    /// @notice The terms task `taskId` is settled under.
    function termsOf(uint256 taskId) external view returns (Terms memory) {
        return _terms[_tasks[taskId].terms];
    }

    /// @notice Seats that voted for assigning `worker` at most `maxPrice` on the task's next attempt.
    function assignSupport(uint256 taskId, address worker, uint256 maxPrice) external view returns (uint32) {
        Task storage t = _tasks[taskId];
        if (t.voteEpoch != oracleEpoch) return 0;
        return _assignSupport[taskId][keccak256(abi.encode(t.attempts + 1, oracleEpoch, worker, maxPrice))];
    }

    // ------------------------------------------------------------------ internal

    function _task(uint256 taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert TaskNotFound(taskId);
    }

    /// @dev The caller's membership; reverts for an account that is not an oracle.
    function _member() internal view returns (Member memory m) {
        m = _members[msg.sender];
        if (m.seatPlusOne == 0) revert NotOracle(msg.sender);
    }

    /// @dev The caller's (`m`) seat bit, after checking it has not voted in this round (`voted`). Votes of
    ///      an earlier oracle set are cleared first (the masks passed in are then stale, so they are
    ///      re-read).
    function _openBallot(uint256 taskId, Task storage t, Member memory m, uint32 voted) internal returns (uint32 seat) {
        seat = uint32(1) << (m.seatPlusOne - 1);
        uint16 epoch = m.epoch;
        if (t.voteEpoch != epoch) {
            _clearVotes(t);
            t.voteEpoch = epoch;
            return seat;
        }
        if (voted & seat != 0) revert AlreadyVoted(taskId, msg.sender);
    }

    /// @dev The current attempt of `worker` failed: it is never assigned the task again, the task reopens
    ///      (unless `keepClosed`, the attempts are spent or the deadline passed) or is refunded, and UMC
    ///      slashes the worker to the requester.
    function _failAttempt(uint256 taskId, Task storage t, Terms storage terms, address worker, bool keepClosed)
        internal
    {
        address requester = t.requester;
        failedBefore[taskId][worker] = true;
        bool reopened = !keepClosed && t.attempts < terms.maxAttempts && block.timestamp <= t.deadline;
        if (reopened) {
            t.status = Status.Posted;
            t.worker = address(0);
            _clearAttempt(t);
        } else {
            t.status = Status.Failed;
            _credit(requester, t.budget);
        }
        uint256 slashed = umc.onTaskFailed(worker, requester, terms.slashBps);
        emit TaskFailed(taskId, worker, slashed, reopened);
    }

    /// @dev Forget the price and the votes of the current attempt.
    function _clearAttempt(Task storage t) internal {
        t.price = 0;
        t.submittedBlock = 0;
        _clearVotes(t);
    }

    /// @dev Forget every vote cast on the task.
    function _clearVotes(Task storage t) internal {
        t.assignVotes = 0;
        t.completeVotes = 0;
        t.failVotes = 0;
        t.keepClosed = false;
    }

    /// @dev Number of seats in `mask`.
    function _count(uint32 mask) internal pure returns (uint8 n) {
        while (mask != 0) {
            mask &= mask - 1;
            ++n;
        }
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

    function _expectVerificationWindowOpen(uint256 taskId, Task storage t, Terms storage terms) internal view {
        uint256 closedAt = uint256(t.deadline) + terms.verificationWindow;
        if (block.timestamp > closedAt) revert VerificationWindowClosed(taskId, closedAt);
    }

    function _setOracles(address[] memory oracles_, uint8 quorum_) internal {
        uint256 n = oracles_.length;
        if (n == 0 || n > MAX_ORACLES) revert InvalidOracleSet("1 to 32 oracles");
        if (quorum_ == 0 || quorum_ > n || 2 * uint256(quorum_) <= n) {
            revert InvalidOracleSet("the quorum must be a majority of the oracles");
        }
        for (uint256 i; i < _oracles.length; ++i) {
            delete _members[_oracles[i]];
        }
        delete _oracles;
        uint16 epoch = oracleEpoch + 1;
        for (uint256 i; i < n; ++i) {
            address oracle = oracles_[i];
            if (oracle == address(0)) revert ZeroAddress();
            if (_members[oracle].seatPlusOne != 0) revert InvalidOracleSet("an oracle is listed twice");
            // forge-lint: disable-next-line(unsafe-typecast) -- i < 32
            _members[oracle] = Member({seatPlusOne: uint8(i + 1), quorum: quorum_, epoch: epoch});
            _oracles.push(oracle);
        }
        quorum = quorum_;
        oracleEpoch = epoch;
        emit OraclesSet(oracles_, quorum_, epoch);
    }

    function _setTerms(Terms memory terms_) internal {
        if (terms_.maxAttempts == 0) revert ZeroValue("maxAttempts");
        if (terms_.slashBps > MAX_SLASH_BPS) revert ValueOutOfRange("slashBps", terms_.slashBps, MAX_SLASH_BPS);
        uint16 version = termsVersion + 1;
        termsVersion = version;
        _terms[version] = terms_;
        emit TermsSet(version, terms_.verificationWindow, terms_.maxAttempts, terms_.slashBps, terms_.reputationFloor);
    }
}
