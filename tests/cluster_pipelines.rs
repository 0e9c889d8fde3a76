//! The same pipeline on every node of a three-node cluster: its kafka input joins the
//! consumer group as a member on each node, the group's partitions are shared between
//! them, and when a node dies the others take its share over, so every record reaches
//! an output (at least once). Every wait is bounded.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The values of the events in a node's output file (json_lines; missing = none yet).
fn delivered(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

/// Waits (bounded) until every value in `expected` is in some node's output.
fn await_delivered(outputs: &[std::path::PathBuf], expected: &BTreeSet<String>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen: BTreeSet<String> = outputs.iter().flat_map(|p| delivered(p)).collect();
        let missing = expected.difference(&seen).count();
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {missing} of {} values never reached an output",
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) until `group` is stable with `members` members, each assigned at
/// least one partition (ConsumerProtocolAssignment: i16 version, i32 topic count, …).
fn await_group_spread(bootstrap: &str, group: &str, members: usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spread = consumer
            .fetch_group_list(Some(group), Duration::from_secs(5))
            .ok()
            .and_then(|list| {
                let g = list.groups().first()?;
                let assigned = g
                    .members()
                    .iter()
                    .filter(|m| {
                        m.assignment()
                            .and_then(|a| a.get(2..6))
                            .is_some_and(|n| i32::from_be_bytes(n.try_into().unwrap()) > 0)
                    })
                    .count();
                Some(g.state() == "Stable" && g.members().len() == members && assigned == members)
            })
            .unwrap_or(false);
        if spread {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} never had {members} members sharing its partitions"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_pipeline_on_three_nodes_shares_the_partitions_and_takes_over_a_dead_nodes_share()
{
    let pipelines = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(
        pipelines.path().join("share.conf"),
        format!(
            r#"input {{ kafka {{ topics => ["shared"] group_id => "sharers" auto_offset_reset => "earliest" }} }}
output {{ file {{ path => "{}/${{NODE}}.jsonl" }} }}
"#,
            out.path().display()
        ),
    )
    .unwrap();
    let mut cluster = Cluster::start_with(
        3,
        "group_initial_rebalance_delay_ms = 0\n[pipeline_vars]\nNODE = \"n{id}\"\n",
        &[
            "--pipelines".to_string(),
            pipelines.path().display().to_string(),
        ],
    );
    // The pipelines started before their topic existed: they join again once it does.
    create_replicated_topic(&cluster.node(1).kafka, "shared", 3, 3, &[]).await;
    let outputs: Vec<_> = (1..=3)
        .map(|n| out.path().join(format!("n{n}.jsonl")))
        .collect();

    await_group_spread(&cluster.bootstrap(), "sharers", 3);
    let first: BTreeSet<String> = (0..300).map(|i| format!("a-{i}")).collect();
    produce_keyed(&cluster.bootstrap(), "shared", "a", 300).await;
    await_delivered(&outputs, &first, "all three nodes up");
    for (n, path) in outputs.iter().enumerate() {
        let got: BTreeSet<String> = delivered(path).into_iter().collect();
        assert!(
            !got.is_empty() && got.len() < first.len(),
            "node {} should hold one share of the partitions, it delivered {} of {}",
            n + 1,
            got.len(),
            first.len()
        );
    }

    // Node 3 dies: once the group coordinator expires its member, the pipelines on
    // nodes 1 and 2 share its partition between them.
    cluster.kill(3);
    let second: BTreeSet<String> = (0..300).map(|i| format!("b-{i}")).collect();
    produce_keyed(&cluster.bootstrap(), "shared", "b", 300).await;
    await_delivered(&outputs[..2], &second, "after node 3 died");
}
