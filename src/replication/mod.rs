//! Partition replicas: what this node holds of each partition and what the cluster
//! metadata says about it (leader, epoch, ISR, high watermark). Stands on `storage`
//! (the logs), `cluster` (the metadata) and `protocol` (to reach other nodes' leaders).

pub mod connection;
pub mod fetcher;
pub mod forward;
pub mod isr;
pub mod progress;
pub mod replica;
