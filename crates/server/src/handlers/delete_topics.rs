//! DeleteTopics (20): deletes topics and their data.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader};

use super::sb;
use crate::authorize::{Access, DELETE_TOPICS};
use crate::codes::error_code;
use crate::context::{blocking, Ctx};

pub async fn handle(
    ctx: &Ctx,
    _h: &RequestHeader,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let access = Access::of(ctx);
    let responses = req
        .topic_names
        .into_iter()
        .map(|name| {
            let base = DeletableTopicResult::default();
            if !access.allows(&DELETE_TOPICS, &name) {
                return base
                    .with_name(Some(name))
                    .with_error_code(DELETE_TOPICS.error);
            }
            let result = blocking(|| ctx.broker.delete_topic(&name));
            let base = base.with_name(Some(name));
            match result {
                Ok(()) => base,
                Err(e) => {
                    let code = error_code(&e);
                    // Kafka leaves the message out for an unknown topic, so
                    // clients print the error's own description.
                    let unknown = code == ResponseError::UnknownTopicOrPartition.code();
                    base.with_error_code(code)
                        .with_error_message((version >= 5 && !unknown).then(|| sb(&e.to_string())))
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
