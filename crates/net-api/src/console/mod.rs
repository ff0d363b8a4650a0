//! The device's serial console, as the event loop sees it: lines typed at a terminal (or piped in)
//! arrive here from the terminal's own thread, and the device tells that thread when it waits at
//! a prompt.
//!
//! [`channel`] makes the pair. [`ConsoleHandle`] is the terminal's half: `Send`, cheap to clone,
//! it sends lines, cancels a half-typed chunk, asks for completions and closes the console. The
//! [`Console`] half is lent to the event loop (`device::run_console`): the loop takes what arrived
//! at every turn and sleeps on it when idle, so timers fire and servers answer while the prompt
//! waits. Each line goes into the device's stdin pipe exactly as the firmware's UART handler puts
//! it there, and the interpreter (`repl.rs`) runs it as a low-priority task. While the console is
//! open the run stays alive, and the clock does not jump (typed input is I/O that could come first).
//!
//! When the terminal draws its own prompt (`tty`), the device does not print prompts on the UART:
//! it says which prompt it waits with through the shared [`Link`], and the terminal shows it.

pub(crate) mod complete;
pub(crate) mod input;
pub(crate) mod repl;

use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mlua::Lua;
use tokio::sync::mpsc;

use crate::runtime::Runtime;

/// What the terminal's thread sends to the device.
pub(crate) enum ConsoleInput {
    /// One line as typed, without its line ending.
    Line(Vec<u8>),
    /// Bytes as they arrived on the serial line (serial mode).
    Bytes(Vec<u8>),
    /// Ctrl-C at a continuation prompt: forget the chunk typed so far.
    Cancel,
    /// A tool opened the serial port after it had been closed: forget the partial line and the
    /// unfinished chunk the previous tool left behind, so the new one starts at a clean prompt.
    Opened,
    /// Completions for the text left of the cursor: the byte offset they replace from, and them.
    Complete(String, std::sync::mpsc::Sender<(usize, Vec<String>)>),
    /// No more input. `exit_now` ends the run as soon as the typed lines have run.
    Close { exit_now: bool },
}

/// How the console comes up at each boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleBoot {
    /// `nodemcu-sim` / `nodemcu-sim console`: the banner, `init.lua` unless `run_init` is false,
    /// then the prompt (the firmware queues the first prompt before `init.lua` runs).
    Boot { run_init: bool },
    /// `nodemcu-sim run -i SCRIPT`: the script as `run` runs it, then the prompt.
    AfterScript,
    /// `nodemcu-sim run SCRIPT` with standard input as the UART: no interpreter and no prompt;
    /// received bytes reach only a `uart.on("data")` receiver. The input neither keeps the run
    /// alive nor holds back virtual time.
    UartOnly,
}

/// A prompt the device waits at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// A chunk is incomplete (`>> `): Ctrl-C should drop it.
    pub continuing: bool,
}

#[derive(Default)]
struct LinkState {
    /// The prompt the device last printed.
    prompt: Prompt,
    /// The device waits for input: a prompt was printed and no typed line is left to run.
    ready: bool,
    /// Lines and cancels sent by the terminal that the device has not taken yet.
    outstanding: usize,
    /// The run is over.
    ended: bool,
}

/// What the device and the terminal's thread share.
pub(crate) struct Link {
    state: Mutex<LinkState>,
    changed: Condvar,
    /// The terminal draws the prompt; the device does not print it.
    pub(crate) tty: bool,
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device printed `prompt`; `idle` when no typed line is waiting to run.
    pub(crate) fn prompted(&self, prompt: Prompt, idle: bool) {
        let mut st = self.lock();
        st.prompt = prompt;
        if idle && st.outstanding == 0 {
            st.ready = true;
            self.changed.notify_all();
        }
    }

    pub(crate) fn prompt(&self) -> Prompt {
        self.lock().prompt.clone()
    }

    fn taken(&self) {
        let mut st = self.lock();
        st.outstanding = st.outstanding.saturating_sub(1);
    }
}

/// The terminal's half of the console.
#[derive(Clone)]
pub struct ConsoleHandle {
    tx: mpsc::UnboundedSender<ConsoleInput>,
    link: Arc<Link>,
}

impl ConsoleHandle {
    fn send(&self, input: ConsoleInput, counted: bool) -> bool {
        if counted {
            let mut st = self.link.lock();
            st.outstanding += 1;
            st.ready = false;
        }
        self.tx.send(input).is_ok()
    }

    /// Sends a typed line (without its line ending); false once the device is gone.
    pub fn send_line(&self, line: Vec<u8>) -> bool {
        self.send(ConsoleInput::Line(line), true)
    }

    /// Sends bytes received on the serial line, as they came; false once the device is gone.
    pub fn send_bytes(&self, bytes: Vec<u8>) -> bool {
        self.send(ConsoleInput::Bytes(bytes), false)
    }

    /// Drops the chunk typed so far at a continuation prompt; the device prompts afresh.
    pub fn cancel(&self) -> bool {
        self.send(ConsoleInput::Cancel, true)
    }

    /// A tool opened the serial port: the partial line and the unfinished chunk the previous
    /// one left are dropped, without a prompt (the new tool does not wait for one).
    pub fn opened(&self) -> bool {
        self.send(ConsoleInput::Opened, false)
    }

    /// Ends the input. With `exit_now` the run ends once the lines sent have run; otherwise it
    /// goes on until nothing is left that could run a callback.
    pub fn close(&self, exit_now: bool) {
        self.send(ConsoleInput::Close { exit_now }, false);
    }

