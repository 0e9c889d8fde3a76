//! A running pipeline: inputs → bounded queue → workers (filters, then outputs) →
//! ordered commits.
//!
//! - Inputs run as tasks and send `Batch`es into a queue of `4 × workers` batches; a
//!   full queue stops fetching (back-pressure, no unbounded memory).
//! - Workers are OS threads (`pipeline.workers`): filters are CPU work and must not
//!   stall the runtime's listeners. Each worker runs a batch through the filters, then
//!   hands it to its own delivery thread, which routes the results to the outputs and
//!   waits for every output to hold them while the worker filters the next batch (at
//!   most one batch filtered ahead per worker). A failing output is retried with
//!   back-off (1 s doubling to 30 s) and its events are never dropped. Only then is
//!   the batch finished on its partition's progress.
//! - A committer commits every partition's delivered offset each second and once more
//!   at shutdown. A crash replays from the last commit: at-least-once.
//!
//! Shutdown: inputs stop; the workers drain what is queued (a worker stuck retrying an
//! output abandons its batch, which is then replayed on the next start); the final
//! commit runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::event::Event;
use super::inputs::{Batch, BatchSender, Input};
use super::outputs::Outputs;
use super::progress::{commit_all, ProgressSet};
use super::runtime::{self, Node};
use super::stop::{SetOnDrop, StopFlag};

/// What a pipeline is made of once built.
pub struct Built {
    pub name: String,
    pub inputs: Vec<Input>,
    pub filters: Vec<Node>,
    pub outputs: Outputs,
    /// Set at shutdown; outputs built for this pipeline watch it too.
    pub stopping: StopFlag,
}

/// The parts of a running pipeline that metrics read.
pub struct Shared {
    pub name: String,
    /// Each input's (plugin name, id).
    pub inputs: Vec<(String, String)>,
    /// Events taken from each input.
    pub input_events: Vec<AtomicU64>,
    pub filters: Vec<Node>,
    pub outputs: Outputs,
    pub progress: ProgressSet,
    pub events_in: AtomicU64,
    pub events_filtered: AtomicU64,
    pub events_out: AtomicU64,
    pub workers: usize,
}

pub struct Running {
    pub shared: Arc<Shared>,
    /// Ends the inputs, the committer and output retries; set by `stop`, or on drop.
    stop: SetOnDrop,
    inputs: Vec<tokio::task::JoinHandle<()>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    committer: tokio::task::JoinHandle<()>,
}

/// How long a stopping pipeline tries its last commit and leaving its groups.
const FINAL_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a built pipeline on the current runtime.
pub fn start(built: Built, workers: usize, batch_size: usize) -> Running {
    let workers = if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        workers
    };
    let shared = Arc::new(Shared {
        name: built.name.clone(),
        inputs: built
            .inputs
            .iter()
            .map(|i| (i.common().plugin.clone(), i.common().id.clone()))
            .collect(),
        input_events: built.inputs.iter().map(|_| AtomicU64::new(0)).collect(),
        filters: built.filters,
        outputs: built.outputs,
        progress: Arc::default(),
        events_in: AtomicU64::new(0),
        events_filtered: AtomicU64::new(0),
        events_out: AtomicU64::new(0),
        workers,
    });
    let stop = built.stopping.clone();
    let (tx, rx) = mpsc::channel::<(usize, Batch)>(workers * 4);
    let inputs = built
        .inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            tokio::spawn(input.run(
                built.name.clone(),
                batch_size,
                BatchSender {
                    tx: tx.clone(),
                    input: index,
                },
                stop.clone(),
                shared.progress.clone(),
            ))
        })
        .collect();
    drop(tx);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let handle = tokio::runtime::Handle::current();
    let worker_threads = (0..workers)
        .map(|i| {
            let (shared, rx, abandon, handle) =
                (shared.clone(), rx.clone(), stop.clone(), handle.clone());
            std::thread::Builder::new()
                .name(format!("pipeline-{}-{i}", built.name))
                .spawn(move || {
                    super::filters::set_counter_slot(i);
                    worker(shared, rx, abandon, handle)
                })
                .expect("spawn a pipeline worker thread")
        })
        .collect();
    let committer = {
        let progress = shared.progress.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while stop.pause(Duration::from_secs(1)).await {
                commit_all(&progress).await;
            }
        })
    };
    tracing::info!(pipeline = %built.name, workers, batch_size, "pipeline started");
    Running {
        shared,
        stop: SetOnDrop(stop),
        inputs,
        workers: worker_threads,
        committer,
    }
}

