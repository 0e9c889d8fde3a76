//! Appliance settings: embedded defaults, a TOML file (`--config`), and command-line
//! overrides, in that order of precedence (flags win).
//!
//! Invariant: a `Settings` value has passed `validate`; listeners can bind what it says.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::storage::config::LogConfig;

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid listen address '{0}' (expected HOST:PORT)")]
    BadAddress(String),
    #[error("invalid topic defaults: {0}")]
    TopicDefaults(#[from] crate::storage::config::ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Everything `logbridge serve` needs. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub kafka_listen: String,
    pub http_listen: String,
    /// Host name clients are told to connect to; defaults to the Kafka listener's host.
    pub advertised_host: Option<String>,
    /// Kafka's `listeners`: named Kafka listeners, `NAME://host:port,…` (all PLAINTEXT
    /// for now). Empty: one listener named PLAINTEXT on `kafka_listen`.
    pub listeners: String,
    /// Kafka's `advertised.listeners`: what clients that came in on each named
    /// listener are told to connect to, `NAME://host:port,…`. A listener not named here
    /// advertises `advertised_host` (or its bound address) and its bound port.
    pub advertised_listeners: String,
    /// Kafka's `node.id`: this node's id in the cluster.
    pub node_id: i32,
    pub cluster_id: String,
    /// The metadata quorum's voters as `id@host:port,…` (their `cluster_listen`
    /// addresses), like Kafka's `controller.quorum.voters`; the same on every node.
    /// Empty: a cluster of one with no quorum, as before clusters existed.
    pub voters: String,
    /// This node's inter-node (Raft and replication) listener.
    pub cluster_listen: String,
    /// The address other nodes reach `cluster_listen` at: a voter's is its entry in
    /// `voters`; a node outside the voters (a broker only) gives it here, or
    /// `cluster_listen` is taken as it is.
    pub cluster_advertised: Option<String>,
    /// Kafka's `broker.rack`: replicas of a partition go to different racks.
    pub rack: Option<String>,
    /// Kafka's `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// Kafka's `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// Kafka's `replica.lag.time.max.ms`: an ISR member that has not caught up with
    /// its leader for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// Kafka's `default.replication.factor` for topics created without one (capped
    /// at the live brokers), and `offsets.topic.replication.factor`.
    pub default_replication_factor: i16,
    pub offsets_topic_replication_factor: i16,
    /// Kafka's `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// Kafka's `num.partitions`.
    pub num_partitions: i32,
    /// Kafka's `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// Kafka's `message.max.bytes` (default for topics' `max.message.bytes`).
    pub message_max_bytes: usize,
    /// The largest a batch's records may be once decompressed: produce refuses larger
    /// batches (MESSAGE_TOO_LARGE) and no reader decompresses more than this.
    /// `max.message.bytes` cannot bound it: it counts compressed bytes.
    pub max_uncompressed_batch_bytes: usize,
    /// fsync the written segment before acknowledging a produce with `acks=all`.
    pub fsync_before_ack: bool,
    /// Kafka's `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// How often `flush.ms` is checked.
    pub flush_check_interval_ms: u64,
    /// Maximum concurrent client connections on the Kafka listener (lowered at start
    /// to fit the descriptor limit, see the README).
    pub max_connections: usize,
    /// Kafka's `connections.max.idle.ms`: close connections idle this long.
    pub connections_max_idle_ms: u64,
    /// Kafka's `queued.max.request.bytes`: request bytes buffered across every Kafka
    /// and Beats connection; a request that does not fit waits, unread.
    pub queued_max_request_bytes: usize,
    /// A request must arrive whole within this long of its first byte (Kafka and
    /// Beats listeners alike, for Beats at most `beats_client_inactivity_timeout_ms`).
    pub request_frame_timeout_ms: u64,
    /// Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
    pub group_min_session_timeout_ms: i64,
    pub group_max_session_timeout_ms: i64,
    /// Kafka's `group.initial.rebalance.delay.ms`: how long a new group waits for more
    /// members before its first rebalance.
    pub group_initial_rebalance_delay_ms: i64,
    /// Kafka's `offsets.retention.minutes`: offsets of empty groups expire after this.
    pub offsets_retention_minutes: i64,
    /// Kafka's `offsets.topic.num.partitions` (used when `__consumer_offsets` is created).
    pub offsets_topic_num_partitions: i32,
    /// Kafka's `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// Kafka's `offsets.topic.segment.bytes` (used when `__consumer_offsets` is created).
    pub offsets_topic_segment_bytes: u64,
    /// Largest HTTP request body (Elasticsearch's `http.max_content_length`); a larger
    /// `Content-Length` is refused before the body is read.
    pub http_max_content_length: usize,
    /// Maximum concurrent connections on the HTTP listener.
    pub http_max_connections: usize,
    /// A request's headers must arrive within this long; also how long an idle
    /// keep-alive connection stays open.
    pub http_header_read_timeout_ms: u64,
    /// A request, body and answer included, must be done within this long (408).
    pub http_request_timeout_ms: u64,
    /// Topic for documents of bulk index `X`: `%{index}` stands for `X` (default: the
    /// index name itself).
    pub http_index_topic: String,
    /// TLS on the HTTP listener (`[http_tls]`).
    pub http_tls: Option<crate::tls::TlsSettings>,
    /// TLS on the Beats listener (`[beats_tls]`).
    pub beats_tls: Option<crate::tls::TlsSettings>,
    /// Lumberjack (Beats) listener; empty to disable.
    pub beats_listen: String,
    /// Topic pattern for Beats events (sprintf over event fields).
    pub beats_topic: String,
    /// Topic for events whose pattern cannot be rendered.
    pub beats_fallback_topic: String,
    /// Event field whose value becomes the record key (e.g. `[host][name]`).
    pub beats_key_field: Option<String>,
    /// Largest Lumberjack frame, decompressed payload or window, in bytes.
    pub beats_max_frame_bytes: usize,
    /// Most events one Lumberjack window may hold (Filebeat sends `bulk_max_size`,
    /// 2048 by default); a larger window closes the connection.
    pub beats_max_window_events: usize,
    /// Maximum concurrent connections on the Beats listener.
    pub beats_max_connections: usize,
    /// Close Beats connections silent this long (logstash-input-beats'
    /// `client_inactivity_timeout`).
    pub beats_client_inactivity_timeout_ms: u64,
    /// Directory of Logstash-compatible pipelines run by `serve`: each `*.conf` file
    /// is one pipeline, each sub-folder one pipeline of its `*.conf` files. A missing
    /// directory means no pipelines.
    pub pipelines_dir: PathBuf,
    /// Logstash's `pipeline.workers`: filter/output threads per pipeline (0 = cores).
    pub pipeline_workers: usize,
    /// Logstash's `pipeline.batch.size`: events per batch.
    pub pipeline_batch_size: usize,
    /// Values for `${VAR}` in pipeline files, used when the environment has none
    /// (e.g. `ELASTICSEARCH_HOSTS = "http://es:9200"` for the shipped pipeline).
    pub pipeline_vars: BTreeMap<String, String>,
    /// Broker-wide defaults for topic configs, under Kafka's topic config names
    /// (e.g. `"retention.ms" = "86400000"`).
    pub topic_defaults: BTreeMap<String, String>,
    /// Below this many free bytes on the data directory's file system the disk is
    /// "low": a warning in the log, in `/metrics` and in `/health`.
    pub disk_low_free_bytes: u64,
    /// How often the free space is checked for the log's warning.
    pub disk_check_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./data"),
            kafka_listen: "127.0.0.1:9092".into(),
            http_listen: "127.0.0.1:9600".into(),
            advertised_host: None,
            listeners: String::new(),
            advertised_listeners: String::new(),
            node_id: 0,
            cluster_id: "logbridge".into(),
            voters: String::new(),
            cluster_listen: "127.0.0.1:9093".into(),
            cluster_advertised: None,
            rack: None,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            replica_lag_time_max_ms: 30_000,
            default_replication_factor: 3,
            offsets_topic_replication_factor: 3,
            auto_create_topics: true,
            num_partitions: 1,
            socket_request_max_bytes: 100 * 1024 * 1024,
            message_max_bytes: 1_048_588,
            max_uncompressed_batch_bytes:
                crate::storage::records::DEFAULT_MAX_UNCOMPRESSED_BATCH_BYTES,
            fsync_before_ack: false,
            retention_check_interval_ms: 300_000,
            flush_check_interval_ms: 1_000,
            max_connections: 10_000,
            connections_max_idle_ms: 600_000,
            queued_max_request_bytes: 200 * 1024 * 1024,
            request_frame_timeout_ms: 30_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            offsets_retention_minutes: 10_080,
            offsets_topic_num_partitions: 50,
            offset_metadata_max_bytes: 4096,
            offsets_topic_segment_bytes: 104_857_600,
            http_max_content_length: 100 * 1024 * 1024,
            http_max_connections: 10_000,
            http_header_read_timeout_ms: 30_000,
            http_request_timeout_ms: 120_000,
            http_tls: None,
            http_index_topic: "%{index}".into(),
            beats_tls: None,
            beats_listen: "127.0.0.1:5044".into(),
            beats_topic: "%{[fields][log_topic]}".into(),
            beats_fallback_topic: "beats".into(),
            beats_key_field: None,
            beats_max_frame_bytes: 100 * 1024 * 1024,
            beats_max_window_events: 65_536,
            beats_max_connections: 10_000,
            beats_client_inactivity_timeout_ms: 60_000,
            pipelines_dir: PathBuf::from("./pipelines"),
            pipeline_workers: 0,
            pipeline_batch_size: 125,
            pipeline_vars: BTreeMap::new(),
            topic_defaults: BTreeMap::new(),
            disk_low_free_bytes: 1024 * 1024 * 1024,
            disk_check_interval_ms: 5_000,
        }
    }
}

