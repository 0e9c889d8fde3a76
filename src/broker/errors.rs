//! The one place where internal errors become Kafka error codes.

use kafka_protocol::error::ResponseError;

use super::registry::RegistryError;
use crate::storage::config::ConfigError;
use crate::storage::StorageError;

pub const NONE: i16 = 0;

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
    }
}

pub fn registry_code(e: &RegistryError) -> i16 {
    match e {
        RegistryError::AlreadyExists(_) => code(ResponseError::TopicAlreadyExists),
        RegistryError::UnknownTopic(_) => code(ResponseError::UnknownTopicOrPartition),
        RegistryError::InvalidName { .. } => code(ResponseError::InvalidTopicException),
        RegistryError::InvalidPartitions(_) => code(ResponseError::InvalidPartitions),
        RegistryError::Config(ConfigError::UnknownKey(_))
        | RegistryError::Config(ConfigError::InvalidValue { .. }) => {
            code(ResponseError::InvalidConfig)
        }
        RegistryError::Storage(s) => storage_code(s),
        RegistryError::Io(_) | RegistryError::CorruptMeta { .. } => {
            code(ResponseError::KafkaStorageError)
        }
    }
}
