// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Consortium
/// @notice Shared base of the drlaas contracts: governance with a delay, a transient-storage reentrancy
///         guard, and pull payments (`credits` + `withdraw`).
///         Governance: the consortium's admin account cannot change anything at once. It *schedules* a
///         change (the encoded call of a governed function), which is announced by `ChangeScheduled` with
///         the time it becomes executable; after `governanceDelay` seconds anyone can `execute` it, and
///         until then the admin can `cancelChange` it. Users who disagree with an announced change have
///         the delay to leave (cancel their tasks, withdraw their credits and stake). Governed functions
///         accept only calls from the contract itself, which `execute` makes.
///         Every payout in drlaas is a credit first; ETH only leaves a contract through `withdraw` (and
///         UMC's `withdrawStake`), so a reverting recipient can never jam a task or another user's payment.
abstract contract Consortium {
    /// @notice Longest governance delay that can be set (30 days), so a change of it cannot lock
    ///         governance out for good.
    uint40 public constant MAX_GOVERNANCE_DELAY = 30 days;

    /// @notice The consortium account that schedules changes.
    address public admin;
    /// @notice The account proposed as the next admin (by a governed `transferAdmin`); it must call
    ///         `acceptAdmin`.
    address public pendingAdmin;
    /// @notice Seconds between scheduling a change and the earliest time it can be executed.
    uint40 public governanceDelay;
    /// @notice When each scheduled change (by id, `keccak256` of its call data) can be executed; 0 when
    ///         none is scheduled under that id.
    mapping(bytes32 id => uint256 readyAt) public scheduledChanges;
    /// @notice How many changes are scheduled and neither executed nor cancelled. While any is, users
    ///         may leave without waiting out their usual delays (see UMC's `withdrawStake`).
    uint256 public pendingChanges;
    /// @notice Wei that each account can withdraw from this contract.
    mapping(address account => uint256 wei_) public credits;

    bool private transient locked;

    /// @notice `transferAdmin` (governed) proposed `newAdmin`.
    event AdminTransferStarted(address indexed previousAdmin, address indexed newAdmin);
    /// @notice `newAdmin` accepted and is now the admin.
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);
    /// @notice The admin scheduled the governed call `data`; anyone can execute it from `readyAt`.
    event ChangeScheduled(bytes32 indexed id, bytes data, uint256 readyAt);
    /// @notice The admin withdrew the scheduled change `id` before it was executed.
    event ChangeCancelled(bytes32 indexed id);
    /// @notice The scheduled change `id` was executed.
    event ChangeExecuted(bytes32 indexed id, bytes data);
    /// @notice The governance delay changed.
    event GovernanceDelaySet(uint40 delay);
    /// @notice `account` was credited `amount` wei (payment, refund, fee or slashed stake).
    event Credited(address indexed account, uint256 amount);
    /// @notice `account` withdrew `amount` wei of its credits.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice The caller is not the admin.
    error NotAdmin(address caller);
    /// @notice The caller is not the pending admin.
    error NotPendingAdmin(address caller);
    /// @notice A governed function was called other than through `execute`.
    error NotGovernance(address caller);
    /// @notice The change `id` is already scheduled.
    error AlreadyScheduled(bytes32 id);
    /// @notice No change `id` is scheduled.
    error NotScheduled(bytes32 id);
    /// @notice The change `id` cannot be executed before `readyAt`.
    error ChangeNotReady(bytes32 id, uint256 readyAt);
    /// @notice An address argument was zero where a real account is required.
    error ZeroAddress();
    /// @notice A function guarded against reentrancy was re-entered.
    error Reentrancy();
    /// @notice `withdraw` was called with no credits.
    error NothingToWithdraw(address account);
    /// @notice A value does not fit its field (`field` names it): `value` is above `max`.
    error ValueOutOfRange(string field, uint256 value, uint256 max);
    /// @notice Sending `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    /// @dev Only `execute` calls a contract's functions as the contract itself.
    modifier onlyGovernance() {
        if (msg.sender != address(this)) revert NotGovernance(msg.sender);
        _;
    }

    modifier nonReentrant() {
        if (locked) revert Reentrancy();
        locked = true;
        _;
        locked = false;
    }

    /// @param admin_ The consortium account.
    /// @param governanceDelay_ Seconds between scheduling a change and executing it (≤ 30 days).
    constructor(address admin_, uint40 governanceDelay_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
        emit AdminTransferred(address(0), admin_);
        _setGovernanceDelay(governanceDelay_);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Schedule a governed call of this contract (for example `setParameters(...)`, encoded with
    ///         its selector). It can be executed `governanceDelay` seconds from now.
    /// @param data The call, ABI-encoded with its selector.
    /// @return id The change's id: `keccak256(data)`.
    /// @return readyAt When `execute` will accept it.
    function scheduleChange(bytes calldata data) external onlyAdmin returns (bytes32 id, uint256 readyAt) {
        id = keccak256(data);
        if (scheduledChanges[id] != 0) revert AlreadyScheduled(id);
        readyAt = block.timestamp + governanceDelay;
        scheduledChanges[id] = readyAt;
        pendingChanges += 1;
        emit ChangeScheduled(id, data, readyAt);
    }

    /// @notice Withdraw a scheduled change before it is executed.
    /// @param id The change's id.
    function cancelChange(bytes32 id) external onlyAdmin {
        if (scheduledChanges[id] == 0) revert NotScheduled(id);
        delete scheduledChanges[id];
        pendingChanges -= 1;
        emit ChangeCancelled(id);
    }

    /// @notice Execute a scheduled change whose delay is over. Anyone may: an announced change takes
    ///         effect as announced unless the admin cancels it in time.
    /// @param data The call exactly as scheduled.
    function executeChange(bytes calldata data) external nonReentrant {
        bytes32 id = keccak256(data);
        uint256 readyAt = scheduledChanges[id];
        if (readyAt == 0) revert NotScheduled(id);
        if (block.timestamp < readyAt) revert ChangeNotReady(id, readyAt);
        delete scheduledChanges[id];
        pendingChanges -= 1;
        emit ChangeExecuted(id, data);
        (bool ok, bytes memory reason) = address(this).call(data);
        if (!ok) {
            // Bubble the governed function's own error up.
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }

    /// @notice Governed: change the governance delay.
    /// @param delay Seconds (≤ MAX_GOVERNANCE_DELAY).
    function setGovernanceDelay(uint40 delay) external onlyGovernance {
        _setGovernanceDelay(delay);
    }

    /// @notice Governed: propose `newAdmin` as the next admin (two-step, so a typo cannot lose the contract).
    /// @param newAdmin The account that must then call `acceptAdmin`.
    function transferAdmin(address newAdmin) external onlyGovernance {
        if (newAdmin == address(0)) revert ZeroAddress();
        pendingAdmin = newAdmin;
        emit AdminTransferStarted(admin, newAdmin);
    }

    /// @notice Accept the admin role proposed by `transferAdmin`.
    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin(msg.sender);
        emit AdminTransferred(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    // ------------------------------------------------------------------ pull payments

    /// @notice Withdraw all of the caller's credits (pull payment).
    /// @return amount The wei sent to the caller.
    function withdraw() external nonReentrant returns (uint256 amount) {
        amount = credits[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        credits[account] += amount;
        emit Credited(account, amount);
    }

    function _send(address to, uint256 amount) internal {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    function _setGovernanceDelay(uint40 delay) internal {
        if (delay > MAX_GOVERNANCE_DELAY) revert ValueOutOfRange("governanceDelay", delay, MAX_GOVERNANCE_DELAY);
        governanceDelay = delay;
        emit GovernanceDelaySet(delay);
    }
}
