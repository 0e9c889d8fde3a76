//! InitProducerId for idempotent producers: a fresh id at epoch 0, or — when a v3+
//! client passes its current id and epoch — the same id at the next epoch.
//! Transactional ids are refused: transactions are not implemented. In a cluster the
//! ids come in blocks from the metadata quorum, so no two nodes hand out the same one.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::errors::code;
use super::Broker;

pub async fn handle(
    broker: &Broker,
    req: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        tracing::info!(
            "InitProducerId with a transactional id refused: transactions are not supported"
        );
        r.error_code = code(ResponseError::TransactionalIdAuthorizationFailed);
        return r;
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 {
        if req.producer_epoch < i16::MAX - 1 {
            r.producer_id = req.producer_id;
            r.producer_epoch = req.producer_epoch + 1;
            return r;
        }
    }
    match broker.next_producer_id().await {
        Ok(id) => {
            r.producer_id = ProducerId(id);
            r.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot reserve producer ids");
            r.error_code = code(ResponseError::KafkaStorageError);
        }
    }
    r
}

impl Broker {
    /// A producer id no other producer of the cluster has.
    async fn next_producer_id(&self) -> Result<i64, String> {
        let Some(q) = self.quorum() else {
            return self.producer_ids.next().map_err(|e| e.to_string());
        };
        loop {
            if let Some(id) = self.cluster_producer_ids.take() {
                return Ok(id);
            }
            let (first, count) = q
                .allocate_producer_ids(crate::broker::producer_ids::BLOCK)
                .await
                .map_err(|e| e.to_string())?;
            self.cluster_producer_ids.refill(first, count);
        }
    }
}
