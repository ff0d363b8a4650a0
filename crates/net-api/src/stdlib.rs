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

use crate::lauxlib::{FwError, FwResult, bind, fw_err};
use crate::runtime::Runtime;

mod traceback;

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
    traceback::install(lua)?;
    g.set("print", print(lua, rt)?)?;
    // SAFETY: `pcall` follows the lua_CFunction contract.
    g.set("pcall", unsafe {
        lua.create_c_function(crate::lauxlib::pcall)?
    })?;
    g.set(
        "loadfile",
        bind(lua, {
            let rt = rt.clone();
            move |lua, a| Ok(loadfile(lua, &rt, &file_name(lua, &a)?)?)
        })?,
    )?;
    g.set("dofile", dofile(lua, rt)?)?;
    crate::strlib::install(lua, rt)?;
    crate::longcalls::install(lua, rt)?;
    if rt.cfg.target.is_device() {
        g.set("collectgarbage", collectgarbage(lua, rt)?)?;
    }
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

/// `print`: `tostring` of each argument, tab-separated, newline-terminated, to the UART. The
/// ESP8266 firmware before 3.0 wrote each piece (argument, tab, newline) on its own, which a
/// `node.output` function sees as separate calls.
fn print(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let rt = rt.clone();
    let pieces = rt.cfg.firmware < crate::config::Firmware::V3_0
        && rt.cfg.target != crate::config::Target::Esp32;
    bind(lua, move |lua, args| {
        let tostring: Function = lua.globals().get("tostring")?;
        let mut line = Vec::new();
        for (i, v) in args.0.into_iter().enumerate() {
            let Some(Value::String(s)) = crate::lauxlib::call_lua(lua, &tostring, v)?.pop_front()
            else {
                return fw_err("'tostring' must return a string to 'print'");
            };
            if pieces && rt.output_redirect.borrow().is_some() {
                if i > 0 {
                    rt.print(b"\t")?;
                }
                rt.print(&s.as_bytes())?;
                continue;
            }
            if i > 0 {
                line.push(b'\t');
            }
            line.extend_from_slice(&s.as_bytes());
        }
        line.push(b'\n');
        rt.print(&line)?;
        Ok(())
    })
}

/// Compiles a flash file: `Ok(function)` or the message `loadfile` returns.
pub(crate) fn load_flash(lua: &Lua, rt: &Runtime, name: &str) -> Result<Function, String> {
    let Some(bytes) = rt.flash.read(name) else {
        return Err(format!("cannot open {name}"));
    };
    let (code, mode) = crate::chunks::flash_chunk(&bytes);
    lua.load(skip_hash_line(code.to_vec()))
        .set_mode(mode)
        .set_name(format!("@{name}"))
        .into_function()
        .map_err(|e| crate::lauxlib::lua_error_text(&e))
}

/// `luaL_loadfile` skips a first line that starts with `#` (a `#!` line), keeping its newline so
/// line numbers stay those of the file.
fn skip_hash_line(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.first() == Some(&b'#') {
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        bytes.drain(..end);
    }
    bytes
}

/// `loadfile(name)`: the chunk, or `nil, message`.
fn loadfile(lua: &Lua, rt: &Runtime, name: &str) -> mlua::Result<MultiValue> {
    Ok(match load_flash(lua, rt, name) {
        Ok(f) => MultiValue::from_iter([Value::Function(f)]),
        Err(m) => MultiValue::from_iter([Value::Nil, Value::String(lua.create_string(m)?)]),
    })
}

/// The file name argument of `loadfile`/`dofile` (`luaL_optstring`, then `luaL_loadfile`'s check).
fn file_name(lua: &Lua, a: &crate::lauxlib::Args) -> FwResult<String> {
    if a.is_none_or_nil(1) {
        return fw_err("filename is NULL");
    }
    a.check_str(lua, 1)
}

/// Where `dofile` finds its loader: a binding that returns the chunk or raises the load error.
const DOFILE_LOADER: &std::ffi::CStr = c"nodemcu-sim.dofile.loader";
const DOFILE_LOADER_KEY: &str = "nodemcu-sim.dofile.loader";

/// `dofile(name)`: runs the chunk and returns its results; a load error is raised. A C function,
/// as `luaB_dofile` is, so a traceback from inside the file reads `[C]: in function 'dofile'`
/// right below the file's main chunk, and nothing of the simulator's.
fn dofile(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let rt = rt.clone();
    let loader = bind(lua, move |lua, a| {
        match load_flash(lua, &rt, &a.check_str(lua, 1)?) {
            Ok(f) => Ok(f),
            Err(m) => Err(FwError::Raise(Value::String(lua.create_string(m)?))),
        }
    })?;
    lua.set_named_registry_value(DOFILE_LOADER_KEY, loader)?;
    // SAFETY: `dofile_c` follows the lua_CFunction contract.
    unsafe { lua.create_c_function(dofile_c) }
}

/// The body of `dofile`: loader(name), then the chunk with every result kept. Lua errors jump
/// out of here; nothing of Rust's is alive in this frame.
unsafe extern "C-unwind" fn dofile_c(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as a C function; the stack is checked before pushing.
    unsafe {
        // `luaL_optstring`, then the loader's refusal of no name, as the firmware's
        // `luaL_loadfile` words it; `luaL_error` places it at the caller, as on the board.
        if ffi::lua_isnoneornil(state, 1) != 0 {
            return ffi::luaL_error(state, c"filename is NULL".as_ptr());
        }
        ffi::luaL_checklstring(state, 1, std::ptr::null_mut());
        ffi::lua_settop(state, 1);
        ffi::luaL_checkstack(state, 3, c"dofile".as_ptr());
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, DOFILE_LOADER.as_ptr());
        ffi::lua_pushvalue(state, 1);
        ffi::lua_call(state, 1, 1);
        ffi::lua_call(state, 0, ffi::LUA_MULTRET);
        ffi::lua_gettop(state) - 1
    }
}

