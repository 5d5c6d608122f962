//! How many polls may be in flight now: up to `poller.concurrency`, fewer
//! while the sinks cannot keep up.
//!
//! A poll that finishes while the database or rrdcached is behind waits
//! with its results until the writer takes them. The node then takes in
//! polls no faster than the sink writes them out, so polls in flight beyond
//! what the sink absorbs only hold memory: with the database at a third of
//! its speed, 400 polls in flight each waited with a first poll's rows.
//! The window follows the sinks as TCP's congestion window follows the
//! network:
//! - it starts at an eighth of `poller.concurrency` (at least 8) and grows
//!   by one for each poll that ends while no sink is behind, so it doubles
//!   every poll duration until it reaches `poller.concurrency`;
//! - each time a sink falls behind, it is cut to half of the polls in
//!   flight (never below the start size), and it does not grow while any
//!   sink is behind.
//!
//! With sinks that keep up, the window reaches `poller.concurrency` within a
//! few poll durations and stays there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::backlog::Backlog;

/// Counters of the windows an engine has run with.
#[derive(Debug, Default)]
pub struct WindowStats {
    /// Times a sink fell behind while a window followed it (each cuts the
    /// window, unless it is already at its start size).
    pub cuts: AtomicU64,
    /// The smallest a window was cut to (0: never cut).
    pub smallest: AtomicU64,
}

#[derive(Debug)]
struct State {
    size: usize,
    in_flight: usize,
    /// The sinks' episodes of being behind, summed, when last looked at.
    episodes: u64,
}

#[derive(Debug)]
pub struct PollWindow {
    /// `poller.concurrency`, which a reload may change.
    max: AtomicUsize,
    floor: usize,
    sinks: Vec<Arc<Backlog>>,
    state: Mutex<State>,
    freed: Notify,
    stats: Arc<WindowStats>,
}

/// One poll's place in the window, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    window: Arc<PollWindow>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.window.finished();
    }
}

impl PollWindow {
    /// A window of at most `max` polls, following `sinks`.
    pub fn new(max: usize, sinks: Vec<Arc<Backlog>>, stats: Arc<WindowStats>) -> Arc<PollWindow> {
        let max = max.max(1);
        // A few polls in flight hold little: windows of up to 8 are never
        // cut.
        let floor = (max / 8).max(8).min(max);
        let episodes = episodes(&sinks);
        Arc::new(PollWindow {
            max: AtomicUsize::new(max),
            floor,
            sinks,
            state: Mutex::new(State {
                size: floor,
                in_flight: 0,
                episodes,
            }),
            freed: Notify::new(),
            stats,
        })
    }

    /// `poller.concurrency`: the most the window opens to.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// A new `poller.concurrency` (a reload): a smaller one closes the
    /// window at once (polls in flight finish), a larger one lets it grow
    /// on as polls end.
    pub fn set_max(&self, max: usize) {
        let max = max.max(1);
        self.max.store(max, Ordering::Relaxed);
        let mut s = self.state.lock();
        s.size = s.size.min(max);
        drop(s);
        self.freed.notify_waiters();
    }

    /// How many polls may be in flight now.
    pub fn size(&self) -> usize {
        let mut s = self.state.lock();
        self.follow_sinks(&mut s);
        s.size
    }

    pub fn in_flight(&self) -> usize {
        self.state.lock().in_flight
    }

    /// How many more polls may start now.
    pub fn room(&self) -> usize {
        let mut s = self.state.lock();
        self.follow_sinks(&mut s);
        s.size.saturating_sub(s.in_flight)
    }

    /// A place for one more poll, if the window has room now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let mut s = self.state.lock();
        self.follow_sinks(&mut s);
        if s.in_flight >= s.size {
            return None;
        }
        s.in_flight += 1;
        Some(Slot {
            window: self.clone(),
        })
    }

    /// A place for one more poll, waiting until the window has room.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so that a poll ending between
            // the check and the wait is not missed.
            freed.as_mut().enable();
            if let Some(slot) = self.try_acquire() {
                return slot;
            }
            freed.await;
        }
    }

    /// A poll ended (its results handed to the writers): the window grows
    /// by one unless a sink is behind.
    fn finished(&self) {
        {
            let mut s = self.state.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            self.follow_sinks(&mut s);
            if !self.sinks.iter().any(|b| b.is_behind()) && s.size < self.max() {
                s.size += 1;
            }
        }
        self.freed.notify_waiters();
    }

    /// Cuts the window once for each time a sink fell behind since the
    /// last look.
    fn follow_sinks(&self, s: &mut State) {
        let now = episodes(&self.sinks);
        if now == s.episodes {
            return;
        }
        s.episodes = now;
        let size = (s.in_flight.min(s.size) / 2).max(self.floor.min(self.max()));
        if size < s.size {
            tracing::debug!(
                from = s.size,
                to = size,
                in_flight = s.in_flight,
                "a sink fell behind: fewer polls in flight until it keeps up"
            );
            s.size = size;
        }
        self.stats.cuts.fetch_add(1, Ordering::Relaxed);
        let smallest = self.stats.smallest.load(Ordering::Relaxed);
        if smallest == 0 || (s.size as u64) < smallest {
            self.stats.smallest.store(s.size as u64, Ordering::Relaxed);
        }
    }
}

