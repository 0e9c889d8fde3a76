//! Group metadata records of `__consumer_offsets`, in Kafka's formats, so that tools
//! reading the topic (Burrow, `kafka-console-consumer --formatter
//! GroupMetadataMessageFormatter`) see each group's generation, protocol, leader and
//! members, and so that a restarted broker knows its groups as Kafka's coordinator
//! does after a failover:
//! - key `GroupMetadataKey` v2: `i16 version, string group`;
//! - value `GroupMetadataValue` v3: `i16 version, string protocol_type, i32 generation,
//!   nullable string protocol, nullable string leader, i64 current_state_timestamp,
//!   [member_id, nullable group_instance_id, client_id, client_host, i32
//!   rebalance_timeout, i32 session_timeout, bytes subscription, bytes assignment]`
//!   (v0–v2 are read too); a null value (tombstone) deletes the group.
//!
//! Bytes in, values out, no I/O; every length is checked against the bytes present.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Key version 2 marks a group metadata record (0 and 1 are offset commits).
pub const KEY_VERSION: i16 = 2;

/// One member as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's chosen protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group as the record keeps it: what it was after its last rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

fn put_string(b: &mut BytesMut, s: &str) {
    let s = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    b.put_i16(s.len() as i16);
    b.put_slice(s);
}

fn put_nullable(b: &mut BytesMut, s: &Option<String>) {
    match s {
        Some(s) => put_string(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &Bytes) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

fn get_nullable(b: &mut Bytes) -> Option<Option<String>> {
    if b.remaining() < 2 {
        return None;
    }
    let len = b.get_i16();
    if len == -1 {
        return Some(None);
    }
    if len < 0 || b.remaining() < len as usize {
        return None;
    }
    Some(Some(
        String::from_utf8_lossy(&b.split_to(len as usize)).into_owned(),
    ))
}

fn get_string(b: &mut Bytes) -> Option<String> {
    get_nullable(b)?
}

fn get_i32(b: &mut Bytes) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

fn get_bytes(b: &mut Bytes) -> Option<Bytes> {
    let len = get_i32(b)?;
    if len < 0 {
        return Some(Bytes::new());
    }
    (b.remaining() >= len as usize).then(|| b.split_to(len as usize))
}

pub fn encode_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(KEY_VERSION);
    put_string(&mut b, group);
    b.freeze()
}

/// The group of a group metadata key; None for other key kinds.
pub fn decode_key(mut k: Bytes) -> Option<String> {
    if k.remaining() < 2 || k.get_i16() != KEY_VERSION {
        return None;
    }
    get_string(&mut k)
}

pub fn encode_value(g: &StoredGroup) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_string(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    put_nullable(&mut b, &g.protocol);
    put_nullable(&mut b, &g.leader);
    b.put_i64(g.state_timestamp);
    b.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_string(&mut b, &m.member_id);
        put_nullable(&mut b, &m.instance_id);
        put_string(&mut b, &m.client_id);
        put_string(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// Reads GroupMetadataValue v0–v3.
pub fn decode_value(mut v: Bytes) -> Option<StoredGroup> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = get_string(&mut v)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_nullable(&mut v)?;
    let leader = get_nullable(&mut v)?;
    let state_timestamp = if version >= 2 {
        if v.remaining() < 8 {
            return None;
        }
        v.get_i64()
    } else {
        -1
    };
    let count = get_i32(&mut v)?;
    if count < 0 {
        return None;
    }
    // Every member takes at least 20 bytes: never allocate past what is there.
    let mut members = Vec::with_capacity((count as usize).min(v.remaining() / 20));
    for _ in 0..count {
        let member_id = get_string(&mut v)?;
        let instance_id = if version >= 3 {
            get_nullable(&mut v)?
        } else {
            None
        };
        let client_id = get_string(&mut v)?;
        let client_host = get_string(&mut v)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut v)? } else { -1 };
        let session_timeout_ms = get_i32(&mut v)?;
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(StoredMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_records_round_trip_and_refuse_truncation() {
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 1234,
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "rdkafka".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let v = encode_value(&g);
        assert_eq!(decode_value(v.clone()), Some(g));
        for cut in 0..v.len() {
            assert_eq!(decode_value(v.slice(..cut)), None, "cut at {cut}");
        }
        assert_eq!(decode_key(encode_key("grp")).as_deref(), Some("grp"));
        // An offset-commit key (v1) is not a group key.
        assert_eq!(decode_key(Bytes::from_static(&[0, 1, 0, 1, b'g'])), None);
    }
}
