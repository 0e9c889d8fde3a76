//! The one place where internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError;

use super::registry::RegistryError;
use crate::replication::replica::ReplicaError;
use crate::storage::config::ConfigError;
use crate::storage::validate::ValidationError;
use crate::storage::StorageError;

pub const NONE: i16 = 0;

/// KIP-919's error for a request sent to an endpoint of the other type (broker vs
/// controller); the vendored codec's error table predates it.
pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

pub fn storage_code(e: &StorageError) -> i16 {
    match e {
        StorageError::Io(_) => code(ResponseError::KafkaStorageError),
        StorageError::OffsetOutOfRange { .. } => code(ResponseError::OffsetOutOfRange),
        StorageError::EmptyAppend => code(ResponseError::CorruptMessage),
        StorageError::ProducerFenced => code(ResponseError::InvalidProducerEpoch),
        StorageError::OutOfOrderSequence { .. } => code(ResponseError::OutOfOrderSequenceNumber),
        StorageError::DuplicateInMultiBatch => code(ResponseError::InvalidRecord),
        StorageError::InvalidBatch(_) => code(ResponseError::CorruptMessage),
        StorageError::Deleted => code(ResponseError::UnknownTopicOrPartition),
        StorageError::NotContiguous { .. } => code(ResponseError::OffsetOutOfRange),
    }
}

/// A partition this node holds no replica of: NOT_LEADER_OR_FOLLOWER when the topic
/// has it (another node does: the client refreshes its metadata), else
/// UNKNOWN_TOPIC_OR_PARTITION.
pub fn absent_partition_code(topic: Option<&super::registry::Topic>, index: i32) -> i16 {
    if topic.is_some_and(|t| (0..t.partition_count()).contains(&index)) {
        code(ResponseError::NotLeaderOrFollower)
    } else {
        code(ResponseError::UnknownTopicOrPartition)
    }
}

pub fn replica_code(e: &ReplicaError) -> i16 {
    match e {
        ReplicaError::NotLeader { .. } => code(ResponseError::NotLeaderOrFollower),
        ReplicaError::FencedLeaderEpoch { .. } => code(ResponseError::FencedLeaderEpoch),
        ReplicaError::UnknownLeaderEpoch { .. } => code(ResponseError::UnknownLeaderEpoch),
        ReplicaError::NotEnoughReplicas { .. } => code(ResponseError::NotEnoughReplicas),
        ReplicaError::NotEnoughReplicasAfterAppend { .. } => {
            code(ResponseError::NotEnoughReplicasAfterAppend)
        }
        ReplicaError::ReplicationTimeout(_) => code(ResponseError::RequestTimedOut),
        ReplicaError::StaleLeader { .. } => code(ResponseError::NotLeaderOrFollower),
        ReplicaError::Storage(s) => storage_code(s),
    }
}

pub fn admin_code(e: &super::topic_admin::AdminError) -> i16 {
    use super::topic_admin::AdminError;
    match e {
        AdminError::Registry(r) => registry_code(r),
        AdminError::ReplicationFactor(_) => code(ResponseError::InvalidReplicationFactor),
        AdminError::Assignment(_) => code(ResponseError::InvalidReplicaAssignment),
        // Retriable: the client tries again once a quorum is back.
        AdminError::Quorum(_) => code(ResponseError::RequestTimedOut),
    }
}

pub fn registry_code(e: &RegistryError) -> i16 {
    match e {
        RegistryError::AlreadyExists(_) => code(ResponseError::TopicAlreadyExists),
        RegistryError::UnknownTopic(_) => code(ResponseError::UnknownTopicOrPartition),
        RegistryError::InvalidName { .. } => code(ResponseError::InvalidTopicException),
        RegistryError::InvalidPartitions(_) => code(ResponseError::InvalidPartitions),
        RegistryError::Internal(_) => code(ResponseError::InvalidTopicException),
        RegistryError::Config(ConfigError::UnknownKey(_))
        | RegistryError::Config(ConfigError::InvalidValue { .. }) => {
            code(ResponseError::InvalidConfig)
        }
        RegistryError::Storage(s) => storage_code(s),
        RegistryError::Io(_) | RegistryError::CorruptMeta { .. } | RegistryError::OtherMode(_) => {
            code(ResponseError::KafkaStorageError)
        }
    }
}

