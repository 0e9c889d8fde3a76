//! Per-topic log settings under Kafka's names (`segment.bytes`, `retention.ms`, …),
//! parsed and validated from string maps so CreateTopics, DescribeConfigs, the CLI and
//! the persisted topic metadata all speak the same vocabulary. Every topic config Kafka
//! 3.x documents is accepted (`TOPIC_CONFIGS`); each says whether logbridge acts on it.
//!
//! Invariant: a `LogConfig` only ever holds values that passed validation; unknown
//! keys are refused by name.

use std::collections::BTreeMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown topic config '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for topic config '{key}': {why}")]
    InvalidValue {
        key: String,
        value: String,
        why: &'static str,
    },
}

/// How a config's value is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A long at or above `min`.
    Long {
        min: i64,
    },
    /// An int in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A double in 0..=1.
    Ratio,
    Bool,
    OneOf(&'static [&'static str]),
    /// `*`, or comma-separated `partition:broker` pairs (replication throttles).
    ReplicaList,
    /// A message format version such as `3.0-IV1` (deprecated; read, not used).
    Version,
    /// Kafka's list of `delete` and `compact` (`compact, delete` as well).
    Policy,
    /// -1 (zlib's default) or 1–9.
    GzipLevel,
}

/// Whether logbridge acts on a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Applied,
    /// Accepted, validated, stored and described, but nothing here acts on it; the
    /// reason is what the README says.
    NoEffect(&'static str),
}

/// One topic config as Kafka 3.x documents it: name, default, check, and whether it
/// does anything here.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSpec {
    pub name: &'static str,
    pub default: &'static str,
    kind: Kind,
    pub effect: Effect,
}

const fn spec(name: &'static str, default: &'static str, kind: Kind, effect: Effect) -> ConfigSpec {
    ConfigSpec {
        name,
        default,
        kind,
        effect,
    }
}

const APPLIED: Effect = Effect::Applied;
const NO_CLUSTER: Effect =
    Effect::NoEffect("replication is not throttled: followers fetch as fast as they can");
const NO_TIERED: Effect = Effect::NoEffect("there is no tiered storage");
const LONG0: Kind = Kind::Long { min: 0 };
/// Kafka's INT configs: 0 to `i32::MAX`.
const INT0: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};

/// Every topic config Kafka 3.x documents, with Kafka's defaults.
pub const TOPIC_CONFIGS: &[ConfigSpec] = &[
    spec("cleanup.policy", "delete", Kind::Policy, APPLIED),
    spec("compression.gzip.level", "-1", Kind::GzipLevel, APPLIED),
    spec(
        "compression.lz4.level",
        "9",
        Kind::Int { min: 1, max: 17 },
        APPLIED,
    ),
    spec(
        "compression.type",
        "producer",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        APPLIED,
    ),
    spec(
        "compression.zstd.level",
        "3",
        Kind::Int {
            min: -131072,
            max: 22,
        },
        APPLIED,
    ),
    spec("delete.retention.ms", "86400000", LONG0, APPLIED),
    spec(
        "file.delete.delay.ms",
        "60000",
        LONG0,
        Effect::NoEffect("segments are deleted at once, so that space comes back on a full disk"),
    ),
    spec(
        "flush.messages",
        "9223372036854775807",
        Kind::Long { min: 1 },
        APPLIED,
    ),
    spec("flush.ms", "9223372036854775807", LONG0, APPLIED),
    spec(
        "follower.replication.throttled.replicas",
        "",
        Kind::ReplicaList,
        NO_CLUSTER,
    ),
    spec("index.interval.bytes", "4096", INT0, APPLIED),
    spec(
        "leader.replication.throttled.replicas",
        "",
        Kind::ReplicaList,
        NO_CLUSTER,
    ),
    spec(
        "local.retention.bytes",
        "-2",
        Kind::Long { min: -2 },
        NO_TIERED,
    ),
    spec(
        "local.retention.ms",
        "-2",
        Kind::Long { min: -2 },
        NO_TIERED,
    ),
    spec(
        "max.compaction.lag.ms",
        "9223372036854775807",
        Kind::Long { min: 1 },
        APPLIED,
    ),
    spec("max.message.bytes", "1048588", INT0, APPLIED),
    spec("message.downconversion.enable", "true", Kind::Bool, APPLIED),
    spec(
        "message.format.version",
        "3.0-IV1",
        Kind::Version,
        Effect::NoEffect("deprecated in Kafka 3.x; batches are always stored as v2"),
    ),
    spec(
        "message.timestamp.after.max.ms",
        "9223372036854775807",
        LONG0,
        APPLIED,
    ),
    spec(
        "message.timestamp.before.max.ms",
        "9223372036854775807",
        LONG0,
        APPLIED,
    ),
    spec(
        "message.timestamp.difference.max.ms",
        "9223372036854775807",
        LONG0,
        APPLIED,
    ),
    spec(
        "message.timestamp.type",
        "CreateTime",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        APPLIED,
    ),
    spec("min.cleanable.dirty.ratio", "0.5", Kind::Ratio, APPLIED),
    spec("min.compaction.lag.ms", "0", LONG0, APPLIED),
    spec(
        "min.insync.replicas",
        "1",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        APPLIED,
    ),
    spec(
        "preallocate",
        "false",
        Kind::Bool,
        Effect::NoEffect("index files are allocated as they grow; log files are not preallocated"),
    ),
    spec("remote.log.copy.disable", "false", Kind::Bool, NO_TIERED),
    spec(
        "remote.log.delete.on.disable",
        "false",
        Kind::Bool,
        NO_TIERED,
    ),
    spec("remote.storage.enable", "false", Kind::Bool, NO_TIERED),
    spec("retention.bytes", "-1", Kind::Long { min: -1 }, APPLIED),
    spec("retention.ms", "604800000", Kind::Long { min: -1 }, APPLIED),
    spec(
        "segment.bytes",
        "1073741824",
        Kind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
        APPLIED,
    ),
    spec(
        "segment.index.bytes",
        "10485760",
        Kind::Int {
            min: 4,
            max: i32::MAX as i64,
        },
        APPLIED,
    ),
    spec("segment.jitter.ms", "0", LONG0, APPLIED),
    spec("segment.ms", "604800000", Kind::Long { min: 1 }, APPLIED),
    spec(
        "unclean.leader.election.enable",
        "false",
        Kind::Bool,
        Effect::NoEffect(
            "leaders are only ever elected from the ISR: unclean election is not offered",
        ),
    ),
];

