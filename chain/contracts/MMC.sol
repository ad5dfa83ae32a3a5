// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Consortium} from "./Consortium.sol";

/// @title MMC: the drlaas model market
/// @notice Owners list trained models (CID, environment kind and descriptor hash, price, parent model for
///         lineage). A purchase pays the owner, minus a royalty to the parent model's owner at the rate the
///         parent listing set, so knowledge transfer pays the model it came from. Buyers rate what they
///         bought; the ratings are the listing's own record and do not move the owner's reputation in
///         UMC (the price of a purchase goes back to the owner, so a rating costs its owner's friends
///         only gas). The market sells a licence and a lineage record, not secrecy: IPFS content is
///         public to whoever knows the CID.
contract MMC is Consortium {
    /// @notice Highest royalty a listing may ask of models derived from it (30 %).
    uint16 public constant MAX_ROYALTY_BPS = 3_000;

    /// @notice A listed model, packed into three slots plus the CID.
    struct Listing {
        // slot 0
        address owner;
        uint96 price;
        // slot 1
        uint64 parentId;
        uint16 royaltyBps;
        uint8 envKind;
        bool active;
        uint32 purchases;
        uint32 ratingSum;
        uint32 ratingCount;
        uint40 listedAt;
        // slot 2: keccak256 of the canonical environment descriptor JSON
        bytes32 envDescriptorHash;
        string modelCid;
    }

    /// @notice What a buyer has done with a listing.
    enum Purchase {
        None,
        Bought,
        BoughtFree,
        Rated
    }

    /// @notice Number of listings ever made; listing ids are 1..listingCount.
    uint256 public listingCount;

    mapping(uint256 listingId => Listing) internal _listings;
    /// @notice What `buyer` has done with listing `listingId`.
    mapping(uint256 listingId => mapping(address buyer => Purchase)) public purchaseOf;

    /// @notice `owner` listed a model.
    event ModelListed(
        uint256 indexed listingId,
        address indexed owner,
        uint256 indexed parentId,
        uint8 envKind,
        bytes32 envDescriptorHash,
        uint256 price,
        uint16 royaltyBps,
        string modelCid
    );
    /// @notice The owner took the listing off the market.
    event ModelDelisted(uint256 indexed listingId);
    /// @notice The owner changed the price.
    event PriceChanged(uint256 indexed listingId, uint256 price);
    /// @notice `buyer` bought the model; `royalty` of `price` went to `parentOwner`.
    event ModelPurchased(
        uint256 indexed listingId,
        address indexed buyer,
        address indexed owner,
        uint256 price,
        uint256 royalty,
        address parentOwner
    );
    /// @notice `buyer` rated the model `stars` (1-5).
    event ModelRated(uint256 indexed listingId, address indexed buyer, uint8 stars);

    /// @notice No listing has id `listingId`.
    error ListingNotFound(uint256 listingId);
    /// @notice The listing is delisted.
    error ListingInactive(uint256 listingId);
    /// @notice The caller does not own the listing.
    error NotListingOwner(uint256 listingId, address caller);
    /// @notice `sent` wei does not equal the price `price`.
    error WrongPayment(uint256 sent, uint256 price);
    /// @notice An owner cannot buy their own model.
    error SelfPurchase(uint256 listingId);
    /// @notice The buyer already bought this model.
    error AlreadyPurchased(uint256 listingId, address buyer);
    /// @notice Only buyers can rate, once each.
    error NotPurchased(uint256 listingId, address caller);
    /// @notice The buyer already rated this model.
    error AlreadyRated(uint256 listingId, address buyer);
    /// @notice Stars must be 1 to 5.
    error InvalidRating(uint8 stars);
    /// @notice The model CID was empty.
    error EmptyCid();

    /// @param admin_ The consortium account.
    /// @param governanceDelay_ Seconds between scheduling a change and executing it.
    constructor(address admin_, uint40 governanceDelay_) Consortium(admin_, governanceDelay_) {}

    /// @notice List a model for sale.
    /// @param modelCid IPFS CID of the model artifact.
    /// @param envKind Environment kind the model was trained on (same numbering as UMC expertise bytes).
    /// @param envDescriptorHash keccak256 of the canonical environment descriptor JSON.
    /// @param price Wei per purchase (0 for free models).
    /// @param parentId Listing the model was warm-started from (0 for none); it receives its royalty.
    /// @param royaltyBps Share of the price of models derived from this one paid to this owner (≤ 30 %).
    /// @return listingId The new listing's id.
    function list(
        string calldata modelCid,
        uint8 envKind,
        bytes32 envDescriptorHash,
        uint96 price,
        uint64 parentId,
        uint16 royaltyBps
    ) external returns (uint256 listingId) {
        if (bytes(modelCid).length == 0) revert EmptyCid();
        if (royaltyBps > MAX_ROYALTY_BPS) revert ValueOutOfRange("royaltyBps", royaltyBps, MAX_ROYALTY_BPS);
        if (parentId != 0) _listing(parentId);
        listingId = ++listingCount;
        Listing storage l = _listings[listingId];
        l.owner = msg.sender;
        l.price = price;
        l.parentId = parentId;
        l.royaltyBps = royaltyBps;
        l.envKind = envKind;
        l.active = true;
        l.listedAt = uint40(block.timestamp);
        l.envDescriptorHash = envDescriptorHash;
        l.modelCid = modelCid;
        emit ModelListed(listingId, msg.sender, parentId, envKind, envDescriptorHash, price, royaltyBps, modelCid);
    }

    /// @notice Take a listing off the market (purchases made stay valid and ratable).
    /// @param listingId The listing.
    function delist(uint256 listingId) external {
        Listing storage l = _owned(listingId);
        if (!l.active) revert ListingInactive(listingId);
        l.active = false;
        emit ModelDelisted(listingId);
    }

    /// @notice Change a listing's price.
    /// @param listingId The listing.
    /// @param price New price in wei.
    function setPrice(uint256 listingId, uint96 price) external {
        Listing storage l = _owned(listingId);
        l.price = price;
        emit PriceChanged(listingId, price);
    }

    /// @notice Buy a model: `msg.value` must equal its price. The owner is credited the price minus the
    ///         parent listing's royalty, which goes to the parent's owner.
    /// @param listingId The listing.
    function purchase(uint256 listingId) external payable {
        Listing storage l = _listing(listingId);
        if (!l.active) revert ListingInactive(listingId);
        if (msg.value != l.price) revert WrongPayment(msg.value, l.price);
        address owner = l.owner;
        if (msg.sender == owner) revert SelfPurchase(listingId);
        if (purchaseOf[listingId][msg.sender] != Purchase.None) revert AlreadyPurchased(listingId, msg.sender);
        purchaseOf[listingId][msg.sender] = msg.value == 0 ? Purchase.BoughtFree : Purchase.Bought;
        l.purchases += 1;
        uint256 royalty;
        address parentOwner;
        if (l.parentId != 0) {
            Listing storage parent = _listings[l.parentId];
            parentOwner = parent.owner;
            royalty = msg.value * parent.royaltyBps / 10_000;
        }
        emit ModelPurchased(listingId, msg.sender, owner, msg.value, royalty, parentOwner);
        _credit(owner, msg.value - royalty);
        if (royalty != 0) _credit(parentOwner, royalty);
    }

    /// @notice Rate a model you bought, once: 1 to 5 stars. The rating counts in the listing's record
    ///         (`ratingSum`, `ratingCount`); it does not move the owner's reputation.
    /// @param listingId The listing.
    /// @param stars 1 to 5.
    function rate(uint256 listingId, uint8 stars) external {
        Listing storage l = _listing(listingId);
        if (stars < 1 || stars > 5) revert InvalidRating(stars);
        Purchase p = purchaseOf[listingId][msg.sender];
        if (p == Purchase.None) revert NotPurchased(listingId, msg.sender);
        if (p == Purchase.Rated) revert AlreadyRated(listingId, msg.sender);
        purchaseOf[listingId][msg.sender] = Purchase.Rated;
        l.ratingSum += stars;
        l.ratingCount += 1;
        emit ModelRated(listingId, msg.sender, stars);
    }

    /// @notice The listing `listingId` (all zero when it does not exist).
    function getListing(uint256 listingId) external view returns (Listing memory) {
        return _listings[listingId];
    }

    function _listing(uint256 listingId) internal view returns (Listing storage l) {
        l = _listings[listingId];
        if (l.owner == address(0)) revert ListingNotFound(listingId);
    }

    function _owned(uint256 listingId) internal view returns (Listing storage l) {
        l = _listing(listingId);
        if (msg.sender != l.owner) revert NotListingOwner(listingId, msg.sender);
    }
}
