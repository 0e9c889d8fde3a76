//! A pipeline's stop flag: set once, at shutdown (or when the running pipeline is
//! dropped). Inputs end their fetch loops on it, the committer its ticks, and retry
//! loops (the runner's output retries, the elasticsearch output's back-off) their
//! pauses — all at once, none polling; a batch abandoned that way is unacknowledged
//! and replayed on the next start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct StopFlag(Arc<Inner>);

#[derive(Default)]
struct Inner {
    set: AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopFlag {
    /// Sets the flag and wakes every `pause` in progress.
    pub fn set(&self) {
        self.0.set.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
    }

    /// Completes once the flag is set (at once if it already is).
    pub async fn stopped(&self) {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a `set` in between still wakes us.
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }

    /// Sleeps `d`; false (at once) when the flag is set before or during the sleep.
    pub async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.is_set(),
            _ = self.stopped() => false,
        }
    }
}

/// Sets the flag when dropped: a running pipeline dropped without `stop` still ends
/// its inputs.
pub struct SetOnDrop(pub StopFlag);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pause_ends_when_the_flag_is_set() {
        let flag = StopFlag::default();
        assert!(
            flag.pause(Duration::from_millis(1)).await,
            "not set: sleeps"
        );
        let waiting = tokio::spawn({
            let flag = flag.clone();
            async move { flag.pause(Duration::from_secs(3600)).await }
        });
        tokio::task::yield_now().await;
        flag.set();
        let woke = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert_eq!(woke.expect("woken, not timed out").unwrap(), false);
        assert!(!flag.pause(Duration::from_secs(3600)).await, "already set");
    }
}
