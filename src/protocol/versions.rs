//! The API versions logbridge implements and advertises in ApiVersions — exactly these,
//! no more. Ranges start at v0 wherever Kafka ever defined v0: Filebeat's Sarama
//! (Produce v5, Fetch v6, Metadata v5), kafka-python with an old `api_version`, and
//! librdkafka (which only compresses when Produce v0 is listed) all depend on it.
//! Upper ends are the newest versions the vendored codec knows (Kafka 3.9's schemas),
//! plus the Kafka 4.x versions whose wire format is identical to one the codec knows
//! (`ALIASES`); clients negotiate down to them.

use kafka_protocol::messages::ApiKey;

/// (api, min version, max version) for every API a client may use.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 0, 18),
    (ApiKey::ListOffsets, 0, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

/// (api, wire version, codec version): Kafka 4.x versions the codec does not know,
/// handled as an older version it does. Produce v12 only signals transaction-v2
/// support (same schema as v11); Fetch v18 adds one tagged request field (kept as an
/// unknown tagged field). ListOffsets v10 adds `TimeoutMs` at the end of the request
/// and Metadata v13 a top-level `ErrorCode` at the end of the response: `codec.rs`
/// converts those two at the byte level.
pub const ALIASES: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 12, 11),
    (ApiKey::Fetch, 18, 17),
    (ApiKey::ListOffsets, 10, 9),
    (ApiKey::Metadata, 13, 12),
];

/// The version to decode and encode a message of `api` at, given its wire version.
pub fn codec_version(api: ApiKey, version: i16) -> i16 {
    ALIASES
        .iter()
        .find(|(k, v, _)| *k == api && *v == version)
        .map(|(_, _, c)| *c)
        .unwrap_or(version)
}

/// The advertised range of `api`, if it is implemented.
pub fn supported_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|(_, lo, hi)| (*lo, *hi))
}

/// Whether a request of `api` at `version` may be decoded and handled.
pub fn is_handled(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|(k, lo, hi)| *k == api && (*lo..=*hi).contains(&version))
}
