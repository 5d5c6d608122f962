//! The allocator's settings. ironpoll allocates through mimalloc (the
//! binary's global allocator). mimalloc 3's defaults favour speed over
//! giving memory back: arenas are committed whole where the OS
//! overcommits, and freed pages are purged only after a second (arenas:
//! ten). A poller's memory comes and goes with the polls in flight, so
//! with those defaults its resident size follows the busiest moment of the
//! last seconds rather than what it holds. Figures in benches/RESULTS.md.
//!
//! The settings must be in place before the first allocation, which
//! reserves the first arena and happens before `main`: so they are applied
//! as the program loads, by a function the crate holding the global
//! allocator registers with [`tune_allocator_at_load!`]. They are defaults:
//! a `MIMALLOC_*` variable in the environment still wins, so an operator
//! can try others without a rebuild.

use std::ffi::c_long;

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_e`.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e`.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets ironpoll's defaults for mimalloc's options.
pub fn set_defaults() {
    for (option, value) in [
        // Commit arena memory as it is used, not the whole arena at once.
        (ARENA_EAGER_COMMIT, 0),
        // Hand freed pages back at once.
        (PURGE_DELAY, 0),
    ] {
        // SAFETY: mi_option_set_default stores a value for an option that
        // the environment has not set; it neither allocates nor reads
        // anything else.
        unsafe { libmimalloc_sys::mi_option_set_default(option, value as c_long) }
    }
}

/// Registers [`set_defaults`] to run as the program loads, before Rust's
/// runtime makes its first allocation. Used once, next to the
/// `#[global_allocator]`.
#[macro_export]
macro_rules! tune_allocator_at_load {
    () => {
        #[cfg(target_os = "linux")]
        #[used]
        #[unsafe(link_section = ".init_array")]
        static TUNE_ALLOCATOR_AT_LOAD: extern "C" fn() = {
            extern "C" fn tune() {
                $crate::alloc::set_defaults();
            }
            tune
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option numbers are mimalloc 3's: each one reads back the
    /// default mimalloc documents for it (this test binary does not
    /// register the load-time hook), so a mimalloc that renumbered its
    /// options fails here rather than tuning the wrong thing.
    #[test]
    fn option_numbers_match_the_linked_mimalloc() {
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            // 2: eager commit where the OS overcommits.
            assert_eq!(
                unsafe { libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT) },
                2
            );
        }
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 1000);
        }
    }
}
