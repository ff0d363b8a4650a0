//! The firmware's interactive interpreter, its stdin pipe, and `node.input` / `node.output`.
//!
//! As on the board, everything typed goes through one pipe: the UART handler (here the console)
//! writes each non-empty line with a `\n`, and `node.input(s)` writes `s`. The pipe's reader runs
//! as a LOW priority task and takes one `\n`-ended line per run:
//! - while a chunk is incomplete (the compiler stops at `<eof>`) lines are joined with `\n` and
//!   the prompt is `>> ` (`_PROMPT2`);
//! - a first line `=expr` is compiled as `return expr`, with chunk name `stdin`;
//! - the chunk runs with `debug.traceback` as message handler; its results are printed with
//!   `print`, an error as `print("Lua error: ", traceback)`. There is no reset.
//! - then the prompt (`_PROMPT` or `> `) goes out through `print`'s path, so a telnet session
//!   that took the output with `node.output` sees it too.
//!
//! `node.output(fn, serial_debug)` gives `print` a pipe read by `fn` (MEDIUM priority);
//! `serial_debug` 0 stops the copy to the UART. `node.output()` puts the UART back.

use std::rc::Rc;
use std::sync::Arc;

use mlua::{AnyUserData, Function, Lua, MultiValue, Value};

use crate::console::{Link, Prompt};
use crate::lauxlib::bind;
use crate::modules::pipe::{self, ReadSpec, ReaderKind};
use crate::runtime::{Priority, Runtime};

/// The console the device is connected to (set by `Console::attach`).
pub(crate) struct Attached(pub(crate) Arc<Link>);

/// The stdin pipe of this boot.
struct Stdin(AnyUserData);

/// The chunk typed so far while it is incomplete (the firmware's `MLref`).
struct Pending(Vec<u8>);

/// `node.output`'s pipe and whether the UART still gets a copy.
#[derive(Clone)]
struct Stdout {
    pipe: AnyUserData,
    serial_debug: bool,
}

fn stdin(lua: &Lua) -> mlua::Result<AnyUserData> {
    if let Some(s) = lua.app_data_ref::<Stdin>() {
        return Ok(s.0.clone());
    }
    let ud = pipe::create(lua, Some((ReaderKind::Stdin, None, Priority::Low)))?;
    lua.set_app_data(Stdin(ud.clone()));
    Ok(ud)
}

/// Writes into the stdin pipe: `node.input(s)`, and each line typed at the console.
pub(crate) fn input(lua: &Lua, rt: &Rc<Runtime>, bytes: &[u8]) -> mlua::Result<()> {
    pipe::write(rt, &stdin(lua)?, bytes)
}

/// True while a whole line waits in the stdin pipe.
pub(crate) fn stdin_has_line(lua: &Lua) -> bool {
    let Some(ud) = lua.app_data_ref::<Stdin>().map(|s| s.0.clone()) else {
        return false;
    };
    pipe::handle(&ud).is_ok_and(|p| p.0.borrow().has_line())
}

fn attached(lua: &Lua) -> Option<Arc<Link>> {
    lua.app_data_ref::<Attached>().map(|a| a.0.clone())
}

/// A line from the console, as the UART handler passes it on: an empty line only gets the
/// prompt again; any other goes into the stdin pipe with its `\n`.
pub(crate) fn console_line(lua: &Lua, rt: &Rc<Runtime>, line: &[u8]) -> mlua::Result<()> {
    if line.is_empty() {
        if let Some(link) = attached(lua) {
            let prompt = link.prompt();
            if !link.tty {
                rt.uart(prompt.text.as_bytes());
            }
            link.prompted(prompt, !stdin_has_line(lua));
        }
        return Ok(());
    }
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    input(lua, rt, &bytes)
}

/// Ctrl-C at `>> `: the chunk typed so far is dropped and the device prompts afresh.
pub(crate) fn cancel(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    lua.remove_app_data::<Pending>();
    emit_prompt(lua, rt, true)
}

/// A new tool on the serial port: the chunk the previous one left unfinished is dropped.
pub(crate) fn forget_chunk(lua: &Lua) {
    lua.remove_app_data::<Pending>();
}

/// The stdin pipe's reader: runs one line, or returns `Some(false)` (no repost) when no whole
/// line is there (a partial one is put back to wait for its end).
pub(crate) fn read_stdin(
    lua: &Lua,
    rt: &Rc<Runtime>,
    ud: &AnyUserData,
) -> mlua::Result<Option<bool>> {
    let p = pipe::handle(ud)?;
    let Some(mut line) = p.0.borrow_mut().read(ReadSpec::Delim(b'\n', true)) else {
        return Ok(Some(false));
    };
    if line.last() != Some(&b'\n') {
        p.0.borrow_mut().unread(&line);
        return Ok(Some(false));
    }
    line.pop();
    dojob(lua, rt, line)?;
    // One line per task: the next typed line, if any, gets a task of its own.
    Ok(Some(true))
}

