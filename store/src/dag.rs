//! The shape of a stored file DAG, without reading its leaves: which blocks a root needs.

use rust_unixfs::file::adder::parse_file_branch;

use crate::cid::{Cid, DAG_PB};

/// The children a block links to, in order. Raw blocks and DAG-PB leaves have none. Only file
/// branches are followed: they are the only linking nodes a file import produces.
pub fn children(cid: &Cid, block: &[u8]) -> Vec<Cid> {
    if cid.codec() != DAG_PB {
        return Vec::new();
    }
    parse_file_branch(block)
        .map(|branch| branch.links.into_iter().map(|l| l.cid).collect())
        .unwrap_or_default()
}

/// Whether a block with this CID can have children (so must be read to walk the DAG).
pub fn may_link(cid: &Cid) -> bool {
    cid.codec() == DAG_PB
}