    /// Completions for `text` (the line left of the cursor), asked of the device's Lua state
    /// between two callbacks: the byte offset they replace from, and the candidates. `None` when
    /// the device is busy for longer than `wait`.
    pub fn complete(&self, text: &str, wait: Duration) -> Option<(usize, Vec<String>)> {
        let (reply, answer) = std::sync::mpsc::channel();
        if !self.send(ConsoleInput::Complete(text.to_string(), reply), false) {
            return None;
        }
        answer.recv_timeout(wait).ok()
    }

    /// Blocks until the device waits at a prompt, and returns that prompt; `None` once the run is over.
    pub fn wait_prompt(&self) -> Option<Prompt> {
        let mut st = self.link.lock();
        loop {
            if st.ended {
                return None;
            }
            if st.ready {
                st.ready = false;
                return Some(st.prompt.clone());
            }
            st = self
                .link
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The device's half of the console, lent to the event loop for the whole run (across resets).
pub struct Console {
    rx: mpsc::UnboundedReceiver<ConsoleInput>,
    link: Arc<Link>,
    pub(crate) boot: ConsoleBoot,
    open: bool,
    exit_now: bool,
    /// Serial bytes received but not yet handled: those after a line the interpreter has not
    /// run yet (see `input::feed`).
    held: Vec<u8>,
}

/// A console for a run. `tty`: the terminal draws prompts itself.
pub fn channel(boot: ConsoleBoot, tty: bool) -> (Console, ConsoleHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    let link = Arc::new(Link {
        state: Mutex::new(LinkState::default()),
        changed: Condvar::new(),
        tty,
    });
    let handle = ConsoleHandle {
        tx,
        link: link.clone(),
    };
    let console = Console {
        rx,
        link,
        boot,
        open: true,
        exit_now: false,
        held: Vec::new(),
    };
    (console, handle)
}

impl Console {
    /// Connects the console to a freshly booted device and queues its first prompt.
    pub(crate) fn attach(&mut self, lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
        lua.set_app_data(repl::Attached(self.link.clone()));
        repl::input(lua, rt, b" \n")
    }

    /// True until the input ends: the console keeps the run alive. A UART-only one does so
    /// only while a `uart.on("data")` receiver waits for its input.
    pub(crate) fn is_open(&self, lua: &Lua) -> bool {
        self.open && (self.boot != ConsoleBoot::UartOnly || input::has_receiver(lua))
    }

    /// Input may still arrive (the loop need not watch a console whose input ended).
    pub(crate) fn listening(&self) -> bool {
        self.open
    }

    /// After `close(exit_now)`: the typed lines have all run, so the run ends.
    pub(crate) fn done(&self, lua: &Lua) -> bool {
        self.exit_now && self.held.is_empty() && !repl::stdin_has_line(lua)
    }

    /// Takes whatever the terminal sent since the last turn, without waiting.
    /// While the interpreter has a line to run, what came after it waits, as on a board, where
    /// the line runs before the next byte arrives.
    pub(crate) fn poll(&mut self, lua: &Lua, rt: &Rc<Runtime>) {
        while self.open && !repl::stdin_has_line(lua) {
            if !self.held.is_empty() {
                self.feed_held(lua, rt);
                continue;
            }
            match self.rx.try_recv() {
                Ok(input) => self.handle(lua, rt, Some(input)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.handle(lua, rt, None),
            }
        }
    }

    /// Waits for the terminal's next input (for the loop's idle sleep); `None` when it is gone.
    pub(crate) async fn next(&mut self) -> Option<ConsoleInput> {
        if self.open {
            self.rx.recv().await
        } else {
            std::future::pending().await
        }
    }

    /// Acts on one input; `None` means the terminal went away, as at end of input.
    pub(crate) fn handle(&mut self, lua: &Lua, rt: &Rc<Runtime>, input: Option<ConsoleInput>) {
        let result = match input {
            Some(ConsoleInput::Line(line)) => {
                self.link.taken();
                match input::line(lua, rt, &line) {
                    // A receiver took the line from the interpreter: no prompt will come, so
                    // the terminal may send the next one now.
                    Ok(false) => {
                        self.link.prompted(self.link.prompt(), true);
                        Ok(())
                    }
                    other => other.map(drop),
                }
            }
            Some(ConsoleInput::Bytes(bytes)) => {
                self.held.extend_from_slice(&bytes);
                if !repl::stdin_has_line(lua) {
                    self.feed_held(lua, rt);
                }
                Ok(())
            }
            Some(ConsoleInput::Cancel) => {
                self.link.taken();
                repl::cancel(lua, rt)
            }
            Some(ConsoleInput::Opened) => {
                self.held.clear();
                input::forget_line(lua);
                repl::forget_chunk(lua);
                Ok(())
            }
            Some(ConsoleInput::Complete(text, reply)) => {
                let _ = reply.send(complete::complete(lua, &text));
                Ok(())
            }
            Some(ConsoleInput::Close { exit_now }) => {
                self.open = false;
                self.exit_now = exit_now;
                Ok(())
            }
            None => {
                self.open = false;
                Ok(())
            }
        };
        if let Err(e) = result {
            rt.diag(&format!("console: {e}"));
        }
    }
}

impl Console {
    /// The held bytes through the UART handler, up to the next line the interpreter takes.
    fn feed_held(&mut self, lua: &Lua, rt: &Rc<Runtime>) {
        let interpreter = self.boot != ConsoleBoot::UartOnly;
        let bytes = std::mem::take(&mut self.held);
        match input::feed(lua, rt, &bytes, interpreter) {
            Ok(taken) => self.held = bytes[taken..].to_vec(),
            Err(e) => rt.diag(&format!("console: {e}")),
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let mut st = self.link.lock();
        st.ended = true;
        self.link.changed.notify_all();
    }
}