/// The firmware's `dojob`: one line into the chunk being typed, run when complete, then the prompt.
fn dojob(lua: &Lua, rt: &Rc<Runtime>, line: Vec<u8>) -> mlua::Result<()> {
    let chunk = match lua.remove_app_data::<Pending>() {
        Some(Pending(mut prev)) => {
            prev.push(b'\n');
            prev.extend_from_slice(&line);
            prev
        }
        None => match line.strip_prefix(b"=") {
            Some(expr) => [b"return ".as_slice(), expr].concat(),
            None => line,
        },
    };
    match lua.load(&chunk).set_name("=stdin").into_function() {
        Err(mlua::Error::SyntaxError { message, .. }) if incomplete(&message) => {
            lua.set_app_data(Pending(chunk));
        }
        Err(e) => report(lua, rt, Value::String(lua.create_string(lua_text(&e))?))?,
        Ok(f) => run_chunk(lua, rt, f)?,
    }
    let first = lua.app_data_ref::<Pending>().is_none();
    emit_prompt(lua, rt, first)
}

/// The compiler stopped at the end of the input: more lines may complete the chunk.
fn incomplete(msg: &str) -> bool {
    msg.ends_with("'<eof>'") || msg.ends_with("<eof>")
}

fn lua_text(e: &mlua::Error) -> String {
    crate::lauxlib::lua_error_text(e)
}

/// `docall`, then the results or the error through `print`. `xpcall` is called straight from
/// Rust, so the traceback ends at the chunk as the firmware's does (`stdin:1: in main chunk`,
/// then `[C]: ?`).
fn run_chunk(lua: &Lua, rt: &Rc<Runtime>, f: Function) -> mlua::Result<()> {
    let xpcall: Function = lua.named_registry_value(XPCALL)?;
    let handler: Function = lua.named_registry_value(HANDLER)?;
    let mut r = xpcall.call::<MultiValue>((f, handler))?;
    match r.pop_front() {
        Some(Value::Boolean(true)) => {
            if !r.is_empty() {
                print(lua, rt, r)?;
            }
            Ok(())
        }
        _ => report(lua, rt, r.pop_front().unwrap_or(Value::Nil)),
    }
}

/// `print("Lua error: ", err)`, unless the error value is nil.
fn report(lua: &Lua, rt: &Rc<Runtime>, err: Value) -> mlua::Result<()> {
    if err.is_nil() {
        return Ok(());
    }
    let label = Value::String(lua.create_string("Lua error: ")?);
    print(lua, rt, MultiValue::from_iter([label, err]))
}

/// `l_print`: calls the global `print`, protected; its failure is reported on the UART.
fn print(lua: &Lua, rt: &Rc<Runtime>, values: MultiValue) -> mlua::Result<()> {
    let pcall: Function = lua.named_registry_value(PCALL_PRINT)?;
    let r = pcall.call::<MultiValue>(values)?;
    if let (Some(Value::Boolean(false)), Some(msg)) = (r.front(), r.get(1)) {
        let msg = lua
            .coerce_string(msg.clone())?
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        rt.uart(format!("error calling 'print' ({msg})\n").as_bytes());
    }
    Ok(())
}

/// `get_prompt`: `_PROMPT` / `_PROMPT2` if they are strings (or numbers), else `> ` / `>> `.
fn get_prompt(lua: &Lua, first: bool) -> String {
    let name = if first { "_PROMPT" } else { "_PROMPT2" };
    match lua.globals().get::<Value>(name) {
        Ok(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v)
            .ok()
            .flatten()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        _ => if first { "> " } else { ">> " }.to_string(),
    }
}

/// Prints the prompt the way `print` output goes (pipe and/or UART) and tells the console.
/// A terminal that draws its own prompt gets no prompt bytes on the UART.
fn emit_prompt(lua: &Lua, rt: &Rc<Runtime>, first: bool) -> mlua::Result<()> {
    let prompt = &get_prompt(lua, first);
    let link = attached(lua);
    let stdout = lua.app_data_ref::<Stdout>().map(|s| s.clone());
    let to_uart = |p: &str| {
        if !link.as_ref().is_some_and(|l| l.tty) {
            rt.uart(p.as_bytes());
        }
    };
    match stdout {
        Some(s) => {
            if s.serial_debug {
                to_uart(prompt);
            }
            pipe::write(rt, &s.pipe, prompt.as_bytes())?;
        }
        None => to_uart(prompt),
    }
    if let Some(link) = link {
        let p = Prompt {
            text: prompt.clone(),
            continuing: !first,
        };
        link.prompted(p, !stdin_has_line(lua));
    }
    Ok(())
}

const XPCALL: &str = "nodemcu-sim.repl.xpcall";
const HANDLER: &str = "nodemcu-sim.repl.handler";
const PCALL_PRINT: &str = "nodemcu-sim.repl.print";

