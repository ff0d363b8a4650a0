//! The console at a terminal: rustyline's line editor on its own thread, while the device runs on
//! the main one.
//!
//! - The editor asks for a line only when the device waits at a prompt (`ConsoleHandle::
//!   wait_prompt`), and shows the device's prompt (`> `, `>> `, or `_PROMPT`) itself; the device
//!   then prints no prompt bytes.
//! - What the device prints while the prompt is up goes through rustyline's `ExternalPrinter`,
//!   above the line being typed. A partial line (no `\n` yet) is held back while the prompt is up
//!   and shown in front of the next prompt, since the printer would end it with a newline.
//! - Tab completes globals, module members (`net.`, `tmr.`) and methods after `:`, asked of the
//!   device's Lua state. Ctrl-C drops the line (and a half-typed chunk at `>> `); Ctrl-D leaves.
//! - History is kept across runs in `$XDG_DATA_HOME/nodemcu-sim/history` (default
//!   `~/.local/share/nodemcu-sim/history`; `%LOCALAPPDATA%\nodemcu-sim\history` on Windows).
//! - If the run ends while the prompt is up (a reset, a time limit), the editor is still blocked
//!   reading, so the terminal is put back to the mode it had before the editor took it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use net_api::{Config, ConsoleHandle};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Context, Editor, ExternalPrinter, Helper};

/// How long tab completion waits for a busy device.
const COMPLETION_WAIT: Duration = Duration::from_millis(500);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completion through the device, which owns the Lua state.
struct LuaHelper {
    handle: ConsoleHandle,
}

impl Completer for LuaHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self
            .handle
            .complete(&line[..pos], COMPLETION_WAIT)
            .unwrap_or((pos, Vec::new())))
    }
}

impl Hinter for LuaHelper {
    type Hint = String;
}
impl Highlighter for LuaHelper {}
impl Validator for LuaHelper {}
impl Helper for LuaHelper {}

/// The terminal's output while the editor may be drawing a prompt.
struct Screen {
    printer: Mutex<Box<dyn ExternalPrinter + Send>>,
    /// A partial line that came while the prompt was up.
    held: Mutex<Vec<u8>>,
    /// The editor is reading a line (its prompt is on the screen).
    reading: AtomicBool,
}

impl Screen {
    fn write(&self, bytes: &[u8]) {
        let mut held = lock(&self.held);
        held.extend_from_slice(bytes);
        let cut = if self.reading.load(Ordering::SeqCst) {
            held.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        } else {
            held.len()
        };
        if cut > 0 {
            let text = String::from_utf8_lossy(&held[..cut]).into_owned();
            held.drain(..cut);
            let _ = lock(&self.printer).print(text);
        }
    }

    /// The prompt to show, with any partial line in front of it.
    fn begin_reading(&self, prompt: &str) -> String {
        let mut held = lock(&self.held);
        let shown = format!("{}{prompt}", String::from_utf8_lossy(&held));
        held.clear();
        self.reading.store(true, Ordering::SeqCst);
        shown
    }

    fn end_reading(&self) {
        self.reading.store(false, Ordering::SeqCst);
        self.write(&[]);
    }
}

/// The terminal, taken over by a line editor.
pub struct Tty {
    editor: Editor<LuaHelper, FileHistory>,
    screen: Arc<Screen>,
    history: Option<PathBuf>,
    saved: Option<SavedMode>,
}

impl Tty {
    /// An editor on stdin/stdout, with the history loaded; `None` if the terminal can't host one.
    pub fn new() -> Option<Tty> {
        let config = rustyline::Config::builder()
            .max_history_size(1000)
            .ok()?
            .history_ignore_dups(true)
            .ok()?
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .build();
        let saved = SavedMode::save();
        let mut editor = Editor::<LuaHelper, FileHistory>::with_config(config).ok()?;
        let printer = editor.create_external_printer().ok()?;
        let history = history_path();
        if let Some(p) = &history {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = editor.load_history(p);
        }
        Some(Tty {
            editor,
            screen: Arc::new(Screen {
                printer: Mutex::new(Box::new(printer)),
                held: Mutex::default(),
                reading: AtomicBool::new(false),
            }),
            history,
            saved,
        })
    }

