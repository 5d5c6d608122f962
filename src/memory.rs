//! The poller's resident memory against `poller.memory_high`.
//!
//! A poll's memory comes and goes with it: what it walked, the rows it
//! read, and its results until the writers take them. How much depends on
//! the device (a 500-port chassis holds a hundred times what a switch
//! does) and on the moment (a first poll logs every field it finds), so a
//! bound on polls in flight alone does not bound memory. The writers bound
//! what they hold (`crate::backlog`); this gate holds back the rest: at or
//! above the mark no new poll starts, and polls start again once resident
//! memory is below nine tenths of it. The polls in flight carry on and
//! still grow, so memory passes the mark by what they add (75 MB over a
//! 160 MiB mark with 400 in flight in the cycle benchmark): the mark
//! belongs that far below a hard limit. A poll always starts when none is
//! in flight, so that one device larger than the mark is still polled.
//! Off by default: holding polls back lengthens the cycle
//! (benches/RESULTS.md).
//!
//! Resident memory is read from the kernel (`/proc/self/statm`), not
//! counted by the allocator, so the gate sees what an operator's `ps`, a
//! container's memory limit and the OOM killer see.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::telemetry::resident_bytes;

/// How often a waiting start reads resident memory again: memory falls as
/// polls finish, which takes milliseconds to seconds.
const RECHECK: Duration = Duration::from_millis(50);

/// Counters of the gate since it was made.
#[derive(Debug, Default)]
pub struct MemoryStats {
    /// Times resident memory reached the mark.
    pub episodes: AtomicU64,
    /// Poll starts that waited, and the time they waited in microseconds.
    pub waits: AtomicU64,
    pub wait_micros: AtomicU64,
    /// Time spent at or above the mark, until the last fall below it.
    pub high_micros: AtomicU64,
}

type Reader = Box<dyn Fn() -> Option<u64> + Send + Sync>;

pub struct MemoryGate {
    /// Bytes; 0: no mark.
    high: u64,
    low: u64,
    resident: Reader,
    /// Since when memory has been high.
    high_since: Mutex<Option<Instant>>,
    stats: MemoryStats,
}

impl std::fmt::Debug for MemoryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryGate")
            .field("high", &self.high)
            .field("low", &self.low)
            .finish_non_exhaustive()
    }
}

impl MemoryGate {
    /// The gate for `poller.memory_high` MiB of this process's resident
    /// memory (0: none).
    pub fn new(high_mib: u64) -> MemoryGate {
        MemoryGate::reading(high_mib << 20, Box::new(resident_bytes))
    }

    /// A gate at `high` bytes of what `resident` reads.
    pub fn reading(high: u64, resident: Reader) -> MemoryGate {
        MemoryGate {
            high,
            low: high / 10 * 9,
            resident,
            high_since: Mutex::default(),
            stats: MemoryStats::default(),
        }
    }

    pub fn stats(&self) -> &MemoryStats {
        &self.stats
    }

    /// The mark in MiB, for logs (0: none).
    pub fn high_mib(&self) -> u64 {
        self.high >> 20
    }

