//! logbridge: a Kafka-compatible broker on a durable segment log, with Beats/HTTP
//! ingest and Logstash-compatible pipelines (see DESIGN.md). This crate is the library
//! behind the `logbridge` binary; `main.rs` only parses the command line.
//!
//! Data flows one way: listener (`broker::listener`) → handlers (`broker`) → storage;
//! the command line's client (`client`) → any broker over the Kafka protocol.

pub mod app;
pub mod beats;
pub mod broker;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod group;
pub mod http;
pub mod net;
pub mod pipeline;
pub mod protocol;
pub mod replication;
pub mod storage;
pub mod tls;
