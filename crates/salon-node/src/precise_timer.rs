//! The driver's timer, precise to tens of microseconds where the platform allows.
//!
//! Tokio's timer wheel rounds every deadline up to its next millisecond tick, so slots
//! that are due every 20 ms leave 19 or 21 ms apart whenever the slot clock's phase
//! drifts across a tick: a pattern that changes with the phase, and the phase moves when
//! a microphone opens or closes (PROTOCOL §5.1). On Linux a `timerfd` wakes the runtime
//! at the deadline itself, so the spacing of slots is the clock's and nothing else's.

use std::time::Instant;

/// Waits until deadlines, more precisely than `tokio::time` where it can.
pub(crate) struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl PreciseTimer {
    /// A timer; on Linux a `timerfd`, or Tokio's timer if one cannot be made (it then
    /// only loses precision).
    pub(crate) fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .ok()
            .and_then(|fd| {
                // Deprecated because it accepts any raw descriptor (RUSTSEC-2026-0386);
                // an `OwnedFd` it owns until drop is the sound case, and its safe
                // replacement (`register`) is `unsafe`, which this crate forbids.
                #[allow(deprecated)]
                tokio::io::unix::AsyncFd::new(fd).ok()
            });
            Self { fd }
        }
        #[cfg(not(target_os = "linux"))]
        {
            Self {}
        }
    }

    /// Returns at `at` (at once if it has passed). One wait at a time: a new call
    /// re-arms the timer.
    pub(crate) async fn sleep_until(&self, at: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd
            && wait_timerfd(fd, at).await.is_ok()
        {
            return;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

/// Arms `fd` for `at` (relative to now: `Instant` is the monotonic clock, but its
/// reading is not exposed) and waits for it to expire.
#[cfg(target_os = "linux")]
async fn wait_timerfd(
    fd: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    at: Instant,
) -> std::io::Result<()> {
    use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
    use std::time::Duration;
    // A zero value would disarm the timer: a deadline that has passed expires in 1 ns.
    let left = at
        .saturating_duration_since(Instant::now())
        .max(Duration::from_nanos(1));
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        },
    };
    // Setting the time also clears an expiry nobody read.
    timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
    loop {
        let mut ready = fd.readable().await?;
        let mut expiries = [0u8; 8];
        // Readiness may be left over from an expiry before the re-arm: the read then
        // finds nothing (EAGAIN), `try_io` clears it, and we wait again.
        match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expiries)?)) {
            Ok(r) => return r.map(|_| ()),
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Over waits for deadlines at arbitrary sub-millisecond phases, none returns before
    /// its deadline. (How late it returns is a figure, not a test: the traffic capture's
    /// gaps show it.)
    #[tokio::test(flavor = "current_thread")]
    async fn never_wakes_before_the_deadline() {
        let timer = PreciseTimer::new();
        for i in 0..50u64 {
            let at = Instant::now() + Duration::from_micros(1_000 + 137 * i);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
        }
    }

    /// An expiry nobody waited for (the driver's loop dropped the wait for another
    /// event) does not end the next wait early.
    #[tokio::test(flavor = "current_thread")]
    async fn an_unread_expiry_does_not_end_the_next_wait() {
        let timer = PreciseTimer::new();
        let soon = Instant::now() + Duration::from_millis(1);
        // Polled once (armed), then dropped while the timer expires unread.
        tokio::select! {
            biased;
            () = timer.sleep_until(soon) => panic!("a 1 ms timer expired at once"),
            () = std::future::ready(()) => {}
        }
        std::thread::sleep(Duration::from_millis(3));
        let at = Instant::now() + Duration::from_millis(5);
        timer.sleep_until(at).await;
        assert!(Instant::now() >= at);
    }
}