/// The spec of a topic config, by name.
pub fn spec_of(name: &str) -> Option<&'static ConfigSpec> {
    TOPIC_CONFIGS.iter().find(|s| s.name == name)
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// Kafka's `segment.jitter.ms`: up to this much is taken off `segment.ms`, per
    /// segment, so that partitions created together do not all roll at once.
    pub segment_jitter_ms: i64,
    pub segment_index_bytes: usize,
    pub index_interval_bytes: u64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: usize,
    pub compression_type: String,
    /// Levels for the batches the appliance compresses itself (`compression.*.level`).
    pub gzip_level: i32,
    pub lz4_level: i32,
    pub zstd_level: i32,
    pub cleanup_policy: String,
    /// How long tombstones survive compaction (Kafka's `delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// The log cleaner's triggers: the share of dirty bytes that starts a compaction,
    /// how long a record is left alone after it is written, and how long it may stay
    /// uncompacted at most (`min.cleanable.dirty.ratio`, `min/max.compaction.lag.ms`).
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub message_timestamp_type: String,
    /// How far a CreateTime record's timestamp may lie behind or ahead of the broker's
    /// clock: `message.timestamp.before.max.ms` / `after.max.ms`, each falling back to
    /// the deprecated `message.timestamp.difference.max.ms` when only that is set.
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    /// Kafka's `message.downconversion.enable`: whether Fetch v0–v3 may read this topic.
    pub message_downconversion_enable: bool,
    /// Kafka's `min.insync.replicas`: `acks=all` needs an ISR this large, and the high
    /// watermark does not move while the ISR is smaller.
    pub min_insync_replicas: usize,
    /// The explicitly set keys (what DescribeConfigs reports as topic-level overrides).
    pub overrides: BTreeMap<String, String>,
    /// The effective value of every key, as DescribeConfigs reports it.
    values: BTreeMap<&'static str, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::from_map(&BTreeMap::new(), &BTreeMap::new()).expect("defaults are valid")
    }
}

fn invalid(key: &str, v: &str, why: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: v.into(),
        why,
    }
}

