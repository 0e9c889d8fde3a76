//! The command line against the real broker: topics create/list/describe/delete, and
//! produce → consume round trips with keys and every compression.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{cli as run, cli_stdout as stdout, logbridge_cmd, Server};

#[test]
fn topics_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let k = server.kafka.as_str();
    assert!(stdout(&run(
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=60000"
        ],
        k,
        None
    ))
    .contains("Created topic orders"));
    stdout(&run(&["topics", "create", "audit"], k, None));
    assert_eq!(
        stdout(&run(&["topics", "list"], k, None)),
        "__consumer_offsets\naudit\norders\n"
    );
    assert_eq!(
        stdout(&run(&["topics", "list", "--exclude-internal"], k, None)),
        "audit\norders\n"
    );
    let d = stdout(&run(&["topics", "describe", "orders"], k, None));
    assert!(
        d.contains("PartitionCount: 3") && d.contains("retention.ms=60000"),
        "{d}"
    );
    assert_eq!(d.lines().filter(|l| l.contains("Partition: ")).count(), 3);

    // Errors are one line on stderr and a non-zero exit.
    let dup = run(&["topics", "create", "orders"], k, None);
    assert!(!dup.status.success());
    let err = String::from_utf8_lossy(&dup.stderr);
    assert!(err.contains("TopicAlreadyExists"), "{err}");
    let bad = run(&["topics", "create", "bad name!"], k, None);
    assert!(!bad.status.success());
    let bad_cfg = run(
        &["topics", "create", "x", "--config", "no.such.config=1"],
        k,
        None,
    );
    assert!(String::from_utf8_lossy(&bad_cfg.stderr).contains("unknown topic config"));

    assert!(stdout(&run(&["topics", "delete", "orders"], k, None)).contains("Deleted topic orders"));
    assert_eq!(
        stdout(&run(&["topics", "list", "--exclude-internal"], k, None)),
        "audit\n"
    );
    assert!(!run(&["topics", "delete", "orders"], k, None)
        .status
        .success());
    server.stop();

    let unreachable = run(&["topics", "list"], "127.0.0.1:1", None);
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot connect"));
}

#[test]
fn produce_and_consume_round_trip_with_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let k = server.kafka.as_str();
    stdout(&run(
        &["topics", "create", "lines", "--partitions", "4"],
        k,
        None,
    ));
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let input: String = (0..50)
            .map(|i| format!("user{}|{codec} event {i}\n", i % 7))
            .collect();
        expected.extend(input.lines().map(|l| l.replacen('|', "\t", 1)));
        let o = run(
            &[
                "produce",
                "--topic",
                "lines",
                "--key-separator",
                "|",
                "--compression",
                codec,
            ],
            k,
            Some(&input),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = run(
        &[
            "consume",
            "--topic",
            "lines",
            "--from-beginning",
            "--max-messages",
            "250",
            "--print-key",
        ],
        k,
        None,
    );
    let mut got: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(got.len(), 250);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    // One partition only, and keys stay on one partition each.
    let p0 = stdout(&run(
        &[
            "consume",
            "--topic",
            "lines",
            "--from-beginning",
            "--partition",
            "0",
            "--timeout-ms",
            "1000",
            "--print-key",
        ],
        k,
        None,
    ));
    let keys: std::collections::BTreeSet<&str> =
        p0.lines().map(|l| l.split('\t').next().unwrap()).collect();
    let p1 = stdout(&run(
        &[
            "consume",
            "--topic",
            "lines",
            "--from-beginning",
            "--partition",
            "1",
            "--timeout-ms",
            "1000",
            "--print-key",
        ],
        k,
        None,
    ));
    assert!(p1
        .lines()
        .all(|l| !keys.contains(l.split('\t').next().unwrap())));

    // Without --from-beginning only new records are shown.
    let o = run(
        &["consume", "--topic", "lines", "--timeout-ms", "1500"],
        k,
        None,
    );
    assert_eq!(stdout(&o), "");
    server.stop();
}

#[test]
fn pipeline_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.conf");
    std::fs::write(
        &good,
        r#"input { stdin { codec => json } }
filter {
  if [level] == "debug" { drop {} }
  mutate { uppercase => ["level"] add_tag => ["seen"] add_field => { "index" => "app-%{+YYYY.MM.dd}" } }
}
output { stdout {} }
"#,
    )
    .unwrap();
    let ok = logbridge_cmd()
        .args(["pipeline", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "Configuration OK\n");

    let mut child = logbridge_cmd()
        .args(["pipeline", "run"])
        .arg(&good)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"level\":\"warn\",\"@timestamp\":\"2026-11-22T10:00:00.000Z\"}\n{\"level\":\"debug\"}\nnot json\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "the debug event was dropped");
    assert_eq!(events[0]["level"], "WARN");
    assert_eq!(events[0]["index"], "app-2026.11.22");
    assert_eq!(events[0]["tags"], serde_json::json!(["seen"]));
    assert_eq!(events[1]["message"], "not json");
    assert_eq!(
        events[1]["tags"],
        serde_json::json!(["_jsonparsefailure", "seen"])
    );

    // Syntax errors point at the spot, with the line and a caret.
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "input { stdin {} }\nfilter {\n  if [a] == { drop {} }\n}\n",
    )
    .unwrap();
    let out = logbridge_cmd()
        .args(["pipeline", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:3:13: expected a field reference"),
        "{err}"
    );
    assert!(
        err.contains("      if [a] == { drop {} }\n"),
        "the line is shown: {err}"
    );
    assert!(
        err.contains(&format!("    {}^", " ".repeat(12))),
        "with a caret: {err}"
    );
    // The shipped EFLFK example passes; unknown plugins are load-time errors naming
    // the plugin, the file and the position.
    let out = logbridge_cmd()
        .args([
            "pipeline",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let typo = dir.path().join("typo.conf");
    std::fs::write(
        &typo,
        "input { kafka { topics => [\"a\"] } }\noutput {\n  elasticsearc { }\n}\n",
    )
    .unwrap();
    let out = logbridge_cmd()
        .args(["pipeline", "check"])
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.conf: line 3, column 3: unknown output plugin \"elasticsearc\""),
        "{err}"
    );
}
