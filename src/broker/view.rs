//! What the handlers tell clients about the cluster — brokers, the controller, topics
//! and each partition's leader, epoch, replicas and ISR — read in one place: from the
//! metadata image in a cluster, from this node's registry in a cluster of one (where
//! this node is the only broker and leads every partition in epoch 0).

use std::sync::Arc;

use uuid::Uuid;

use super::registry::{is_internal, Topic};
use super::Broker;
use crate::cluster::image::{MetadataImage, TopicRecord};

#[derive(Debug, Clone)]
pub struct BrokerView {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PartitionView {
    pub index: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone)]
pub struct TopicView {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    pub partitions: Vec<PartitionView>,
}

impl TopicView {
    fn of_local(t: &Topic, node: i32) -> TopicView {
        TopicView {
            name: t.name.clone(),
            id: t.id,
            internal: is_internal(&t.name),
            partitions: (0..t.partition_count())
                .map(|p| match t.partition(p).map(|r| r.leadership()) {
                    Some(l) => PartitionView {
                        index: p,
                        leader: l.leader,
                        leader_epoch: l.leader_epoch,
                        replicas: l.replicas,
                        isr: l.isr,
                    },
                    None => PartitionView {
                        index: p,
                        leader: node,
                        leader_epoch: 0,
                        replicas: vec![node],
                        isr: vec![node],
                    },
                })
                .collect(),
        }
    }

    fn of_record(t: &TopicRecord) -> TopicView {
        TopicView {
            name: t.name.clone(),
            id: t.id,
            internal: is_internal(&t.name),
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| PartitionView {
                    index: i as i32,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                })
                .collect(),
        }
    }
}

impl Broker {
    fn image(&self) -> Option<Arc<MetadataImage>> {
        self.quorum().map(|q| q.image())
    }

    /// The live brokers a client that came in on `listener` may connect to: each by
    /// its endpoint of that name (as Kafka, a broker without one is left out).
    pub fn brokers_view(&self, listener: &str) -> Vec<BrokerView> {
        match self.image() {
            None => self
                .endpoints()
                .into_iter()
                .find(|e| e.name == listener)
                .map(|e| BrokerView {
                    id: self.node_id(),
                    host: e.host,
                    port: e.port,
                    rack: self.settings.rack.clone(),
                })
                .into_iter()
                .collect(),
            Some(image) => image
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .filter_map(|b| {
                    let e = b.endpoints.iter().find(|e| e.name == listener)?;
                    Some(BrokerView {
                        id: b.id,
                        host: e.host.clone(),
                        port: e.port,
                        rack: b.rack.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Where this node reaches broker `id`'s Kafka listener: its first advertised
    /// listener (list the one the nodes share first in `advertised_listeners`).
    pub fn inter_node_address(&self, id: i32) -> Option<String> {
        let image = self.image()?;
        let b = image.brokers.get(&id).filter(|b| !b.fenced)?;
        let e = b.endpoints.first()?;
        Some(format!("{}:{}", e.host, e.port))
    }

    pub fn broker_view(&self, id: i32, listener: &str) -> Option<BrokerView> {
        self.brokers_view(listener).into_iter().find(|b| b.id == id)
    }

    /// The "controller" clients send admin requests to. As in KRaft, where brokers
    /// forward admin requests and name a live broker here, this node: it proposes
    /// admin changes to the metadata quorum itself, and is reachable by whoever asked
    /// (the Raft leader may be the node that just died). `/cluster` names the Raft
    /// leader.
    pub fn controller_id(&self) -> i32 {
        self.node_id()
    }

    pub fn topic_views(&self) -> Vec<TopicView> {
        match self.image() {
            None => self
                .registry
                .list()
                .iter()
                .map(|t| TopicView::of_local(t, self.node_id()))
                .collect(),
            Some(image) => image.topics.values().map(TopicView::of_record).collect(),
        }
    }

    pub fn topic_view(&self, name: &str) -> Option<TopicView> {
        match self.image() {
            None => self
                .registry
                .get(name)
                .map(|t| TopicView::of_local(&t, self.node_id())),
            Some(image) => image.topics.get(name).map(TopicView::of_record),
        }
    }

    pub fn topic_view_by_id(&self, id: &Uuid) -> Option<TopicView> {
        match self.image() {
            None => self
                .registry
                .get_by_id(id)
                .map(|t| TopicView::of_local(&t, self.node_id())),
            Some(image) => image
                .topics
                .values()
                .find(|t| t.id == *id)
                .map(TopicView::of_record),
        }
    }
}

/// One partition named in the cluster status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionRef {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BrokerStatus {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub epoch: u64,
    /// "alive", or "fenced" once it missed its session.
    pub state: &'static str,
}

/// What `GET /cluster` and `logbridge cluster status` show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterStatus {
    pub cluster_id: String,
    pub node_id: i32,
    /// Absent in a cluster of one (no quorum runs).
    pub quorum: Option<crate::cluster::quorum::QuorumStatus>,
    pub ready: bool,
    pub brokers: Vec<BrokerStatus>,
    pub under_replicated: Vec<PartitionRef>,
    pub under_min_isr: Vec<PartitionRef>,
    pub offline: Vec<PartitionRef>,
}

impl Broker {
    /// Ready to take clients: always in a cluster of one; in a cluster once a metadata
    /// leader is known and this broker is registered and unfenced.
    pub fn ready(&self) -> bool {
        self.quorum().is_none_or(|q| q.ready())
    }

    pub fn cluster_status(&self) -> ClusterStatus {
        let brokers = match self.image() {
            None => {
                let (host, port) = self.advertised();
                vec![BrokerStatus {
                    id: self.node_id(),
                    host,
                    port,
                    rack: self.settings.rack.clone(),
                    epoch: 0,
                    state: "alive",
                }]
            }
            Some(image) => image
                .brokers
                .values()
                .map(|b| {
                    let e = b.endpoints.first();
                    BrokerStatus {
                        id: b.id,
                        host: e.map(|e| e.host.clone()).unwrap_or_default(),
                        port: e.map_or(-1, |e| e.port),
                        rack: b.rack.clone(),
                        epoch: b.epoch,
                        state: if b.fenced { "fenced" } else { "alive" },
                    }
                })
                .collect(),
        };
        let configs = |topic: &str| -> i64 {
            let overrides = match self.image() {
                Some(i) => i.topics.get(topic).map(|t| t.configs.clone()),
                None => self.registry.get(topic).map(|t| t.overrides.read().clone()),
            };
            // Kafka's `min.insync.replicas`, from the topic or the broker defaults.
            let key = "min.insync.replicas";
            overrides
                .as_ref()
                .and_then(|o| o.get(key).cloned())
                .or_else(|| self.settings.topic_defaults.get(key).cloned())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
        };
        let (mut under_replicated, mut under_min_isr, mut offline) = (vec![], vec![], vec![]);
        for t in self.topic_views() {
            let min_isr = configs(&t.name);
            for p in &t.partitions {
                let r = PartitionRef {
                    topic: t.name.clone(),
                    partition: p.index,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                };
                if p.leader < 0 {
                    offline.push(r.clone());
                }
                if (p.isr.len() as i64) < min_isr {
                    under_min_isr.push(r.clone());
                }
                if p.isr.len() < p.replicas.len() {
                    under_replicated.push(r);
                }
            }
        }
        ClusterStatus {
            cluster_id: self.settings.cluster_id.clone(),
            node_id: self.node_id(),
            quorum: self.quorum().map(|q| q.status()),
            ready: self.ready(),
            brokers,
            under_replicated,
            under_min_isr,
            offline,
        }
    }
}