/// Checks `v` against `spec` and returns it as Kafka would describe it.
fn check(spec: &ConfigSpec, v: &str) -> Result<String, ConfigError> {
    let key = spec.name;
    let v = v.trim();
    match spec.kind {
        Kind::Long { min } | Kind::Int { min, .. } => {
            let n: i64 = v.parse().map_err(|_| invalid(key, v, "not an integer"))?;
            if n < min {
                return Err(invalid(key, v, "below the minimum"));
            }
            if let Kind::Int { max, .. } = spec.kind {
                if n > max {
                    return Err(invalid(key, v, "above the maximum"));
                }
            }
            Ok(n.to_string())
        }
        Kind::Ratio => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(v.to_string()),
            Ok(_) => Err(invalid(key, v, "not between 0 and 1")),
            Err(_) => Err(invalid(key, v, "not a number")),
        },
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            b @ ("true" | "false") => Ok(b.to_string()),
            _ => Err(invalid(key, v, "not true or false")),
        },
        Kind::Policy => {
            let mut parts: Vec<&str> = Vec::new();
            for p in v.split(',').map(str::trim) {
                if !["delete", "compact"].contains(&p) {
                    return Err(invalid(key, v, "not a list of delete and compact"));
                }
                if !parts.contains(&p) {
                    parts.push(p);
                }
            }
            Ok(parts.join(","))
        }
        Kind::GzipLevel => match v.parse::<i64>() {
            Ok(n) if n == -1 || (1..=9).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid(key, v, "not -1 or between 1 and 9")),
        },
        Kind::OneOf(allowed) if allowed.contains(&v) => Ok(v.to_string()),
        Kind::OneOf(_) => Err(invalid(key, v, "not an allowed value")),
        Kind::ReplicaList => {
            let ok = v.is_empty()
                || v == "*"
                || v.split(',').all(|pair| {
                    pair.trim()
                        .split_once(':')
                        .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
                });
            if ok {
                Ok(v.to_string())
            } else {
                Err(invalid(
                    key,
                    v,
                    "not '*' or a list of partition:broker pairs",
                ))
            }
        }
        Kind::Version => {
            let (numbers, iv) = v.split_once("-IV").unwrap_or((v, "0"));
            let ok = iv.parse::<u32>().is_ok()
                && !numbers.is_empty()
                && numbers.split('.').all(|n| n.parse::<u32>().is_ok());
            if ok {
                Ok(v.to_string())
            } else {
                Err(invalid(key, v, "not a message format version"))
            }
        }
    }
}

impl LogConfig {
    /// Builds a config from broker-level defaults overlaid with topic overrides.
    pub fn from_map(
        broker_defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        for k in overrides.keys().chain(broker_defaults.keys()) {
            if spec_of(k).is_none() {
                return Err(ConfigError::UnknownKey(k.clone()));
            }
        }
        let mut values = BTreeMap::new();
        for spec in TOPIC_CONFIGS {
            let raw = overrides
                .get(spec.name)
                .or_else(|| broker_defaults.get(spec.name))
                .map(String::as_str)
                .unwrap_or(spec.default);
            values.insert(spec.name, check(spec, raw)?);
        }
        let set = |k: &str| overrides.contains_key(k) || broker_defaults.contains_key(k);
        let text = |k: &str| values[k].clone();
        let long = |k: &str| values[k].parse::<i64>().expect("checked");
        let flag = |k: &str| values[k] == "true";
        if flag("remote.storage.enable") {
            return Err(invalid(
                "remote.storage.enable",
                "true",
                "tiered storage is not available on this broker",
            ));
        }
        // KIP-937: the deprecated difference bound stands in for either side that is
        // not set explicitly.
        let bound = |side: &str| {
            if !set(side) && set("message.timestamp.difference.max.ms") {
                long("message.timestamp.difference.max.ms")
            } else {
                long(side)
            }
        };
        Ok(LogConfig {
            segment_bytes: long("segment.bytes") as u64,
            segment_ms: long("segment.ms"),
            segment_jitter_ms: long("segment.jitter.ms"),
            segment_index_bytes: long("segment.index.bytes").min(i32::MAX as i64) as usize,
            index_interval_bytes: long("index.interval.bytes") as u64,
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            max_message_bytes: long("max.message.bytes").min(i32::MAX as i64) as usize,
            compression_type: text("compression.type"),
            gzip_level: long("compression.gzip.level") as i32,
            lz4_level: long("compression.lz4.level") as i32,
            zstd_level: long("compression.zstd.level") as i32,
            cleanup_policy: text("cleanup.policy"),
            delete_retention_ms: long("delete.retention.ms"),
            min_cleanable_dirty_ratio: values["min.cleanable.dirty.ratio"]
                .parse()
                .expect("checked"),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            message_timestamp_type: text("message.timestamp.type"),
            message_timestamp_before_max_ms: bound("message.timestamp.before.max.ms"),
            message_timestamp_after_max_ms: bound("message.timestamp.after.max.ms"),
            message_downconversion_enable: flag("message.downconversion.enable"),
            min_insync_replicas: long("min.insync.replicas").max(1) as usize,
            overrides: overrides.clone(),
            values,
        })
    }

    /// What a client batch is validated against (`validate.rs`); `max_uncompressed` is
    /// the broker-wide `max_uncompressed_batch_bytes`.
    pub fn validation_rules(&self, max_uncompressed: usize) -> super::validate::Rules {
        super::validate::Rules {
            max_message_bytes: self.max_message_bytes,
            max_uncompressed,
            compacted: self.compacts(),
            log_append_time: self.message_timestamp_type == "LogAppendTime",
            timestamp_before_max_ms: self.message_timestamp_before_max_ms,
            timestamp_after_max_ms: self.message_timestamp_after_max_ms,
        }
    }

