//! The device's shared state: its clock, timer list, task queues, the events the network has
//! delivered, the objects it keeps alive, and whether it is about to reset.
//!
//! There is one [`Runtime`] per boot, behind an `Rc`, shared by every binding and by the event loop.
//! It holds no borrow across a call into Lua: bindings take what they need, drop it, then call out,
//! because a callback may re-enter any binding (`sck:send()` inside "receive").
//!
//! Work reaches Lua only as a [`Job`], run by the loop (`event_loop.rs`) one at a time, so a
//! callback always runs to completion before the next one starts, as on the board.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use host_backend::clock::{Clock, SimTime};
use host_backend::flash::Flash;
use host_backend::stream::Handover;
use host_backend::timers::{TimerKey, TimerQueue};
use mlua::{AnyUserData, Function, Lua};
use tokio::sync::Notify;

use crate::config::Config;
use crate::heap::Heap;

/// Something an older generation had and a newer one removed, for [`Runtime::note_removed`].
#[derive(Debug, Clone, Copy)]
pub struct Removed {
    /// The release that removed it, as users know it ("3.0").
    pub removed_in: &'static str,
    /// What it was, in a few words ("static timers").
    pub why: &'static str,
    /// The newest generation that still has it.
    pub newest: crate::config::Firmware,
}

/// A unit of work for the Lua thread: a callback to run, with everything it needs captured.
pub type Job = Box<dyn FnOnce(&Lua) -> mlua::Result<()>>;

/// `node.task` priorities, as the firmware numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Low = 0,
    Medium = 1,
    High = 2,
}

/// Why a device reset. Each cause ends a `run` with its own exit status (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCause {
    /// The default `node.setonerror` handler restarted after an unhandled callback error.
    Error,
    /// An error inside a net or tls callback on the ESP8266 (unprotected `lua_call`).
    Panic,
    /// A callback or the main chunk ran too long without yielding.
    Watchdog,
    /// `tmr.softwd` ran out.
    SoftWatchdog,
    /// The script called `node.restart()`.
    Restart,
    /// The script called `node.dsleep()`.
    DeepSleep,
}

impl ResetCause {
    pub fn describe(self) -> &'static str {
        match self {
            ResetCause::Error => "unhandled error in a callback (default node.setonerror handler)",
            ResetCause::Panic => "PANIC: unprotected error in a callback",
            ResetCause::Watchdog => {
                "watchdog: Lua ran too long without returning to the event loop"
            }
            ResetCause::SoftWatchdog => "tmr.softwd expired",
            ResetCause::Restart => "node.restart()",
            ResetCause::DeepSleep => "node.dsleep()",
        }
    }
}

/// How long Lua may run (CPU time of the Lua thread) without returning to the loop before the
/// watchdog resets the device.
pub const WATCHDOG: Duration = Duration::from_millis(3200);

/// Device time one posted task costs under a virtual clock that stands still: about what a board
/// takes to dispatch a task and enter Lua. Without it a task that reposts itself would keep the
/// clock at one instant forever, so no timer and no `--timeout` could ever come.
pub const TASK_COST: Duration = Duration::from_micros(20);

/// The payload that unwinds out of a runaway Lua loop. Lua's `pcall` cannot catch it (mlua rethrows
/// panics), so a script cannot swallow its own watchdog reset.
pub(crate) struct WatchdogBite;

/// The payload that unwinds out of a callback that reached the run's time limit inside one call
/// (`tmr.delay`); like [`WatchdogBite`], `pcall` cannot catch it.
pub(crate) struct TimeUp;

/// Counts the handles that could still deliver an event (sockets, servers, DNS queries in flight).
/// Hold one [`LiveIo`] per such handle; the device counts as busy with I/O while any exists.
#[derive(Clone, Default)]
pub struct LiveCounter(Rc<Cell<usize>>);

/// One live I/O handle; dropping it marks the handle finished.
pub struct LiveIo(Rc<Cell<usize>>);

