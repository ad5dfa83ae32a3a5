// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Consortium
/// @notice Shared base of the drlaas contracts: a two-step admin (the consortium), a transient-storage
///         reentrancy guard, and pull payments (`credits` + `withdraw`). Every payout in drlaas is a
///         credit first; ETH only leaves a contract through `withdraw`, so a reverting or malicious
///         recipient can never jam a task, a listing or another user's payment.
abstract contract Consortium {
    /// @notice The consortium account that manages roles and parameters.
    address public admin;
    /// @notice The account proposed as the next admin; it must call `acceptAdmin`.
    address public pendingAdmin;
    /// @notice Wei that each account can withdraw from this contract.
    mapping(address account => uint256 wei_) public credits;

    bool private transient locked;

    /// @notice `transferAdmin` proposed `newAdmin`.
    event AdminTransferStarted(address indexed previousAdmin, address indexed newAdmin);
    /// @notice `newAdmin` accepted and is now the admin.
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);
    /// @notice `account` was credited `amount` wei (payment, refund, royalty or slashed stake).
    event Credited(address indexed account, uint256 amount);
    /// @notice `account` withdrew `amount` wei of its credits.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice The caller is not the admin.
    error NotAdmin(address caller);
    /// @notice The caller is not the pending admin.
    error NotPendingAdmin(address caller);
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

    modifier nonReentrant() {
        if (locked) revert Reentrancy();
        locked = true;
        _;
        locked = false;
    }

    constructor(address admin_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
        emit AdminTransferred(address(0), admin_);
    }

    /// @notice Propose `newAdmin` as the next admin (two-step, so a typo cannot lose the contract).
    /// @param newAdmin The account that must then call `acceptAdmin`.
    function transferAdmin(address newAdmin) external onlyAdmin {
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
}
