//! What a leader answers a follower's fetch, as the follower applies it
//! (`replication::fetcher`): any Fetch v12 response decodes or fails, and applying it
//! to a follower replica — appends of the batches it carries, truncation by
//! `DivergingEpoch`, a restart at the leader's log start — never panics and leaves a
//! log that reads back from its start to its end.
#![no_main]

use std::sync::OnceLock;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use libfuzzer_sys::fuzz_target;
use logbridge::replication::fetcher::{apply_answer, Asked};
use logbridge::replication::replica::{Leadership, Replica};
use logbridge::storage::config::LogConfig;
use logbridge::storage::log::PartitionLog;

/// One follower replica (node 2) of leader 1 in epoch 5, asked for in every answer.
fn asked() -> &'static [Asked] {
    static TARGET: OnceLock<Vec<Asked>> = OnceLock::new();
    TARGET.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("logbridge-fuzz-replica-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = PartitionLog::open(&dir, LogConfig::default(), true).unwrap();
        let leadership = Leadership {
            leader: 1,
            leader_epoch: 5,
            partition_epoch: 0,
            replicas: vec![1, 2],
            isr: vec![1, 2],
        };
        vec![("t".to_string(), std::sync::Arc::new(Replica::new(0, 2, log, leadership)), 5)]
    })
}

fuzz_target!(|data: &[u8]| {
    let asked = asked();
    let replica = &asked[0].1;
    let Ok((_, ResponseKind::Fetch(resp))) =
        logbridge::protocol::codec::decode_response(ApiKey::Fetch, 12, bytes::Bytes::copy_from_slice(data))
    else {
        return;
    };
    apply_answer(asked, 1, resp);
    let (end, _, start) = replica.fetch_position();
    assert!(start <= end, "log start {start} past its end {end}");
    let mut from = start;
    while let Some(plan) = replica.read_to_log_end(from, 1 << 20).expect("readable") {
        let bytes = plan.read().expect("readable");
        let batches = logbridge::storage::batch::validate_batches(&bytes).expect("whole, valid batches");
        from = batches.last().expect("a batch").1.last_offset() + 1;
    }
    assert_eq!(from.max(start), end);
    // Keep the log small across a long run.
    if end > 100_000 {
        replica.restart_at(0, (1, 5)).unwrap();
    }
});
