//! The cluster metadata image: brokers, topics and their configs, partition assignments
//! and per partition the leader, leader epoch, ISR and partition epoch — and the pure
//! function that applies one committed metadata command to it.
//!
//! The image is data, not behaviour: the Raft state machine (`raft_store.rs`) applies
//! commands in log order on every node, so every node holds the same image at the same
//! log index; the broker reads it and `replication/` acts on a partition's part of it.
//!
//! Invariants (each checked by `apply`, which rejects a command that would break one):
//! - a partition's replicas are distinct registered brokers; its ISR is a subset of them;
//! - the leader is -1 or a member of the ISR, never a fenced broker (unclean election
//!   is off: a partition whose ISR holds no live broker has no leader);
//! - a partition's leader epoch grows by one at every leader change, its partition epoch
//!   by one at every change of leader or ISR; neither ever goes down;
//! - producer id blocks never overlap: `next_producer_id` only grows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One named listener a broker advertises (`advertised_listeners`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    pub id: i32,
    /// The log index of its latest registration: a restarted broker has a new epoch, so
    /// a heartbeat or a fence meant for its previous life is told apart.
    pub epoch: u64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// Its inter-node (cluster) address.
    pub cluster_addr: String,
    /// Missed its session: leads nothing until it heartbeats again.
    pub fenced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when no ISR member is alive.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub brokers: BTreeMap<i32, BrokerRecord>,
    pub topics: BTreeMap<String, TopicRecord>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// The metadata log index of the last entry applied: images are ordered by it, so
    /// an older one is never applied over a newer one.
    #[serde(default)]
    pub applied_index: u64,
}

/// A change to the metadata, proposed to the Raft leader and applied once committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    RegisterBroker {
        id: i32,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        cluster_addr: String,
    },
    /// The controller saw no heartbeat within the session timeout.
    FenceBroker {
        id: i32,
        epoch: u64,
    },
    /// A fenced broker heartbeats again.
    UnfenceBroker {
        id: i32,
        epoch: u64,
    },
    CreateTopic {
        name: String,
        id: Uuid,
        configs: BTreeMap<String, String>,
        /// Replicas of each partition, preferred leader first.
        assignments: Vec<Vec<i32>>,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        assignments: Vec<Vec<i32>>,
    },
    AllocateProducerIds {
        count: i64,
    },
    /// A partition's leader changes its ISR (Kafka's AlterPartition, KIP-497): applied
    /// only at the leader and epochs it was proposed in, so a deposed leader's or a
    /// stale proposal changes nothing.
    AlterPartition {
        topic: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// A broker shutting down cleanly (Kafka's controlled shutdown): it gives up its
    /// leaderships and ISR places as a fence would, at once.
    ShutdownBroker {
        id: i32,
        epoch: u64,
    },
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyResult {
    Applied,
    /// A registration: the broker's new epoch.
    Registered {
        epoch: u64,
    },
    ProducerIds {
        first: i64,
        count: i64,
    },
    /// The command was valid when proposed but not at its place in the log (a topic
    /// created twice, a fence for a broker that already re-registered…): nothing changed.
    Rejected(Rejection),
}

/// Why a committed command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("broker {id} at epoch {epoch} is not in the state the command expects")]
    StaleBroker { id: i32, epoch: u64 },
    #[error("{0}")]
    InvalidAssignment(String),
    #[error("cannot allocate {0} producer ids")]
    InvalidCount(i64),
    #[error("partition {topic}-{partition} has moved on (leader or epochs changed)")]
    StalePartition { topic: String, partition: i32 },
    #[error("invalid ISR for {topic}-{partition}: {why}")]
    InvalidIsr {
        topic: String,
        partition: i32,
        why: String,
    },
}

