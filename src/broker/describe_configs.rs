//! DescribeConfigs: topic configs (effective values, overrides marked as such) and a
//! small set of broker configs.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::code;
use super::Broker;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

pub fn handle(
    broker: &Broker,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        let mut r = DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let entries: Option<Vec<(String, String, i8)>> = match res.resource_type {
            RESOURCE_TOPIC => broker.registry.get(&res.resource_name).and_then(|t| {
                broker
                    .settings
                    .topic_log_config(&t.overrides.read())
                    .ok()
                    .map(|c| {
                        c.describe()
                            .into_iter()
                            .map(|(k, v, o)| (k, v, if o { SOURCE_TOPIC } else { SOURCE_DEFAULT }))
                            .collect()
                    })
            }),
            RESOURCE_BROKER
                if res.resource_name.as_str() == broker.node_id().to_string()
                    || res.resource_name.is_empty() =>
            {
                let s = &broker.settings;
                Some(vec![
                    (
                        "auto.create.topics.enable".into(),
                        s.auto_create_topics.to_string(),
                        SOURCE_STATIC_BROKER,
                    ),
                    (
                        "num.partitions".into(),
                        s.num_partitions.to_string(),
                        SOURCE_STATIC_BROKER,
                    ),
                    (
                        "message.max.bytes".into(),
                        s.message_max_bytes.to_string(),
                        SOURCE_STATIC_BROKER,
                    ),
                    (
                        "socket.request.max.bytes".into(),
                        s.socket_request_max_bytes.to_string(),
                        SOURCE_STATIC_BROKER,
                    ),
                    (
                        "log.retention.check.interval.ms".into(),
                        s.retention_check_interval_ms.to_string(),
                        SOURCE_STATIC_BROKER,
                    ),
                ])
            }
            _ => None,
        };
        match entries {
            None => {
                r.error_code = code(if res.resource_type == RESOURCE_TOPIC {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidRequest
                });
                r.error_message = Some(StrBytes::from_static_str("unknown resource"));
            }
            Some(entries) => {
                r.configs = entries
                    .into_iter()
                    .filter(|(k, _, _)| {
                        res.configuration_keys
                            .as_ref()
                            .is_none_or(|keys| keys.iter().any(|w| w.as_str() == k))
                    })
                    .map(|(k, v, source)| {
                        let mut e = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_string(k))
                            .with_value(Some(StrBytes::from_string(v)));
                        if version == 0 {
                            e.is_default = source == SOURCE_DEFAULT;
                        } else {
                            e.config_source = source;
                        }
                        e
                    })
                    .collect();
            }
        }
        results.push(r);
    }
    DescribeConfigsResponse::default().with_results(results)
}
