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
    fn jump_never_goes_backwards() {
        let mut c = Clock::new(true);
        c.jump_to(Duration::from_secs(10));
        c.jump_to(Duration::from_secs(5));
        assert!(c.now() >= Duration::from_secs(10));
    }
}
