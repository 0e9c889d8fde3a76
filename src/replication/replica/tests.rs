//! The replica's rules without sockets: two or three replicas of one partition in
//! temporary directories, wired by hand the way the fetcher and the Fetch handler wire
//! them (a follower's fetch is `read_for_follower` on the leader, then
//! `append_replicated` or `truncate_diverging` on the follower).

use super::*;
use crate::storage::batch::BatchHeader;

fn one_record(v: &'static [u8]) -> BytesMut {
    crate::protocol::records::encode_batch(
        vec![(None, Some(bytes::Bytes::from_static(v)))],
        0,
        kafka_protocol::records::Compression::None,
    )
    .unwrap()
}

fn config(min_isr: usize) -> LogConfig {
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert("min.insync.replicas".to_string(), min_isr.to_string());
    LogConfig::from_map(&overrides, &Default::default()).unwrap()
}

fn replica(dir: &std::path::Path, node: i32, min_isr: usize) -> Replica {
    let log = PartitionLog::open(dir, config(min_isr), true).unwrap();
    Replica::new(0, node, log, Leadership::unknown())
}

fn leads(leader: i32, epoch: i32, partition_epoch: i32, isr: &[i32]) -> Leadership {
    Leadership {
        leader,
        leader_epoch: epoch,
        partition_epoch,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

/// One fetch round of `follower` from `leader`; returns whether it truncated.
fn fetch_once(leader: &Replica, follower: &Replica, node: i32) -> bool {
    let (offset, last_epoch, _) = follower.fetch_position();
    let l = follower.leadership();
    let from = (l.leader, l.leader_epoch);
    match leader
        .read_for_follower(node, follower.leader_epoch(), offset, last_epoch, 1 << 20)
        .unwrap()
    {
        FollowerRead::Diverging {
            epoch, end_offset, ..
        } => {
            follower
                .truncate_diverging(epoch, end_offset, from)
                .unwrap();
            true
        }
        FollowerRead::Records { plan, offsets, .. } => {
            match plan {
                Some(p) => {
                    let bytes = p.read().unwrap();
                    follower
                        .append_replicated(&bytes, offsets.high_watermark, from)
                        .unwrap();
                }
                None => follower
                    .update_follower_high_watermark(offsets.high_watermark, from)
                    .unwrap(),
            }
            false
        }
    }
}

fn values(r: &Replica) -> Vec<(i64, i32)> {
    let (plan, _) = (r.read_to_log_end(0, 1 << 20), ());
    let Some(plan) = plan.unwrap() else {
        return vec![];
    };
    let bytes = plan.read().unwrap();
    crate::storage::batch::validate_batches(&bytes)
        .unwrap()
        .into_iter()
        .map(|(_, h): (usize, BatchHeader)| (h.base_offset, h.leader_epoch))
        .collect()
}

#[test]
fn only_the_leader_appends_and_its_batches_carry_its_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let r = replica(dir.path(), 2, 1);
    assert!(matches!(
        r.append_batches(one_record(b"x"), 0),
        Err(ReplicaError::NotLeader { leader: -1 })
    ));
    r.set_leadership(leads(2, 3, 0, &[2]));
    r.append_batches(one_record(b"x"), 0).unwrap();
    assert_eq!(values(&r), vec![(0, 3)]);
    // Metadata older than what is held changes nothing; newer moves leadership.
    r.set_leadership(leads(1, 2, 0, &[1]));
    assert!(r.is_leader());
    r.set_leadership(leads(1, 4, 1, &[1, 2]));
    assert!(!r.is_leader());
    assert!(r.append_batches(one_record(b"x"), 0).is_err());
}

#[test]
fn the_high_watermark_waits_for_every_isr_member_and_bounds_consumer_reads() {
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (leader, f2, f3) = (
        replica(d1.path(), 1, 2),
        replica(d2.path(), 2, 2),
        replica(d3.path(), 3, 2),
    );
    let l = leads(1, 1, 0, &[1, 2, 3]);
    for r in [&leader, &f2, &f3] {
        r.set_leadership(l.clone());
    }
    leader.append_batches(one_record(b"a"), 0).unwrap();
    leader.append_batches(one_record(b"b"), 0).unwrap();
    assert_eq!(leader.high_watermark(), 0, "no follower has fetched yet");
    assert!(
        leader.read(0, 1 << 20).0.unwrap().is_none(),
        "a consumer reads nothing past the high watermark"
    );
    fetch_once(&leader, &f2, 2);
    fetch_once(&leader, &f3, 3);
    assert_eq!(
        leader.high_watermark(),
        0,
        "the followers have the records but have not said so"
    );
    fetch_once(&leader, &f2, 2);
    assert_eq!(leader.high_watermark(), 0, "node 3 has not confirmed");
    fetch_once(&leader, &f3, 3);
    assert_eq!(leader.high_watermark(), 2);
    assert_eq!(values(&f2), values(&leader));
    assert!(leader.read(0, 1 << 20).0.unwrap().is_some());
    // Node 3 out of the ISR (committed): the high watermark follows node 2 alone.
    leader.set_leadership(leads(1, 1, 1, &[1, 2]));
    leader.append_batches(one_record(b"c"), 0).unwrap();
    fetch_once(&leader, &f2, 2);
    fetch_once(&leader, &f2, 2);
    assert_eq!(leader.high_watermark(), 3);
    // KIP-966: below min.insync.replicas (2) it does not move at all.
    leader.set_leadership(leads(1, 1, 2, &[1]));
    leader.append_batches(one_record(b"d"), 0).unwrap();
    assert_eq!(leader.high_watermark(), 3);
    assert!(matches!(
        leader.check_enough_replicas(),
        Err(ReplicaError::NotEnoughReplicas { isr: 1, min: 2 })
    ));
}

#[test]
fn a_deposed_leader_truncates_by_diverging_epoch_not_to_its_high_watermark() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (n1, n2) = (replica(d1.path(), 1, 1), replica(d2.path(), 2, 1));
    for r in [&n1, &n2] {
        r.set_leadership(leads(1, 1, 0, &[1, 2]));
    }
    for v in [b"a", b"b", b"c"] {
        n1.append_batches(one_record(v), 0).unwrap();
    }
    fetch_once(&n1, &n2, 2); // node 2 has 0..3
    fetch_once(&n1, &n2, 2); // and says so: the high watermark is 3
    assert_eq!(n1.high_watermark(), 3);
    // Node 1 takes two more that node 2 never fetches (acks=1), then is deposed.
    n1.append_batches(one_record(b"d"), 0).unwrap();
    n1.append_batches(one_record(b"e"), 0).unwrap();
    let epoch2 = leads(2, 2, 1, &[2]);
    for r in [&n1, &n2] {
        r.set_leadership(epoch2.clone());
    }
    n2.append_batches(one_record(b"X"), 0).unwrap();
    n2.append_batches(one_record(b"Y"), 0).unwrap();
    assert!(matches!(
        n2.read_for_follower(1, 1, 5, 1, 1 << 20),
        Err(ReplicaError::FencedLeaderEpoch {
            asked: 1,
            current: 2
        })
    ));
    assert!(matches!(
        n2.read_for_follower(1, 3, 5, 1, 1 << 20),
        Err(ReplicaError::UnknownLeaderEpoch { .. })
    ));
    // Node 1 asks from 5 with epoch 1: epoch 1 ends at 3 on the leader.
    assert!(fetch_once(&n2, &n1, 1), "the leader answers DivergingEpoch");
    assert_eq!(
        n1.fetch_position().0,
        3,
        "cut where the logs part, above its stale high watermark"
    );
    while n1.fetch_position().0 < 5 {
        assert!(!fetch_once(&n2, &n1, 1));
    }
    assert_eq!(values(&n1), values(&n2));
    assert_eq!(values(&n1), vec![(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)]);
}