impl MetadataImage {
    /// For tests: an image with brokers `ids` registered, each at the log index of its
    /// id (so its epoch is its id).
    #[cfg(test)]
    pub(crate) fn with_brokers(ids: impl IntoIterator<Item = i32>) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in ids {
            image.apply(
                id as u64,
                &MetadataCommand::RegisterBroker {
                    id,
                    endpoints: vec![],
                    rack: None,
                    cluster_addr: String::new(),
                },
            );
        }
        image
    }

    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<&PartitionRecord> {
        let t = self.topics.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i))
    }

    /// Applies a committed command; `index` is its position in the metadata log.
    pub fn apply(&mut self, index: u64, cmd: &MetadataCommand) -> ApplyResult {
        match cmd {
            MetadataCommand::RegisterBroker {
                id,
                endpoints,
                rack,
                cluster_addr,
            } => {
                self.brokers.insert(
                    *id,
                    BrokerRecord {
                        id: *id,
                        epoch: index,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        cluster_addr: cluster_addr.clone(),
                        fenced: false,
                    },
                );
                self.elect_leaderless();
                ApplyResult::Registered { epoch: index }
            }
            MetadataCommand::FenceBroker { id, epoch } => self.fence(*id, *epoch, false),
            MetadataCommand::UnfenceBroker { id, epoch } => {
                match self.brokers.get_mut(id) {
                    Some(b) if b.epoch == *epoch && b.fenced => b.fenced = false,
                    _ => {
                        return ApplyResult::Rejected(Rejection::StaleBroker {
                            id: *id,
                            epoch: *epoch,
                        })
                    }
                }
                self.elect_leaderless();
                ApplyResult::Applied
            }
            MetadataCommand::CreateTopic {
                name,
                id,
                configs,
                assignments,
            } => {
                if self.topics.contains_key(name) {
                    return ApplyResult::Rejected(Rejection::TopicExists(name.clone()));
                }
                if let Err(why) = self.check_assignments(assignments) {
                    return ApplyResult::Rejected(Rejection::InvalidAssignment(why));
                }
                let partitions = assignments.iter().map(|r| self.new_partition(r)).collect();
                self.topics.insert(
                    name.clone(),
                    TopicRecord {
                        name: name.clone(),
                        id: *id,
                        configs: configs.clone(),
                        partitions,
                    },
                );
                ApplyResult::Applied
            }
            MetadataCommand::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => ApplyResult::Applied,
                None => ApplyResult::Rejected(Rejection::UnknownTopic(name.clone())),
            },
            MetadataCommand::CreatePartitions { name, assignments } => {
                if let Err(why) = self.check_assignments(assignments) {
                    return ApplyResult::Rejected(Rejection::InvalidAssignment(why));
                }
                let new: Vec<_> = assignments.iter().map(|r| self.new_partition(r)).collect();
                match self.topics.get_mut(name) {
                    Some(t) => {
                        t.partitions.extend(new);
                        ApplyResult::Applied
                    }
                    None => ApplyResult::Rejected(Rejection::UnknownTopic(name.clone())),
                }
            }
            MetadataCommand::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.alter_partition(
                topic,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
            MetadataCommand::ShutdownBroker { id, epoch } => self.fence(*id, *epoch, true),
            MetadataCommand::AllocateProducerIds { count } => {
                if *count <= 0 {
                    return ApplyResult::Rejected(Rejection::InvalidCount(*count));
                }
                let first = self.next_producer_id;
                self.next_producer_id = first.saturating_add(*count);
                ApplyResult::ProducerIds {
                    first,
                    count: *count,
                }
            }
        }
    }

    /// Fences broker `id` at `epoch` (a missed session; or, `shutting_down`, its own
    /// controlled shutdown, which may find it fenced already) and moves its
    /// leaderships and ISR places.
    fn fence(&mut self, id: i32, epoch: u64, shutting_down: bool) -> ApplyResult {
        match self.brokers.get_mut(&id) {
            Some(b) if b.epoch == epoch && (shutting_down || !b.fenced) => b.fenced = true,
            _ => return ApplyResult::Rejected(Rejection::StaleBroker { id, epoch }),
        }
        self.move_leadership_from(id);
        ApplyResult::Applied
    }

    fn alter_partition(
        &mut self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[i32],
    ) -> ApplyResult {
        let live: Vec<i32> = self.live_brokers();
        let stale = || {
            ApplyResult::Rejected(Rejection::StalePartition {
                topic: topic.to_string(),
                partition,
            })
        };
        let invalid = |why: &str| {
            ApplyResult::Rejected(Rejection::InvalidIsr {
                topic: topic.to_string(),
                partition,
                why: why.to_string(),
            })
        };
        let Some(p) = self.topics.get_mut(topic).and_then(|t| {
            usize::try_from(partition)
                .ok()
                .and_then(|i| t.partitions.get_mut(i))
        }) else {
            return stale();
        };
        if p.leader != leader
            || p.leader_epoch != leader_epoch
            || p.partition_epoch != partition_epoch
        {
            return stale();
        }
        if !isr.contains(&leader) {
            return invalid("the leader must be in it");
        }
        if isr.iter().any(|r| !p.replicas.contains(r)) {
            return invalid("every member must be a replica");
        }
        // KIP-841: a fenced broker does not join the ISR.
        if isr.iter().any(|r| !p.isr.contains(r) && !live.contains(r)) {
            return invalid("a fenced broker cannot join");
        }
        p.isr = p
            .replicas
            .iter()
            .copied()
            .filter(|r| isr.contains(r))
            .collect();
        p.partition_epoch += 1;
        ApplyResult::Applied
    }

    fn check_assignments(&self, assignments: &[Vec<i32>]) -> Result<(), String> {
        for (p, replicas) in assignments.iter().enumerate() {
            if replicas.is_empty() {
                return Err(format!("partition {p} has no replicas"));
            }
            for (i, r) in replicas.iter().enumerate() {
                if !self.brokers.contains_key(r) {
                    return Err(format!("partition {p}: broker {r} is not registered"));
                }
                if replicas[..i].contains(r) {
                    return Err(format!("partition {p}: broker {r} is named twice"));
                }
            }
        }
        Ok(())
    }

    fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    fn new_partition(&self, replicas: &[i32]) -> PartitionRecord {
        let leader = replicas
            .iter()
            .copied()
            .find(|r| self.is_live(*r))
            .unwrap_or(-1);
        PartitionRecord {
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// A fenced broker leads nothing: each partition it led takes the first live ISR
    /// member in replica order, or none. It leaves the ISR unless it is the last member
    /// (KIP-966: the last member keeps its place, so it can lead again, cleanly).
    fn move_leadership_from(&mut self, fenced: i32) {
        let live: Vec<i32> = self.live_brokers();
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                let mut changed = false;
                if p.isr.len() > 1 && p.isr.contains(&fenced) {
                    p.isr.retain(|r| *r != fenced);
                    changed = true;
                }
                if p.leader == fenced {
                    p.leader = p
                        .replicas
                        .iter()
                        .copied()
                        .find(|r| p.isr.contains(r) && live.contains(r))
                        .unwrap_or(-1);
                    p.leader_epoch += 1;
                    changed = true;
                }
                if changed {
                    p.partition_epoch += 1;
                }
            }
        }
    }

    /// Partitions without a leader take the first live ISR member, if one is back.
    fn elect_leaderless(&mut self) {
        let live: Vec<i32> = self.live_brokers();
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                if p.leader != -1 {
                    continue;
                }
                if let Some(l) = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| p.isr.contains(r) && live.contains(r))
                {
                    p.leader = l;
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                }
            }
        }
    }
}

