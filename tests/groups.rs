//! Consumer groups through librdkafka's `StreamConsumer`, the `groups` command line
//! and the HTTP views: committed offsets, lag, reset-offsets rules and offset expiry.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use common::{logbridge_cmd, Server};

fn cli(args: &[&str], bootstrap: &str) -> Output {
    logbridge_cmd()
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn stream_consumer(bootstrap: &str, group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap()
}

/// Waits until the group has no members (its last member's LeaveGroup was handled).
async fn wait_until_empty(bootstrap: &str, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok(cli(&["groups", "list"], bootstrap)).contains(&format!("{group}\tEmpty")) {
        assert!(
            Instant::now() < deadline,
            "group {group} never became empty"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn consume_n(c: &StreamConsumer, n: usize) -> Vec<String> {
    let mut stream = c.stream();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let m = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("timed out")
            .unwrap()
            .unwrap();
        out.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        c.commit_message(&m, CommitMode::Sync).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_consumer_cli_and_http_views() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("g.toml");
    std::fs::write(&cfg, "group_initial_rebalance_delay_ms = 0\n").unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let k = server.kafka.clone();
    ok(cli(
        &["topics", "create", "events", "--partitions", "3"],
        &k,
    ));
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &k)
        .create()
        .unwrap();
    for i in 0..30 {
        p.send(
            FutureRecord::<(), _>::to("events")
                .payload(&format!("e{i}"))
                .partition(i % 3),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }

    let c = stream_consumer(&k, "views");
    c.subscribe(&["events"]).unwrap();
    let got = consume_n(&c, 30).await;
    assert_eq!(got.len(), 30);

    // While the member is there: Stable, lag 0 everywhere, and resets are refused.
    let described = ok(cli(&["groups", "describe", "views"], &k));
    assert!(described.contains("State: Stable"), "{described}");
    let rows: Vec<&str> = described
        .lines()
        .filter(|l| l.starts_with("events\t"))
        .collect();
    assert_eq!(rows.len(), 3, "{described}");
    for row in &rows {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!((cols[2], cols[3], cols[4]), ("10", "10", "0"), "{row}");
        assert_ne!(cols[5], "-", "an assigned partition names its consumer");
    }
    assert!(ok(cli(&["groups", "list"], &k)).contains("views\tStable"));
    let refused = cli(
        &[
            "groups",
            "reset-offsets",
            "views",
            "--topic",
            "events",
            "--to-earliest",
        ],
        &k,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("active members"));
    let (status, body) = server.http_get("/groups/views");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "Stable");
    assert_eq!(v["members"].as_array().unwrap().len(), 1);
    let assigned: Vec<i64> = v["members"][0]["assignment"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(assigned, vec![0, 1, 2]);
    assert!(v["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["lag"] == 0));

    // The member leaves: the group is Empty and its offsets can be reset.
    drop(c);
    wait_until_empty(&k, "views").await;
    let reset = ok(cli(
        &[
            "groups",
            "reset-offsets",
            "views",
            "--topic",
            "events",
            "--to-offset",
            "4",
        ],
        &k,
    ));
    assert_eq!(
        reset.lines().filter(|l| l.ends_with("\t4")).count(),
        3,
        "{reset}"
    );
    let lag: Vec<String> = ok(cli(&["groups", "describe", "views"], &k))
        .lines()
        .filter(|l| l.starts_with("events\t"))
        .map(|l| l.split('\t').nth(4).unwrap().to_string())
        .collect();
    assert_eq!(lag, vec!["6", "6", "6"]);
    // A new member resumes at the reset offsets: 6 records per partition.
    let c = stream_consumer(&k, "views");
    c.subscribe(&["events"]).unwrap();
    let again = consume_n(&c, 18).await;
    let mut expected: Vec<String> = (0..30)
        .filter(|i| i / 3 >= 4)
        .map(|i| format!("e{i}"))
        .collect();
    let mut sorted = again.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    drop(c);

    // --to-earliest and --to-datetime in the future (no record: the end).
    wait_until_empty(&k, "views").await;
    let early = ok(cli(
        &[
            "groups",
            "reset-offsets",
            "views",
            "--topic",
            "events",
            "--to-earliest",
        ],
        &k,
    ));
    assert_eq!(
        early.lines().filter(|l| l.ends_with("\t0")).count(),
        3,
        "{early}"
    );
    let future = ok(cli(
        &[
            "groups",
            "reset-offsets",
            "views",
            "--topic",
            "events",
            "--to-datetime",
            "2999-01-01T00:00:00Z",
            "--dry-run",
        ],
        &k,
    ));
    assert_eq!(
        future.lines().filter(|l| l.ends_with("\t10")).count(),
        3,
        "{future}"
    );
    let (status, _) = server.http_get("/groups/nope");
    assert_eq!(status, 404);
    assert!(!cli(&["groups", "describe", "nope"], &k).status.success());
    server.stop();
}

#[test]
fn offsets_of_empty_groups_expire_and_survive_restarts_until_then() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keep = dir.path().join("keep.toml");
    std::fs::write(&keep, "group_initial_rebalance_delay_ms = 0\n").unwrap();
    let server = Server::start(&data, &["--config", keep.to_str().unwrap()]);
    let k = server.kafka.clone();
    ok(cli(&["topics", "create", "t", "--partitions", "2"], &k));
    ok(cli(&["produce", "--topic", "t"], &k));
    ok(cli(
        &[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-latest",
        ],
        &k,
    ));
    assert!(ok(cli(&["groups", "list"], &k)).contains("g\tEmpty"));
    server.stop();

    // Committed offsets are replayed from __consumer_offsets after a restart...
    let server = Server::start(&data, &["--config", keep.to_str().unwrap()]);
    let (status, body) = server.http_get("/groups/g");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["offsets"].as_array().unwrap().len(), 2);
    server.stop();

    // ...and expire once offsets_retention_minutes has passed for an empty group.
    let expire = dir.path().join("expire.toml");
    std::fs::write(&expire, "offsets_retention_minutes = 0\n").unwrap();
    let server = Server::start(&data, &["--config", expire.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.http_get("/groups/g").0 != 404 {
        assert!(Instant::now() < deadline, "offsets never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    // The expiry is durable: tombstones were written.
    let server = Server::start(&data, &["--config", keep.to_str().unwrap()]);
    assert_eq!(server.http_get("/groups/g").0, 404);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offsets_topic_is_compacted_and_keeps_the_latest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "offsets_topic_num_partitions = 1\noffsets_topic_segment_bytes = 2048\nretention_check_interval_ms = 100\n").unwrap();
    let server = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let k = server.kafka.clone();
    ok(cli(&["topics", "create", "t", "--partitions", "1"], &k));
    let mut client = logbridge::client::KafkaClient::connect(&k).await.unwrap();
    for i in 0..300 {
        client
            .commit_standalone("compacted", "t", &[(0, i)])
            .await
            .unwrap();
    }
    let offsets_size = || -> (i64, i64) {
        let (_, body) = server.http_get("/topics");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let t = v["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "__consumer_offsets")
            .unwrap()
            .clone();
        (
            t["partitions"][0]["size_bytes"].as_i64().unwrap(),
            t["partitions"][0]["log_end_offset"].as_i64().unwrap(),
        )
    };
    let (_, end) = offsets_size();
    assert_eq!(end, 300);
    // 300 commits of ~80 bytes each: compaction leaves one record per sealed segment
    // at most (all but the newest are superseded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while offsets_size().0 > 3 * 2048 {
        assert!(
            Instant::now() < deadline,
            "offsets topic never compacted: {:?}",
            offsets_size()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        client.committed("compacted", None).await.unwrap(),
        vec![("t".to_string(), 0, 299)]
    );
    drop(client);
    server.stop();
    // The compacted log replays to the same committed offset.
    let server = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let mut client = logbridge::client::KafkaClient::connect(&server.kafka)
        .await
        .unwrap();
    assert_eq!(
        client.committed("compacted", None).await.unwrap(),
        vec![("t".to_string(), 0, 299)]
    );
    server.stop();
}