#[tokio::test]
async fn an_acks_all_append_waits_for_the_isr_and_fails_when_it_shrinks() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, f2) = (replica(d1.path(), 1, 2), replica(d2.path(), 2, 2));
    for r in [&leader, &f2] {
        r.set_leadership(leads(1, 1, 0, &[1, 2]));
    }
    leader.check_enough_replicas().unwrap();
    let info = leader.append_batches(one_record(b"a"), 0).unwrap();
    let end = info.base_offset + info.records;
    let short = Duration::from_millis(50);
    assert!(matches!(
        leader.await_replicated(end, 1, short).await,
        Err(ReplicaError::ReplicationTimeout(_))
    ));
    fetch_once(&leader, &f2, 2);
    fetch_once(&leader, &f2, 2);
    leader.await_replicated(end, 1, short).await.unwrap();
    // Written, then the ISR shrinks below min.insync.replicas while it waits.
    let info = leader.append_batches(one_record(b"b"), 0).unwrap();
    let end = info.base_offset + info.records;
    let waiting = leader.await_replicated(end, 1, Duration::from_secs(5));
    let shrink = async {
        tokio::task::yield_now().await;
        leader.set_leadership(leads(1, 1, 1, &[1]));
    };
    let (result, ()) = tokio::join!(waiting, shrink);
    assert!(matches!(
        result,
        Err(ReplicaError::NotEnoughReplicasAfterAppend { min: 2 })
    ));
}

