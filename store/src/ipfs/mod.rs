//! IPFS: the Kubo RPC client and the content store built on it.

pub mod client;
pub mod endpoint;
pub mod store;

pub use client::{IpfsConfig, KuboClient, NodeInfo};
pub use endpoint::parse_api_address;
pub use store::IpfsStore;
