//! The device clock: microseconds since boot, on a real or a virtual time line.
//!
//! Real time is simply the host's monotonic clock. Virtual time is the same clock plus an offset that
//! the event loop grows when the device is quiescent, so the next timer fires at once instead of after
//! a real wait. The clock itself never decides when to jump: the loop does, because only it knows
//! whether socket I/O could still deliver an event first (decisions.md §3).

use std::time::{Duration, Instant};

/// A point on the device's time line: the time since boot.
pub type SimTime = Duration;

#[derive(Debug, Clone)]
pub struct Clock {
    boot: Instant,
    skipped: Duration,
    virtual_time: bool,
}

impl Clock {
    /// A clock that starts at zero now.
    pub fn new(virtual_time: bool) -> Self {
        Clock {
            boot: Instant::now(),
            skipped: Duration::ZERO,
            virtual_time,
        }
    }

    pub fn is_virtual(&self) -> bool {
        self.virtual_time
    }

    /// The device's uptime.
    pub fn now(&self) -> SimTime {
        self.boot.elapsed() + self.skipped
    }

    /// The host instant at which the device clock will read `t`, for sleeping until a timer is due.
    pub fn host_instant(&self, t: SimTime) -> Instant {
        self.boot + t.saturating_sub(self.skipped)
    }

    /// Moves a virtual clock forward to `t` (never backwards). A real clock ignores this.
    pub fn jump_to(&mut self, t: SimTime) {
        if self.virtual_time {
            let now = self.now();
            if t > now {
                self.skipped += t - now;
            }
        }
    }

    /// Lets `d` pass: a virtual clock jumps, a real one sleeps (`tmr.delay` busy-waits on a board).
    pub fn pass(&mut self, d: Duration) {
        if self.virtual_time {
            self.skipped += d;
        } else {
            std::thread::sleep(d);
        }
    }
}

/// CPU time the calling thread has used. The device watchdog counts this, not wall time: a board's
/// watchdog measures time the chip spent running the script, and a loaded host that pauses the
/// simulator must not make an innocent callback look like a runaway loop.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass; CLOCK_THREAD_CPUTIME_ID exists on
    // every Unix this builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_jump_moves_now_and_host_instant_stays_near_present() {
        let mut c = Clock::new(true);
        c.jump_to(Duration::from_secs(3600));
        assert!(c.now() >= Duration::from_secs(3600));
        assert!(c.host_instant(Duration::from_secs(3600)) <= Instant::now());
    }

    #[test]
    fn real_clock_ignores_jumps() {
        let mut c = Clock::new(false);
        c.jump_to(Duration::from_secs(3600));
        assert!(c.now() < Duration::from_secs(1));
    }

    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let t0 = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - t0;
        let mut x = 0u64;
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(slept < Duration::from_millis(25), "{slept:?}");
        assert!(thread_cpu_time() - t0 >= Duration::from_millis(10));
    }

    #[test]
    fn jump_never_goes_backwards() {
        let mut c = Clock::new(true);
        c.jump_to(Duration::from_secs(10));
        c.jump_to(Duration::from_secs(5));
        assert!(c.now() >= Duration::from_secs(10));
    }
}