#[test]
fn the_leader_proposes_dropping_a_silent_member_and_adding_a_caught_up_one() {
    let (d1, d3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, f3) = (replica(d1.path(), 1, 1), replica(d3.path(), 3, 1));
    leader.set_leadership(leads(1, 1, 0, &[1, 2]));
    f3.set_leadership(leads(1, 1, 0, &[1, 2]));
    leader.append_batches(one_record(b"a"), 0).unwrap();
    // Node 3 (outside the ISR) catches up: it may join. Node 2 never fetches but has
    // a full lag time from the start of the leader's term.
    fetch_once(&leader, &f3, 3);
    fetch_once(&leader, &f3, 3);
    let change = leader.isr_change(30_000, |_| true).unwrap();
    assert_eq!(change.isr, vec![1, 2, 3]);
    assert_eq!((change.leader_epoch, change.partition_epoch), (1, 0));
    assert!(
        leader.isr_change(30_000, |_| true).is_none(),
        "one change in flight at a time"
    );
    // A fenced broker is not proposed; with no lag allowed, node 2 is dropped.
    leader.set_leadership(leads(1, 1, 1, &[1, 2]));
    std::thread::sleep(Duration::from_millis(5));
    let change = leader.isr_change(1, |id| id != 3).unwrap();
    assert_eq!(change.isr, vec![1]);
}

#[test]
fn answers_from_a_deposed_leader_and_fetches_from_strangers_are_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (n1, n2) = (replica(d1.path(), 1, 1), replica(d2.path(), 2, 1));
    for r in [&n1, &n2] {
        r.set_leadership(leads(1, 1, 0, &[1, 2]));
    }
    n1.append_batches(one_record(b"a"), 0).unwrap();
    // Node 9 is no replica: it may not read past the high watermark as a "follower".
    assert!(matches!(
        n1.read_for_follower(9, 1, 0, -1, 1 << 20),
        Err(ReplicaError::NotLeader { .. })
    ));
    let Ok(FollowerRead::Records {
        plan: Some(plan), ..
    }) = n1.read_for_follower(2, 1, 0, -1, 1 << 20)
    else {
        panic!("records for the follower");
    };
    let bytes = plan.read().unwrap();
    // Leadership moves on before the answer is applied: it is dropped, whole.
    n2.set_leadership(leads(3, 2, 1, &[2, 3]));
    assert!(matches!(
        n2.append_replicated(&bytes, 1, (1, 1)),
        Err(ReplicaError::StaleLeader {
            leader: 1,
            epoch: 1
        })
    ));
    assert!(n2.truncate_diverging(0, 0, (1, 1)).is_err());
    assert!(n2.restart_at(0, (1, 1)).is_err());
    assert_eq!(n2.fetch_position().0, 0);
}

#[tokio::test]
async fn a_wait_never_succeeds_for_an_epoch_this_replica_no_longer_leads() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (n1, n2) = (replica(d1.path(), 1, 1), replica(d2.path(), 2, 1));
    for r in [&n1, &n2] {
        r.set_leadership(leads(1, 1, 0, &[1, 2]));
    }
    let info = n1.append_batches(one_record(b"a"), 0).unwrap();
    let end = info.base_offset + info.records;
    // Deposed, then leading again in a later epoch with its high watermark past `end`.
    n1.set_leadership(leads(1, 3, 1, &[1]));
    n1.append_batches(one_record(b"b"), 0).unwrap();
    assert!(n1.high_watermark() >= end);
    assert!(matches!(
        n1.await_replicated(end, 1, Duration::from_millis(50)).await,
        Err(ReplicaError::NotLeader { .. })
    ));
    let _ = n2;
}
