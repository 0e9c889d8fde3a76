//! The client commands an operator types, one file each. Today `cluster`; the topic,
//! produce, consume and group commands move here from `main.rs` with the Kafka tool
//! names (issue 14). Commands talk to a running node and print; they hold no state.

pub mod cluster;
