// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Fixture} from "./utils/Fixture.sol";
import {Receiver} from "./utils/Receiver.sol";
import {Consortium} from "../contracts/Consortium.sol";
import {UMC} from "../contracts/UMC.sol";
import {MMC} from "../contracts/MMC.sol";

/// @title MMC unit and fuzz tests
/// @notice The model market. `worker` and `worker2` are registered workers in UMC (ratings do not move
///         their reputation: MMC does not know UMC); `author` owns models but is not a worker; `requester`
///         and `requester2` buy.
// forge-lint: disable-next-item(unsafe-typecast) -- casts of constants and of bound()ed fuzz inputs
contract MMCTest is Fixture {
    uint96 internal constant LIST_PRICE = 1 ether;
    uint16 internal constant ROYALTY_BPS = 1_234;
    uint8 internal constant ENV_KIND = 2;
    bytes32 internal constant DESCRIPTOR = keccak256("cartpole-v1.json");

    address internal author;
    address internal buyer;
    address internal buyer2;

    function setUp() public override {
        super.setUp();
        _register(worker, 2 ether, 0.3 ether);
        _register(worker2, 2 ether, 0.3 ether);
        author = makeAddr("author");
        buyer = requester;
        buyer2 = requester2;
    }

    function _list(address owner, uint96 price, uint64 parentId, uint16 royaltyBps)
        internal
        returns (uint256 listingId)
    {
        vm.prank(owner);
        listingId = mmc.list(MODEL_CID, ENV_KIND, DESCRIPTOR, price, parentId, royaltyBps);
    }

    function _buy(address from, uint256 listingId, uint256 value) internal {
        vm.prank(from);
        mmc.purchase{value: value}(listingId);
    }

    function _rate(address from, uint256 listingId, uint8 stars) internal {
        vm.prank(from);
        mmc.rate(listingId, stars);
    }

    // ================================================================ constructor

    function test_constructor_setsState() public view {
        assertEq(mmc.admin(), admin);
        assertEq(mmc.governanceDelay(), GOVERNANCE_DELAY);
        assertEq(mmc.listingCount(), 0);
        assertEq(mmc.MAX_ROYALTY_BPS(), 3_000);
    }

    function test_constructor_emitsAdminTransferred() public {
        vm.expectEmit();
        emit Consortium.AdminTransferred(address(0), admin);
        vm.expectEmit();
        emit Consortium.GovernanceDelaySet(GOVERNANCE_DELAY);
        new MMC(admin, GOVERNANCE_DELAY);
    }

    function test_constructor_revertsOnZeroAdmin() public {
        vm.expectRevert(Consortium.ZeroAddress.selector);
        new MMC(address(0), GOVERNANCE_DELAY);
    }

    function test_transferAdmin_twoStepThroughGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NotGovernance.selector, admin));
        vm.prank(admin);
        mmc.transferAdmin(stranger);
        _govern(mmc, abi.encodeCall(Consortium.transferAdmin, (stranger)));
        vm.prank(stranger);
        mmc.acceptAdmin();
        assertEq(mmc.admin(), stranger);
    }

    // ================================================================ list

    function test_list_storesListing() public {
        vm.expectEmit(address(mmc));
        emit MMC.ModelListed(1, worker, 0, ENV_KIND, DESCRIPTOR, LIST_PRICE, ROYALTY_BPS, MODEL_CID);
        uint256 id = _list(worker, LIST_PRICE, 0, ROYALTY_BPS);

        assertEq(id, 1);
        assertEq(mmc.listingCount(), 1);
        MMC.Listing memory l = mmc.getListing(id);
        assertEq(l.owner, worker);
        assertEq(l.price, LIST_PRICE);
        assertEq(l.parentId, 0);
        assertEq(l.royaltyBps, ROYALTY_BPS);
        assertEq(l.envKind, ENV_KIND);
        assertTrue(l.active);
        assertEq(l.purchases, 0);
        assertEq(l.ratingSum, 0);
        assertEq(l.ratingCount, 0);
        assertEq(l.listedAt, START);
        assertEq(l.envDescriptorHash, DESCRIPTOR);
        assertEq(l.modelCid, MODEL_CID);
    }

    function test_list_withParent() public {
        uint256 parent = _list(worker2, LIST_PRICE, 0, ROYALTY_BPS);
        vm.expectEmit(address(mmc));
        emit MMC.ModelListed(2, worker, parent, ENV_KIND, DESCRIPTOR, 2 ether, 0, MODEL_CID);
        uint256 child = _list(worker, 2 ether, uint64(parent), 0);
        assertEq(child, 2);
        assertEq(mmc.getListing(child).parentId, parent);
    }

    function test_list_withDelistedParent() public {
        uint256 parent = _list(worker2, LIST_PRICE, 0, ROYALTY_BPS);
        vm.prank(worker2);
        mmc.delist(parent);
        uint256 child = _list(worker, LIST_PRICE, uint64(parent), 0);
        assertEq(mmc.getListing(child).parentId, parent);
    }

    function test_list_acceptsMaxRoyaltyAndAnyone() public {
        uint256 id = _list(author, 0, 0, 3_000);
        assertEq(mmc.getListing(id).royaltyBps, 3_000);
        assertEq(mmc.getListing(id).owner, author);
    }

    function test_list_revertsOnEmptyCid() public {
        vm.expectRevert(MMC.EmptyCid.selector);
        vm.prank(worker);
        mmc.list("", ENV_KIND, DESCRIPTOR, LIST_PRICE, 0, ROYALTY_BPS);
    }

    function test_list_revertsOnRoyaltyAboveMax() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.ValueOutOfRange.selector, "royaltyBps", 3_001, 3_000));
        _list(worker, LIST_PRICE, 0, 3_001);
    }

    function test_list_revertsOnUnknownParent() public {
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 1));
        _list(worker, LIST_PRICE, 1, 0); // its own future id
        _list(worker, LIST_PRICE, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 5));
        _list(worker, LIST_PRICE, 5, 0);
    }

    // ================================================================ delist

    function test_delist_deactivates() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectEmit(address(mmc));
        emit MMC.ModelDelisted(id);
        vm.prank(worker);
        mmc.delist(id);
        assertFalse(mmc.getListing(id).active);

        vm.expectRevert(abi.encodeWithSelector(MMC.ListingInactive.selector, id));
        _buy(buyer, id, LIST_PRICE);
    }

    function test_delist_revertsForNonOwner() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.NotListingOwner.selector, id, stranger));
        vm.prank(stranger);
        mmc.delist(id);
    }

    function test_delist_revertsTwice() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.prank(worker);
        mmc.delist(id);
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingInactive.selector, id));
        vm.prank(worker);
        mmc.delist(id);
    }

    function test_delist_revertsForUnknownListing() public {
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 9));
        vm.prank(worker);
        mmc.delist(9);
    }

    // ================================================================ setPrice

    function test_setPrice_appliesToLaterPurchases() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectEmit(address(mmc));
        emit MMC.PriceChanged(id, 3 ether);
        vm.prank(worker);
        mmc.setPrice(id, 3 ether);
        assertEq(mmc.getListing(id).price, 3 ether);

        vm.expectRevert(abi.encodeWithSelector(MMC.WrongPayment.selector, LIST_PRICE, 3 ether));
        _buy(buyer, id, LIST_PRICE);
        _buy(buyer, id, 3 ether);
        assertEq(mmc.credits(worker), 3 ether);
    }

    function test_setPrice_onInactiveListing() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.prank(worker);
        mmc.delist(id);
        vm.prank(worker);
        mmc.setPrice(id, 0);
        assertEq(mmc.getListing(id).price, 0);
        assertFalse(mmc.getListing(id).active);
    }

    function test_setPrice_revertsForNonOwner() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.NotListingOwner.selector, id, buyer));
        vm.prank(buyer);
        mmc.setPrice(id, 0);
    }

    function test_setPrice_revertsForUnknownListing() public {
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 1));
        vm.prank(worker);
        mmc.setPrice(1, 0);
    }

    // ================================================================ purchase

    function test_purchase_paysOwner() public {
        uint256 id = _list(worker, LIST_PRICE, 0, ROYALTY_BPS);
        vm.expectEmit(address(mmc));
        emit MMC.ModelPurchased(id, buyer, worker, LIST_PRICE, 0, address(0));
        vm.expectEmit(address(mmc));
        emit Consortium.Credited(worker, LIST_PRICE);
        _buy(buyer, id, LIST_PRICE);

        assertEq(mmc.credits(worker), LIST_PRICE, "own royaltyBps only applies to children");
        assertEq(mmc.getListing(id).purchases, 1);
        assertTrue(mmc.purchaseOf(id, buyer) == MMC.Purchase.Bought);
        assertEq(address(mmc).balance, LIST_PRICE);
        assertEq(buyer.balance, 1_000 ether - LIST_PRICE);

        _buy(buyer2, id, LIST_PRICE);
        assertEq(mmc.getListing(id).purchases, 2);
        assertEq(mmc.credits(worker), 2 * LIST_PRICE);
    }

    function test_purchase_royaltySplitToTheWei() public {
        uint256 parent = _list(worker2, 5 ether, 0, ROYALTY_BPS);
        uint256 child = _list(worker, LIST_PRICE, uint64(parent), 3_000);
        uint256 royalty = 0.1234 ether; // 1 ether * 1234 / 10000

        vm.expectEmit(address(mmc));
        emit MMC.ModelPurchased(child, buyer, worker, LIST_PRICE, royalty, worker2);
        vm.expectEmit(address(mmc));
        emit Consortium.Credited(worker, LIST_PRICE - royalty);
        vm.expectEmit(address(mmc));
        emit Consortium.Credited(worker2, royalty);
        _buy(buyer, child, LIST_PRICE);

        assertEq(mmc.credits(worker), 0.8766 ether);
        assertEq(mmc.credits(worker2), 0.1234 ether);
        assertEq(mmc.credits(worker) + mmc.credits(worker2), LIST_PRICE);
        assertEq(mmc.getListing(parent).purchases, 0, "a royalty is not a purchase of the parent");

        uint256 before = worker2.balance;
        vm.prank(worker2);
        mmc.withdraw();
        assertEq(worker2.balance, before + royalty);
        vm.prank(worker);
        mmc.withdraw();
        assertEq(address(mmc).balance, 0);
    }

    function test_purchase_royaltyRoundsDown() public {
        uint256 parent = _list(worker2, 0, 0, 3_000);
        uint256 child = _list(worker, 9_999, uint64(parent), 0);
        _buy(buyer, child, 9_999);
        assertEq(mmc.credits(worker2), 2_999); // 2999.7
        assertEq(mmc.credits(worker), 7_000);
    }

    function test_purchase_zeroRoyaltyParentGetsNothing() public {
        uint256 parent = _list(worker2, 0, 0, 0);
        uint256 child = _list(worker, LIST_PRICE, uint64(parent), 0);
        vm.recordLogs();
        _buy(buyer, child, LIST_PRICE);
        assertEq(vm.getRecordedLogs().length, 2, "ModelPurchased and one Credited");
        assertEq(mmc.credits(worker), LIST_PRICE);
        assertEq(mmc.credits(worker2), 0);
    }

    function test_purchase_onlyDirectParentEarns() public {
        uint256 grandparent = _list(author, 0, 0, 1_000);
        uint256 parent = _list(worker2, 0, uint64(grandparent), 2_000);
        uint256 child = _list(worker, LIST_PRICE, uint64(parent), 0);
        _buy(buyer, child, LIST_PRICE);
        assertEq(mmc.credits(worker2), 0.2 ether);
        assertEq(mmc.credits(author), 0);
        assertEq(mmc.credits(worker), 0.8 ether);
    }

    function test_purchase_delistedParentStillEarns() public {
        uint256 parent = _list(worker2, 0, 0, 1_000);
        uint256 child = _list(worker, LIST_PRICE, uint64(parent), 0);
        vm.prank(worker2);
        mmc.delist(parent);
        _buy(buyer, child, LIST_PRICE);
        assertEq(mmc.credits(worker2), 0.1 ether);
    }

    function test_purchase_ownDerivedModelCreditsOwnerTwice() public {
        uint256 parent = _list(worker, 0, 0, 1_000);
        uint256 child = _list(worker, LIST_PRICE, uint64(parent), 0);
        _buy(buyer, child, LIST_PRICE);
        assertEq(mmc.credits(worker), LIST_PRICE);
    }

    function test_purchase_freeModel() public {
        uint256 id = _list(author, 0, 0, 0);
        vm.recordLogs();
        _buy(buyer, id, 0);
        assertEq(vm.getRecordedLogs().length, 1, "ModelPurchased only; no zero credit");
        assertTrue(mmc.purchaseOf(id, buyer) == MMC.Purchase.BoughtFree);
        assertEq(mmc.credits(author), 0);
        assertEq(address(mmc).balance, 0);
    }

    function test_rate_freeCopyCountsInListingButNotInReputation() public {
        uint256 id = _list(worker, 0, 0, 0);
        _buy(buyer, id, 0);
        vm.recordLogs();
        _rate(buyer, id, 5);
        assertEq(vm.getRecordedLogs().length, 1, "ModelRated only; UMC is not called");
        MMC.Listing memory l = mmc.getListing(id);
        assertEq(l.ratingSum, 5);
        assertEq(l.ratingCount, 1);
        assertTrue(mmc.purchaseOf(id, buyer) == MMC.Purchase.Rated);
        assertEq(umc.reputationOf(worker), 0, "a free copy cannot be used to farm reputation");
    }

    function test_purchase_revertsOnWrongPayment() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.WrongPayment.selector, LIST_PRICE - 1, LIST_PRICE));
        _buy(buyer, id, LIST_PRICE - 1);
        vm.expectRevert(abi.encodeWithSelector(MMC.WrongPayment.selector, LIST_PRICE + 1, LIST_PRICE));
        _buy(buyer, id, LIST_PRICE + 1);
        vm.expectRevert(abi.encodeWithSelector(MMC.WrongPayment.selector, 0, LIST_PRICE));
        _buy(buyer, id, 0);
    }

    function test_purchase_revertsOnInactiveListing() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.prank(worker);
        mmc.delist(id);
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingInactive.selector, id));
        _buy(buyer, id, LIST_PRICE);
    }

    function test_purchase_revertsOnUnknownListing() public {
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 0));
        _buy(buyer, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 3));
        _buy(buyer, 3, 0);
    }

    function test_purchase_revertsOnSelfPurchase() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.SelfPurchase.selector, id));
        _buy(worker, id, LIST_PRICE);
    }

    function test_purchase_revertsWhenAlreadyPurchased() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        vm.expectRevert(abi.encodeWithSelector(MMC.AlreadyPurchased.selector, id, buyer));
        _buy(buyer, id, LIST_PRICE);
        // Also after rating.
        _rate(buyer, id, 4);
        vm.expectRevert(abi.encodeWithSelector(MMC.AlreadyPurchased.selector, id, buyer));
        _buy(buyer, id, LIST_PRICE);
    }

    function testFuzz_purchaseSplit(uint96 price, uint16 royaltyBps) public {
        royaltyBps = uint16(bound(royaltyBps, 0, 3_000));
        uint256 parent = _list(worker2, 0, 0, royaltyBps);
        uint256 child = _list(worker, price, uint64(parent), 0);
        vm.deal(buyer, price);
        _buy(buyer, child, price);

        uint256 royalty = uint256(price) * royaltyBps / 10_000;
        assertEq(mmc.credits(worker2), royalty);
        assertEq(mmc.credits(worker), price - royalty);
        assertEq(mmc.credits(worker) + mmc.credits(worker2), price, "owner credit + royalty == price");
        assertEq(address(mmc).balance, price);
        assertEq(buyer.balance, 0);
    }

    function testFuzz_purchaseRequiresExactPayment(uint96 price, uint256 sent) public {
        sent = bound(sent, 0, uint256(type(uint96).max) + 1);
        uint256 id = _list(worker, price, 0, 0);
        vm.deal(buyer, sent);
        if (sent != price) vm.expectRevert(abi.encodeWithSelector(MMC.WrongPayment.selector, sent, price));
        _buy(buyer, id, sent);
    }

    // ================================================================ rate

    function test_rate_highStarsCountInTheListingOnly() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        vm.expectEmit(address(mmc));
        emit MMC.ModelRated(id, buyer, 5);
        vm.recordLogs();
        _rate(buyer, id, 5);
        assertEq(vm.getRecordedLogs().length, 1, "ModelRated only; no ReputationChanged");

        MMC.Listing memory l = mmc.getListing(id);
        assertEq(l.ratingSum, 5);
        assertEq(l.ratingCount, 1);
        assertTrue(mmc.purchaseOf(id, buyer) == MMC.Purchase.Rated);
        assertEq(umc.reputationOf(worker), 0);
    }

    function test_rate_lowStarsCountInTheListingOnly() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        _buy(buyer2, id, LIST_PRICE);
        _rate(buyer, id, 1);
        _rate(buyer2, id, 2);
        assertEq(umc.reputationOf(worker), 0);
        MMC.Listing memory l = mmc.getListing(id);
        assertEq(l.ratingSum, 3);
        assertEq(l.ratingCount, 2);
    }

    function test_rate_threeStars() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        _rate(buyer, id, 3);
        assertEq(umc.reputationOf(worker), 0);
        assertEq(mmc.getListing(id).ratingSum, 3);
    }

    function test_rate_unregisteredOwnerIsFine() public {
        uint256 id = _list(author, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        _rate(buyer, id, 5);
        assertEq(mmc.getListing(id).ratingCount, 1);
        assertEq(umc.reputationOf(author), 0);
        assertFalse(umc.isWorker(author));
    }

    function test_rate_afterDelist() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        vm.prank(worker);
        mmc.delist(id);
        _rate(buyer, id, 4);
        assertEq(mmc.getListing(id).ratingCount, 1);
    }

    function test_rate_revertsOnInvalidStars() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        vm.expectRevert(abi.encodeWithSelector(MMC.InvalidRating.selector, 0));
        _rate(buyer, id, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.InvalidRating.selector, 6));
        _rate(buyer, id, 6);
        vm.expectRevert(abi.encodeWithSelector(MMC.InvalidRating.selector, 255));
        _rate(buyer, id, 255);
    }

    function test_rate_revertsWhenNotPurchased() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MMC.NotPurchased.selector, id, buyer));
        _rate(buyer, id, 5);
        vm.expectRevert(abi.encodeWithSelector(MMC.NotPurchased.selector, id, worker));
        _rate(worker, id, 5); // owners cannot rate their own model
    }

    function test_rate_revertsWhenAlreadyRated() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        _rate(buyer, id, 5);
        vm.expectRevert(abi.encodeWithSelector(MMC.AlreadyRated.selector, id, buyer));
        _rate(buyer, id, 1);
        assertEq(mmc.getListing(id).ratingSum, 5);
        assertEq(mmc.getListing(id).ratingCount, 1);
    }

    function test_rate_revertsForUnknownListing() public {
        vm.expectRevert(abi.encodeWithSelector(MMC.ListingNotFound.selector, 4));
        _rate(buyer, 4, 5);
    }

    function test_rate_doesNotDependOnUmc() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        // UMC's market moves elsewhere: ratings are unaffected, they never reach UMC.
        _preset(umc, abi.encodeCall(UMC.setMarket, (stranger)));
        _rate(buyer, id, 3);
        assertTrue(mmc.purchaseOf(id, buyer) == MMC.Purchase.Rated);
    }

    function testFuzz_rate(uint8 stars) public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        if (stars < 1 || stars > 5) {
            vm.expectRevert(abi.encodeWithSelector(MMC.InvalidRating.selector, stars));
            _rate(buyer, id, stars);
            return;
        }
        _rate(buyer, id, stars);
        assertEq(mmc.getListing(id).ratingSum, stars);
        assertEq(umc.reputationOf(worker), 0, "ratings never move reputation");
    }

    // ================================================================ withdraw

    function test_withdraw_paysOwner() public {
        uint256 id = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        uint256 before = worker.balance;
        vm.expectEmit(address(mmc));
        emit Consortium.Withdrawn(worker, LIST_PRICE);
        vm.prank(worker);
        assertEq(mmc.withdraw(), LIST_PRICE);
        assertEq(worker.balance, before + LIST_PRICE);
        assertEq(mmc.credits(worker), 0);
        assertEq(address(mmc).balance, 0);
    }

    function test_withdraw_revertsWithoutCredits() public {
        vm.expectRevert(abi.encodeWithSelector(Consortium.NothingToWithdraw.selector, author));
        vm.prank(author);
        mmc.withdraw();
    }

    function test_withdraw_refusingOwnerDoesNotBlockSales() public {
        Receiver r = new Receiver();
        r.setMode(Receiver.Mode.Refuse);
        bytes memory ret =
            r.exec(address(mmc), 0, abi.encodeCall(MMC.list, (MODEL_CID, ENV_KIND, DESCRIPTOR, LIST_PRICE, 0, 0)));
        uint256 id = abi.decode(ret, (uint256));
        _buy(buyer, id, LIST_PRICE);
        _buy(buyer2, id, LIST_PRICE);
        assertEq(mmc.credits(address(r)), 2 * LIST_PRICE);

        vm.expectRevert(abi.encodeWithSelector(Consortium.TransferFailed.selector, address(r), 2 * LIST_PRICE));
        r.exec(address(mmc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(mmc.credits(address(r)), 2 * LIST_PRICE);
    }

    function test_withdraw_reentrantOwnerGetsPaidOnce() public {
        Receiver r = new Receiver();
        bytes memory ret =
            r.exec(address(mmc), 0, abi.encodeCall(MMC.list, (MODEL_CID, ENV_KIND, DESCRIPTOR, LIST_PRICE, 0, 0)));
        uint256 id = abi.decode(ret, (uint256));
        uint256 other = _list(worker, LIST_PRICE, 0, 0);
        _buy(buyer, id, LIST_PRICE);
        _buy(buyer, other, LIST_PRICE);

        r.setReentry(Receiver.Mode.ReenterAndCatch, address(mmc), abi.encodeCall(Consortium.withdraw, ()));
        r.exec(address(mmc), 0, abi.encodeCall(Consortium.withdraw, ()));
        assertEq(r.reentryReturnData(), abi.encodeWithSelector(Consortium.Reentrancy.selector));
        assertEq(address(r).balance, LIST_PRICE);
        assertEq(address(mmc).balance, LIST_PRICE);
        assertEq(mmc.credits(worker), LIST_PRICE);
    }

    // ================================================================ views

    function test_views_unknownListing() public view {
        MMC.Listing memory l = mmc.getListing(1);
        assertEq(l.owner, address(0));
        assertFalse(l.active);
        assertTrue(mmc.purchaseOf(1, buyer) == MMC.Purchase.None);
    }
}
