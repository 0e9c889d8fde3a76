//! FindCoordinator: this node coordinates every consumer group. Transaction
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

pub fn handle(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised();
    let node = broker.node_id();
    const NOT_SUPPORTED: &str = "transactions are not supported by logbridge";
    let answer = |error: i16| -> (i16, i32, String, i32) {
        if error == code::NONE {
            (error, node, host.clone(), port)
        } else {
            (error, -1, String::new(), -1)
        }
    };
    let (error, message) = match req.key_type {
        0 => (code::NONE, None),
        1 => (
            errors::code(ResponseError::TransactionalIdAuthorizationFailed),
            Some(StrBytes::from_static_str(NOT_SUPPORTED)),
        ),
        _ => (
            errors::code(ResponseError::InvalidRequest),
            Some(StrBytes::from_static_str("unknown coordinator key type")),
        ),
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (e, n, h, p) = answer(error);
                Coordinator::default()
                    .with_key(key)
                    .with_error_code(e)
                    .with_error_message(message.clone())
                    .with_node_id(BrokerId(n))
                    .with_host(StrBytes::from_string(h))
                    .with_port(p)
            })
            .collect();
    } else {
        let (e, n, h, p) = answer(error);
        resp.error_code = e;
        if version >= 1 {
            resp.error_message = message;
        }
        resp.node_id = BrokerId(n);
        resp.host = StrBytes::from_string(h);
        resp.port = p;
    }
    resp
}