    /// Whether no new poll should start now: resident memory has reached
    /// the mark and not yet fallen below nine tenths of it.
    pub fn is_high(&self) -> bool {
        if self.high == 0 {
            return false;
        }
        // Without a reading (not Linux, /proc not mounted) the gate stays
        // open: better polls than none.
        let Some(resident) = (self.resident)() else {
            return false;
        };
        let mut since = self.high_since.lock();
        match *since {
            None if resident >= self.high => {
                *since = Some(Instant::now());
                self.stats.episodes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    resident_mib = resident >> 20,
                    memory_high_mib = self.high >> 20,
                    "resident memory reached poller.memory_high: new polls wait until it falls below {} MiB",
                    self.low >> 20
                );
                true
            }
            Some(t) if resident < self.low => {
                *since = None;
                self.stats
                    .high_micros
                    .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                tracing::warn!(
                    resident_mib = resident >> 20,
                    high_for = ?t.elapsed(),
                    "resident memory is below poller.memory_high again: polls resume"
                );
                false
            }
            current => current.is_some(),
        }
    }

    /// Waits until a new poll may start: memory is not high, or `idle`
    /// says no poll is in flight (waiting then would wait forever).
    pub async fn room(&self, idle: impl Fn() -> bool) {
        let mut waited: Option<Instant> = None;
        while self.is_high() && !idle() {
            waited.get_or_insert_with(|| {
                self.stats.waits.fetch_add(1, Ordering::Relaxed);
                Instant::now()
            });
            tokio::time::sleep(RECHECK).await;
        }
        if let Some(since) = waited {
            self.stats
                .wait_micros
                .fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Seconds memory has been high in all, the current episode included.
    pub fn seconds_high(&self) -> f64 {
        let current = self
            .high_since
            .lock()
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.stats.high_micros.load(Ordering::Relaxed) as f64 / 1e6 + current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    const MIB: u64 = 1 << 20;

    fn gate(high: u64) -> (Arc<MemoryGate>, Arc<AtomicU64>) {
        let resident = Arc::new(AtomicU64::new(0));
        let r = resident.clone();
        let gate = MemoryGate::reading(high, Box::new(move || Some(r.load(Ordering::Relaxed))));
        (Arc::new(gate), resident)
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let bytes = resident_bytes().expect("/proc/self/statm on Linux");
        // A test binary with its runtime holds more than a megabyte and
        // less than the machine.
        assert!(bytes > MIB, "{bytes}");
        let before = bytes;
        // Other tests share the process and may free memory meanwhile:
        // hold much more than the margin asked for.
        let held: Vec<u8> = vec![1; 128 * MIB as usize];
        let after = resident_bytes().unwrap();
        assert!(after >= before + 64 * MIB, "{before} then {after}");
        drop(held);
    }

    #[test]
    fn the_gate_closes_at_the_mark_and_opens_below_nine_tenths() {
        let (g, resident) = gate(100 * MIB);
        resident.store(99 * MIB, Ordering::Relaxed);
        assert!(!g.is_high());
        resident.store(100 * MIB, Ordering::Relaxed);
        assert!(g.is_high());
        // Between the marks it stays as it was.
        resident.store(95 * MIB, Ordering::Relaxed);
        assert!(g.is_high());
        resident.store(89 * MIB, Ordering::Relaxed);
        assert!(!g.is_high());
        resident.store(95 * MIB, Ordering::Relaxed);
        assert!(!g.is_high());
        assert_eq!(g.stats().episodes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn no_mark_and_no_reading_leave_the_gate_open() {
        assert!(!MemoryGate::reading(0, Box::new(|| Some(u64::MAX))).is_high());
        assert!(!MemoryGate::reading(MIB, Box::new(|| None)).is_high());
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_waits_while_high_unless_nothing_is_in_flight() {
        let (g, resident) = gate(100 * MIB);
        resident.store(120 * MIB, Ordering::Relaxed);
        let in_flight = Arc::new(AtomicBool::new(true));
        let waiter = {
            let (g, in_flight) = (g.clone(), in_flight.clone());
            tokio::spawn(async move { g.room(|| !in_flight.load(Ordering::Relaxed)).await })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "started while memory was high");
        resident.store(80 * MIB, Ordering::Relaxed);
        tokio::time::sleep(RECHECK * 2).await;
        assert!(waiter.is_finished(), "still waiting once memory fell");
        assert_eq!(g.stats().waits.load(Ordering::Relaxed), 1);
        assert!(g.seconds_high() >= 5.0);

        // High, but no poll in flight: the start goes ahead.
        resident.store(120 * MIB, Ordering::Relaxed);
        in_flight.store(false, Ordering::Relaxed);
        tokio::time::timeout(
            Duration::from_secs(1),
            g.room(|| !in_flight.load(Ordering::Relaxed)),
        )
        .await
        .expect("a poll starts when none is in flight");
    }
}
