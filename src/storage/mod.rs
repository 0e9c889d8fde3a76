//! The segment log: how record batches are kept on disk. No networking in here.
//!
//! Layout: `<data>/<topic>-<partition>/<base offset, 20 digits>.{log,index,timeindex}`.
//! A partition log (`log::PartitionLog`) is the narrow interface the broker uses:
//! append (which assigns offsets), plan a read from an offset, find an offset by
//! timestamp, flush, enforce retention, roll, close, delete; `compaction` rewrites the
//! sealed segments of `cleanup.policy=compact` logs through `replace_segment`.
//!
//! What it promises: an append that returned `Ok` is in the OS page cache and survives a
//! process crash; after `flush` (or with `flush.messages`/`flush.ms`, or the broker's
//! fsync-before-ack) it survives a machine crash. On an unclean start the newest segment
//! of every partition is scanned, each batch's CRC-32C verified, and everything after
//! the last valid batch is cut off.

pub mod batch;
pub mod compaction;
pub mod config;
pub mod dir_lock;
pub mod disk;
pub mod epochs;
pub mod index;
pub mod log;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod validate;

#[cfg(test)]
mod tests;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("offset {offset} is outside the log range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("nothing to append")]
    EmptyAppend,
    #[error("producer epoch is older than the current one")]
    ProducerFenced,
    #[error("out-of-order sequence number: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
    #[error("a retried batch arrived together with other batches")]
    DuplicateInMultiBatch,
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] batch::BatchError),
    #[error("the partition's topic has been deleted")]
    Deleted,
    #[error("replicated batches must continue the log at offset {expected}, not {got}")]
    NotContiguous { expected: i64, got: i64 },
}