pub fn validation_code(e: &ValidationError) -> i16 {
    match e {
        ValidationError::Corrupt(crate::storage::batch::BatchError::UnsupportedMagic(_)) => {
            code(ResponseError::UnsupportedForMessageFormat)
        }
        ValidationError::Corrupt(_) => code(ResponseError::CorruptMessage),
        ValidationError::InvalidRecord(_) => code(ResponseError::InvalidRecord),
        ValidationError::TooLarge(_) => code(ResponseError::MessageTooLarge),
        ValidationError::Records(r) if r.timestamp => code(ResponseError::InvalidTimestamp),
        ValidationError::Records(_) => code(ResponseError::InvalidRecord),
    }
}

/// A failed write to `__consumer_offsets`, as Kafka's group coordinator reports it:
/// a storage failure is NOT_COORDINATOR (the client finds the coordinator again and
/// retries), a commit too large to be one batch INVALID_COMMIT_OFFSET_SIZE, an
/// encoding failure UNKNOWN_SERVER_ERROR.
pub fn offsets_write_code(e: &crate::group::offsets::OffsetsError) -> i16 {
    use crate::group::offsets::OffsetsError;
    match e {
        OffsetsError::Storage(_) | OffsetsError::Replica(_) | OffsetsError::NoPartition(_) => {
            code(ResponseError::NotCoordinator)
        }
        OffsetsError::Encode(_) => code(ResponseError::UnknownServerError),
        OffsetsError::TooLarge { .. } => code(ResponseError::InvalidCommitOffsetSize),
    }
}

/// A commit appended to `__consumer_offsets` but not replicated in time, as Kafka's
/// coordinator maps it: leadership lost is NOT_COORDINATOR (the client finds the new
/// coordinator), too few in-sync replicas or a timeout COORDINATOR_NOT_AVAILABLE (it
/// retries).
pub fn offsets_replication_code(e: &ReplicaError) -> i16 {
    match e {
        ReplicaError::NotLeader { .. }
        | ReplicaError::FencedLeaderEpoch { .. }
        | ReplicaError::UnknownLeaderEpoch { .. }
        | ReplicaError::StaleLeader { .. }
        | ReplicaError::Storage(_) => code(ResponseError::NotCoordinator),
        ReplicaError::NotEnoughReplicas { .. }
        | ReplicaError::NotEnoughReplicasAfterAppend { .. }
        | ReplicaError::ReplicationTimeout(_) => code(ResponseError::CoordinatorNotAvailable),
    }
}

/// An old-format message set that could not be up-converted.
pub fn legacy_code(e: &super::legacy::LegacyError) -> i16 {
    use super::legacy::LegacyError;
    use crate::protocol::compression::DecompressError;
    use crate::protocol::message_set::MessageSetError;
    match e {
        LegacyError::MessageSet(MessageSetError::Invalid(_)) => code(ResponseError::InvalidRecord),
        LegacyError::MessageSet(MessageSetError::InvalidTimestamp(_)) => {
            code(ResponseError::InvalidTimestamp)
        }
        LegacyError::MessageSet(MessageSetError::UnsupportedCompression(_)) => {
            code(ResponseError::UnsupportedCompressionType)
        }
        LegacyError::MessageSet(MessageSetError::Decompress(DecompressError::TooLarge {
            ..
        })) => code(ResponseError::MessageTooLarge),
        LegacyError::MessageSet(_) | LegacyError::Malformed(_) => {
            code(ResponseError::CorruptMessage)
        }
    }
}