/// `require`: `package.path` is `?.lc;?.lua`, searched on the flash only; no C modules.
/// `NTest` not found on the flash is the simulator's built-in framework (`ntest.rs`), and
/// `nodemcu-sim` the test module of the virtual board (`devboard/simmod.rs`).
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
        if name == "nodemcu-sim" {
            return Ok(Value::Function(crate::devboard::simmod::loader(lua, &rt)?));
        }
        Ok(Value::String(lua.create_string(tried)?))
    })?;
    // preload stays first; the flash searcher replaces the file and C searchers; the built-in
    // modules come last.
    let preload = loaders.get::<Value>(1)?;
    for i in (1..=loaders.raw_len()).rev() {
        loaders.raw_remove(i)?;
    }
    loaders.raw_set(1, preload)?;
    loaders.raw_set(2, searcher)?;
    loaders.raw_set(3, rom_loader(lua)?)?;
    Ok(())
}

/// The names of the firmware's 5.3 `ROM` table, the modules it was built with: here the global
/// tables at the end of boot, recorded by [`seal_rom`] on the Rust side (a Lua table would move
/// the device heap's figures).
struct Rom(std::collections::HashSet<Vec<u8>>);

/// The firmware's `require` answers with a built-in module, so `require "bit"` is `bit`. Its Lua
/// 5.1 takes any global table of the name (the modules are read-only tables among the globals
/// there); its 5.3 looks in `ROM`, the modules it was built with. The firmware asks before any
/// loader; here a flash file of the name wins, because the simulator has every module built in
/// and a project ships a Lua module (`bme280.lua`) only for a build without the C one.
fn rom_loader(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, name: mlua::LuaString| {
        let built_in = !cfg!(feature = "lua53")
            || lua
                .app_data_ref::<Rom>()
                .is_some_and(|rom| rom.0.contains(name.as_bytes().as_ref()));
        match lua.globals().get::<Value>(name)? {
            Value::Table(t) if built_in => Ok(Value::Function(
                lua.create_function(move |_, ()| Ok(t.clone()))?,
            )),
            _ => Ok(Value::Nil),
        }
    })
}

/// Records the modules booted (every global table now) as the firmware's `ROM`.
pub(crate) fn seal_rom(lua: &Lua) -> mlua::Result<()> {
    let mut names = std::collections::HashSet::new();
    for pair in lua.globals().pairs::<Value, Value>() {
        if let (Value::String(k), Value::Table(_)) = pair? {
            names.insert(k.as_bytes().to_vec());
        }
    }
    lua.set_app_data(Rom(names));
    Ok(())
}

/// `collectgarbage` whose `"count"` is the device heap's figure: the KB the script's data takes
/// on the board, so `collectgarbage("count")` and `node.heap()` tell the same story. Every other
/// option goes to Lua's own. A C function, so that `collectgarbage()` with the heap full (a
/// script's last resort) allocates nothing on its way to the collector.
fn collectgarbage(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let original: Function = lua.globals().get("collectgarbage")?;
    lua.set_named_registry_value(CG_ORIGINAL_KEY, original)?;
    let rt = rt.clone();
    let count = bind(lua, move |lua, _| {
        Ok(Value::Number(rt.heap.used_device(lua) as f64 / 1024.0))
    })?;
    lua.set_named_registry_value(CG_COUNT_KEY, count)?;
    // SAFETY: `collectgarbage_c` follows the lua_CFunction contract.
    unsafe { lua.create_c_function(collectgarbage_c) }
}

const CG_ORIGINAL: &std::ffi::CStr = c"nodemcu-sim.collectgarbage";
const CG_ORIGINAL_KEY: &str = "nodemcu-sim.collectgarbage";
const CG_COUNT: &std::ffi::CStr = c"nodemcu-sim.collectgarbage.count";
const CG_COUNT_KEY: &str = "nodemcu-sim.collectgarbage.count";

/// The options Lua's `collectgarbage` takes on this build.
const CG_OPTIONS: &[&[u8]] = &[
    b"stop",
    b"restart",
    b"collect",
    b"count",
    b"step",
    b"setpause",
    b"setstepmul",
    #[cfg(feature = "lua53")]
    b"isrunning",
];

/// The body of the device's `collectgarbage`: checks the option as `luaL_checkoption` does (so
/// errors name `collectgarbage`), answers `"count"` from the device heap, and passes the rest on.
/// Lua errors jump out of here; nothing of Rust's that needs dropping is alive in this frame.
unsafe extern "C-unwind" fn collectgarbage_c(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as a C function; the stack is checked before pushing.
    unsafe {
        let opt = ffi::luaL_optlstring(state, 1, c"collect".as_ptr(), std::ptr::null_mut());
        let name = std::ffi::CStr::from_ptr(opt).to_bytes();
        if !CG_OPTIONS.contains(&name) {
            ffi::lua_pushfstring(state, c"invalid option '%s'".as_ptr(), opt);
            return ffi::luaL_argerror(
                state,
                1,
                ffi::lua_tolstring(state, -1, std::ptr::null_mut()),
            );
        }
        // Two slots at most, within the LUA_MINSTACK a C function is given: growing the stack
        // could need the memory a full heap has not got.
        if name == b"count" {
            ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, CG_COUNT.as_ptr());
            ffi::lua_call(state, 0, 1);
            return 1;
        }
        let given = ffi::lua_gettop(state);
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, CG_ORIGINAL.as_ptr());
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, given, ffi::LUA_MULTRET);
        ffi::lua_gettop(state)
    }
}
