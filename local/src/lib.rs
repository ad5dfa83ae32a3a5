//! A Kubernetes cluster on one machine, for the local mode and the fast tests: an in-memory API
//! server that admits objects as a real one does ([`api_server`], [`admission`]), a kubelet that
//! runs the operator's pods as trainer processes ([`kubelet`], [`local_pod`]), simulated workers
//! ([`workers`]), a dev chain kept in a data directory ([`chain`]) and the network file that tells
//! the people's CLI where it all is ([`network`]).
//!
//! Nothing here knows the operator: `drlaas local run` (the CLI crate) runs the operator's runtime
//! against these parts.

pub mod admission;
pub mod api_server;
pub mod chain;
pub mod curve;
pub mod kubelet;
pub mod local_pod;
pub mod network;
pub mod workers;
