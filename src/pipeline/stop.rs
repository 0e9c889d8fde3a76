//! A pipeline's stop flag: set once, at shutdown. Retry loops (the runner's output
//! retries, the elasticsearch output's back-off) wait on it rather than polling, so a
//! stopping pipeline abandons a stuck batch at once; the batch, unacknowledged, is
//! replayed on the next start.

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

    /// Sleeps `d`; false (at once) when the flag is set before or during the sleep.
    pub async fn pause(&self, d: Duration) -> bool {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a `set` in between still wakes us.
        notified.as_mut().enable();
        if self.is_set() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.is_set(),
            _ = notified => false,
        }
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
