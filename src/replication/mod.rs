//! Partition replicas: what this node holds of each partition and what the cluster
//! metadata says about it (leader, epoch, ISR, high watermark). Stands on `storage`
//! (the logs) and `cluster` (the metadata); knows nothing of sockets or requests.

pub mod replica;
