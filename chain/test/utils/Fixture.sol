// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./Test.sol";
import {UMC} from "../../contracts/UMC.sol";
import {TMC} from "../../contracts/TMC.sol";
import {MMC} from "../../contracts/MMC.sol";

/// @title Fixture
/// @notice The deployment every drlaas test starts from: UMC (min stake 1 ether, cooldown 7 days, slash
///         10 %), TMC (verification window 1 day, 3 attempts) and MMC, both allowed as markets in UMC, and
///         one oracle. Plus helpers to register workers and drive tasks.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
abstract contract Fixture is Test {
    uint96 internal constant MIN_STAKE = 1 ether;
    uint40 internal constant COOLDOWN = 7 days;
    uint16 internal constant SLASH_BPS = 1_000;
    uint40 internal constant VERIFICATION_WINDOW = 1 days;
    uint8 internal constant MAX_ATTEMPTS = 3;

    /// @dev A realistic start time, so "now - x" never underflows in tests.
    uint256 internal constant START = 1_750_000_000;

    bytes32 internal constant EXPERTISE = bytes32(uint256(0xff80) << 240); // kind 0: 255, kind 1: 128
    string internal constant WORKER_CID = "bafkreiworkerprofile";
    string internal constant SPEC_CID = "bafkreitaskspec";
    string internal constant MODEL_CID = "bafybeimodel";
    bytes32 internal constant RESULT_HASH = keccak256("result.json");

    UMC internal umc;
    TMC internal tmc;
    MMC internal mmc;

    address internal admin;
    address internal oracle;
    address internal requester;
    address internal requester2;
    address internal worker;
    address internal worker2;
    address internal stranger;

    function setUp() public virtual {
        vm.warp(START);
        admin = makeAddr("admin");
        oracle = makeAddr("oracle");
        requester = makeAddr("requester");
        requester2 = makeAddr("requester2");
        worker = makeAddr("worker");
        worker2 = makeAddr("worker2");
        stranger = makeAddr("stranger");

        umc = new UMC(admin, MIN_STAKE, COOLDOWN, SLASH_BPS);
        tmc = new TMC(admin, umc, VERIFICATION_WINDOW, MAX_ATTEMPTS);
        mmc = new MMC(admin, umc);
        vm.label(address(umc), "UMC");
        vm.label(address(tmc), "TMC");
        vm.label(address(mmc), "MMC");

        vm.startPrank(admin);
        umc.setMarket(address(tmc), true);
        umc.setMarket(address(mmc), true);
        tmc.setOracle(oracle, true);
        vm.stopPrank();

        vm.deal(requester, 1_000 ether);
        vm.deal(requester2, 1_000 ether);
        vm.deal(worker, 1_000 ether);
        vm.deal(worker2, 1_000 ether);
        vm.deal(stranger, 1_000 ether);
    }

    // ---------------------------------------------------------------- helpers

    function _hardware() internal pure returns (UMC.Hardware memory) {
        return UMC.Hardware({gpus: 8, cpuCores: 64, memoryGiB: 512});
    }

    function _register(address account, uint256 stake, uint96 price) internal {
        vm.prank(account);
        umc.registerWorker{value: stake}(EXPERTISE, _hardware(), price, WORKER_CID);
    }

    function _setPrice(address account, uint96 price) internal {
        vm.prank(account);
        umc.updateWorker(EXPERTISE, _hardware(), price, WORKER_CID);
    }

    function _post(address from, uint256 budget, uint256 deadline) internal returns (uint256 taskId) {
        vm.prank(from);
        taskId = tmc.postTask{value: budget}(SPEC_CID, TMC.Kind.Training, 195_000, uint40(deadline));
    }

    function _assign(uint256 taskId, address to) internal {
        vm.prank(oracle);
        tmc.assign(taskId, to);
    }

    function _submit(uint256 taskId, address from) internal {
        vm.prank(from);
        tmc.submitResult(taskId, MODEL_CID, RESULT_HASH);
    }

    function _complete(uint256 taskId) internal {
        vm.prank(oracle);
        tmc.complete(taskId);
    }

    function _fail(uint256 taskId, bool reopen) internal {
        vm.prank(oracle);
        tmc.fail(taskId, reopen);
    }

    function _status(uint256 taskId) internal view returns (TMC.Status) {
        return tmc.getTask(taskId).status;
    }
}