/// Installs `node.input`/`node.output` in `node` and the interpreter's Lua helpers.
pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>, node: &mlua::Table) -> mlua::Result<()> {
    // The firmware's message handler looks `debug.traceback` up when the error happens and starts
    // the traceback at the function that raised the error: level 2 seen from a C handler. Here the
    // handler is called through mlua's own xpcall wrapper (a C frame in between, since the
    // device's Lua state keeps Rust panics out of pcall), hence level 3; and no tail call, which
    // would add a frame of its own.
    let helpers: (Function, Function, Function) = lua
        .load(
            "local xpcall, pcall, type = xpcall, pcall, type\n\
             local function handler(e)\n\
               local d = debug\n\
               local tb = type(d) == 'table' and d.traceback\n\
               if type(tb) ~= 'function' then return e end\n\
               local t = tb(e, 3)\n\
               return t\n\
             end\n\
             return xpcall, handler, function(...) return pcall(print, ...) end",
        )
        .set_name("=[sim]")
        .call(())?;
    lua.set_named_registry_value(XPCALL, helpers.0)?;
    lua.set_named_registry_value(HANDLER, helpers.1)?;
    lua.set_named_registry_value(PCALL_PRINT, helpers.2)?;

    let r = rt.clone();
    let input_fn = bind(lua, move |lua, a| {
        let s = a.check_bytes(lua, 1)?;
        input(lua, &r, &s.as_bytes())?;
        Ok(())
    })?;
    let r = rt.clone();
    let output_fn = bind(lua, move |lua, a| {
        let serial_debug = !(a.is_number(2) && a.check_integer(2)? == 0);
        match a.get(1) {
            Value::Function(f) if r.cfg.target == crate::config::Target::Esp32 => {
                set_callback(lua, &r, f, serial_debug, true);
            }
            Value::Function(f) if r.cfg.firmware < crate::config::Firmware::V3_0 => {
                set_callback(lua, &r, f, serial_debug, false);
            }
            Value::Function(f) => {
                let pipe = pipe::create(lua, Some((ReaderKind::Lua, Some(f), Priority::Medium)))?;
                set_stdout(lua, &r, Some(Stdout { pipe, serial_debug }));
            }
            _ => set_stdout(lua, &r, None),
        }
        Ok(())
    })?;
    node.set("input", input_fn)?;
    node.set("output", output_fn)
}

/// The ESP32 port's chunks of output: each write of at most this many bytes is one callback.
const ESP32_OUTPUT_CHUNK: usize = 127;

/// `node.output(fn)` without a pipe. Before 3.0 the ESP8266 calls `fn(s)` at once with each
/// string `print` writes, a plain `lua_call` inside `print`, so its error is `print`'s (not a
/// PANIC: the running code's own protection catches it); the ESP32 port calls it later, from a
/// HIGH priority task, with chunks of at most 127 bytes.
fn set_callback(lua: &Lua, rt: &Rc<Runtime>, f: Function, serial_debug: bool, queued: bool) {
    lua.remove_app_data::<Stdout>();
    let (weak_lua, weak) = (lua.weak(), Rc::downgrade(rt));
    *rt.output_redirect.borrow_mut() = Some(Rc::new(move |bytes: &[u8]| {
        let (Some(rt), Some(lua)) = (weak.upgrade(), weak_lua.try_upgrade()) else {
            return Ok(());
        };
        if serial_debug {
            rt.uart(bytes);
        }
        if !queued {
            let s = lua.create_string(bytes)?;
            return rt.call_sync(&lua, &f, s);
        }
        for chunk in bytes.chunks(ESP32_OUTPUT_CHUNK) {
            let (f, r, chunk) = (f.clone(), rt.clone(), chunk.to_vec());
            rt.post_internal(
                Priority::High,
                Box::new(move |lua| {
                    let s = lua.create_string(&chunk)?;
                    r.call_protected(lua, &f, s)
                }),
            );
        }
        Ok(())
    }));
}

/// Points `print` at a pipe (with or without a UART copy), or back at the UART.
fn set_stdout(lua: &Lua, rt: &Rc<Runtime>, to: Option<Stdout>) {
    let Some(s) = to else {
        lua.remove_app_data::<Stdout>();
        rt.output_redirect.borrow_mut().take();
        return;
    };
    let (pipe, serial_debug, weak) = (s.pipe.clone(), s.serial_debug, Rc::downgrade(rt));
    lua.set_app_data(s);
    *rt.output_redirect.borrow_mut() = Some(Rc::new(move |bytes: &[u8]| {
        if let Some(rt) = weak.upgrade() {
            if serial_debug {
                rt.uart(bytes);
            }
            let _ = pipe::write(&rt, &pipe, bytes);
        }
        Ok(())
    }));
}
