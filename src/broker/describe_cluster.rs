//! DescribeCluster (v0–v1), what admin clients' `describe_cluster` sends: the cluster
//! id, this node as the controller and only broker, and the cluster's authorized
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
    let (host, port) = broker.advertised();
    resp.controller_id = BrokerId(broker.node_id());
    resp.brokers = vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.node_id()))
        .with_host(StrBytes::from_string(host))
        .with_port(port)];
    resp.cluster_authorized_operations = authorized::answer(
        req.include_cluster_authorized_operations,
        authorized::CLUSTER,
    );
    resp
}
