//! Who polls which device: leases on devices, so that no device is polled
//! twice at once. In-process leases for a single node; the Redis backend
//! (LibreNMS's `librenms.lock:poller.device.<id>` keys) comes with
//! distributed polling and implements the same trait.
//!
//! A cluster of cron-driven `poller-wrapper.py` nodes shares devices
//! differently, by claims per step in memcached ([`wrapper`]).

pub mod memcached;
pub mod redis;
pub mod wrapper;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;

/// Leases on devices, each with an expiry.
pub trait Leases: Send + Sync {
    /// Takes the lease of a device for `ttl`; false when someone holds it.
    fn acquire(&self, device_id: u32, ttl: Duration) -> BoxFuture<'_, bool>;
    /// Keeps (or takes) the lease of a device for `ttl` from now, as
    /// LibreNMS re-locks a down device for `down_retry`.
    fn hold(&self, device_id: u32, ttl: Duration) -> BoxFuture<'_, ()>;
    fn release(&self, device_id: u32) -> BoxFuture<'_, ()>;
    /// Whether a device is leased now.
    fn is_held(&self, device_id: u32) -> BoxFuture<'_, bool>;
}

/// Leases in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    until: Mutex<HashMap<u32, Instant>>,
}

impl MemoryLeases {
    pub fn new() -> MemoryLeases {
        MemoryLeases::default()
    }

    fn held(&self, device_id: u32, now: Instant) -> bool {
        self.until
            .lock()
            .get(&device_id)
            .is_some_and(|until| *until > now)
    }
}

impl Leases for MemoryLeases {
    fn acquire(&self, device_id: u32, ttl: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let now = Instant::now();
            let mut map = self.until.lock();
            if map.get(&device_id).is_some_and(|u| *u > now) {
                return false;
            }
            map.insert(device_id, now + ttl);
            // Forget expired leases now and then so the map stays small.
            if map.len() > 1024 && device_id.is_multiple_of(64) {
                map.retain(|_, u| *u > now);
            }
            true
        })
    }

    fn hold(&self, device_id: u32, ttl: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.until.lock().insert(device_id, Instant::now() + ttl);
        })
    }

    fn release(&self, device_id: u32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.until.lock().remove(&device_id);
        })
    }

    fn is_held(&self, device_id: u32) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.held(device_id, Instant::now()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lease_excludes_others_until_it_expires_or_is_released() {
        let l = MemoryLeases::new();
        assert!(l.acquire(7, Duration::from_secs(10)).await);
        assert!(!l.acquire(7, Duration::from_secs(10)).await);
        assert!(l.acquire(8, Duration::from_secs(10)).await);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(l.acquire(7, Duration::from_secs(10)).await);
        l.release(7).await;
        assert!(!l.is_held(7).await);
        l.hold(7, Duration::from_secs(60)).await;
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!l.acquire(7, Duration::from_secs(10)).await);
    }
}
