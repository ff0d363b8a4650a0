//! The firmware's UART input handler: what happens to each byte the board receives on UART0.
//!
//! On the board one handler takes every received byte. While the interpreter owns the input
//! (`run_input`, the default) it echoes each byte, ends a line on CR, LF, CRLF or LFCR (a pair
//! counts once), handles backspace, gives the line to a `uart.on("data")` callback if one is set,
//! and then to the interpreter; an empty line only gets the prompt again. With
//! `uart.on("data", n | char, fn, 0)` the interpreter is cut off: bytes go to the callback in
//! pieces of `n` (each byte alone for 0) or up to and including `char`, with no echo.
//!
//! The serial mode feeds raw bytes here ([`feed`]); the line console gives whole lines it has
//! already echoed itself ([`line`]). Both reach the interpreter through `repl::console_line`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua};

use crate::console::repl;
use crate::runtime::Runtime;

/// The line buffer's size (`LUA_MAXINPUT`): a longer line is dropped and collection restarts.
pub(crate) const MAX_INPUT: usize = 256;

/// A `uart.on("data", ...)` registration.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) callback: Function,
    /// Bytes per call when the interpreter is cut off: 0 each byte, negative: up to `end_char`.
    pub(crate) data_len: i64,
    pub(crate) end_char: u8,
    /// The interpreter still runs the input (`run_input` other than 0).
    pub(crate) run_input: bool,
}

struct State {
    line: Vec<u8>,
    last: u8,
    echo: bool,
    receiver: Option<Receiver>,
}

/// The handler's state for one boot, kept in the Lua state's app data.
struct Input(RefCell<State>);

fn with<R>(lua: &Lua, f: impl FnOnce(&mut State) -> R) -> R {
    if lua.app_data_ref::<Input>().is_none() {
        lua.set_app_data(Input(RefCell::new(State {
            line: Vec::new(),
            last: 0,
            echo: true,
            receiver: None,
        })));
    }
    let input = lua.app_data_ref::<Input>().expect("set above");
    f(&mut input.0.borrow_mut())
}

/// `uart.on("data", ...)`: sets or (with `None`) removes the receiver.
pub(crate) fn set_receiver(lua: &Lua, receiver: Option<Receiver>) {
    with(lua, |s| s.receiver = receiver);
}

/// A `uart.on("data")` receiver is set.
pub(crate) fn has_receiver(lua: &Lua) -> bool {
    lua.app_data_ref::<Input>()
        .is_some_and(|i| i.0.borrow().receiver.is_some())
}

/// A new tool on the serial port: the bytes of a line the previous one did not end are dropped.
pub(crate) fn forget_line(lua: &Lua) {
    if lua.app_data_ref::<Input>().is_some() {
        with(lua, |s| s.line.clear());
    }
}

/// `uart.setup(...)`'s echo argument.
pub(crate) fn set_echo(lua: &Lua, echo: bool) {
    with(lua, |s| s.echo = echo);
}

/// What one received byte asks for, decided under the state's borrow and done after it, since
/// a callback may call `uart.on` again.
enum Step {
    Nothing,
    Echo(&'static [u8]),
    EchoByte(u8),
    /// End of a line: echo LF if on, the receiver (if any) gets the line, then the interpreter.
    EndOfLine(bool, Option<Function>, Vec<u8>),
    /// A piece for a receiver that cut the interpreter off.
    Piece(Function, Vec<u8>),
}

/// Bytes received on UART0, in serial mode (or under `run`, where no `interpreter` takes the
/// lines: a receiver still sees them). Returns how many were taken: the handler stops after a
/// line it gave the interpreter, since on a board that line has run, and printed its prompt,
/// long before the serial port delivers the next byte. The caller feeds the rest once the
/// interpreter has taken the line, so output and prompt never trail the next line's echo.
pub(crate) fn feed(
    lua: &Lua,
    rt: &Rc<Runtime>,
    bytes: &[u8],
    interpreter: bool,
) -> mlua::Result<usize> {
    for (i, &ch) in bytes.iter().enumerate() {
        match with(lua, |s| step(s, ch, interpreter)) {
            Step::Nothing => {}
            Step::Echo(b) => rt.uart(b),
            Step::EchoByte(b) => rt.uart(&[b]),
            Step::EndOfLine(echo, callback, line) => {
                if echo {
                    rt.uart(b"\n");
                }
                if let Some(cb) = callback {
                    deliver(lua, rt, &cb, &line)?;
                }
                if interpreter {
                    repl::console_line(lua, rt, &line)?;
                    if repl::stdin_has_line(lua) {
                        return Ok(i + 1);
                    }
                }
            }
            Step::Piece(cb, piece) => deliver(lua, rt, &cb, &piece)?,
        }
    }
    Ok(bytes.len())
}

/// One byte through the handler; without the `interpreter` (under `run`) nothing is echoed.
fn step(s: &mut State, ch: u8, interpreter: bool) -> Step {
    let echo = s.echo && interpreter;
    const CR: u8 = b'\r';
    const LF: u8 = b'\n';
    let Some(rx) = s.receiver.clone().filter(|r| !r.run_input) else {
        if (ch == CR && s.last == LF) || (ch == LF && s.last == CR) {
            s.last = 0;
            return Step::Nothing;
        }
        if ch == 0x7f || ch == 0x08 {
            s.last = 0;
            if s.line.pop().is_some() && echo {
                return Step::Echo(b"\x08 \x08");
            }
            return Step::Nothing;
        }
        s.last = ch;
        if ch == CR || ch == LF {
            let cb = s.receiver.as_ref().map(|r| r.callback.clone());
            return Step::EndOfLine(echo, cb, std::mem::take(&mut s.line));
        }
        if s.line.len() + 1 >= MAX_INPUT {
            s.line.clear();
        }
        s.line.push(ch);
        return if echo {
            Step::EchoByte(ch)
        } else {
            Step::Nothing
        };
    };
    if rx.data_len == 0 {
        return Step::Piece(rx.callback, vec![ch]);
    }
    s.line.push(ch);
    let full = s.line.len() >= MAX_INPUT
        || (rx.data_len > 0 && s.line.len() as i64 >= rx.data_len)
        || (rx.data_len < 0 && ch == rx.end_char);
    if full {
        Step::Piece(rx.callback, std::mem::take(&mut s.line))
    } else {
        Step::Nothing
    }
}

/// A line typed at the line console (already echoed by the terminal): a receiver that cut the
/// interpreter off takes its bytes and its end; otherwise the receiver sees the line, then the
/// interpreter runs it. `true` when the interpreter got it (and so will prompt again).
pub(crate) fn line(lua: &Lua, rt: &Rc<Runtime>, line: &[u8]) -> mlua::Result<bool> {
    let receiver = with(lua, |s| s.receiver.clone());
    match receiver {
        Some(rx) if !rx.run_input => {
            let mut bytes = line.to_vec();
            bytes.push(b'\n');
            feed(lua, rt, &bytes, true)?;
            Ok(false)
        }
        Some(rx) => {
            deliver(lua, rt, &rx.callback, line)?;
            repl::console_line(lua, rt, line)?;
            Ok(true)
        }
        None => {
            repl::console_line(lua, rt, line)?;
            Ok(true)
        }
    }
}

/// Calls a receiver with its data, protected, as the firmware's `luaL_pcallx` does.
fn deliver(lua: &Lua, rt: &Rc<Runtime>, cb: &Function, data: &[u8]) -> mlua::Result<()> {
    let s = lua.create_string(data)?;
    rt.call_protected(lua, cb, s)
}
