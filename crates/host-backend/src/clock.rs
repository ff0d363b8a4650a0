//! The device clock: microseconds since boot, on a real or a virtual time line.
//!
//! Real time is simply the host's monotonic clock. Virtual time is the same clock plus an offset that
//! the event loop grows when the device is quiescent, so the next timer fires at once instead of after
//! a real wait. The clock itself never decides when to jump: the loop does, because only it knows
//! whether socket I/O could still deliver an event first.

use std::time::{Duration, Instant};

/// A point on the device's time line: the time since boot.
pub type SimTime = Duration;

/// How far one read of a frozen clock by the script moves it: a board's `tmr.now()` takes time too,
/// and a script that busy-waits on the clock must see it move.
pub const READ_TICK: Duration = Duration::from_micros(1);

#[derive(Debug, Clone)]
pub struct Clock {
    virtual_time: bool,
    /// The device time at `anchor`; while running, the clock reads `at_anchor + anchor.elapsed()`.
    at_anchor: SimTime,
    anchor: Instant,
    /// A virtual clock stands still while nothing outside the device could act (no socket, no
    /// console), so what runs between two jumps takes no device time and timer order does not
    /// depend on how busy the host is.
    frozen: Option<SimTime>,
}

impl Clock {
    /// A clock that starts at zero now; a virtual one starts frozen.
    pub fn new(virtual_time: bool) -> Self {
        Clock {
            virtual_time,
            at_anchor: Duration::ZERO,
            anchor: Instant::now(),
            frozen: virtual_time.then_some(Duration::ZERO),
        }
    }

    pub fn is_virtual(&self) -> bool {
        self.virtual_time
    }

    /// The device's uptime.
    pub fn now(&self) -> SimTime {
        self.frozen
            .unwrap_or_else(|| self.at_anchor + self.anchor.elapsed())
    }

    /// The uptime as the script reads it: a frozen clock moves by [`READ_TICK`] per read.
    pub fn read(&mut self) -> SimTime {
        if let Some(t) = &mut self.frozen {
            *t += READ_TICK;
        }
        self.now()
    }

    /// Stops a virtual clock (a real one never stops).
    pub fn freeze(&mut self) {
        if self.virtual_time && self.frozen.is_none() {
            self.frozen = Some(self.now());
        }
    }

    /// Lets a frozen clock run at real speed again from where it stood.
    pub fn thaw(&mut self) {
        if let Some(t) = self.frozen.take() {
            self.at_anchor = t;
            self.anchor = Instant::now();
        }
    }

    /// The host instant at which the device clock will read `t`, for sleeping until a timer is due.
    /// For a frozen clock: when it would read `t` if it started running now.
    pub fn host_instant(&self, t: SimTime) -> Instant {
        match self.frozen {
            Some(f) => Instant::now() + t.saturating_sub(f),
            None => self.anchor + t.saturating_sub(self.at_anchor),
        }
    }

    /// Moves a virtual clock forward to `t` (never backwards). A real clock ignores this.
    pub fn jump_to(&mut self, t: SimTime) {
        if !self.virtual_time {
            return;
        }
        match &mut self.frozen {
            Some(f) => *f = (*f).max(t),
            None => {
                let now = self.now();
                if t > now {
                    self.at_anchor += t - now;
                }
            }
        }
    }

    /// Charges `d` of device time to work done while a virtual clock stands still (a posted task
    /// run back to back with others): a board's clock runs while its CPU does, so a script that
    /// keeps reposting a task still reaches its next timer. A running clock already counts it.
    pub fn charge(&mut self, d: Duration) {
        if let Some(f) = &mut self.frozen {
            *f += d;
        }
    }

    /// Lets `d` pass: a virtual clock jumps, a real one sleeps (`tmr.delay` busy-waits on a board).
    pub fn pass(&mut self, d: Duration) {
        if !self.virtual_time {
            std::thread::sleep(d);
        } else if let Some(f) = &mut self.frozen {
            *f += d;
        } else {
            self.at_anchor += d;
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
    fn charges_move_only_a_frozen_clock() {
        let mut c = Clock::new(true);
        c.charge(Duration::from_micros(10));
        assert_eq!(c.now(), Duration::from_micros(10));
        let mut r = Clock::new(false);
        r.charge(Duration::from_secs(3600));
        assert!(r.now() < Duration::from_secs(1));
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
    fn frozen_virtual_clock_moves_only_by_jumps_and_reads() {
        let mut c = Clock::new(true);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.now(), Duration::ZERO);
        c.jump_to(Duration::from_secs(1));
        assert_eq!(c.read(), Duration::from_secs(1) + READ_TICK);
        c.thaw();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now() >= Duration::from_secs(1) + Duration::from_millis(20));
        c.freeze();
        let t = c.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.now(), t);
    }

    #[test]
    fn jump_never_goes_backwards() {
        let mut c = Clock::new(true);
        c.jump_to(Duration::from_secs(10));
        c.jump_to(Duration::from_secs(5));
        assert!(c.now() >= Duration::from_secs(10));
    }
}