fn episodes(sinks: &[Arc<Backlog>]) -> u64 {
    sinks
        .iter()
        .map(|b| b.stats().episodes.load(Ordering::Relaxed))
        .sum()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backlog::Bound;

    fn sink(units: u64) -> Arc<Backlog> {
        Arc::new(Backlog::new(
            "the test sink",
            Bound {
                units,
                bytes: 1 << 30,
            },
        ))
    }

    fn window(max: usize, sink: &Arc<Backlog>) -> Arc<PollWindow> {
        PollWindow::new(max, vec![sink.clone()], Arc::default())
    }

    #[test]
    fn starts_at_an_eighth_and_doubles_as_polls_end_while_the_sinks_keep_up() {
        let s = sink(100);
        let w = window(64, &s);
        assert_eq!(w.size(), 8);
        let slots: Vec<Slot> = (0..8).map(|_| w.try_acquire().unwrap()).collect();
        assert!(w.try_acquire().is_none(), "a ninth poll started");
        drop(slots);
        assert_eq!((w.size(), w.in_flight()), (16, 0));
        for _ in 0..10 {
            let slots: Vec<Slot> = (0..w.size()).map(|_| w.try_acquire().unwrap()).collect();
            drop(slots);
        }
        // Never past poller.concurrency.
        assert_eq!(w.size(), 64);
        assert_eq!(w.room(), 64);
    }

    #[tokio::test]
    async fn a_sink_falling_behind_halves_the_polls_in_flight_and_stops_growth() {
        let s = sink(10);
        let w = window(64, &s);
        let mut slots: Vec<Slot> = Vec::new();
        while w.size() < 64 {
            slots.extend((0..w.room()).map(|_| w.try_acquire().unwrap()));
            slots.clear();
        }
        slots.extend((0..40).map(|_| w.try_acquire().unwrap()));
        s.admit(10, 0).await;
        assert!(s.is_behind());
        // Half of the 40 in flight.
        assert_eq!(w.size(), 20);
        assert_eq!(w.room(), 0);
        // Polls ending while the sink is behind give back their place but
        // do not widen the window.
        slots.truncate(10);
        assert_eq!((w.size(), w.room()), (20, 10));
        // Once the sink has caught up, each poll that ends widens it again.
        s.release(10, 0);
        assert!(!s.is_behind());
        slots.truncate(5);
        assert_eq!((w.size(), w.room()), (25, 20));
        // A second episode cuts again, never below the start size.
        s.admit(10, 0).await;
        assert_eq!(w.size(), 8);
        let stats = &w.stats;
        assert_eq!(stats.cuts.load(Ordering::Relaxed), 2);
        assert_eq!(stats.smallest.load(Ordering::Relaxed), 8);
    }

    #[tokio::test]
    async fn a_start_waits_for_a_place_and_takes_the_first_one_given_back() {
        let s = sink(100);
        let w = PollWindow::new(1, vec![s], Arc::default());
        let first = w.try_acquire().unwrap();
        let waiter = {
            let w = w.clone();
            tokio::spawn(async move { w.acquire().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "started past the window");
        drop(first);
        let second = waiter.await.unwrap();
        assert_eq!(w.in_flight(), 1);
        drop(second);
        assert_eq!(w.in_flight(), 0);
    }

    #[test]
    fn a_new_concurrency_closes_the_window_at_once_or_lets_it_grow_further() {
        let s = sink(100);
        let w = window(16, &s);
        for _ in 0..4 {
            let slots: Vec<Slot> = (0..w.room()).map(|_| w.try_acquire().unwrap()).collect();
            drop(slots);
        }
        assert_eq!(w.size(), 16);
        let held: Vec<Slot> = (0..10).map(|_| w.try_acquire().unwrap()).collect();
        w.set_max(4);
        assert_eq!((w.max(), w.size(), w.room()), (4, 4, 0));
        drop(held);
        assert_eq!(w.size(), 4, "grew past the new concurrency");
        w.set_max(32);
        for _ in 0..8 {
            let slots: Vec<Slot> = (0..w.room()).map(|_| w.try_acquire().unwrap()).collect();
            drop(slots);
        }
        assert_eq!(w.size(), 32);
    }
}