impl Drop for LiveIo {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// A handle for I/O tasks to deliver events to the loop. It does not keep the device alive.
#[derive(Clone)]
pub struct EventSink(Weak<Runtime>);

impl EventSink {
    /// Queues `job` to run on the Lua thread, in delivery order.
    pub fn push(&self, job: Job) {
        if let Some(rt) = self.0.upgrade() {
            rt.ready.borrow_mut().push_back(job);
            rt.wake.notify_one();
        }
    }
}

/// Hashes the runtime's own sequential ids with one multiplication: every event looks its socket up
/// by id, and the default keyed hash guards against attackers choosing keys, which ids never are.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Fibonacci hashing: spreads sequential ids over the high bits the table probes with.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Where `node.output` sends what `print` writes. An error is one the output function raised
/// while `print` waited for it (a 2.x `lua_call` nested in `print`): `print` raises it in turn.
pub type OutputRedirect = Rc<dyn Fn(&[u8]) -> crate::lauxlib::FwResult<()>>;

/// Lua helpers from `prelude.lua`.
pub(crate) struct Helpers {
    pub pcallx: Function,
    /// The message handler of a callback the loop calls (`luaL_pcallx`'s traceback).
    pub traceback: Function,
    /// `function(m) error(m, 0) end`.
    pub raise: Function,
    /// Makes the strings of received data.
    pub strings: crate::lauxlib::StringMaker,
    /// Makes the callback tables of new sockets.
    pub on_tables: crate::net::events::TableMaker,
    pub pcall: Function,
}

pub struct Runtime {
    pub cfg: Config,
    pub flash: Flash,
    /// What outlives this boot (see `persist.rs`).
    pub persist: Rc<crate::persist::Persist>,
    clock: RefCell<Clock>,
    timers: RefCell<TimerQueue<Job>>,
    /// The board's one timer (its next scheduled change), and whether it keeps the device alive:
    /// only while a `gpio.trig` callback could run because of it (see [`Runtime::alive`]).
    board_timer: Cell<Option<TimerKey>>,
    board_keeps_alive: Cell<bool>,
    /// Timers of the simulated world (a Wi-Fi station joining its network) that keep the device
    /// running only while [`Runtime::background_wanted`] says a script listens for what they do.
    background: RefCell<std::collections::HashSet<TimerKey>>,
    background_wanted: RefCell<Option<Box<dyn Fn() -> bool>>>,
    tasks: RefCell<[VecDeque<Job>; 3]>,
    ready: RefCell<VecDeque<Job>>,
    pub(crate) wake: Notify,
    live: LiveCounter,
    anchors: RefCell<HashMap<u64, AnyUserData, BuildHasherDefault<IdHasher>>>,
    /// Sockets with sends to hand over once the running callback returns (see `event_loop.rs`).
    pub handover: Handover,
    pub(crate) heap: Rc<Heap>,
    next_id: Cell<u64>,
    reset: Cell<Option<ResetCause>>,
    /// Set by a test harness that has what it needs: the loop ends once nothing is runnable.
    stop: Cell<bool>,
    pub(crate) helpers: RefCell<Option<Helpers>>,
    pub(crate) onerror: RefCell<Option<Function>>,
    /// How many times the watchdog was fed. Feeding happens before every job, so it only counts:
    /// reading the thread's CPU time is a system call, too dear to make per callback.
    watchdog_feeds: Cell<u64>,
    /// The feed count the watchdog hook last saw, and the Lua thread's CPU time when it first saw
    /// it: the clock starts at the first check after a feed, at most one hook period late.
    watchdog_mark: Cell<(u64, Duration)>,
    warned: RefCell<std::collections::HashSet<String>>,
    /// Set by `node.output`: where `print` goes instead of (or besides) the UART.
    pub output_redirect: RefCell<Option<OutputRedirect>>,
    /// Per-boot state modules keep for themselves, one value per type (see [`Runtime::state`]).
    ext: RefCell<HashMap<std::any::TypeId, Rc<dyn std::any::Any>>>,
}

impl Runtime {
    pub(crate) fn new(
        cfg: Config,
        flash: Flash,
        persist: Rc<crate::persist::Persist>,
    ) -> Rc<Runtime> {
        Rc::new(Runtime {
            clock: RefCell::new(Clock::new(cfg.virtual_time)),
            cfg,
            flash,
            persist,
            timers: RefCell::default(),
            board_timer: Cell::new(None),
            board_keeps_alive: Cell::new(false),
            background: RefCell::default(),
            background_wanted: RefCell::default(),
            tasks: RefCell::default(),
            ready: RefCell::default(),
            wake: Notify::new(),
            live: LiveCounter::default(),
            anchors: RefCell::default(),
            handover: Handover::default(),
            heap: Rc::default(),
            next_id: Cell::new(1),
            reset: Cell::new(None),
            stop: Cell::new(false),
            helpers: RefCell::new(None),
            onerror: RefCell::new(None),
            watchdog_feeds: Cell::new(0),
            watchdog_mark: Cell::new((0, host_backend::clock::thread_cpu_time())),
            warned: RefCell::default(),
            output_redirect: RefCell::new(None),
            ext: RefCell::default(),
        })
    }

