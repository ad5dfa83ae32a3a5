// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Receiver
/// @notice A contract account for tests: it calls any contract on its own behalf (`exec`) and reacts to
///         incoming ETH as configured: accept it, refuse it, or re-enter a contract (propagating the inner
///         revert, or catching it and recording its data).
contract Receiver {
    enum Mode {
        Accept,
        Refuse,
        Reenter,
        ReenterAndCatch
    }

    Mode public mode;
    address public reenterTarget;
    bytes public reenterData;

    /// @notice Total wei received.
    uint256 public received;
    /// @notice Whether the last caught re-entry succeeded, and what it returned or reverted with.
    bool public reentrySucceeded;
    bytes public reentryReturnData;

    error Refused();

    receive() external payable {
        if (mode == Mode.Refuse) revert Refused();
        received += msg.value;
        if (mode == Mode.Reenter) {
            (bool ok, bytes memory ret) = reenterTarget.call(reenterData);
            if (!ok) _bubble(ret);
        } else if (mode == Mode.ReenterAndCatch) {
            (bool ok, bytes memory ret) = reenterTarget.call(reenterData);
            reentrySucceeded = ok;
            reentryReturnData = ret;
        }
    }

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function setReentry(Mode mode_, address target, bytes calldata data) external {
        mode = mode_;
        reenterTarget = target;
        reenterData = data;
    }

    /// @notice Call `target` with `data` and `value`, bubbling up a revert unchanged.
    function exec(address target, uint256 value, bytes calldata data) external payable returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call{value: value}(data);
        if (!ok) _bubble(ret);
    }

    function _bubble(bytes memory ret) private pure {
        assembly ("memory-safe") {
            revert(add(ret, 0x20), mload(ret))
        }
    }
}
