//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets`
//! partition (this node, in a cluster of one); in a cluster the offsets topic is
//! created on the first lookup, as Kafka does, and COORDINATOR_NOT_AVAILABLE (retriable)
//! answers while it or the partition's leader is not there yet. Transaction
//! coordinators (key type 1) do not exist: transactions are not supported, and the
//! answer says so with a non-retriable error (TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! and a message) — COORDINATOR_NOT_AVAILABLE would have transactional producers retry
//! until `transaction.timeout.ms`.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::error::ResponseError;

use super::errors;
use super::Broker;
use crate::group::group::code;

pub async fn handle(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    const NOT_SUPPORTED: &str = "transactions are not supported by logbridge";
    let refusal = match req.key_type {
        0 => None,
        1 => Some((
            errors::code(ResponseError::TransactionalIdAuthorizationFailed),
            StrBytes::from_static_str(NOT_SUPPORTED),
        )),
        _ => Some((
            errors::code(ResponseError::InvalidRequest),
            StrBytes::from_static_str("unknown coordinator key type"),
        )),
    };
    if refusal.is_none() {
        if let Err(e) = broker.ensure_offsets_topic().await {
            tracing::warn!(error = %e, "cannot create the offsets topic");
        }
    }
    // (error, message, node, host, port) for one key.
    let answer = |key: &str| -> (i16, Option<StrBytes>, i32, String, i32) {
        if let Some((e, m)) = &refusal {
            return (*e, Some(m.clone()), -1, String::new(), -1);
        }
        match broker
            .coordinator_of(key)
            .or_else(|| broker.quorum().is_none().then(|| broker.node_id()))
        {
            Some(node) => match broker.broker_view(node, listener) {
                Some(b) => (code::NONE, None, b.id, b.host, b.port),
                None => not_available(),
            },
            None => not_available(),
        }
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (e, m, n, h, p) = answer(&key);
                Coordinator::default()
                    .with_key(key)
                    .with_error_code(e)
                    .with_error_message(m)
                    .with_node_id(BrokerId(n))
                    .with_host(StrBytes::from_string(h))
                    .with_port(p)
            })
            .collect();
    } else {
        let (e, m, n, h, p) = answer(&req.key);
        resp.error_code = e;
        if version >= 1 {
            resp.error_message = m;
        }
        resp.node_id = BrokerId(n);
        resp.host = StrBytes::from_string(h);
        resp.port = p;
    }
    resp
}

fn not_available() -> (i16, Option<StrBytes>, i32, String, i32) {
    (
        errors::code(ResponseError::CoordinatorNotAvailable),
        Some(StrBytes::from_static_str(
            "the group's offsets partition has no leader yet",
        )),
        -1,
        String::new(),
        -1,
    )
}