    // ---- time ----

    /// The device clock (uptime).
    pub fn now(&self) -> SimTime {
        self.clock.borrow().now()
    }

    pub fn is_virtual_time(&self) -> bool {
        self.clock.borrow().is_virtual()
    }

    /// Lets `d` pass inside a callback (`tmr.delay`): sleeps on a real clock, jumps a virtual one.
    pub fn pass_time(&self, d: Duration) {
        self.clock.borrow_mut().pass(d);
        self.feed_watchdog();
    }

    /// [`pass_time`](Self::pass_time), but never past the run's time limit: a delay that would
    /// reach it passes the time up to the limit and then ends the callback with [`TimeUp`], so the
    /// loop ends the run at its limit instead of after the whole delay.
    pub fn pass_time_within_limit(&self, d: Duration) {
        let left = self
            .cfg
            .time_limit_ms
            .map(|l| Duration::from_millis(l).saturating_sub(self.now()));
        match left {
            Some(left) if left <= d => {
                self.pass_time(left);
                std::panic::resume_unwind(Box::new(TimeUp));
            }
            _ => self.pass_time(d),
        }
    }

    /// The uptime as a script reads it (`tmr.now`, `tmr.time`): see [`Clock::read`].
    pub fn read_clock(&self) -> SimTime {
        self.clock.borrow_mut().read()
    }

    /// Under virtual time, the clock stands still while the loop may jump it, and runs at real
    /// speed while something outside the device (a socket, a console) could act.
    pub(crate) fn set_clock_frozen(&self, frozen: bool) {
        let mut c = self.clock.borrow_mut();
        if frozen { c.freeze() } else { c.thaw() }
    }

    pub(crate) fn jump_to(&self, t: SimTime) {
        self.clock.borrow_mut().jump_to(t);
    }

    pub(crate) fn host_instant(&self, t: SimTime) -> Instant {
        self.clock.borrow().host_instant(t)
    }

    // ---- timers ----

    /// Arms `job` to run after `delay` of device time.
    pub fn arm_timer(&self, delay: Duration, job: Job) -> TimerKey {
        let at = self.now() + delay;
        self.timers.borrow_mut().arm(at, job)
    }

    /// Arms `job` to run when the device clock reads `at` (repeating timers keep their cadence).
    pub fn arm_timer_at(&self, at: SimTime, job: Job) -> TimerKey {
        self.timers.borrow_mut().arm(at, job)
    }

    /// Disarms a timer; true if it was still armed.
    pub fn cancel_timer(&self, key: TimerKey) -> bool {
        self.background.borrow_mut().remove(&key);
        self.timers.borrow_mut().cancel(key).is_some()
    }

    /// Arms the board's timer for its next scheduled change, replacing the previous one.
    pub(crate) fn arm_board_timer(&self, at: SimTime, job: Job) {
        let mut timers = self.timers.borrow_mut();
        if let Some(old) = self.board_timer.take() {
            timers.cancel(old);
        }
        self.board_timer.set(Some(timers.arm(at, job)));
    }

    /// The board's schedule keeps the device alive only while a change could run a callback.
    pub(crate) fn set_board_keeps_alive(&self, yes: bool) {
        self.board_keeps_alive.set(yes);
    }

    /// Arms a timer of the simulated world, due when the device clock reads `at`: it runs like
    /// any timer, but keeps the run alive only while the predicate of
    /// [`Runtime::set_background_wanted`] holds (a script with no Wi-Fi callback does not wait
    /// for its station to join).
    pub fn arm_background_at(&self, at: SimTime, job: Job) -> TimerKey {
        let key = self.timers.borrow_mut().arm(at, job);
        self.background.borrow_mut().insert(key);
        key
    }

    /// Says when background timers keep the device alive.
    pub fn set_background_wanted(&self, wanted: Box<dyn Fn() -> bool>) {
        *self.background_wanted.borrow_mut() = Some(wanted);
    }

    pub(crate) fn next_deadline(&self) -> Option<SimTime> {
        self.timers.borrow().next_deadline()
    }

    fn background_wanted(&self) -> bool {
        self.background_wanted
            .borrow()
            .as_ref()
            .is_some_and(|f| f())
    }

    // ---- tasks and events ----

