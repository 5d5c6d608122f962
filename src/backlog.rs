//! What a writer holds, bounded: the hand-over between the polls and a sink
//! (the database or rrdcached) that is slower than they are.
//!
//! A poll's results are admitted (counted in units, rows or RRD updates,
//! and in bytes) before they enter the writer's queue, and released when
//! the writer is done with them (written, refused, or dropped). Once either
//! count reaches its bound the backlog is *behind*: admission waits, and
//! the scheduler starts no new poll, until the writer has worked it down
//! to half the bound. The gap between the two marks keeps a sink at its
//! bound from flapping between waiting and not, in the logs and in the
//! polls. Memory is then the bound plus at most one poll's results per
//! poll in flight, whatever the sink's speed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The most a writer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Rows for the database writer, updates for the RRD writer.
    pub units: u64,
    pub bytes: u64,
}

/// Counters of a backlog since it was made.
#[derive(Debug, Default)]
pub struct BacklogStats {
    /// Hand-overs that had to wait for room.
    pub waits: AtomicU64,
    /// Time they waited, summed, in microseconds.
    pub wait_micros: AtomicU64,
    /// Times the backlog fell behind.
    pub episodes: AtomicU64,
    /// Time spent behind, until the last catch-up, in microseconds.
    pub behind_micros: AtomicU64,
    pub peak_units: AtomicU64,
    pub peak_bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Held {
    units: u64,
    bytes: u64,
    /// Since when the sink has been behind.
    behind_since: Option<Instant>,
}

#[derive(Debug)]
pub struct Backlog {
    /// The sink, for logs: "the database", "rrdcached".
    sink: &'static str,
    bound: Bound,
    held: Mutex<Held>,
    room: Notify,
    stats: BacklogStats,
}

impl Backlog {
    pub fn new(sink: &'static str, bound: Bound) -> Backlog {
        Backlog {
            sink,
            bound: Bound {
                units: bound.units.max(1),
                bytes: bound.bytes.max(1),
            },
            held: Mutex::default(),
            room: Notify::new(),
            stats: BacklogStats::default(),
        }
    }

    pub fn sink(&self) -> &'static str {
        self.sink
    }

    pub fn bound(&self) -> Bound {
        self.bound
    }

    pub fn stats(&self) -> &BacklogStats {
        &self.stats
    }

    /// Units and bytes held now.
    pub fn held(&self) -> (u64, u64) {
        let h = self.held.lock();
        (h.units, h.bytes)
    }

    /// Whether the sink is behind: no new poll should start.
    pub fn is_behind(&self) -> bool {
        self.held.lock().behind_since.is_some()
    }

    /// Takes `units` and `bytes` into the backlog, first waiting while the
    /// sink is behind. A hand-over larger than the whole bound still goes
    /// through once the backlog has room, so that no poll waits forever.
    pub async fn admit(&self, units: u64, bytes: u64) {
        let mut waited: Option<Instant> = None;
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            // Registered before the check, so that a release between the
            // check and the wait is not missed.
            notified.as_mut().enable();
            {
                let mut h = self.held.lock();
                if h.behind_since.is_none() {
                    h.units += units;
                    h.bytes += bytes;
                    self.stats.peak_units.fetch_max(h.units, Ordering::Relaxed);
                    self.stats.peak_bytes.fetch_max(h.bytes, Ordering::Relaxed);
                    if h.units >= self.bound.units || h.bytes >= self.bound.bytes {
                        h.behind_since = Some(Instant::now());
                        self.stats.episodes.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            sink = self.sink,
                            held = h.units,
                            held_bytes = h.bytes,
                            bound = self.bound.units,
                            bound_bytes = self.bound.bytes,
                            "{} is behind the polls: new polls wait until it catches up",
                            self.sink
                        );
                    }
                    break;
                }
            }
            waited.get_or_insert_with(|| {
                self.stats.waits.fetch_add(1, Ordering::Relaxed);
                Instant::now()
            });
            notified.await;
        }
        if let Some(since) = waited {
            self.stats
                .wait_micros
                .fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Gives back what the writer is done with.
    pub fn release(&self, units: u64, bytes: u64) {
        let mut h = self.held.lock();
        h.units = h.units.saturating_sub(units);
        h.bytes = h.bytes.saturating_sub(bytes);
        if let Some(since) = h.behind_since
            && h.units <= self.bound.units / 2
            && h.bytes <= self.bound.bytes / 2
        {
            h.behind_since = None;
            self.stats
                .behind_micros
                .fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
            tracing::warn!(
                sink = self.sink,
                behind_for = ?since.elapsed(),
                "{} has caught up: polls resume",
                self.sink
            );
            drop(h);
            self.room.notify_waiters();
        }
    }

    /// Waits until the sink is not behind.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_behind() {
                return;
            }
            notified.await;
        }
    }

    /// How long the sink has been behind, if it is.
    pub fn behind_for(&self) -> Option<Duration> {
        self.held.lock().behind_since.map(|s| s.elapsed())
    }

    /// Seconds the sink has been behind in all, the current episode
    /// included.
    pub fn seconds_behind(&self) -> f64 {
        self.stats.behind_micros.load(Ordering::Relaxed) as f64 / 1e6
            + self.behind_for().map_or(0.0, |d| d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn backlog(units: u64, bytes: u64) -> Arc<Backlog> {
        Arc::new(Backlog::new("the test sink", Bound { units, bytes }))
    }

    #[tokio::test]
    async fn admission_waits_while_behind_and_resumes_at_half_the_bound() {
        let b = backlog(10, 1_000_000);
        b.admit(6, 10).await;
        assert!(!b.is_behind());
        // Crossing the bound is allowed once, then the backlog is behind.
        b.admit(6, 10).await;
        assert!(b.is_behind());
        assert_eq!(b.held(), (12, 20));

        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.admit(1, 1).await })
        };
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "admitted while behind");
        // Below the bound but above half of it: still behind.
        b.release(4, 0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(b.is_behind() && !waiter.is_finished());
        b.release(3, 0);
        waiter.await.unwrap();
        assert!(!b.is_behind());
        assert_eq!(b.held().0, 6);
        assert_eq!(b.stats().waits.load(Ordering::Relaxed), 1);
        assert!(b.stats().wait_micros.load(Ordering::Relaxed) >= 20_000);
        assert_eq!(b.stats().episodes.load(Ordering::Relaxed), 1);
        assert_eq!(b.stats().peak_units.load(Ordering::Relaxed), 12);
    }

    #[tokio::test]
    async fn bytes_bound_the_backlog_as_units_do() {
        let b = backlog(1_000, 100);
        b.admit(1, 150).await;
        assert!(b.is_behind());
        let room = {
            let b = b.clone();
            tokio::spawn(async move { b.room().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!room.is_finished());
        b.release(1, 150);
        room.await.unwrap();
        assert_eq!(b.held(), (0, 0));
        // Releasing more than is held never wraps.
        b.release(5, 5);
        assert_eq!(b.held(), (0, 0));
    }

    #[tokio::test]
    async fn every_waiter_gets_in_once_there_is_room() {
        let b = backlog(4, 1_000);
        b.admit(4, 4).await;
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move { b.admit(1, 1).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.release(4, 4);
        // The first four in fill the backlog again; the others wait for
        // the next release.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let done = waiters.iter().filter(|w| w.is_finished()).count();
        assert_eq!(done, 4);
        b.release(4, 4);
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(b.held(), (4, 4));
    }
}
