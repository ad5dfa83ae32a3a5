// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./Test.sol";
import {Consortium} from "../../contracts/Consortium.sol";
import {UMC} from "../../contracts/UMC.sol";
import {TMC} from "../../contracts/TMC.sol";
import {MMC} from "../../contracts/MMC.sol";

/// @title Fixture
/// @notice The deployment every drlaas test starts from: UMC (min stake 1 ether, cooldown 7 days), TMC
///         (terms: verification window 1 day, 3 attempts, slash 10 %, reputation floor 0.01 ether) bound
///         as UMC's market, and MMC; governance delay 2 days on all three. The default oracle set is
///         1-of-1 (`oracle`); `_deploy2of3` redeploys with `oracle`, `oracle2`, `oracle3` and quorum 2.
///         Plus helpers to run governed changes, register workers and drive tasks (the oracle helpers
///         cast the votes of the first `quorum` oracles).
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
abstract contract Fixture is Test {
    uint40 internal constant GOVERNANCE_DELAY = 2 days;
    uint96 internal constant MIN_STAKE = 1 ether;
    uint40 internal constant COOLDOWN = 7 days;
    uint16 internal constant SLASH_BPS = 1_000;
    uint40 internal constant VERIFICATION_WINDOW = 1 days;
    uint8 internal constant MAX_ATTEMPTS = 3;
    uint96 internal constant REPUTATION_FLOOR = 0.01 ether;

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
    address internal oracle2;
    address internal oracle3;
    address internal requester;
    address internal requester2;
    address internal worker;
    address internal worker2;
    address internal stranger;

    /// @dev The oracles of `tmc`, by seat, and its quorum (kept here so the vote helpers make no other call
    ///      before the vote: `vm.expectRevert` applies to the very next call, views included).
    address[] internal oracleSet;
    uint8 internal quorum;
    /// @dev Each worker's price as set through `_register` / `_setPrice` (for the same reason).
    mapping(address account => uint96) internal priceOf;

    function setUp() public virtual {
        vm.warp(START);
        admin = makeAddr("admin");
        oracle = makeAddr("oracle");
        oracle2 = makeAddr("oracle2");
        oracle3 = makeAddr("oracle3");
        requester = makeAddr("requester");
        requester2 = makeAddr("requester2");
        worker = makeAddr("worker");
        worker2 = makeAddr("worker2");
        stranger = makeAddr("stranger");

        address[] memory one = new address[](1);
        one[0] = oracle;
        _deploy(one, 1);

        vm.deal(requester, 1_000 ether);
        vm.deal(requester2, 1_000 ether);
        vm.deal(worker, 1_000 ether);
        vm.deal(worker2, 1_000 ether);
        vm.deal(stranger, 1_000 ether);
    }

    /// @notice (Re)deploy UMC, TMC (with `oracles_` and `quorum_`, bound as UMC's market) and MMC.
    function _deploy(address[] memory oracles_, uint8 quorum_) internal {
        umc = new UMC(admin, GOVERNANCE_DELAY, MIN_STAKE, COOLDOWN);
        tmc = new TMC(admin, GOVERNANCE_DELAY, umc, oracles_, quorum_, _terms());
        mmc = new MMC(admin, GOVERNANCE_DELAY);
        vm.label(address(umc), "UMC");
        vm.label(address(tmc), "TMC");
        vm.label(address(mmc), "MMC");
        vm.prank(admin);
        umc.bindMarket(address(tmc));
        oracleSet = oracles_;
        quorum = quorum_;
    }

    /// @notice Redeploy with three oracles (`oracle`, `oracle2`, `oracle3`) and a quorum of two.
    function _deploy2of3() internal {
        _deploy(_three(), 2);
    }

    function _three() internal view returns (address[] memory o) {
        o = new address[](3);
        o[0] = oracle;
        o[1] = oracle2;
        o[2] = oracle3;
    }

    /// @notice The fixture's lifecycle terms.
    function _terms() internal pure returns (TMC.Terms memory) {
        return TMC.Terms({
            verificationWindow: VERIFICATION_WINDOW,
            maxAttempts: MAX_ATTEMPTS,
            slashBps: SLASH_BPS,
            reputationFloor: REPUTATION_FLOOR
        });
    }

    // ---------------------------------------------------------------- governance

    /// @notice Run a governed call of `c` the way governance does: the admin schedules it, time moves on by
    ///         the delay, and anyone (here `stranger`) executes it. The clock stays advanced.
    function _govern(Consortium c, bytes memory data) internal {
        vm.prank(admin);
        (, uint256 readyAt) = c.scheduleChange(data);
        vm.warp(readyAt);
        vm.prank(stranger);
        c.executeChange(data);
    }

    /// @notice The admin schedules `data` on `c`; returns when it can be executed.
    function _schedule(Consortium c, bytes memory data) internal returns (uint256 readyAt) {
        vm.prank(admin);
        (, readyAt) = c.scheduleChange(data);
    }

    /// @notice As `_govern`, then the clock goes back: as if the change had been scheduled `governanceDelay`
    ///         ago. For tests whose subject is not governance and that keep START-relative times.
    function _preset(Consortium c, bytes memory data) internal {
        // Not `block.timestamp`: via-IR may re-read it after the warp.
        uint256 now_ = vm.getBlockTimestamp();
        _govern(c, data);
        vm.warp(now_);
    }

    // ---------------------------------------------------------------- helpers

    function _hardware() internal pure returns (UMC.Hardware memory) {
        return UMC.Hardware({gpus: 8, cpuCores: 64, memoryGiB: 512});
    }

    function _register(address account, uint256 stake, uint96 price) internal {
        vm.prank(account);
        umc.registerWorker{value: stake}(EXPERTISE, _hardware(), price, WORKER_CID);
        priceOf[account] = price;
    }

    function _setPrice(address account, uint96 price) internal {
        vm.prank(account);
        umc.updateWorker(EXPERTISE, _hardware(), price, WORKER_CID);
        priceOf[account] = price;
    }

    function _post(address from, uint256 budget, uint256 deadline) internal returns (uint256 taskId) {
        vm.prank(from);
        taskId = tmc.postTask{value: budget}(SPEC_CID, TMC.Kind.Training, 195_000, uint40(deadline));
    }

    /// @notice The first `quorum` oracles vote to assign `to` at most its current price.
    function _assign(uint256 taskId, address to) internal {
        _assignAt(taskId, to, priceOf[to]);
    }

    /// @notice The first `quorum` oracles vote to assign `to` at most `maxPrice`.
    function _assignAt(uint256 taskId, address to, uint256 maxPrice) internal {
        for (uint256 i; i < quorum; ++i) {
            _voteAssign(oracleSet[i], taskId, to, maxPrice);
        }
    }

    function _voteAssign(address from, uint256 taskId, address to, uint256 maxPrice) internal {
        vm.prank(from);
        tmc.assign(taskId, to, maxPrice);
    }

    function _submit(uint256 taskId, address from) internal {
        vm.prank(from);
        tmc.submitResult(taskId, MODEL_CID, RESULT_HASH);
    }

    /// @notice The first `quorum` oracles vote to complete.
    function _complete(uint256 taskId) internal {
        for (uint256 i; i < quorum; ++i) {
            _voteComplete(oracleSet[i], taskId);
        }
    }

    function _voteComplete(address from, uint256 taskId) internal {
        vm.prank(from);
        tmc.complete(taskId);
    }

    /// @notice The first `quorum` oracles vote to fail.
    function _fail(uint256 taskId, bool reopen) internal {
        for (uint256 i; i < quorum; ++i) {
            _voteFail(oracleSet[i], taskId, reopen);
        }
    }

    function _voteFail(address from, uint256 taskId, bool reopen) internal {
        vm.prank(from);
        tmc.fail(taskId, reopen);
    }

    function _status(uint256 taskId) internal view returns (TMC.Status) {
        return tmc.getTask(taskId).status;
    }
}
