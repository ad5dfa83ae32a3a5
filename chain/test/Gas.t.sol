// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {Consortium} from "../contracts/Consortium.sol";
import {TMC} from "../contracts/TMC.sol";

/// @title Gas of a whole task
/// @notice The gas of one task from post to both withdrawals (post, the assignment votes, submit, the
///         completion votes, the worker's and the requester's `withdraw`), with the 1-of-1 and the 2-of-3
///         oracle set. Each call is measured with `gasleft()` around it, after `vm.cool` on TMC and UMC so
///         every call starts with cold storage and a cold UMC, as a transaction of its own does (TMC's own
///         address is warmed again: it is a transaction's target). Logged (`forge test -vv`):
///         - `exec`: the sum of the calls' execution gas (each includes the 100 gas of a warm CALL and,
///           for `postTask`, the 9,000 of a value transfer);
///         - `tx`: an estimate of the transactions' total `gasUsed` before refunds: per call the
///           execution less those CALL costs, plus 21,000 and the calldata cost (4 / 16 gas per zero /
///           non-zero byte). Refunds (e.g. of the cleared credits in `withdraw`) are not subtracted.
///         The assertions are loose bounds, to catch a regression by a large factor.
// forge-lint: disable-next-item(unsafe-typecast) -- a constant deadline
contract GasTest is Fixture {
    event log_named_uint(string key, uint256 val);

    uint96 internal constant PRICE = 0.3 ether;
    uint256 internal constant BUDGET = 1 ether;

    uint256 internal _exec;
    uint256 internal _tx;
    uint256 internal _calls;
    uint256 internal _sink;

    function setUp() public override {
        super.setUp();
    }

    function _ready() internal {
        _register(worker, 2 ether, PRICE);
        _exec = 0;
        _tx = 0;
        _calls = 0;
    }

    function _measure(string memory name, address from, uint256 value, bytes memory data)
        internal
        returns (bytes memory ret)
    {
        vm.cool(address(tmc));
        vm.cool(address(umc));
        _sink += address(tmc).balance; // warm TMC's address (not its storage): the transaction's target
        vm.prank(from);
        uint256 before = gasleft();
        (bool ok, bytes memory r) = address(tmc).call{value: value}(data);
        uint256 used = before - gasleft();
        assertTrue(ok, name);
        ret = r;
        uint256 calldataGas;
        for (uint256 i; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        _exec += used;
        _tx += used - 100 - (value != 0 ? 9_000 : 0) + 21_000 + calldataGas;
        _calls++;
        emit log_named_uint(name, used);
    }

    function _wholeTask(address[] memory voters) internal {
        bytes memory ret = _measure(
            "postTask",
            requester,
            BUDGET,
            abi.encodeCall(TMC.postTask, (SPEC_CID, TMC.Kind.Training, 195_000, uint40(START + 1 days)))
        );
        uint256 taskId = abi.decode(ret, (uint256));
        for (uint256 i; i < voters.length; ++i) {
            _measure("assign (vote)", voters[i], 0, abi.encodeCall(TMC.assign, (taskId, worker, PRICE)));
        }
        _measure("submitResult", worker, 0, abi.encodeCall(TMC.submitResult, (taskId, MODEL_CID, RESULT_HASH)));
        for (uint256 i; i < voters.length; ++i) {
            _measure("complete (vote)", voters[i], 0, abi.encodeCall(TMC.complete, (taskId)));
        }
        _measure("withdraw (worker)", worker, 0, abi.encodeCall(Consortium.withdraw, ()));
        _measure("withdraw (requester)", requester, 0, abi.encodeCall(Consortium.withdraw, ()));
        assertTrue(_status(taskId) == TMC.Status.Completed);
        assertEq(address(tmc).balance, 0);
        emit log_named_uint("calls", _calls);
        emit log_named_uint("exec", _exec);
        emit log_named_uint("tx", _tx);
    }

    function test_gas_wholeTask_1of1() public {
        _ready();
        _wholeTask(oracleSet);
        assertEq(_calls, 6);
        assertLt(_exec, 400_000);
    }

    function test_gas_wholeTask_2of3() public {
        _deploy2of3();
        _ready();
        address[] memory voters = new address[](2);
        voters[0] = oracle;
        voters[1] = oracle2;
        _wholeTask(voters);
        assertEq(_calls, 8);
        assertLt(_exec, 500_000);
    }
}
