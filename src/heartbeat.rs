//! The scheduling loop's proof of life, for systemd: READY once the loop
//! has read what is due for the first time, and the watchdog pinged only
//! while the loop keeps turning. A loop that waits on a database or Redis
//! that is down still turns (it retries every tick); a loop that is stuck
//! does not, and systemd restarts the process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Heartbeat {
    turns: AtomicU64,
    ready: AtomicBool,
    became_ready: Notify,
}

impl Heartbeat {
    /// One more turn of the scheduling loop.
    pub fn turn(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    /// The first due query (or election round, or step list) is done.
    pub fn ready(&self) {
        if !self.ready.swap(true, Ordering::AcqRel) {
            self.became_ready.notify_waiters();
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Resolves once [`Heartbeat::ready`] has been called.
    pub async fn wait_ready(&self) {
        loop {
            let notified = self.became_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiting_for_ready_ends_when_the_loop_says_so_and_not_before() {
        let h = Arc::new(Heartbeat::default());
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.wait_ready().await }
        });
        h.turn();
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "ready before the loop said so");
        assert_eq!(h.turns(), 1);
        h.ready();
        waiter.await.unwrap();
        // Already ready: no wait.
        h.wait_ready().await;
    }
}
