//! The metadata log checked as a linearizable register across leader changes (a test
//! module). Five voters run in this process on loopback; clients on every node propose
//! `AllocateProducerIds { count: 1 }` — a fetch-and-add on the image's producer-id
//! counter, whose answer is the value before the add — while the leader dies, twice
//! (openraft's leader lease makes the followers refuse a forced election while the
//! leader lives, so leadership moves by death). The history (each
//! operation's invocation, completion and answer) must then be linearizable:
//! - no value is handed out twice (two adds never see the same counter);
//! - an add that completed before another began got the smaller value (real-time
//!   order);
//! - every value between the smallest and largest answered belongs to some add: an
//!   acknowledged one, or one that failed or timed out (which may have taken effect,
//!   as a timed-out Kafka request may) — never one nobody made.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One fetch-and-add as a client saw it: `value` is None when it failed or timed out
/// (it may or may not have taken effect).
#[derive(Debug, Clone)]
pub struct Operation {
    pub invoked: Instant,
    pub completed: Instant,
    pub value: Option<i64>,
}

/// Why a history of fetch-and-adds is not linearizable.
pub fn violations(history: &[Operation]) -> Vec<String> {
    let mut out = Vec::new();
    let acknowledged: Vec<&Operation> = history.iter().filter(|o| o.value.is_some()).collect();
    let mut seen = BTreeSet::new();
    for o in &acknowledged {
        let v = o.value.expect("filtered");
        if !seen.insert(v) {
            out.push(format!("value {v} handed out twice"));
        }
    }
    for a in &acknowledged {
        for b in &acknowledged {
            if a.completed < b.invoked && a.value >= b.value {
                out.push(format!(
                    "an add answered {:?} completed before an add answered {:?} began",
                    a.value, b.value
                ));
            }
        }
    }
    if let (Some(first), Some(last)) = (seen.first(), seen.last()) {
        let gaps = (last - first + 1) as usize - seen.len();
        let unknown = history.len() - acknowledged.len();
        if gaps > unknown {
            out.push(format!(
                "{gaps} values between {first} and {last} were taken by no add ({unknown} failed)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{ApplyResult, MetadataCommand};
    use crate::cluster::quorum::{Quorum, QuorumConfig};
    use std::collections::BTreeMap;
    use tokio::sync::watch;

    fn op(invoked: u64, completed: u64, value: Option<i64>, t0: Instant) -> Operation {
        Operation {
            invoked: t0 + Duration::from_millis(invoked),
            completed: t0 + Duration::from_millis(completed),
            value,
        }
    }

    #[test]
    fn the_checker_finds_duplicates_reorderings_and_invented_values() {
        let t0 = Instant::now();
        let fine = [
            op(0, 10, Some(1), t0),
            op(5, 30, Some(0), t0), // concurrent with the first: either order
            op(20, 40, None, t0),   // failed, took 2
            op(50, 60, Some(3), t0),
        ];
        assert!(violations(&fine).is_empty(), "{:?}", violations(&fine));
        let twice = [op(0, 10, Some(1), t0), op(20, 30, Some(1), t0)];
        assert_eq!(violations(&twice).len(), 2, "a duplicate, out of order too");
        let reordered = [op(0, 10, Some(5), t0), op(20, 30, Some(4), t0)];
        assert_eq!(violations(&reordered).len(), 1);
        let invented = [op(0, 10, Some(1), t0), op(20, 30, Some(4), t0)];
        assert_eq!(violations(&invented).len(), 1, "2 and 3 came from nowhere");
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    struct Node {
        quorum: Arc<Quorum>,
        stop: watch::Sender<bool>,
    }

    async fn start(id: i32, voters: &BTreeMap<i32, String>, dir: &std::path::Path) -> Node {
        let (stop, stopped) = watch::channel(false);
        let config = QuorumConfig {
            node_id: id,
            cluster_id: "linearizability".into(),
            voters: voters.clone(),
            cluster_listen: voters[&id].clone(),
            cluster_advertised: voters[&id].clone(),
            endpoints: vec![],
            rack: None,
            session_timeout: Duration::from_secs(9),
            heartbeat_interval: Duration::from_secs(2),
        };
        let quorum = Quorum::start(config, &dir.join(format!("n{id}")), stopped)
            .await
            .expect("a quorum node starts");
        Node { quorum, stop }
    }

    /// The leader all live nodes agree on, waited for (bounded).
    async fn agreed_leader(nodes: &[Option<Node>]) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leaders: BTreeSet<Option<i32>> = nodes
                .iter()
                .flatten()
                .map(|n| n.quorum.raft_leader())
                .collect();
            if let [Some(l)] = leaders.iter().copied().collect::<Vec<_>>()[..] {
                if nodes[(l - 1) as usize].is_some() {
                    return l;
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    const NODES: i32 = 5;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_metadata_log_is_a_linearizable_register_across_leader_changes() {
        let dir = tempfile::tempdir().unwrap();
        let voters: BTreeMap<i32, String> = (1..=NODES)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let mut nodes = Vec::new();
        for id in 1..=NODES {
            nodes.push(Some(start(id, &voters, dir.path()).await));
        }
        let first_leader = agreed_leader(&nodes).await;
        let live: Arc<parking_lot::Mutex<Vec<Option<Arc<Quorum>>>>> =
            Arc::new(parking_lot::Mutex::new(
                nodes
                    .iter()
                    .map(|n| n.as_ref().map(|n| n.quorum.clone()))
                    .collect(),
            ));

        // Three clients, each proposing through the nodes in turn.
        let history = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let clients: Vec<_> = (0..3usize)
            .map(|c| {
                let (live, history, running) = (live.clone(), history.clone(), running.clone());
                tokio::spawn(async move {
                    let mut turn = c;
                    while running.load(std::sync::atomic::Ordering::SeqCst) {
                        turn += 1;
                        let Some(q) = live.lock()[turn % NODES as usize].clone() else {
                            continue;
                        };
                        let invoked = Instant::now();
                        let answer = q
                            .propose(MetadataCommand::AllocateProducerIds { count: 1 })
                            .await;
                        let value = match answer {
                            Ok(ApplyResult::ProducerIds { first, .. }) => Some(first),
                            _ => None,
                        };
                        history.lock().push(Operation {
                            invoked,
                            completed: Instant::now(),
                            value,
                        });
                    }
                })
            })
            .collect();

        // The leader dies, twice; a majority of the five is left each time.
        let mut leaders = vec![first_leader];
        let acknowledged = |h: &parking_lot::Mutex<Vec<Operation>>| {
            h.lock().iter().filter(|o| o.value.is_some()).count()
        };
        // Each round waits for 20 more acknowledged adds under the current leader; the
        // first two then kill it.
        for round in 0..3 {
            let before = acknowledged(&history);
            let deadline = Instant::now() + Duration::from_secs(30);
            while acknowledged(&history) < before + 20 {
                assert!(
                    Instant::now() < deadline,
                    "no progress under leader {leaders:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if round == 2 {
                break;
            }
            let leader = *leaders.last().unwrap();
            let dead = nodes[(leader - 1) as usize].take().unwrap();
            live.lock()[(leader - 1) as usize] = None;
            let _ = dead.stop.send(true);
            dead.quorum.shutdown().await;
            leaders.push(agreed_leader(&nodes).await);
        }
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in clients {
            tokio::time::timeout(Duration::from_secs(30), c)
                .await
                .expect("clients end")
                .unwrap();
        }
        let history = history.lock().clone();
        let problems = violations(&history);
        eprintln!(
            "leaders {leaders:?}: {} adds, {} acknowledged",
            history.len(),
            history.iter().filter(|o| o.value.is_some()).count()
        );
        assert!(problems.is_empty(), "not linearizable: {problems:?}");
        for n in nodes.into_iter().flatten() {
            let _ = n.stop.send(true);
            n.quorum.shutdown().await;
        }
    }
}
