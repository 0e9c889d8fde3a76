//! Authorized operations as Kafka reports them without an authorizer (logbridge has
//! none yet): every operation a resource type supports is allowed. The bit sets are
//! `1 << AclOperation` code, over the operations Kafka's `AclEntry.supportedOperations`
//! lists per resource type; `NOT_REQUESTED` is Kafka's sentinel for a client that did
//! not ask (`include_*_authorized_operations = false`).

/// Kafka's `AclOperation` codes.
const READ: i32 = 3;
const WRITE: i32 = 4;
const CREATE: i32 = 5;
const DELETE: i32 = 6;
const ALTER: i32 = 7;
const DESCRIBE: i32 = 8;
const CLUSTER_ACTION: i32 = 9;
const DESCRIBE_CONFIGS: i32 = 10;
const ALTER_CONFIGS: i32 = 11;
const IDEMPOTENT_WRITE: i32 = 12;

const fn bits(ops: &[i32]) -> i32 {
    let mut out = 0;
    let mut i = 0;
    while i < ops.len() {
        out |= 1 << ops[i];
        i += 1;
    }
    out
}

/// "Not requested" (`Integer.MIN_VALUE`).
pub const NOT_REQUESTED: i32 = i32::MIN;

pub const CLUSTER: i32 = bits(&[
    CREATE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
    ALTER,
    DESCRIBE,
]);

pub const TOPIC: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DESCRIBE,
    DELETE,
    ALTER,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

pub const GROUP: i32 = bits(&[READ, DESCRIBE, DELETE]);

/// The value to answer: the allowed set when the client asked, the sentinel otherwise.
pub fn answer(requested: bool, allowed: i32) -> i32 {
    if requested {
        allowed
    } else {
        NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bit_sets_match_kafkas_wire_values() {
        // As Kafka 3.x brokers without an authorizer answer them.
        assert_eq!(super::CLUSTER, 0b1_1111_1010_0000);
        assert_eq!(super::TOPIC, 0b1101_1111_1000);
        assert_eq!(super::GROUP, 0b1_0100_1000);
    }
}
