//! The consumer protocol's payloads inside group messages, read for display and for
//! OffsetDelete's subscription check: ConsumerProtocolSubscription (JoinGroup member
//! metadata) and ConsumerProtocolAssignment (SyncGroup assignments). Malformed bytes
//! yield whatever parsed before the damage; nothing here can fail or panic.

/// Topics of a ConsumerProtocolSubscription; malformed metadata yields what parsed.
pub fn parse_subscription(meta: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if meta.len() < 6 {
        return out;
    }
    let count = i32::from_be_bytes([meta[2], meta[3], meta[4], meta[5]]);
    let mut pos = 6usize;
    for _ in 0..count.max(0) {
        if pos + 2 > meta.len() {
            break;
        }
        let len = i16::from_be_bytes([meta[pos], meta[pos + 1]]);
        pos += 2;
        if len < 0 || pos + len as usize > meta.len() {
            break;
        }
        out.push(String::from_utf8_lossy(&meta[pos..pos + len as usize]).into_owned());
        pos += len as usize;
    }
    out
}

/// Reads a ConsumerProtocolAssignment: i16 version, [topic: string, [partition: i32]].
pub fn parse_assignment(b: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn i16_at(b: &[u8], at: usize) -> Option<i16> {
        b.get(at..at + 2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32_at(b: &[u8], at: usize) -> Option<i32> {
        b.get(at..at + 4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    let mut out = Vec::new();
    let Some(count) = i32_at(b, 2) else {
        return out;
    };
    let mut pos = 6;
    for _ in 0..count.max(0) {
        let Some(len) = i16_at(b, pos) else { break };
        pos += 2;
        let Some(name) = b.get(pos..pos + len.max(0) as usize) else {
            break;
        };
        pos += len.max(0) as usize;
        let Some(n) = i32_at(b, pos) else { break };
        pos += 4;
        let mut parts = Vec::new();
        for _ in 0..n.max(0) {
            let Some(p) = i32_at(b, pos) else { break };
            parts.push(p);
            pos += 4;
        }
        out.push((String::from_utf8_lossy(name).into_owned(), parts));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_consumer_assignments() {
        // version 0, [("logs", [0, 2])], no user data
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 4];
        b.extend(b"logs");
        b.extend([0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(parse_assignment(&b), vec![("logs".to_string(), vec![0, 2])]);
        assert!(parse_assignment(&[0, 0, 0x7f]).is_empty());
    }
}
