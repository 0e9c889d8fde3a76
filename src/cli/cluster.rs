//! `logbridge cluster status`: the nodes (alive or fenced), the metadata quorum's
//! leader and term, and the partitions that are under-replicated, under their
//! `min.insync.replicas` or without a leader — read from a node's `GET /cluster`
//! (`--json` prints that document as it is).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent an unreadable cluster status: {why}")]
    Unreadable { url: String, why: String },
}

/// Fetches the cluster status from the node whose HTTP listener is `http` (HOST:PORT
/// or a URL).
pub async fn fetch(http: &str) -> Result<Value, StatusError> {
    let base = if http.starts_with("http://") || http.starts_with("https://") {
        http.trim_end_matches('/').to_string()
    } else {
        format!("http://{http}")
    };
    let url = format!("{base}/cluster");
    let unreachable = |source| StatusError::Unreachable {
        url: url.clone(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(unreachable)?;
    let resp = client.get(&url).send().await.map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(StatusError::Status {
            url,
            status: resp.status().as_u16(),
        });
    }
    let body = resp.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|e| StatusError::Unreadable {
        url: url.clone(),
        why: e.to_string(),
    })
}

fn partitions(list: &Value) -> String {
    let names: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| format!("{}-{}", p["topic"].as_str().unwrap_or("?"), p["partition"]))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        "none".into()
    } else {
        format!("{} ({})", names.len(), names.join(", "))
    }
}

/// The status as a person reads it.
pub fn render(s: &Value) -> String {
    let mut out = String::new();
    let q = &s["quorum"];
    let _ = if q.is_null() {
        writeln!(
            out,
            "Cluster {}: a single node ({}), no metadata quorum",
            s["cluster_id"].as_str().unwrap_or("?"),
            s["node_id"]
        )
    } else {
        let voters: Vec<String> = q["voters"]
            .as_array()
            .map(|v| v.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default();
        writeln!(
            out,
            "Cluster {}: metadata leader {} (term {}), voters {}",
            s["cluster_id"].as_str().unwrap_or("?"),
            if q["raft_leader"].is_null() {
                "none".to_string()
            } else {
                q["raft_leader"].to_string()
            },
            q["raft_term"],
            voters.join(",")
        )
    };
    let _ = writeln!(out, "Node\tState\tAddress\tRack\tEpoch");
    for b in s["brokers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{}\t{}\t{}:{}\t{}\t{}",
            b["id"],
            b["state"].as_str().unwrap_or("?"),
            b["host"].as_str().unwrap_or("?"),
            b["port"],
            b["rack"].as_str().unwrap_or("-"),
            b["epoch"]
        );
    }
    let _ = writeln!(
        out,
        "Under-replicated partitions: {}",
        partitions(&s["under_replicated"])
    );
    let _ = writeln!(
        out,
        "Partitions under min ISR: {}",
        partitions(&s["under_min_isr"])
    );
    let _ = writeln!(
        out,
        "Partitions without a leader: {}",
        partitions(&s["offline"])
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_names_the_leader_fenced_nodes_and_offline_partitions() {
        let s = serde_json::json!({
            "cluster_id": "c", "node_id": 1, "ready": true,
            "quorum": {"raft_leader": 2, "raft_term": 5, "voters": [1, 2, 3]},
            "brokers": [
                {"id": 1, "state": "alive", "host": "h1", "port": 9092, "rack": null, "epoch": 4},
                {"id": 3, "state": "fenced", "host": "h3", "port": 9092, "rack": "r", "epoch": 7}
            ],
            "under_replicated": [], "under_min_isr": [],
            "offline": [{"topic": "t", "partition": 2}]
        });
        let text = render(&s);
        assert!(
            text.contains("metadata leader 2 (term 5), voters 1,2,3"),
            "{text}"
        );
        assert!(text.contains("3\tfenced\th3:9092\tr\t7"), "{text}");
        assert!(
            text.contains("Partitions without a leader: 1 (t-2)"),
            "{text}"
        );
        assert!(text.contains("Under-replicated partitions: none"), "{text}");
    }
}
