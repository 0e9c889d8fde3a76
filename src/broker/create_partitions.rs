//! CreatePartitions: grow a topic's partition count (never shrink).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{admin_code, code};
use super::Broker;

pub async fn handle(
    broker: &Broker,
    req: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let bad_assignment = t
            .assignments
            .iter()
            .flatten()
            .any(|a| a.broker_ids.iter().any(|b| !broker.is_registered(b.0)));
        if bad_assignment {
            r.error_code = code(ResponseError::InvalidReplicaAssignment);
            r.error_message = Some(StrBytes::from_static_str(
                "assignments may only name registered brokers",
            ));
        } else if let Err(e) = broker
            .add_partitions(&t.name.0, t.count, req.validate_only)
            .await
        {
            r.error_code = admin_code(&e);
            r.error_message = Some(StrBytes::from_string(e.to_string()));
        }
        results.push(r);
    }
    CreatePartitionsResponse::default().with_results(results)
}
