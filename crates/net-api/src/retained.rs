//! What survives a reset within one run: the RTC's memory. On a board the RTC block keeps its
//! 128 user words (`rtcmem`) through every reset but a power cut, and `rtctime.dsleep` leaves the
//! clock there for the next boot to pick up. `device::run_with` makes one [`Retained`] per run and
//! hands it to every boot; modules reach it with `rt.state::<Retained>(..)` (see [`Retained::of`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{ResetCause, Runtime};

/// `RTC_USER_MEM_NUM_DWORDS`: the user words of RTC memory.
pub const RTC_USER_WORDS: usize = 128;

/// The RTC clock as `rtctime.dsleep` leaves it for the boot that follows the sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepingClock {
    /// Unix time, in microseconds, at which the device wakes (uptime 0 of the next boot).
    pub wake_us: u64,
    /// The clock rate offset (`rtctime.get()`'s third value); deep sleep keeps it.
    pub rate: i32,
}

#[derive(Debug)]
pub struct RetainedState {
    pub rtcmem: [u32; RTC_USER_WORDS],
    /// Set by `rtctime.dsleep` when the clock had time; only a deep-sleep wake picks it up.
    pub clock: Option<SleepingClock>,
    /// How long the device sleeps before its next boot (`rtctime.dsleep`).
    pub sleep: Option<Duration>,
    /// The ESP32's system time (`time`, µs) when the last boot ended: its RTC timer and boot-time
    /// registers keep counting through every reset but power-on.
    pub system_time_us: Option<i64>,
}

/// The run's RTC memory, shared by every boot of the run.
#[derive(Debug, Clone)]
pub struct Retained(Rc<RefCell<RetainedState>>);

impl Default for Retained {
    fn default() -> Self {
        Retained::power_on()
    }
}

impl Retained {
    /// RTC memory at power-on. The chip's RTC RAM holds no defined value then; scripts must not
    /// rely on zeros (the usual idiom writes a magic word), so it starts with a fixed pattern of
    /// noise: the same on every run, never all zeros.
    pub fn power_on() -> Retained {
        let mut words = [0u32; RTC_USER_WORDS];
        let mut x: u32 = 0x9E37_79B9;
        for w in &mut words {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *w = x;
        }
        Retained(Rc::new(RefCell::new(RetainedState {
            rtcmem: words,
            clock: None,
            sleep: None,
            system_time_us: None,
        })))
    }

    /// The boot's view of the run's RTC memory.
    pub fn of(rt: &Runtime) -> Retained {
        (*rt.state(|_| Retained::power_on())).clone()
    }

    pub fn borrow(&self) -> std::cell::Ref<'_, RetainedState> {
        self.0.borrow()
    }

    pub fn borrow_mut(&self) -> std::cell::RefMut<'_, RetainedState> {
        self.0.borrow_mut()
    }

    /// What a reset does to the RTC: the clock survives only a deep-sleep wake (the firmware
    /// resets its time keeping on any other boot). Returns how long the device sleeps first.
    pub fn after_reset(&self, cause: ResetCause) -> Option<Duration> {
        let mut st = self.0.borrow_mut();
        let sleep = st.sleep.take();
        if cause != ResetCause::DeepSleep {
            st.clock = None;
            return None;
        }
        sleep
    }
}
