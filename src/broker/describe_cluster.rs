//! DescribeCluster (v0–v1), what admin clients' `describe_cluster` sends: the cluster
//! id, the controller and the live brokers (`view.rs`), and the cluster's authorized
//! operations when asked for. v1's endpoint type 2 (controllers) is refused with
//! MISMATCHED_ENDPOINT_TYPE (KIP-919): this listener is a broker endpoint.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorized;
use super::errors::MISMATCHED_ENDPOINT_TYPE;
use super::Broker;

const BROKERS: i8 = 1;

pub fn handle(
    broker: &Broker,
    req: DescribeClusterRequest,
    version: i16,
    listener: &str,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.settings.cluster_id.clone()));
    if version >= 1 {
        resp.endpoint_type = req.endpoint_type;
        if req.endpoint_type != BROKERS {
            resp.error_code = MISMATCHED_ENDPOINT_TYPE;
            resp.error_message = Some(StrBytes::from_static_str(
                "this is a broker endpoint: describe controllers through the controller listener",
            ));
            return resp;
        }
    }
    resp.controller_id = BrokerId(broker.controller_id());
    resp.brokers = broker
        .brokers_view(listener)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    resp.cluster_authorized_operations = authorized::answer(
        req.include_cluster_authorized_operations,
        authorized::CLUSTER,
    );
    resp
}