    /// Whether the log is compacted (`compact` or `compact,delete`).
    pub fn compacts(&self) -> bool {
        self.cleanup_policy.contains("compact")
    }

    /// Whether whole segments are deleted by time and size (`delete` or `compact,delete`).
    pub fn deletes(&self) -> bool {
        self.cleanup_policy.contains("delete")
    }

    /// The effective value of every known key, for DescribeConfigs: (name, value,
    /// whether it is a topic-level override).
    pub fn describe(&self) -> Vec<(String, String, bool)> {
        self.values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone(), self.overrides.contains_key(*k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kafka() {
        let c = LogConfig::default();
        assert_eq!(c.retention_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.max_message_bytes, 1048588);
    }

    #[test]
    fn overrides_win_and_unknown_keys_are_refused() {
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "1000".to_string());
        let c = LogConfig::from_map(&BTreeMap::new(), &o).unwrap();
        assert_eq!(c.retention_ms, 1000);
        assert!(c
            .describe()
            .iter()
            .any(|(k, v, ov)| k == "retention.ms" && v == "1000" && *ov));
        o.insert("retention.mss".to_string(), "1".to_string());
        assert_eq!(
            LogConfig::from_map(&BTreeMap::new(), &o),
            Err(ConfigError::UnknownKey("retention.mss".into()))
        );
        let mut bad = BTreeMap::new();
        bad.insert("segment.bytes".to_string(), "abc".to_string());
        assert!(matches!(
            LogConfig::from_map(&BTreeMap::new(), &bad),
            Err(ConfigError::InvalidValue { .. })
        ));
        let mut compact = BTreeMap::new();
        compact.insert("cleanup.policy".to_string(), "compact".to_string());
        assert!(LogConfig::from_map(&BTreeMap::new(), &compact)
            .unwrap()
            .compacts());
        compact.insert("cleanup.policy".to_string(), "shred".to_string());
        assert!(LogConfig::from_map(&BTreeMap::new(), &compact).is_err());
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn every_kafka_topic_config_is_accepted_and_described() {
        let mut o = BTreeMap::new();
        for (k, v) in [
            ("file.delete.delay.ms", "1000"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("max.compaction.lag.ms", "60000"),
            ("min.compaction.lag.ms", "1000"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "true"),
            ("preallocate", "true"),
            ("segment.jitter.ms", "100"),
            ("message.timestamp.difference.max.ms", "3600000"),
            ("message.downconversion.enable", "false"),
            ("follower.replication.throttled.replicas", "0:1,1:2"),
            ("leader.replication.throttled.replicas", "*"),
            ("message.format.version", "2.8-IV1"),
            ("compression.zstd.level", "9"),
            ("cleanup.policy", "compact, delete"),
        ] {
            o.insert(k.to_string(), v.to_string());
        }
        let c = LogConfig::from_map(&BTreeMap::new(), &o).unwrap();
        assert_eq!(c.min_cleanable_dirty_ratio, 0.25);
        assert_eq!(
            (
                c.message_timestamp_before_max_ms,
                c.message_timestamp_after_max_ms
            ),
            (3_600_000, 3_600_000)
        );
        assert!(!c.message_downconversion_enable);
        assert!(
            c.compacts() && c.deletes(),
            "Kafka's list syntax, spaces and all"
        );
        let described = c.describe();
        assert_eq!(described.len(), TOPIC_CONFIGS.len());
        assert!(described
            .iter()
            .any(|(k, v, ov)| k == "min.insync.replicas" && v == "2" && *ov));
        // An explicit side wins over the deprecated difference.
        o.insert("message.timestamp.after.max.ms".into(), "5".into());
        let c = LogConfig::from_map(&BTreeMap::new(), &o).unwrap();
        assert_eq!(
            (
                c.message_timestamp_before_max_ms,
                c.message_timestamp_after_max_ms
            ),
            (3_600_000, 5)
        );
        for (k, v) in [
            ("min.cleanable.dirty.ratio", "1.5"),
            ("preallocate", "maybe"),
            ("min.insync.replicas", "0"),
            ("follower.replication.throttled.replicas", "x"),
            ("remote.storage.enable", "true"),
            ("compression.gzip.level", "10"),
            ("compression.gzip.level", "0"),
            ("cleanup.policy", "compact,shred"),
            ("segment.bytes", "4294967296"),
        ] {
            let mut bad = BTreeMap::new();
            bad.insert(k.to_string(), v.to_string());
            assert!(
                LogConfig::from_map(&BTreeMap::new(), &bad).is_err(),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn the_readme_names_every_config_accepted_without_effect() {
        let readme = include_str!("../../README.md");
        for spec in TOPIC_CONFIGS.iter().filter(|s| s.effect != Effect::Applied) {
            assert!(
                readme.contains(&format!("`{}`", spec.name)),
                "README must list {}",
                spec.name
            );
        }
    }
}
