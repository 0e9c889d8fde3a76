//! Per-partition idempotent-producer state: for each producer id, its epoch and the
//! sequence ranges (with assigned offsets) of its last five batches, as Kafka keeps them.
//!
//! Decides, for an incoming batch, whether it is new (append it), a retry of one of the
//! last five batches (answer with the offset it already got, append nothing), or out of
//! order / fenced (refuse with Kafka's error). Pure logic: no I/O.

use std::collections::{HashMap, VecDeque};

use super::batch::BatchHeader;

/// How many recent batches per producer are remembered for duplicate detection
/// (Kafka's `max.in.flight.requests.per.connection` ceiling for idempotence).
pub const RETAINED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// The verdict on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next expected sequence: append it.
    Append,
    /// Already appended at this base offset: acknowledge without appending.
    Duplicate { base_offset: i64 },
    /// The epoch is older than the producer's current one.
    FencedEpoch,
    /// A gap or reordering in the sequence numbers.
    OutOfOrder { expected: i32, got: i32 },
}

#[derive(Debug, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStateTable {
    pub fn check(&self, h: &BatchHeader) -> SequenceCheck {
        if !h.has_producer_sequence() {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its state predates what we remember): accept.
            return SequenceCheck::Append;
        };
        if h.producer_epoch < entry.epoch {
            return SequenceCheck::FencedEpoch;
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                }
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return SequenceCheck::Duplicate {
                base_offset: b.base_offset,
            };
        }
        match entry.batches.back() {
            Some(last) if h.base_sequence != next_seq(last.last_seq) => SequenceCheck::OutOfOrder {
                expected: next_seq(last.last_seq),
                got: h.base_sequence,
            },
            _ => SequenceCheck::Append,
        }
    }

    /// Records an appended batch (its header carries the assigned base offset).
    pub fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_sequence() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
        });
        while entry.batches.len() > RETAINED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Forgets everything (the log was truncated to empty or deleted).
    pub fn clear(&mut self) {
        self.producers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    #[test]
    fn in_order_appends_then_retry_is_duplicate() {
        let mut t = ProducerStateTable::default();
        let a = hdr(7, 0, 0, 10, 100);
        assert_eq!(t.check(&a), SequenceCheck::Append);
        t.record(&a);
        let b = hdr(7, 0, 10, 5, 110);
        assert_eq!(t.check(&b), SequenceCheck::Append);
        t.record(&b);
        assert_eq!(
            t.check(&hdr(7, 0, 0, 10, -1)),
            SequenceCheck::Duplicate { base_offset: 100 }
        );
        assert_eq!(
            t.check(&hdr(7, 0, 10, 5, -1)),
            SequenceCheck::Duplicate { base_offset: 110 }
        );
    }

    #[test]
    fn gaps_and_old_epochs_are_refused() {
        let mut t = ProducerStateTable::default();
        t.record(&hdr(1, 3, 0, 2, 0));
        assert_eq!(
            t.check(&hdr(1, 3, 5, 1, -1)),
            SequenceCheck::OutOfOrder {
                expected: 2,
                got: 5
            }
        );
        assert_eq!(t.check(&hdr(1, 2, 2, 1, -1)), SequenceCheck::FencedEpoch);
        assert_eq!(t.check(&hdr(1, 4, 0, 1, -1)), SequenceCheck::Append);
        assert_eq!(
            t.check(&hdr(1, 4, 3, 1, -1)),
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: 3
            }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut t = ProducerStateTable::default();
        for i in 0..7 {
            t.record(&hdr(1, 0, i, 1, i as i64));
        }
        assert_eq!(
            t.check(&hdr(1, 0, 6, 1, -1)),
            SequenceCheck::Duplicate { base_offset: 6 }
        );
        assert_eq!(
            t.check(&hdr(1, 0, 2, 1, -1)),
            SequenceCheck::Duplicate { base_offset: 2 }
        );
        assert!(matches!(
            t.check(&hdr(1, 0, 1, 1, -1)),
            SequenceCheck::OutOfOrder { .. }
        ));
    }

    #[test]
    fn non_idempotent_batches_are_always_appended() {
        let t = ProducerStateTable::default();
        assert_eq!(t.check(&hdr(-1, -1, -1, 3, 0)), SequenceCheck::Append);
    }
}
