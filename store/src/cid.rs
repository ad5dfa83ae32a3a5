//! CIDs: parsing with clear errors, the canonical text form, and checking a block against its CID.

use multihash_codetable::{Code, MultihashDigest};

use crate::error::{Result, StoreError};

pub use cid::{Cid, Version};

/// Multicodec of a raw block (file bytes with no wrapper).
pub const RAW: u64 = 0x55;
/// Multicodec of a DAG-PB node (UnixFS files and directories).
pub const DAG_PB: u64 = 0x70;
/// Multihash code of sha2-256, the only hash Kubo uses by default and the only one CIDv0 allows.
pub const SHA2_256: u64 = 0x12;

/// Parses a CID from its text form (CIDv0 `Qm…` or any multibase CIDv1), naming the input on error.
pub fn parse(text: &str) -> Result<Cid> {
    let trimmed = text.trim();
    let trimmed = trimmed.strip_prefix("/ipfs/").unwrap_or(trimmed);
    Cid::try_from(trimmed).map_err(|e| StoreError::InvalidCid {
        input: text.to_string(),
        reason: e.to_string(),
    })
}

/// The text form used everywhere in drlaas (chain, status, results): base58btc for CIDv0 and
/// base32 lower case for CIDv1, as Kubo prints them.
pub fn to_text(cid: &Cid) -> String {
    cid.to_string()
}

/// The hash function of `cid`, if this store can verify it.
fn hasher_of(cid: &Cid) -> Result<Code> {
    match cid.hash().code() {
        SHA2_256 => Ok(Code::Sha2_256),
        code => Err(StoreError::Unsupported {
            cid: to_text(cid),
            reason: format!("multihash code {code:#x} (only sha2-256, 0x12, is verified)"),
        }),
    }
}

/// Checks that `block` hashes to `cid`. The error names the CID and the hash the bytes really have.
pub fn verify_block(cid: &Cid, block: &[u8]) -> Result<()> {
    let actual = hasher_of(cid)?.digest(block);
    if actual.digest() == cid.hash().digest() {
        Ok(())
    } else {
        Err(StoreError::Integrity {
            cid: to_text(cid),
            actual: to_text(&Cid::new_v1(cid.codec(), actual)),
        })
    }
}

/// Checks that this store can read `cid` as a file: a supported hash, and a raw or DAG-PB root.
pub fn check_readable(cid: &Cid) -> Result<()> {
    hasher_of(cid)?;
    match cid.codec() {
        RAW | DAG_PB => Ok(()),
        codec => Err(StoreError::Unsupported {
            cid: to_text(cid),
            reason: format!("codec {codec:#x} is neither raw (0x55) nor dag-pb (0x70)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_versions_and_ipfs_paths() {
        let v0 = parse("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH").unwrap();
        assert_eq!(v0.version(), Version::V0);
        let v1 = parse("/ipfs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku").unwrap();
        assert_eq!(v1.codec(), RAW);
        assert_eq!(
            to_text(&v1),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn bad_text_names_the_input() {
        let err = parse("not-a-cid").unwrap_err().to_string();
        assert!(err.starts_with("invalid CID \"not-a-cid\""), "{err}");
    }

    #[test]
    fn a_flipped_bit_fails_verification() {
        let cid = Cid::new_v1(RAW, Code::Sha2_256.digest(b"0123456789"));
        verify_block(&cid, b"0123456789").unwrap();
        let err = verify_block(&cid, b"0123456788").unwrap_err();
        assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
    }
}
