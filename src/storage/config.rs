//! Per-topic log settings under Kafka's names (`segment.bytes`, `retention.ms`, …),
//! parsed and validated from string maps so CreateTopics, DescribeConfigs, the CLI and
//! the persisted topic metadata all speak the same vocabulary.
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

/// Every topic config we understand, with Kafka's default as a string.
pub const TOPIC_CONFIG_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("index.interval.bytes", "4096"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.after.max.ms", "9223372036854775807"),
    ("message.timestamp.before.max.ms", "9223372036854775807"),
    ("message.timestamp.type", "CreateTime"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.ms", "604800000"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: usize,
    pub index_interval_bytes: u64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: usize,
    pub compression_type: String,
    pub cleanup_policy: String,
    /// How long tombstones survive compaction (Kafka's `delete.retention.ms`).
    pub delete_retention_ms: i64,
    pub message_timestamp_type: String,
    /// Kafka's `message.timestamp.before.max.ms` / `after.max.ms`: how far a CreateTime
    /// record's timestamp may lie behind or ahead of the broker's clock.
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    /// The explicitly set keys (what DescribeConfigs reports as topic-level overrides).
    pub overrides: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::from_map(&BTreeMap::new(), &BTreeMap::new()).expect("defaults are valid")
    }
}

fn parse_i64(key: &str, v: &str, min: i64) -> Result<i64, ConfigError> {
    let n: i64 = v.trim().parse().map_err(|_| ConfigError::InvalidValue {
        key: key.into(),
        value: v.into(),
        why: "not an integer",
    })?;
    if n < min {
        return Err(ConfigError::InvalidValue {
            key: key.into(),
            value: v.into(),
            why: "below the minimum",
        });
    }
    Ok(n)
}

fn one_of(key: &str, v: &str, allowed: &[&str]) -> Result<String, ConfigError> {
    if allowed.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(ConfigError::InvalidValue {
            key: key.into(),
            value: v.into(),
            why: "not an allowed value",
        })
    }
}

impl LogConfig {
    /// Builds a config from broker-level defaults overlaid with topic overrides.
    pub fn from_map(
        broker_defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        for k in overrides.keys().chain(broker_defaults.keys()) {
            if !TOPIC_CONFIG_DEFAULTS.iter().any(|(name, _)| name == k) {
                return Err(ConfigError::UnknownKey(k.clone()));
            }
        }
        let get = |key: &str| -> String {
            overrides
                .get(key)
                .or_else(|| broker_defaults.get(key))
                .cloned()
                .unwrap_or_else(|| {
                    TOPIC_CONFIG_DEFAULTS
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| v.to_string())
                        .unwrap_or_default()
                })
        };
        Ok(LogConfig {
            segment_bytes: parse_i64("segment.bytes", &get("segment.bytes"), 14)? as u64,
            segment_ms: parse_i64("segment.ms", &get("segment.ms"), 1)?,
            segment_index_bytes: parse_i64("segment.index.bytes", &get("segment.index.bytes"), 4)?
                as usize,
            index_interval_bytes: parse_i64(
                "index.interval.bytes",
                &get("index.interval.bytes"),
                0,
            )? as u64,
            retention_ms: parse_i64("retention.ms", &get("retention.ms"), -1)?,
            retention_bytes: parse_i64("retention.bytes", &get("retention.bytes"), -1)?,
            flush_messages: parse_i64("flush.messages", &get("flush.messages"), 1)?,
            flush_ms: parse_i64("flush.ms", &get("flush.ms"), 0)?,
            max_message_bytes: parse_i64("max.message.bytes", &get("max.message.bytes"), 0)?
                .min(i32::MAX as i64) as usize,
            compression_type: one_of(
                "compression.type",
                &get("compression.type"),
                &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"],
            )?,
            cleanup_policy: one_of(
                "cleanup.policy",
                &get("cleanup.policy"),
                &["delete", "compact", "compact,delete", "delete,compact"],
            )?,
            delete_retention_ms: parse_i64("delete.retention.ms", &get("delete.retention.ms"), 0)?,
            message_timestamp_type: one_of(
                "message.timestamp.type",
                &get("message.timestamp.type"),
                &["CreateTime", "LogAppendTime"],
            )?,
            message_timestamp_before_max_ms: parse_i64(
                "message.timestamp.before.max.ms",
                &get("message.timestamp.before.max.ms"),
                0,
            )?,
            message_timestamp_after_max_ms: parse_i64(
                "message.timestamp.after.max.ms",
                &get("message.timestamp.after.max.ms"),
                0,
            )?,
            overrides: overrides.clone(),
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

    /// The effective value of every known key, for DescribeConfigs.
    pub fn describe(&self) -> Vec<(String, String, bool)> {
        TOPIC_CONFIG_DEFAULTS
            .iter()
            .map(|(k, default)| {
                let value = match *k {
                    "cleanup.policy" => self.cleanup_policy.clone(),
                    "compression.type" => self.compression_type.clone(),
                    "delete.retention.ms" => self.delete_retention_ms.to_string(),
                    "flush.messages" => self.flush_messages.to_string(),
                    "flush.ms" => self.flush_ms.to_string(),
                    "index.interval.bytes" => self.index_interval_bytes.to_string(),
                    "max.message.bytes" => self.max_message_bytes.to_string(),
                    "message.timestamp.type" => self.message_timestamp_type.clone(),
                    "message.timestamp.before.max.ms" => {
                        self.message_timestamp_before_max_ms.to_string()
                    }
                    "message.timestamp.after.max.ms" => {
                        self.message_timestamp_after_max_ms.to_string()
                    }
                    "retention.bytes" => self.retention_bytes.to_string(),
                    "retention.ms" => self.retention_ms.to_string(),
                    "segment.bytes" => self.segment_bytes.to_string(),
                    "segment.index.bytes" => self.segment_index_bytes.to_string(),
                    "segment.ms" => self.segment_ms.to_string(),
                    _ => default.to_string(),
                };
                let is_override = self.overrides.contains_key(*k);
                (k.to_string(), value, is_override)
            })
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