impl Settings {
    /// Loads a TOML file over the embedded defaults.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| SettingsError::Parse {
            path: path.into(),
            source,
        })
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        for addr in [&self.kafka_listen, &self.http_listen] {
            addr.parse::<SocketAddr>()
                .map_err(|_| SettingsError::BadAddress(addr.clone()))?;
        }
        if !self.beats_listen.is_empty() {
            self.beats_listen
                .parse::<SocketAddr>()
                .map_err(|_| SettingsError::BadAddress(self.beats_listen.clone()))?;
        }
        crate::broker::registry::validate_topic_name(&self.beats_fallback_topic)
            .map_err(|e| SettingsError::Invalid(format!("beats_fallback_topic: {e}")))?;
        if crate::broker::registry::is_internal(&self.beats_fallback_topic) {
            return Err(SettingsError::Invalid(format!(
                "beats_fallback_topic: {} is an internal topic",
                self.beats_fallback_topic
            )));
        }
        if !(1..=1000).contains(&self.offsets_topic_num_partitions) {
            return Err(SettingsError::Invalid(
                "offsets_topic_num_partitions must be between 1 and 1000".into(),
            ));
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(SettingsError::Invalid(
                "group_min_session_timeout_ms exceeds group_max_session_timeout_ms".into(),
            ));
        }
        // The budget keeps a quarter (at most 64 MiB) for small requests; the rest must
        // admit the largest Kafka request and Beats frame the settings allow.
        let largest = crate::net::MemoryBudget::new(self.queued_max_request_bytes).largest();
        if largest < self.socket_request_max_bytes || largest < self.beats_max_frame_bytes {
            return Err(SettingsError::Invalid(format!(
                "queued_max_request_bytes ({}) admits requests of at most {largest} bytes: \
                 raise it to fit socket_request_max_bytes and beats_max_frame_bytes",
                self.queued_max_request_bytes
            )));
        }
        if !(1024..=1 << 30).contains(&self.max_uncompressed_batch_bytes) {
            return Err(SettingsError::Invalid(
                "max_uncompressed_batch_bytes must be between 1 KiB and 1 GiB".into(),
            ));
        }
        if self.num_partitions < 1 {
            return Err(SettingsError::Invalid(
                "num_partitions must be at least 1".into(),
            ));
        }
        self.topic_log_config(&BTreeMap::new())?;
        let listeners = self.kafka_listeners()?;
        for (name, _) in parse_named(&self.advertised_listeners, "advertised_listeners")? {
            if !listeners.iter().any(|(l, _)| *l == name) {
                return Err(SettingsError::Invalid(format!(
                    "advertised_listeners names {name}, which is not among the listeners"
                )));
            }
        }
        let voters = self.parsed_voters()?;
        if !voters.is_empty() {
            if self.node_id < 0 {
                return Err(SettingsError::Invalid(format!(
                    "node_id {} is negative: a cluster node needs an id of 0 or more",
                    self.node_id
                )));
            }
            self.cluster_listen
                .parse::<SocketAddr>()
                .map_err(|_| SettingsError::BadAddress(self.cluster_listen.clone()))?;
            let listen: SocketAddr = self.cluster_listen.parse().expect("checked above");
            if !voters.contains_key(&self.node_id)
                && self.cluster_advertised.is_none()
                && listen.ip().is_unspecified()
            {
                return Err(SettingsError::Invalid(format!(
                    "node {} is not a voter and listens on {}: set cluster_advertised to the address the voters reach it at",
                    self.node_id, self.cluster_listen
                )));
            }
            if self.replica_lag_time_max_ms == 0 {
                return Err(SettingsError::Invalid(
                    "replica_lag_time_max_ms must be above 0".into(),
                ));
            }
            if self.default_replication_factor < 1 || self.offsets_topic_replication_factor < 1 {
                return Err(SettingsError::Invalid(
                    "default_replication_factor and offsets_topic_replication_factor must be at least 1".into(),
                ));
            }
            if self.broker_heartbeat_interval_ms == 0
                || self.broker_heartbeat_interval_ms >= self.broker_session_timeout_ms
            {
                return Err(SettingsError::Invalid(
                    "broker_heartbeat_interval_ms must be above 0 and below broker_session_timeout_ms".into(),
                ));
            }
        }
        Ok(())
    }

    /// The Kafka listeners to bind, by name: `listeners`, or PLAINTEXT on `kafka_listen`.
    pub fn kafka_listeners(&self) -> Result<Vec<(String, String)>, SettingsError> {
        let named = parse_named(&self.listeners, "listeners")?;
        if named.is_empty() {
            self.kafka_listen
                .parse::<SocketAddr>()
                .map_err(|_| SettingsError::BadAddress(self.kafka_listen.clone()))?;
            return Ok(vec![("PLAINTEXT".into(), self.kafka_listen.clone())]);
        }
        for (_, addr) in &named {
            addr.parse::<SocketAddr>()
                .map_err(|_| SettingsError::BadAddress(addr.clone()))?;
        }
        Ok(named)
    }

    /// What the listener `name`, bound at `bound`, advertises.
    pub fn advertised_for(&self, name: &str, bound: SocketAddr) -> (String, i32) {
        let given = parse_named(&self.advertised_listeners, "advertised_listeners")
            .unwrap_or_default()
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, addr)| {
                let (host, port) = addr.rsplit_once(':')?;
                Some((host.to_string(), port.parse::<i32>().ok()?))
            });
        given.unwrap_or_else(|| self.advertised(bound))
    }

    /// Whether this node is part of a cluster (`voters` names at least one voter).
    pub fn is_cluster(&self) -> bool {
        self.parsed_voters().is_ok_and(|v| !v.is_empty())
    }

    /// `voters` as node id → cluster address (empty for a cluster of one).
    pub fn parsed_voters(&self) -> Result<BTreeMap<i32, String>, SettingsError> {
        let mut out = BTreeMap::new();
        for part in self
            .voters
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let bad = || {
                SettingsError::Invalid(format!(
                    "voters: '{part}' is not id@host:port (e.g. 1@node1:9093)"
                ))
            };
            let (id, addr) = part.split_once('@').ok_or_else(bad)?;
            let id: i32 = id.trim().parse().map_err(|_| bad())?;
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.parse::<u16>().is_err() || id < 0 {
                return Err(bad());
            }
            if out.insert(id, addr.to_string()).is_some() {
                return Err(SettingsError::Invalid(format!(
                    "voters: node {id} is named twice"
                )));
            }
        }
        if !out.is_empty() && ![1, 3, 5].contains(&out.len()) {
            tracing::warn!(
                voters = out.len(),
                "an even number of voters tolerates no more failures than one fewer"
            );
        }
        Ok(out)
    }

    /// The log config of a topic with the given overrides, over the broker defaults.
    pub fn topic_log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, crate::storage::config::ConfigError> {
        let mut defaults = self.topic_defaults.clone();
        defaults
            .entry("max.message.bytes".into())
            .or_insert_with(|| self.message_max_bytes.to_string());
        LogConfig::from_map(&defaults, overrides)
    }

    /// The host and port advertised in Metadata for this broker.
    pub fn advertised(&self, bound: SocketAddr) -> (String, i32) {
        let host = self.advertised_host.clone().unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                bound.ip().to_string()
            }
        });
        (host, bound.port() as i32)
    }
}