impl Running {
    /// Stops the inputs, drains the queue, and commits what was delivered.
    pub async fn stop(self) {
        // Inputs stop fetching; outputs that are down stop being retried (they would
        // keep workers retrying forever).
        self.stop.0.set();
        for i in self.inputs {
            let _ = i.await;
        }
        let workers = self.workers;
        let _ = tokio::task::spawn_blocking(move || {
            for w in workers {
                let _ = w.join();
            }
        })
        .await;
        let _ = self.committer.await;
        // Bounded: with the group's coordinator out of reach the pipeline still stops
        // (what was not committed is read again at the next start).
        let last = async {
            commit_all(&self.shared.progress).await;
            self.shared.progress.leave_groups().await;
        };
        if tokio::time::timeout(FINAL_COMMIT_TIMEOUT, last)
            .await
            .is_err()
        {
            tracing::warn!(pipeline = %self.shared.name, "the last offset commit or leaving the group timed out");
        }
        tracing::info!(pipeline = %self.shared.name, "pipeline stopped");
    }
}

/// One worker: a filter stage on this thread and a delivery stage on a second one,
/// joined by a hand-off of one batch. While outputs wait on the network (an
/// Elasticsearch bulk round trip is most of a delivery), the next batch is already
/// being decoded and filtered instead of the core idling.
fn worker(
    shared: Arc<Shared>,
    rx: Arc<std::sync::Mutex<mpsc::Receiver<(usize, Batch)>>>,
    abandon: StopFlag,
    handle: tokio::runtime::Handle,
) {
    let (to_delivery, filtered) = std::sync::mpsc::sync_channel::<Filtered>(0);
    // Delivered events come back to be freed on the thread that allocated them:
    // freeing thousands of small allocations per batch from another thread cost
    // mimalloc 12-24% of the pipeline benchmark's CPU.
    let (to_free, delivered) = std::sync::mpsc::channel::<Vec<Event>>();
    let name = std::thread::current().name().map(|n| format!("{n}-out"));
    std::thread::scope(|scope| {
        let mut delivery = std::thread::Builder::new();
        if let Some(name) = name {
            delivery = delivery.name(name);
        }
        delivery
            .spawn_scoped(scope, || {
                deliver_each(&shared, filtered, to_free, &abandon, &handle)
            })
            .expect("spawn a pipeline delivery thread");
        // Returns (dropping the sender, which ends the delivery stage) once the queue
        // is closed and drained.
        filter_each(&shared, &rx, to_delivery, delivered);
    });
}

/// A batch through the filters, waiting for its outputs.
struct Filtered {
    events: Vec<Event>,
    ack: Option<super::inputs::Ack>,
}

fn filter_each(
    shared: &Shared,
    rx: &std::sync::Mutex<mpsc::Receiver<(usize, Batch)>>,
    to_delivery: std::sync::mpsc::SyncSender<Filtered>,
    delivered: std::sync::mpsc::Receiver<Vec<Event>>,
) {
    loop {
        while let Ok(events) = delivered.try_recv() {
            drop(events);
        }
        let batch = {
            let Ok(mut rx) = rx.lock() else { return };
            rx.blocking_recv()
        };
        let Some((input, batch)) = batch else { return };
        let decoded = batch.events.decode();
        let taken = decoded.len() as u64;
        shared.events_in.fetch_add(taken, Ordering::Relaxed);
        if let Some(c) = shared.input_events.get(input) {
            c.fetch_add(taken, Ordering::Relaxed);
        }
        let mut events: Vec<Event> = Vec::with_capacity(decoded.len());
        for e in decoded {
            runtime::run_into(&shared.filters, e, &mut events);
        }
        shared
            .events_filtered
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let filtered = Filtered {
            events,
            ack: batch.ack,
        };
        if to_delivery.send(filtered).is_err() {
            return;
        }
    }
}

fn deliver_each(
    shared: &Shared,
    filtered: std::sync::mpsc::Receiver<Filtered>,
    to_free: std::sync::mpsc::Sender<Vec<Event>>,
    abandon: &StopFlag,
    handle: &tokio::runtime::Handle,
) {
    for Filtered { events, ack } in filtered {
        // Abandoned at shutdown (false): not acknowledged, so replayed on the next start.
        if deliver(shared, &events, abandon, handle) {
            shared
                .events_out
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            if let Some(ack) = ack {
                ack.progress.finish(ack.seq, ack.next_offset);
            }
        }
        // Gone only when the filter stage has ended; then they are freed here.
        let _ = to_free.send(events);
    }
}

/// Writes the events to every output their conditions select; retries failures until
/// they succeed or shutdown abandons them (false).
fn deliver(
    shared: &Shared,
    events: &[Event],
    abandon: &StopFlag,
    handle: &tokio::runtime::Handle,
) -> bool {
    let routed = shared.outputs.route(events);
    for (instance, selected) in shared.outputs.instances.iter().zip(routed) {
        if selected.is_empty() {
            continue;
        }
        let mut backoff = Duration::from_secs(1);
        loop {
            match handle.block_on(instance.output.write(&selected)) {
                Ok(()) => {
                    instance.count_out(selected.len());
                    break;
                }
                Err(_) if abandon.is_set() => return false,
                Err(e) => {
                    instance.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(pipeline = %shared.name, output = %instance.id, error = %e, retry_in_ms = backoff.as_millis() as u64, "output failed; retrying");
                    if !handle.block_on(abandon.pause(backoff)) {
                        return false;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    true
}
