//! The device's event loop: the only place Lua is entered after boot.
//!
//! Each turn runs one job to completion (a delivered network event, a due timer, or a posted task),
//! then yields to the I/O tasks so that what the callback sent is handed to the host socket before
//! the next callback runs. When nothing is runnable the loop either ends the run (nothing could ever
//! run a callback again), jumps a virtual clock to the next timer (no I/O could deliver an event
//! first), or sleeps until an event or a timer arrives.
//!
//! With a console open (`console/mod.rs`) the loop also takes the typed input at every turn and
//! wakes for it when idle; an open console keeps the run alive and, like open sockets, stops the
//! virtual clock from jumping.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::time::Duration;

use mlua::Lua;

use crate::console::{Console, ConsoleInput};
use crate::runtime::{Job, ResetCause, Runtime, WatchdogBite};

/// Jobs run back to back before the loop yields to the I/O tasks under sustained load.
const JOBS_PER_YIELD: u32 = 64;

/// How a boot of the device ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was left that could run a callback.
    Finished,
    /// The main chunk failed to load or raised an error; the text is the message with its traceback.
    MainError(String),
    /// The device reset.
    Reset(ResetCause),
    /// The device clock passed the configured limit.
    TimedOut,
}

/// Runs one job with the watchdog armed; a watchdog bite becomes a reset request.
pub(crate) fn dispatch(rt: &Runtime, lua: &Lua, job: Job) {
    rt.feed_watchdog();
    match catch_unwind(AssertUnwindSafe(|| job(lua))) {
        Ok(Ok(())) => {}
        // No heap left to call the callback with (its arguments, its task): Lua's own words.
        Ok(Err(mlua::Error::MemoryError(_))) => rt.diag("not enough memory for a callback"),
        Ok(Err(e)) => rt.diag(&format!(
            "internal error in a callback: {}",
            crate::lauxlib::lua_error_text(&e)
        )),
        Err(payload) if payload.is::<WatchdogBite>() => watchdog_reset(rt),
        Err(payload) => resume_unwind(payload),
    }
    // Sends made by the callback are handed over now that it has returned (decisions.md §2).
    rt.handover.run();
    rt.heap.between_callbacks(lua);
}

pub(crate) fn watchdog_reset(rt: &Runtime) {
    rt.diag(&format!(
        "watchdog reset: Lua ran for more than {} ms without returning",
        crate::runtime::WATCHDOG.as_millis()
    ));
    rt.request_reset(ResetCause::Watchdog);
}

/// Runs the device until it is done, resets, or passes its time limit.
pub(crate) async fn run(lua: &Lua, rt: &Rc<Runtime>, mut console: Option<&mut Console>) -> Outcome {
    let limit = rt.cfg.time_limit_ms.map(Duration::from_millis);
    let mut since_yield = 0;
    loop {
        if let Some(cause) = rt.take_reset() {
            return Outcome::Reset(cause);
        }
        if limit.is_some_and(|l| rt.now() >= l) {
            return Outcome::TimedOut;
        }
        if let Some(c) = console.as_deref_mut() {
            c.poll(lua, rt);
            if c.done(lua) {
                return Outcome::Finished;
            }
        }
        let console_open = console.as_deref().is_some_and(|c| c.is_open(lua));
        // Only the device itself can act when nothing outside it is live: a virtual clock then
        // stands still between jumps, so timer order never depends on how busy the host is.
        let may_jump = rt.is_virtual_time() && rt.live_io() == 0 && !console_open;
        rt.set_clock_frozen(may_jump);
        if let Some(job) = rt.next_job() {
            dispatch(rt, lua, job);
            // What the callback sent was handed over in `dispatch`; the I/O tasks write it (and
            // read more) whenever the loop yields: when nothing is runnable, and every few jobs
            // under sustained load, so a busy device cannot starve its sockets.
            since_yield += 1;
            if since_yield >= JOBS_PER_YIELD {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            continue;
        }
        since_yield = 0;
        if rt.stop_requested() {
            return Outcome::Finished;
        }
        if !rt.alive() && !rt.cfg.forever && !console_open {
            return Outcome::Finished;
        }
        let next = rt.next_deadline();
        let wake_at = match (next, limit) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        };
        if may_jump && let Some(t) = wake_at {
            rt.jump_to(t);
            continue;
        }
        let sleep = wake_at.map(|t| tokio::time::Instant::from_std(rt.host_instant(t)));
        let listening = console.as_deref_mut().filter(|c| c.listening());
        let typed = wait(rt, sleep, listening).await;
        if let (Some(input), Some(c)) = (typed, console.as_deref_mut()) {
            c.handle(lua, rt, input);
        }
    }
}

/// Waits for the next thing to do: a job (an event, a task, a reset), the next timer, a console
/// line. A server with no timer waits for jobs alone, many times a second, so that case skips
/// the `select!`.
async fn wait(
    rt: &Runtime,
    sleep: Option<tokio::time::Instant>,
    console: Option<&mut Console>,
) -> Option<Option<ConsoleInput>> {
    if sleep.is_none() && console.is_none() {
        rt.wake.notified().await;
        return None;
    }
    tokio::select! {
        biased;
        _ = rt.wake.notified() => None,
        _ = async { match sleep { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => None,
        input = async { match console { Some(c) => c.next().await, None => std::future::pending().await } } => Some(input),
    }
}