/// Replicas for `count` new partitions of `replication_factor` copies on distinct live
/// brokers, spread round-robin from `start` (Kafka's non-rack-aware assignment), with
/// racks alternated when every broker names one.
pub fn assign_replicas(
    image: &MetadataImage,
    count: i32,
    replication_factor: usize,
    start: usize,
) -> Result<Vec<Vec<i32>>, String> {
    let mut brokers: Vec<&BrokerRecord> = image.brokers.values().filter(|b| !b.fenced).collect();
    if replication_factor == 0 || replication_factor > brokers.len() {
        return Err(format!(
            "replication factor {replication_factor} is larger than the {} live broker(s)",
            brokers.len()
        ));
    }
    if brokers.iter().all(|b| b.rack.is_some()) {
        // Interleave racks: a, b, c, a, b, c… so that consecutive replicas differ.
        let mut by_rack: BTreeMap<&str, Vec<&BrokerRecord>> = BTreeMap::new();
        for b in &brokers {
            by_rack
                .entry(b.rack.as_deref().unwrap_or(""))
                .or_default()
                .push(b);
        }
        let mut interleaved = Vec::new();
        let mut round = 0;
        while interleaved.len() < brokers.len() {
            for list in by_rack.values() {
                if let Some(b) = list.get(round) {
                    interleaved.push(*b);
                }
            }
            round += 1;
        }
        brokers = interleaved;
    }
    let n = brokers.len();
    Ok((0..count as usize)
        .map(|p| {
            (0..replication_factor)
                .map(|r| brokers[(start + p + r) % n].id)
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(image: &mut MetadataImage, index: u64, id: i32) -> u64 {
        match image.apply(
            index,
            &MetadataCommand::RegisterBroker {
                id,
                endpoints: vec![],
                rack: None,
                cluster_addr: format!("127.0.0.1:{}", 7000 + id),
            },
        ) {
            ApplyResult::Registered { epoch } => epoch,
            other => panic!("{other:?}"),
        }
    }

    fn three_brokers() -> (MetadataImage, [u64; 3]) {
        (MetadataImage::with_brokers(1..=3), [1, 2, 3])
    }

    fn create(image: &mut MetadataImage, name: &str, assignments: Vec<Vec<i32>>) -> ApplyResult {
        image.apply(
            10,
            &MetadataCommand::CreateTopic {
                name: name.into(),
                id: Uuid::new_v4(),
                configs: BTreeMap::new(),
                assignments,
            },
        )
    }

    #[test]
    fn fencing_moves_leadership_to_the_isr_and_bumps_epochs() {
        let (mut image, epochs) = three_brokers();
        assert_eq!(
            create(&mut image, "t", vec![vec![1, 2, 3]]),
            ApplyResult::Applied
        );
        let p = image.partition("t", 0).unwrap().clone();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 0));
        image.apply(
            11,
            &MetadataCommand::FenceBroker {
                id: 1,
                epoch: epochs[0],
            },
        );
        let p = image.partition("t", 0).unwrap();
        assert_eq!(p.leader, 2);
        assert_eq!(p.isr, vec![2, 3]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1));
    }

    #[test]
    fn the_last_isr_member_keeps_its_place_and_leads_again_when_back() {
        let (mut image, epochs) = three_brokers();
        create(&mut image, "t", vec![vec![2]]);
        image.apply(
            11,
            &MetadataCommand::FenceBroker {
                id: 2,
                epoch: epochs[1],
            },
        );
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (-1, vec![2], 1));
        // Unclean election is off: broker 1, not in the ISR, does not take over.
        assert_eq!(
            image.apply(
                12,
                &MetadataCommand::UnfenceBroker {
                    id: 2,
                    epoch: epochs[1]
                }
            ),
            ApplyResult::Applied
        );
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 2, 2));
    }

    #[test]
    fn a_fence_for_a_previous_registration_changes_nothing() {
        let (mut image, epochs) = three_brokers();
        create(&mut image, "t", vec![vec![3, 1]]);
        let new_epoch = register(&mut image, 20, 3);
        assert_ne!(new_epoch, epochs[2]);
        let before = image.clone();
        assert!(matches!(
            image.apply(
                21,
                &MetadataCommand::FenceBroker {
                    id: 3,
                    epoch: epochs[2]
                }
            ),
            ApplyResult::Rejected(_)
        ));
        assert_eq!(image, before);
    }

    #[test]
    fn a_topic_is_created_once_and_only_on_registered_distinct_brokers() {
        let (mut image, _) = three_brokers();
        assert_eq!(create(&mut image, "t", vec![vec![1]]), ApplyResult::Applied);
        assert!(matches!(
            create(&mut image, "t", vec![vec![2]]),
            ApplyResult::Rejected(_)
        ));
        assert!(matches!(
            create(&mut image, "u", vec![vec![9]]),
            ApplyResult::Rejected(_)
        ));
        assert!(matches!(
            create(&mut image, "v", vec![vec![1, 1]]),
            ApplyResult::Rejected(_)
        ));
        assert!(!image.topics.contains_key("u") && !image.topics.contains_key("v"));
    }

    #[test]
    fn an_isr_change_applies_only_at_the_epochs_it_was_proposed_in() {
        let (mut image, epochs) = three_brokers();
        create(&mut image, "t", vec![vec![1, 2, 3]]);
        let alter =
            |isr: Vec<i32>, leader_epoch, partition_epoch| MetadataCommand::AlterPartition {
                topic: "t".into(),
                partition: 0,
                leader: 1,
                leader_epoch,
                partition_epoch,
                isr,
            };
        assert_eq!(
            image.apply(11, &alter(vec![1, 2], 0, 0)),
            ApplyResult::Applied
        );
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.isr.clone(), p.partition_epoch), (vec![1, 2], 1));
        // Proposed at the old partition epoch: stale, nothing changes.
        assert!(matches!(
            image.apply(12, &alter(vec![1], 0, 0)),
            ApplyResult::Rejected(_)
        ));
        // Without the leader, or with a stranger: refused.
        assert!(matches!(
            image.apply(13, &alter(vec![2], 0, 1)),
            ApplyResult::Rejected(_)
        ));
        assert!(matches!(
            image.apply(14, &alter(vec![1, 9], 0, 1)),
            ApplyResult::Rejected(_)
        ));
        // A fenced broker does not rejoin.
        image.apply(
            15,
            &MetadataCommand::FenceBroker {
                id: 3,
                epoch: epochs[2],
            },
        );
        assert!(matches!(
            image.apply(16, &alter(vec![1, 2, 3], 0, 1)),
            ApplyResult::Rejected(_)
        ));
        assert_eq!(
            image.apply(17, &alter(vec![2, 1], 0, 1)),
            ApplyResult::Applied
        );
        assert_eq!(image.partition("t", 0).unwrap().isr, vec![1, 2]);
    }

    #[test]
    fn a_broker_shutting_down_gives_up_its_leaderships_at_once() {
        let (mut image, epochs) = three_brokers();
        create(&mut image, "t", vec![vec![2, 3, 1]]);
        assert_eq!(
            image.apply(
                11,
                &MetadataCommand::ShutdownBroker {
                    id: 2,
                    epoch: epochs[1]
                }
            ),
            ApplyResult::Applied
        );
        let p = image.partition("t", 0).unwrap();
        assert_eq!(
            (p.leader, p.isr.clone(), p.leader_epoch),
            (3, vec![3, 1], 1)
        );
        assert!(image.brokers[&2].fenced);
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let mut image = MetadataImage::default();
        let a = image.apply(1, &MetadataCommand::AllocateProducerIds { count: 1000 });
        let b = image.apply(2, &MetadataCommand::AllocateProducerIds { count: 1000 });
        assert_eq!(
            a,
            ApplyResult::ProducerIds {
                first: 0,
                count: 1000
            }
        );
        assert_eq!(
            b,
            ApplyResult::ProducerIds {
                first: 1000,
                count: 1000
            }
        );
        assert!(matches!(
            image.apply(3, &MetadataCommand::AllocateProducerIds { count: 0 }),
            ApplyResult::Rejected(_)
        ));
    }

    #[test]
    fn assignment_spreads_leaders_and_keeps_replicas_distinct() {
        let (image, _) = three_brokers();
        let a = assign_replicas(&image, 6, 3, 0).unwrap();
        let leaders: Vec<i32> = a.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        for r in &a {
            let mut s = r.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), 3);
        }
        assert!(assign_replicas(&image, 1, 4, 0).is_err());
    }

    #[test]
    fn racks_alternate_in_an_assignment() {
        let mut image = MetadataImage::default();
        for (i, rack) in [(1, "a"), (2, "a"), (3, "b"), (4, "b")] {
            image.apply(
                i as u64,
                &MetadataCommand::RegisterBroker {
                    id: i,
                    endpoints: vec![],
                    rack: Some(rack.into()),
                    cluster_addr: String::new(),
                },
            );
        }
        for r in assign_replicas(&image, 8, 2, 0).unwrap() {
            let rack = |id: i32| image.brokers[&id].rack.clone();
            assert_ne!(rack(r[0]), rack(r[1]), "{r:?}");
        }
    }
}
