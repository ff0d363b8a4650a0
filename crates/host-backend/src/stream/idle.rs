//! Idle timeouts for many connections on one timer, as a server's timeout covers all it accepted.
//!
//! A timer of its own per connection would be armed on every accept, and tokio wakes its driver
//! (a syscall) for each timer armed earlier than the ones it knows of, so a server taking
//! thousands of short connections a second would pay that for each. Instead a connection only
//! notes the moment of its last activity ([`IdleWatch::touch`]), and one sweeper task per
//! [`IdleTimer`], started with its first connection and gone with its last, looks at them all
//! when the earliest of them could be due: those idle for the whole timeout are marked expired and
//! their tasks woken, to close themselves. Sweeps are at least 1/64 of the timeout apart, so a
//! connection may close that much late, well inside the board's one-second granularity.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

/// One idle timeout shared by connections (a server's). Cheap to clone.
#[derive(Clone)]
pub struct IdleTimer(Rc<Timer>);

struct Timer {
    timeout: Duration,
    watched: RefCell<Slots>,
    sweeping: Cell<bool>,
}

/// The watched connections, by slot; a freed slot is reused, so the table is as large as the
/// most connections ever open at once, however many come and go.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Watched>>,
    free: Vec<usize>,
}

struct Watched {
    last: Instant,
    expired: bool,
    waker: Waker,
}

impl std::fmt::Debug for IdleTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdleTimer({:?})", self.0.timeout)
    }
}

impl IdleTimer {
    pub fn new(timeout: Duration) -> IdleTimer {
        IdleTimer(Rc::new(Timer {
            timeout,
            watched: RefCell::default(),
            sweeping: Cell::new(false),
        }))
    }

    /// Starts watching a connection whose task `waker` wakes; idle from now on.
    /// Must run inside a `LocalSet` (the sweeper is a local task).
    pub(super) fn watch(&self, waker: &Waker) -> IdleWatch {
        let w = Watched {
            last: Instant::now(),
            expired: false,
            waker: waker.clone(),
        };
        let slot = {
            let mut t = self.0.watched.borrow_mut();
            match t.free.pop() {
                Some(i) => {
                    t.slots[i] = Some(w);
                    i
                }
                None => {
                    t.slots.push(Some(w));
                    t.slots.len() - 1
                }
            }
        };
        self.0.ensure_sweeping();
        IdleWatch {
            timer: self.0.clone(),
            slot,
        }
    }
}

/// A connection's side of its idle timeout; dropping it stops the watch.
pub(super) struct IdleWatch {
    timer: Rc<Timer>,
    slot: usize,
}

impl IdleWatch {
    fn with<R>(&self, f: impl FnOnce(&mut Watched) -> R) -> R {
        let mut t = self.timer.watched.borrow_mut();
        f(t.slots[self.slot].as_mut().expect("watched until dropped"))
    }

    /// Something was received or written: idle from now. Activity seen before the task looked
    /// at an expiry the sweeper just marked undoes it, as a timer re-checked on firing would.
    pub(super) fn touch(&self) {
        let revived = self.with(|w| {
            w.last = Instant::now();
            std::mem::replace(&mut w.expired, false)
        });
        if revived {
            self.timer.ensure_sweeping();
        }
    }

    /// The connection has been idle for the whole timeout. `waker` is the task's, kept for the
    /// sweeper to wake it with.
    pub(super) fn expired(&self, waker: &Waker) -> bool {
        self.with(|w| {
            if !w.waker.will_wake(waker) {
                w.waker = waker.clone();
            }
            w.expired
        })
    }
}

impl Drop for IdleWatch {
    fn drop(&mut self) {
        let mut t = self.timer.watched.borrow_mut();
        t.slots[self.slot] = None;
        t.free.push(self.slot);
    }
}

/// Clears `sweeping` however the sweeper ends (nothing left to watch, or its `LocalSet` dropped
/// with it, even before it first ran), so the next connection starts a new one.
struct Sweeping(Rc<Timer>);

impl Drop for Sweeping {
    fn drop(&mut self) {
        self.0.sweeping.set(false);
    }
}

async fn sweep(timer: Sweeping) {
    let gap = timer.0.timeout / 64;
    while let Some(due) = timer.0.sweep(Instant::now()) {
        tokio::time::sleep_until(due.max(Instant::now() + gap)).await;
    }
}

impl Timer {
    /// Starts the sweeper unless it is running.
    fn ensure_sweeping(self: &Rc<Self>) {
        if !self.sweeping.replace(true) {
            tokio::task::spawn_local(sweep(Sweeping(self.clone())));
        }
    }

    /// Expires the connections idle since `now - timeout`; the earliest moment another could be
    /// due, or `None` when none is left to watch.
    fn sweep(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut t = self.watched.borrow_mut();
        for w in t.slots.iter_mut().flatten().filter(|w| !w.expired) {
            let due = w.last + self.timeout;
            if due <= now {
                w.expired = true;
                w.waker.wake_by_ref();
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a runtime whose clock is paused: a sleep completes as soon as nothing else
    /// can run, at exactly its deadline, so the timings asserted here hold on a loaded machine.
    fn local<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn slots_of_closed_connections_are_reused() {
        local(async {
            let timer = IdleTimer::new(Duration::from_secs(30));
            let waker = Waker::noop();
            let kept = timer.watch(waker);
            for _ in 0..1000 {
                drop(timer.watch(waker));
            }
            assert_eq!(timer.0.watched.borrow().slots.len(), 2);
            drop(kept);
        });
    }

    #[test]
    fn the_sweeper_ends_with_its_last_connection_and_the_next_one_starts_another() {
        local(async {
            let timer = IdleTimer::new(Duration::from_millis(50));
            let w = timer.watch(Waker::noop());
            assert!(timer.0.sweeping.get());
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(w.expired(Waker::noop()));
            assert!(!timer.0.sweeping.get(), "nothing left to watch");
            drop(w);
            let w = timer.watch(Waker::noop());
            assert!(timer.0.sweeping.get());
            assert!(!w.expired(Waker::noop()));
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(w.expired(Waker::noop()));
        });
    }

    #[test]
    fn activity_after_the_sweep_undoes_the_expiry_and_the_watch_goes_on() {
        local(async {
            let timer = IdleTimer::new(Duration::from_millis(50));
            let w = timer.watch(Waker::noop());
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(!timer.0.sweeping.get(), "swept and ended");
            w.touch();
            assert!(!w.expired(Waker::noop()));
            assert!(timer.0.sweeping.get(), "watching again");
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(w.expired(Waker::noop()));
        });
    }

    #[test]
    fn a_sweeper_dropped_before_it_ran_lets_the_next_watch_start_one() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let timer = IdleTimer::new(Duration::from_millis(50));
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async { drop(timer.watch(Waker::noop())) });
        drop(local);
        assert!(!timer.0.sweeping.get());
    }
}
