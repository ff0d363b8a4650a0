//! The Lua libraries a script finds, shaped like the firmware's.
//!
//! On a device profile there is no `io` or `os`, and the 5.1 build's `math` and `debug` are the
//! firmware's small subsets (the 5.3 build's `debug` lacks `debug.debug`, as the firmware's);
//! `host` keeps the full libraries. On every profile `debug` is guarded so that it cannot reach
//! the simulator's own objects (`debug.lua`). On every profile `print` writes to the
//! device's UART, and `require`, `dofile` and `loadfile` read only the flash, by flat name, with the
//! flash name as chunk name (so errors read `init.lua:12: ...`, as on a board).

use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, StdLib, Table, Value};

use crate::lauxlib::{FwError, bind, fw_err};
use crate::runtime::Runtime;

/// The standard libraries opened for a profile.
pub(crate) fn libraries(device: bool) -> StdLib {
    let all = StdLib::ALL_SAFE | StdLib::DEBUG;
    if device {
        all ^ StdLib::IO ^ StdLib::OS
    } else {
        all
    }
}

/// The 5.1 firmware's `math` subset (`lmathlib.c` under the ESP8266 build).
const MATH_KEEP: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "max",
    "min",
    "pow",
    "random",
    "randomseed",
    "sqrt",
    "pi",
    "huge",
];
/// `LUA_USE_BUILTIN_DEBUG_MINIMAL`.
const DEBUG_KEEP: &[&str] = &["getregistry", "traceback"];
/// The 5.3 firmware's `debug` (`app/lua53/ldblib.c`): all but `debug.debug`, which it builds for
/// the host tools only.
const DEBUG_KEEP_53: &[&str] = &[
    "getuservalue",
    "gethook",
    "getinfo",
    "getlocal",
    "getregistry",
    "getmetatable",
    "getupvalue",
    "upvaluejoin",
    "upvalueid",
    "setuservalue",
    "sethook",
    "setlocal",
    "setmetatable",
    "setupvalue",
    "traceback",
];

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let g = lua.globals();
    if rt.cfg.target.is_device() && cfg!(feature = "lua51") {
        trim(&g.get::<Table>("math")?, MATH_KEEP)?;
        trim(&g.get::<Table>("debug")?, DEBUG_KEEP)?;
    }
    if rt.cfg.target.is_device() && cfg!(feature = "lua53") {
        trim(&g.get::<Table>("debug")?, DEBUG_KEEP_53)?;
    }
    // After the trim, it guards what the profile has; before `compat53`, which copies `load`.
    install_guard(lua, rt)?;
    if cfg!(feature = "lua53") {
        compat53(lua)?;
    }
    g.set("print", print(lua, rt)?)?;
    // SAFETY: `pcall` follows the lua_CFunction contract.
    g.set("pcall", unsafe {
        lua.create_c_function(crate::lauxlib::pcall)?
    })?;
    g.set(
        "loadfile",
        bind(lua, {
            let rt = rt.clone();
            move |lua, a| Ok(loadfile(lua, &rt, &a.check_str(lua, 1)?)?)
        })?,
    )?;
    g.set("dofile", dofile(lua, rt)?)?;
    install_require(lua, rt)
}

/// `guard.lua`, with the record of dumped chunks it checks loads against (`chunks.rs`); the
/// queue of finalisers it returns goes to the heap, which runs them between callbacks.
fn install_guard(lua: &Lua, rt: &Runtime) -> mlua::Result<()> {
    crate::chunks::install(lua);
    let loadable = bind(lua, |lua, a| match a.arg(1) {
        Value::String(s) => Ok(crate::chunks::loadable(lua, &s.as_bytes())),
        _ => Ok(true),
    })?;
    let record = bind(lua, |lua, a| {
        if let Value::String(s) = a.arg(1) {
            crate::chunks::record(lua, &s.as_bytes());
        }
        Ok(())
    })?;
    let (pending, run): (Table, Function) = lua
        .load(include_str!("guard.lua"))
        .set_name("=[sim]")
        .call((loadable, record))?;
    rt.heap.set_finalisers(pending, run);
    // The compiler's garbage would otherwise be counted into the heap's baseline and freed
    // later, making the script's first allocations look free.
    lua.gc_collect()
}

/// The compatibility names the firmware's 5.3 build keeps (docs/lua53.md): global `unpack`,
/// `loadstring`, and `package.loaders`. NTest's `spy`, for one, calls `unpack`.
fn compat53(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let table: Table = g.get("table")?;
    let package: Table = g.get("package")?;
    if g.get::<Value>("unpack")?.is_nil() {
        g.set("unpack", table.get::<Value>("unpack")?)?;
    }
    if g.get::<Value>("loadstring")?.is_nil() {
        g.set("loadstring", g.get::<Value>("load")?)?;
    }
    if package.get::<Value>("loaders")?.is_nil() {
        package.set("loaders", package.get::<Value>("searchers")?)?;
    }
    Ok(())
}