    /// Sends the device's UART (and, when stderr is this terminal, the simulator's messages)
    /// through the editor, so they print above the prompt.
    pub fn route_output(&self, cfg: &mut Config) {
        let screen = self.screen.clone();
        cfg.sinks.uart = Arc::new(move |b| screen.write(b));
        if std::io::stderr().is_terminal() {
            let screen = self.screen.clone();
            cfg.sinks.diag =
                Arc::new(move |m| screen.write(format!("nodemcu-sim: {m}\n").as_bytes()));
        }
    }

    /// Starts the editor's thread.
    pub fn spawn(self, handle: ConsoleHandle) -> Session {
        let Tty {
            mut editor,
            screen,
            history,
            saved,
        } = self;
        editor.set_helper(Some(LuaHelper {
            handle: handle.clone(),
        }));
        let s = screen.clone();
        std::thread::spawn(move || edit(editor, handle, &s, history));
        Session { screen, saved }
    }
}

/// The editor's loop: read a line whenever the device waits at a prompt.
fn edit(
    mut ed: Editor<LuaHelper, FileHistory>,
    handle: ConsoleHandle,
    screen: &Screen,
    history: Option<PathBuf>,
) {
    let Some(mut prompt) = handle.wait_prompt() else {
        return;
    };
    loop {
        let shown = screen.begin_reading(&prompt.text);
        let read = ed.readline(&shown);
        screen.end_reading();
        match read {
            // The board answers an empty line with its prompt only.
            Ok(line) if line.is_empty() => continue,
            Ok(line) => {
                if ed.add_history_entry(line.as_str()).unwrap_or(false)
                    && let Some(p) = &history
                {
                    let _ = ed.append_history(p);
                }
                if !handle.send_line(line.into_bytes()) {
                    return;
                }
            }
            Err(ReadlineError::Interrupted) if !prompt.continuing => continue,
            Err(ReadlineError::Interrupted) => {
                if !handle.cancel() {
                    return;
                }
            }
            // Ctrl-D, or the terminal went away: leave.
            Err(_) => {
                handle.close(true);
                return;
            }
        }
        match handle.wait_prompt() {
            Some(p) => prompt = p,
            None => return,
        }
    }
}

/// The editor's thread, seen from the device's side.
pub struct Session {
    screen: Arc<Screen>,
    saved: Option<SavedMode>,
}

impl Session {
    /// After the run: if the prompt is still up, the editor is blocked reading with the terminal in
    /// raw mode, so put the terminal back before the process exits.
    pub fn finish(self) {
        let mut out = std::io::stdout().lock();
        if self.screen.reading.load(Ordering::SeqCst) {
            if let Some(m) = &self.saved {
                m.restore();
            }
            // Bracketed paste off (the editor turned it on), and end the prompt's line.
            let _ = out.write_all(b"\x1b[?2004l\r\n");
        }
        let held = std::mem::take(&mut *lock(&self.screen.held));
        let _ = out.write_all(&held);
        let _ = out.flush();
    }
}

/// Where the history is kept: `$XDG_DATA_HOME/nodemcu-sim/history`, else
/// `~/.local/share/nodemcu-sim/history` (`%LOCALAPPDATA%\nodemcu-sim\history` on Windows).
fn history_path() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").and_then(absolute)?
    } else {
        match std::env::var_os("XDG_DATA_HOME").and_then(absolute) {
            Some(p) => p,
            None => std::env::home_dir()?.join(".local").join("share"),
        }
    };
    Some(base.join("nodemcu-sim").join("history"))
}

/// The terminal's mode before the editor changed it.
#[cfg(unix)]
struct SavedMode(libc::termios);

#[cfg(unix)]
impl SavedMode {
    fn save() -> Option<SavedMode> {
        // SAFETY: tcgetattr fills the zeroed struct for fd 0 or fails without touching memory
        // beyond it.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0).then_some(SavedMode(t))
        }
    }

    fn restore(&self) {
        // SAFETY: a termios obtained from tcgetattr on the same fd.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.0);
        }
    }
}

#[cfg(not(unix))]
struct SavedMode;

#[cfg(not(unix))]
impl SavedMode {
    fn save() -> Option<SavedMode> {
        None
    }

    fn restore(&self) {}
}