/// `NAME://host:port,…` (Kafka's listener syntax) as (NAME, host:port), names unique.
fn parse_named(text: &str, setting: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || SettingsError::Invalid(format!("{setting}: '{part}' is not NAME://host:port"));
        let (name, addr) = part.split_once("://").ok_or_else(bad)?;
        let name = name.trim().to_ascii_uppercase();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !valid_name || !port_ok {
            return Err(bad());
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(SettingsError::Invalid(format!(
                "{setting}: {name} is named twice"
            )));
        }
        out.push((name, addr.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid_and_as_documented() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.kafka_listen, "127.0.0.1:9092");
        assert_eq!(s.http_listen, "127.0.0.1:9600");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn shipped_example_configs_are_valid() {
        for text in [
            include_str!("../../config/single-node.toml"),
            include_str!("../../config/durable.toml"),
            include_str!("../../config/cluster.toml"),
        ] {
            let s: Settings = toml::from_str(text).unwrap();
            s.validate().unwrap();
        }
    }

    #[test]
    fn named_listeners_advertise_per_listener_as_kafka_does() {
        let s = Settings {
            listeners: "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092".into(),
            advertised_listeners: "INTERNAL://logbridge:9092,EXTERNAL://localhost:19092".into(),
            ..Settings::default()
        };
        s.validate().unwrap();
        assert_eq!(
            s.kafka_listeners().unwrap()[1],
            ("EXTERNAL".into(), "0.0.0.0:19092".into())
        );
        let bound: SocketAddr = "0.0.0.0:19092".parse().unwrap();
        assert_eq!(
            s.advertised_for("EXTERNAL", bound),
            ("localhost".into(), 19092)
        );
        assert_eq!(
            s.advertised_for("INTERNAL", bound),
            ("logbridge".into(), 9092)
        );
        // Not advertised: the bound port, on the advertised host or loopback.
        assert_eq!(
            s.advertised_for("OTHER", bound),
            ("127.0.0.1".into(), 19092)
        );
        let plain = Settings::default();
        assert_eq!(
            plain.kafka_listeners().unwrap(),
            vec![("PLAINTEXT".into(), "127.0.0.1:9092".into())]
        );
        for (l, a) in [
            ("A://0.0.0.0:1,A://0.0.0.0:2", ""),
            ("A:/0.0.0.0:1", ""),
            ("A://0.0.0.0:1", "B://h:1"),
            ("A://nohost:1", ""),
        ] {
            let s = Settings {
                listeners: l.into(),
                advertised_listeners: a.into(),
                ..Settings::default()
            };
            assert!(s.validate().is_err(), "{l} / {a}");
        }
    }

    #[test]
    fn voters_parse_like_controller_quorum_voters() {
        let mut s = Settings {
            voters: "1@a:9093, 2@b:9093,3@127.0.0.1:9095".into(),
            node_id: 2,
            ..Settings::default()
        };
        let v = s.parsed_voters().unwrap();
        assert_eq!(v[&3], "127.0.0.1:9095");
        s.validate().unwrap();
        // A node outside the voters joins as a broker only, at an address others reach.
        s.node_id = 4;
        s.validate().unwrap();
        s.cluster_listen = "0.0.0.0:9093".into();
        assert!(s.validate().is_err(), "an unreachable broker-only node");
        s.cluster_advertised = Some("node4:9093".into());
        s.validate().unwrap();
        for bad in ["1@a", "x@a:1", "1:a:1", "1@a:1,1@b:2", "1@:5"] {
            s.voters = bad.into();
            assert!(s.parsed_voters().is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_overrides_and_unknown_keys() {
        let s: Settings = toml::from_str("data_dir = \"/tmp/x\"\nnum_partitions = 3\n[topic_defaults]\n\"retention.ms\" = \"1000\"\n").unwrap();
        assert_eq!(s.num_partitions, 3);
        assert_eq!(
            s.topic_log_config(&BTreeMap::new()).unwrap().retention_ms,
            1000
        );
        assert!(toml::from_str::<Settings>("no_such_key = 1").is_err());
    }
}