fn trim(t: &Table, keep: &[&str]) -> mlua::Result<()> {
    let names: Vec<String> = t
        .pairs::<String, Value>()
        .filter_map(|p| p.ok().map(|(k, _)| k))
        .collect();
    for k in names.iter().filter(|k| !keep.contains(&k.as_str())) {
        t.raw_set(k.as_str(), Value::Nil)?;
    }
    Ok(())
}

/// `print`: `tostring` of each argument, tab-separated, newline-terminated, to the UART.
fn print(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let rt = rt.clone();
    bind(lua, move |lua, args| {
        let tostring: Function = lua.globals().get("tostring")?;
        let mut line = Vec::new();
        for (i, v) in args.0.into_iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            match tostring.call::<Value>(v)? {
                Value::String(s) => line.extend_from_slice(&s.as_bytes()),
                _ => return fw_err("'tostring' must return a string to 'print'"),
            }
        }
        line.push(b'\n');
        rt.print(&line);
        Ok(())
    })
}

/// Compiles a flash file: `Ok(function)` or the message `loadfile` returns.
pub(crate) fn load_flash(lua: &Lua, rt: &Runtime, name: &str) -> Result<Function, String> {
    let Some(bytes) = rt.flash.read(name) else {
        return Err(format!("cannot open {name}"));
    };
    let (code, mode) = crate::chunks::flash_chunk(&bytes);
    lua.load(code)
        .set_mode(mode)
        .set_name(format!("@{name}"))
        .into_function()
        .map_err(|e| crate::lauxlib::lua_error_text(&e))
}

/// `loadfile(name)`: the chunk, or `nil, message`.
fn loadfile(lua: &Lua, rt: &Runtime, name: &str) -> mlua::Result<MultiValue> {
    Ok(match load_flash(lua, rt, name) {
        Ok(f) => MultiValue::from_iter([Value::Function(f)]),
        Err(m) => MultiValue::from_iter([Value::Nil, Value::String(lua.create_string(m)?)]),
    })
}

/// `dofile(name)`: runs the chunk and returns its results; a load error is raised.
fn dofile(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let rt = rt.clone();
    let run: Function = lua
        .load("local f = ... return function(...) return f(...)() end")
        .set_name("=[sim]")
        .call(bind(lua, move |lua, a| {
            match load_flash(lua, &rt, &a.check_str(lua, 1)?) {
                Ok(f) => Ok(f),
                Err(m) => Err(FwError::Raise(Value::String(lua.create_string(m)?))),
            }
        })?)?;
    Ok(run)
}

/// `require`: `package.path` is `?.lc;?.lua`, searched on the flash only; no C modules.
/// `NTest` not found on the flash is the simulator's built-in framework (`ntest.rs`).
fn install_require(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let package: Table = lua.globals().get("package")?;
    package.set("path", "?.lc;?.lua")?;
    package.set("cpath", "")?;
    package.set("loadlib", Value::Nil)?;
    let loaders: Table = match package.get::<Option<Table>>("loaders")? {
        Some(t) => t,
        None => package.get("searchers")?,
    };
    let rt = rt.clone();
    let pkg = package.clone();
    let searcher = bind(lua, move |lua, a| {
        let name = a.check_str(lua, 1)?;
        let path: String = pkg.get::<Option<String>>("path")?.unwrap_or_default();
        let mut tried = String::new();
        for tmpl in path.split(';').filter(|t| !t.is_empty()) {
            let fname = tmpl.replace('?', &name.replace('.', "/"));
            if rt.flash.read(&fname).is_none() {
                tried.push_str(&format!("\n\tno file '{fname}'"));
                continue;
            }
            return match load_flash(lua, &rt, &fname) {
                Ok(f) => Ok(Value::Function(f)),
                Err(m) => Err(FwError::Raise(Value::String(lua.create_string(
                    format!("error loading module '{name}' from file '{fname}':\n\t{m}"),
                )?))),
            };
        }
        if name == "NTest" {
            return Ok(Value::Function(crate::ntest::loader(lua)?)); // the built-in framework
        }
        Ok(Value::String(lua.create_string(tried)?))
    })?;
    // preload stays first; the flash searcher replaces the file and C searchers.
    let preload = loaders.get::<Value>(1)?;
    for i in (1..=loaders.raw_len()).rev() {
        loaders.raw_remove(i)?;
    }
    loaders.raw_set(1, preload)?;
    loaders.raw_set(2, searcher)?;
    Ok(())
}
