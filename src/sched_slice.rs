//! The scheduler's time slice for a command that runs a few microseconds
//! each time it wakes.
//!
//! `ironpoll get` and `walk` spend nearly all their time asleep on a
//! socket; each reply wakes them for a few microseconds of decoding and
//! printing, and the request they then send wakes whoever reads it. Linux's
//! fair scheduler (EEVDF) gives each task a slice, 0.7 ms or more by
//! default, and runs first the eligible task whose slice ends soonest. A
//! task woken on the same CPU (a wake-up from a socket write pulls its
//! reader to the writer's CPU) often ends its slice sooner and preempts
//! the writer at once, which then pays a second pair of context switches
//! to reach its next sleep: with a local agent that happened on about half
//! of a walk's requests (benches/RESULTS.md). A task that asks for the
//! shortest slice the kernel accepts (sched_attr.sched_runtime, honoured
//! for fair tasks since Linux 6.12, ignored before) finishes its few
//! microseconds and sleeps by itself. Its share of the CPU is unchanged:
//! the slice sets when a task runs, not how much.

use std::time::Duration;

/// The slice asked for: the least the kernel accepts.
pub const SHORT_SLICE: Duration = Duration::from_micros(100);

/// `struct sched_attr` as `SCHED_ATTR_SIZE_VER0` defines it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

/// Asks for [`SHORT_SLICE`] for the calling thread, and so for the threads
/// it starts afterwards, which inherit it. The thread's policy, nice value
/// and reset-on-fork flag are kept; a thread that is not an ordinary or
/// batch one (idle, real-time, deadline) is left alone. Returns the slice
/// the kernel reports afterwards: `None` where it keeps none of its own
/// (before Linux 6.12) or refused.
pub fn request_short_slice() -> Option<Duration> {
    let mut attr = get_attr().ok()?;
    if attr.policy != SCHED_OTHER && attr.policy != SCHED_BATCH {
        return None;
    }
    attr.flags &= SCHED_FLAG_RESET_ON_FORK;
    attr.runtime = SHORT_SLICE.as_nanos() as u64;
    if let Err(e) = set_attr(&attr) {
        tracing::debug!(error = %e, "The scheduler refused a short slice.");
        return None;
    }
    let now = get_attr().ok()?.runtime;
    (now != 0).then(|| Duration::from_nanos(now))
}

/// The calling thread's scheduling attributes.
fn get_attr() -> std::io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as libc::c_uint;
    // SAFETY: sched_getattr writes at most `size` bytes into `attr`, a
    // struct of that size laid out as the kernel's; pid 0 is this thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(attr)
}

fn set_attr(attr: &SchedAttr) -> std::io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..*attr
    };
    // SAFETY: sched_setattr reads `attr.size` bytes of a struct laid out
    // as the kernel's; pid 0 is this thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux 6.12 or later, which keeps a slice per task.
    fn kernel_keeps_custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (6, 12)
    }

    /// Runs `f` on a thread of its own: scheduling attributes are a
    /// thread's, and the test harness's threads must keep theirs.
    fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().unwrap()
    }

    #[test]
    fn the_slice_is_taken_and_the_nice_value_kept() {
        let (got, attr) = on_own_thread(|| {
            // Raising one's own nice value needs no privilege.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 7) }, 0);
            let got = request_short_slice();
            (got, get_attr().unwrap())
        });
        assert_eq!(attr.nice, 7, "the thread's nice value was reset");
        assert_eq!(attr.policy, SCHED_OTHER);
        if kernel_keeps_custom_slices() {
            assert_eq!(got, Some(SHORT_SLICE));
            assert_eq!(attr.runtime, SHORT_SLICE.as_nanos() as u64);
        }
    }

    #[test]
    fn a_thread_started_afterwards_inherits_the_slice() {
        let child = on_own_thread(|| {
            request_short_slice();
            std::thread::spawn(|| get_attr().unwrap().runtime)
                .join()
                .unwrap()
        });
        if kernel_keeps_custom_slices() {
            assert_eq!(child, SHORT_SLICE.as_nanos() as u64);
        }
    }

    #[test]
    fn an_idle_thread_is_left_alone() {
        let (got, before, after) = on_own_thread(|| {
            let param = libc::sched_param { sched_priority: 0 };
            assert_eq!(
                unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) },
                0
            );
            let before = get_attr().unwrap();
            (request_short_slice(), before, get_attr().unwrap())
        });
        assert_eq!(got, None);
        assert_eq!(after.policy, libc::SCHED_IDLE as u32);
        assert_eq!(after.runtime, before.runtime);
    }
}
