//! What a broker answers the appliance's own client (CLI, remote pipelines): any
//! response frame, for any API and version the client sends, decodes or fails without
//! panicking or allocating without bound.
#![no_main]

use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_at_checked(2) else { return };
    let apis = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeConfigs,
        ApiKey::FindCoordinator,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::DeleteGroups,
    ];
    let api = apis[head[0] as usize % apis.len()];
    let version = (head[1] % 14) as i16;
    if version > api.valid_versions().max {
        return;
    }
    let _ = logbridge::protocol::codec::decode_response(api, version, bytes::Bytes::copy_from_slice(body));
});
