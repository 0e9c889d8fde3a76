//! The cluster: the metadata image and the Raft quorum that replicates it, broker
//! registration and heartbeats, and the inter-node transport. Decides what the
//! metadata says; `replication/` acts on a partition's part of it, `broker/` reads it.

pub mod image;
#[cfg(test)]
mod linearizability;
pub mod quorum;
pub mod raft_network;
pub mod raft_store;
pub mod transport;