    /// `node.task.post`: false when the priority's queue is full (on a device profile).
    pub fn post_task(&self, prio: Priority, job: Job) -> bool {
        let mut tasks = self.tasks.borrow_mut();
        let q = &mut tasks[prio as usize];
        if self
            .cfg
            .target
            .task_queue_len()
            .is_some_and(|max| q.len() >= max)
        {
            return false;
        }
        q.push_back(job);
        true
    }

    /// Queues the simulator's own work (error reports, deferred callbacks) at a priority, unlimited.
    pub fn post_internal(&self, prio: Priority, job: Job) {
        self.tasks.borrow_mut()[prio as usize].push_back(job);
    }

    /// A sink for I/O tasks to deliver events through.
    pub fn event_sink(self: &Rc<Self>) -> EventSink {
        EventSink(Rc::downgrade(self))
    }

    /// The next thing to run: delivered events first, then due timers, then tasks by priority.
    pub(crate) fn next_job(&self) -> Option<Job> {
        if let Some(job) = self.ready.borrow_mut().pop_front() {
            return Some(job);
        }
        let now = self.now();
        let due = self.timers.borrow_mut().pop_due(now);
        if let Some((key, job)) = due {
            if self.board_timer.get() == Some(key) {
                self.board_timer.set(None);
            }
            self.background.borrow_mut().remove(&key);
            return Some(job);
        }
        let task = self
            .tasks
            .borrow_mut()
            .iter_mut()
            .rev()
            .find_map(|q| q.pop_front());
        if task.is_some() {
            self.clock.borrow_mut().charge(TASK_COST);
        }
        task
    }

    /// True while anything could still run a callback.
    pub(crate) fn alive(&self) -> bool {
        // A board's schedule (a signal generator, a press at 5 s) runs forever or far ahead: it
        // alone keeps nothing alive unless an interrupt callback is waiting for it. Background
        // timers of the simulated world keep it alive while a script listens for them.
        let weak_board =
            usize::from(self.board_timer.get().is_some() && !self.board_keeps_alive.get());
        let (timers, background) = (self.timers.borrow().len(), self.background.borrow().len());
        self.live_io() > 0
            || timers > background + weak_board
            || (background > 0 && self.background_wanted())
            || !self.ready.borrow().is_empty()
            || self.tasks.borrow().iter().any(|q| !q.is_empty())
    }

    // ---- lifetimes ----

    /// Marks one handle as able to deliver events until the returned guard drops.
    pub fn live_io_guard(&self) -> LiveIo {
        let c = self.live.0.clone();
        c.set(c.get() + 1);
        LiveIo(c)
    }

    pub fn live_io(&self) -> usize {
        self.live.0.get()
    }

    /// A fresh id for an object of this device.
    pub fn new_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Keeps a userdata alive without Lua references (the firmware's `self_ref`).
    pub fn anchor(&self, id: u64, ud: AnyUserData) {
        self.anchors.borrow_mut().insert(id, ud);
    }

    /// Drops the anchor; the object lives on only if Lua still references it.
    pub fn unanchor(&self, id: u64) -> Option<AnyUserData> {
        self.anchors.borrow_mut().remove(&id)
    }

    pub fn anchored(&self, id: u64) -> Option<AnyUserData> {
        self.anchors.borrow().get(&id).cloned()
    }

    /// Every anchored object (for a last look at the end of a boot).
    pub(crate) fn all_anchored(&self) -> Vec<AnyUserData> {
        self.anchors.borrow().values().cloned().collect()
    }

    /// The boot's one value of type `T` (a module's own state: the DNS servers, the open UDP
    /// sockets, ...), made by `init` on first use. It lives until the device resets.
    pub fn state<T: 'static>(&self, init: impl FnOnce(&Runtime) -> T) -> Rc<T> {
        let key = std::any::TypeId::of::<T>();
        let found = self.ext.borrow().get(&key).cloned();
        let any = match found {
            Some(v) => v,
            None => {
                let v: Rc<dyn std::any::Any> = Rc::new(init(self));
                self.ext.borrow_mut().entry(key).or_insert(v).clone()
            }
        };
        any.downcast()
            .unwrap_or_else(|_| unreachable!("keyed by its own type"))
    }

    // ---- resets, watchdog and messages ----

    /// Asks the loop to reset the device once the running callback returns (the firmware defers
    /// `node.restart()` the same way).
    pub fn request_reset(&self, cause: ResetCause) {
        if self.reset.get().is_none() {
            self.reset.set(Some(cause));
        }
        self.wake.notify_one();
    }

