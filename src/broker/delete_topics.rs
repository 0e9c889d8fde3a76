//! DeleteTopics: by name (v0–v5) or by name or id (v6).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::errors::{admin_code, code};
use super::Broker;

pub async fn handle(
    broker: &Broker,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let resolved = match &name {
            Some(n) => Some(n.0.to_string()),
            None => broker.topic_view_by_id(&id).map(|t| t.name),
        };
        let mut r = DeletableTopicResult::default();
        match resolved {
            None => {
                r.error_code = code(if name.is_none() {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                });
                r.name = name;
            }
            Some(n) if n == crate::group::offsets::OFFSETS_TOPIC => {
                r.error_code = code(ResponseError::InvalidTopicException);
                if version >= 5 {
                    r.error_message = Some(StrBytes::from_static_str(
                        "internal topics cannot be deleted",
                    ));
                }
                r.name = Some(TopicName(StrBytes::from_string(n)));
            }
            Some(n) => {
                let result = broker.delete_topic(&n).await;
                r.name = Some(TopicName(StrBytes::from_string(n)));
                match result {
                    Ok(id) => {
                        if version >= 6 {
                            r.topic_id = id;
                        }
                    }
                    Err(e) => {
                        r.error_code = admin_code(&e);
                        if version >= 5 {
                            r.error_message = Some(StrBytes::from_string(e.to_string()));
                        }
                    }
                }
            }
        }
        if version < 6 {
            r.topic_id = uuid::Uuid::nil();
        }
        responses.push(r);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
