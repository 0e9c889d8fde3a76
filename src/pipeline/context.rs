//! What plugins may learn about the appliance they run in, at build time: the local
//! topic access (absent in `pipeline check` and `pipeline run`), which
//! `bootstrap_servers` name this appliance, and where its Beats and HTTP listeners
//! write. Plugins never see the broker itself.

use std::sync::Arc;

use crate::client::access::TopicAccess;
use crate::client::remote::RemoteAccess;

#[derive(Clone, Default)]
pub struct Context {
    /// This appliance's topics, in-process.
    pub local: Option<Arc<dyn TopicAccess>>,
    /// `host:port` spellings that mean this appliance's Kafka listener.
    pub local_addresses: Vec<String>,
    /// The Beats listener's port and the topic it writes when no routing applies.
    pub beats_port: Option<u16>,
    pub beats_topic: String,
    /// The HTTP listener's port.
    pub http_port: Option<u16>,
    /// The data directory (the embedded Elasticsearch stand-in writes under it).
    pub data_dir: std::path::PathBuf,
    /// `[pipeline_vars]`: values for `${VAR}` after the environment.
    pub vars: std::collections::BTreeMap<String, String>,
    /// The pipeline being built (set by `pipeline::build`).
    pub pipeline: String,
    /// Set when the pipeline stops: outputs retrying inside a write give up.
    pub stopping: super::stop::StopFlag,
}

impl Context {
    /// True when every address in a `bootstrap_servers` list names this appliance,
    /// or the list is empty (the setting omitted).
    pub fn is_local(&self, bootstrap_servers: &str) -> bool {
        let servers: Vec<&str> = bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        servers.is_empty()
            || servers
                .iter()
                .all(|s| self.local_addresses.iter().any(|a| a == s))
    }

    /// Topic access for a `bootstrap_servers` setting: in-process when it names this
    /// appliance, over the network otherwise.
    pub fn access(&self, bootstrap_servers: Option<&str>) -> Arc<dyn TopicAccess> {
        let servers = bootstrap_servers.unwrap_or("");
        match &self.local {
            Some(local) if self.is_local(servers) => local.clone(),
            _ => {
                let first = servers.split(',').next().unwrap_or(servers).trim();
                let first = if first.is_empty() {
                    "localhost:9092"
                } else {
                    first
                };
                Arc::new(RemoteAccess::new(first))
            }
        }
    }
}