    /// Drops every queued job and anchor, breaking the cycles they form with this runtime, when
    /// the boot ends.
    pub(crate) fn shutdown(&self) {
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        let anchors = std::mem::take(&mut *self.anchors.borrow_mut());
        self.output_redirect.borrow_mut().take();
        self.background.borrow_mut().clear();
        self.background_wanted.borrow_mut().take();
        self.onerror.borrow_mut().take();
        drop((timers, tasks, ready, anchors));
        let ext = std::mem::take(&mut *self.ext.borrow_mut());
        drop(ext);
    }

    /// Ends the run (outcome `Finished`) as soon as no callback is runnable without waiting: queued
    /// tasks and delivered events still run, no timer is waited for. `nodemcu-sim test` uses it once
    /// every NTest run of a file has finished, so a timer left running cannot keep the file alive.
    pub fn request_stop(&self) {
        self.stop.set(true);
        self.wake.notify_one();
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.get()
    }

    pub(crate) fn take_reset(&self) -> Option<ResetCause> {
        self.reset.get()
    }

    pub fn feed_watchdog(&self) {
        self.watchdog_feeds.set(self.watchdog_feeds.get() + 1);
    }

    /// True when Lua has run for longer than [`WATCHDOG`] of CPU time since the last feed. Called
    /// from the instruction hook; the first call after a feed starts the count.
    pub(crate) fn watchdog_expired(&self) -> bool {
        let now = host_backend::clock::thread_cpu_time();
        let feeds = self.watchdog_feeds.get();
        let (seen, since) = self.watchdog_mark.get();
        if seen != feeds {
            self.watchdog_mark.set((feeds, now));
            return false;
        }
        now.saturating_sub(since) > WATCHDOG
    }

    /// `platform_print_deprecation_note`: the firmware's note, written straight to the UART (a
    /// C `printf`, so past `node.output`), where a script's output goes.
    pub fn deprecation_note(&self, what: &str, when: &str) {
        self.uart(
            format!(
                "Warning, deprecated API! {what}. It will be removed {when}. See documentation for details.\n"
            )
            .as_bytes(),
        );
    }

    /// Writes console output to the device's UART (`print`, prompts, echo, the banner): in
    /// serial mode each `\n` goes out as `\r\n` and `\r` is dropped, as the firmware's console
    /// writer does; otherwise the bytes as they are.
    pub fn uart(&self, bytes: &[u8]) {
        if self.cfg.serial {
            let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
            for &b in bytes {
                match b {
                    b'\n' => out.extend_from_slice(b"\r\n"),
                    b'\r' => {}
                    _ => out.push(b),
                }
            }
            (self.cfg.sinks.uart)(&out);
        } else {
            (self.cfg.sinks.uart)(bytes);
        }
    }

    /// Writes bytes to the UART untouched (`uart.write`).
    pub fn uart_raw(&self, bytes: &[u8]) {
        (self.cfg.sinks.uart)(bytes);
    }

    /// Output of `print`: the UART, unless `node.output` redirected it. `Err` is the error of
    /// an output function called at once (see [`OutputRedirect`]).
    pub fn print(&self, bytes: &[u8]) -> crate::lauxlib::FwResult<()> {
        let redirect = self.output_redirect.borrow().clone();
        match redirect {
            Some(r) => r(bytes),
            None => {
                self.uart(bytes);
                Ok(())
            }
        }
    }

    /// The simulator's own message on its diagnostic channel.
    pub fn diag(&self, msg: &str) {
        (self.cfg.sinks.diag)(msg);
    }

    /// A diagnostic printed once per `key` for the whole boot.
    pub fn warn_once(&self, key: &str, msg: &str) {
        if self.warned.borrow_mut().insert(key.to_string()) {
            self.diag(&format!("warning: {msg}"));
        }
    }

    /// Once per boot and per `what`: tells the user that the script used something a newer
    /// firmware removed, and which `--firmware` still has it. The script still gets the
    /// firmware's own error; this only names the likely cause, without guessing the generation.
    pub fn note_removed(&self, what: &str, removed: &Removed) {
        if self.warned.borrow_mut().insert(format!("removed:{what}")) {
            let newest = removed.newest;
            self.diag(&format!(
                "{what} was removed in firmware {} ({}); this script may be written for {}.x: try --firmware {}",
                removed.removed_in,
                removed.why,
                newest.version().0,
                newest.name()
            ));
        }
    }
}
