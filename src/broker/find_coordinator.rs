//! FindCoordinator: this node coordinates every consumer group. Transaction
//! coordinators (key type 1) do not exist: transactions are not supported.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use crate::group::group::code;

pub fn handle(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = broker.advertised();
    let node = broker.node_id();
    let answer = |error: i16| -> (i16, i32, String, i32) {
        if error == code::NONE {
            (error, node, host.clone(), port)
        } else {
            (error, -1, String::new(), -1)
        }
    };
    let error = if req.key_type == 0 {
        code::NONE
    } else {
        code::COORDINATOR_NOT_AVAILABLE
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
                    .with_node_id(BrokerId(n))
                    .with_host(StrBytes::from_string(h))
                    .with_port(p)
            })
            .collect();
    } else {
        let (e, n, h, p) = answer(error);
        resp.error_code = e;
        resp.node_id = BrokerId(n);
        resp.host = StrBytes::from_string(h);
        resp.port = p;
    }
    resp
}
