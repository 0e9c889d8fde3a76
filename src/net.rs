//! What every TCP listener shares: the accept loop — at most `max_connections`
//! connections at once (further clients wait in the kernel's backlog), a pause instead
//! of a spin when `accept` fails (usually EMFILE), and on shutdown no new connections
//! while the ones open finish what they are doing; the memory budget for request bytes
//! buffered across all connections; and the descriptor budget that keeps one
//! listener's flood from taking the descriptors another listener, or the log's
//! segment files, need.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Runs `handle` for every accepted connection until `shutdown` becomes true, then
/// waits for the running handlers.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    max_connections: usize,
    shutdown: watch::Receiver<bool>,
    what: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    let mut stop = shutdown;
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let work = handle(stream, peer);
                tasks.spawn(async move {
                    work.await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Bytes of requests being read or handled, across every connection of the Kafka and
/// Beats listeners (Kafka's `queued.max.request.bytes`), in two pools: requests up to
/// `SMALL_REQUEST` bytes draw from a quarter of the budget (at most 64 MiB) of their
/// own, so a few clients trickling in huge requests can hold the large pool but never
/// stall the heartbeats, commits and small produces of everyone else.
pub struct MemoryBudget {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
    small_total: usize,
    large_total: usize,
}

/// Requests up to this size take their memory from the small pool.
pub const SMALL_REQUEST: usize = 1024 * 1024;

/// A share of the budget, given back when dropped.
pub struct MemoryPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    pub fn new(total: usize) -> MemoryBudget {
        let total = total.min(Semaphore::MAX_PERMITS).min(u32::MAX as usize);
        let small_total = (total / 4).clamp(SMALL_REQUEST.min(total), 64 * 1024 * 1024);
        let large_total = total - small_total;
        MemoryBudget {
            small: Arc::new(Semaphore::new(small_total)),
            large: Arc::new(Semaphore::new(large_total)),
            small_total,
            large_total,
        }
    }

    /// The largest request the budget can ever admit.
    pub fn largest(&self) -> usize {
        self.large_total.max(self.small_total.min(SMALL_REQUEST))
    }

    /// Waits until `bytes` are free and takes them; `None` when `bytes` exceeds what
    /// its pool holds in all (the request can never fit).
    pub async fn reserve(&self, bytes: usize) -> Option<MemoryPermit> {
        if bytes == 0 {
            return Some(MemoryPermit { _permit: None });
        }
        let (pool, total) = if bytes <= SMALL_REQUEST {
            (&self.small, self.small_total)
        } else {
            (&self.large, self.large_total)
        };
        if bytes > total {
            return None;
        }
        let permit = pool.clone().acquire_many_owned(bytes as u32).await.ok()?;
        Some(MemoryPermit {
            _permit: Some(permit),
        })
    }

    /// As `reserve`, always from the large pool: for memory held a long while (a
    /// Beats window being assembled), which must never take the small pool's room.
    pub async fn reserve_large(&self, bytes: usize) -> Option<MemoryPermit> {
        if bytes == 0 {
            return Some(MemoryPermit { _permit: None });
        }
        if bytes > self.large_total {
            return None;
        }
        let permit = self
            .large
            .clone()
            .acquire_many_owned(bytes as u32)
            .await
            .ok()?;
        Some(MemoryPermit {
            _permit: Some(permit),
        })
    }

    /// Bytes not reserved right now, in both pools.
    pub fn available(&self) -> usize {
        self.small.available_permits() + self.large.available_permits()
    }
}

/// Raises the soft limit on open descriptors to the hard limit (services are started
/// with a soft limit of 1024 that a broker outgrows) and returns the new soft limit.
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur as u64
}

/// Descriptors open in this process now (segment files, indexes, sockets).
pub fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// How many connections each listener may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    pub kafka: usize,
    pub beats: usize,
    pub http: usize,
}

/// Caps that fit the descriptor limit: a quarter of it (at least 256) and what is open
/// now stay for the log's files, and each listener gets at most its share of the rest
/// — half for Kafka, a quarter each for Beats and HTTP — or what it is configured
/// with, if that is less. So a flood on one listener runs into its own cap, never into
/// the descriptors the others or the segment files need.
pub fn connection_caps(limit: u64, open_now: usize, configured: ConnectionCaps) -> ConnectionCaps {
    let limit = limit.min(usize::MAX as u64) as usize;
    let reserve = (limit / 4).max(256) + open_now;
    let spare = limit.saturating_sub(reserve);
    ConnectionCaps {
        kafka: configured.kafka.min((spare / 2).max(16)),
        beats: configured.beats.min((spare / 4).max(8)),
        http: configured.http.min((spare / 4).max(8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_the_descriptor_limit() {
        let configured = ConnectionCaps {
            kafka: 10_000,
            beats: 10_000,
            http: 1_000,
        };
        let caps = connection_caps(1024, 40, configured);
        assert!(
            caps.kafka + caps.beats + caps.http + 256 + 40 <= 1024,
            "{caps:?}"
        );
        assert!(caps.http >= 8 && caps.kafka > caps.http);
        assert_eq!(connection_caps(1 << 20, 40, configured), configured);
    }

    #[tokio::test]
    async fn the_memory_budget_is_shared_and_given_back() {
        let budget = MemoryBudget::new(100);
        assert!(budget.reserve(101).await.is_none());
        let a = budget.reserve(60).await.unwrap();
        assert_eq!(budget.available(), 40);
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(60)).await;
        assert!(waiting.is_err(), "waits while the budget is spent");
        drop(a);
        assert!(budget.reserve(60).await.is_some());
    }
}
