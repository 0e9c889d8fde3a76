//! logbridge: a Kafka-compatible broker on a durable segment log, with Beats/HTTP
//! ingest and Logstash-compatible pipelines (see DESIGN.md). This crate is the library
//! behind the `logbridge` binary; `main.rs` only parses the command line.

pub mod storage;
