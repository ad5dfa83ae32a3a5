//! The local mode: the whole marketplace on one machine. The same operator runtime that runs in a
//! cluster runs here, against an embedded API server kept in a data directory, with a local
//! kubelet that runs pods as processes of the trainer binary, a dev chain and a local content
//! store. Only the executor and the defaults differ from a cluster.

pub mod network;
