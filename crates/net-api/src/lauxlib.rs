//! The firmware's argument checking and error raising, for bindings written in Rust.
//!
//! On a board every module error comes from `luaL_error` or `luaL_argerror`: a plain string prefixed
//! with the caller's `chunk:line:`, so `pcall` hands scripts (and NTest) exactly the text the device
//! would print. An mlua error raised from Rust would instead reach Lua as a userdata. So every binding
//! is a Rust function that *returns* its outcome, and a C closure around it (see `lauxlib/fast.rs`)
//! raises the failure as a plain value. [`bind`] builds that pair; [`Args`] mirrors `luaL_check*`
//! with the same messages.

mod fast;

use std::cell::RefCell;
use std::ffi::c_int;
use std::rc::Rc;

pub use fast::{bind_fast, bind_fast_with};
pub(crate) use fast::{method, pcall};
use mlua::{AnyUserData, Function, IntoLuaMulti, Lua, MultiValue, UserData, Value};

/// Why a binding failed, in the firmware's terms.
#[derive(Debug)]
pub enum FwError {
    /// `luaL_error(L, msg)`: the message gets the caller's position.
    Msg(String),
    /// `luaL_argerror(L, n, msg)`: "bad argument #n to 'name' (msg)", with the position.
    Arg(usize, String),
    /// An error value raised as it is (an error from a Lua callback run inside the binding).
    Raise(Value),
    /// Something went wrong inside mlua itself (memory exhausted, mostly).
    Lua(mlua::Error),
}

pub type FwResult<T> = Result<T, FwError>;

impl From<mlua::Error> for FwError {
    fn from(e: mlua::Error) -> Self {
        FwError::Lua(e)
    }
}

/// Shorthand for `luaL_error`.
pub fn fw_err<T>(msg: impl Into<String>) -> FwResult<T> {
    Err(FwError::Msg(msg.into()))
}

/// Shorthand for `luaL_argerror`.
pub fn arg_err<T>(n: usize, msg: impl Into<String>) -> FwResult<T> {
    Err(FwError::Arg(n, msg.into()))
}

/// `luaL_argcheck`.
pub fn arg_check(cond: bool, n: usize, msg: &str) -> FwResult<()> {
    if cond { Ok(()) } else { arg_err(n, msg) }
}

/// The stack levels as seen from inside a native: 0 is the native, 1 the binding's closure (the
/// function the script called), 2 the script's caller.
const METHOD_LEVEL: usize = 1;
const CALLER_LEVEL: usize = 2;

/// `luaL_where(L, 1)`: "chunk:line: " of the script code that called the binding, or "".
pub fn where_(lua: &Lua) -> String {
    lua.inspect_stack(CALLER_LEVEL, |d| {
        match (d.source().short_src, d.current_line()) {
            (Some(src), Some(line)) => format!("{src}:{line}: "),
            _ => String::new(),
        }
    })
    .unwrap_or_default()
}

impl FwError {
    /// The value the binding's closure raises.
    fn into_value(self, lua: &Lua) -> mlua::Result<Value> {
        let text = match self {
            FwError::Raise(v) => return Ok(v),
            FwError::Lua(mlua::Error::MemoryError(_)) => "not enough memory".to_string(),
            // Raised by Lua code the binding ran (a metamethod, a callback): it already has the
            // position it was raised at, as the error would have on a board.
            FwError::Lua(e) if raised_by_lua(&e).is_some() => raised_by_lua(&e).unwrap_or_default(),
            FwError::Lua(e) => format!("{}{}", where_(lua), lua_error_text(&e)),
            FwError::Msg(m) => format!("{}{m}", where_(lua)),
            FwError::Arg(n, m) => format!("{}{}", where_(lua), arg_message(lua, n, &m)),
        };
        Ok(Value::String(lua.create_string(text)?))
    }
}

/// Lua 5.3's `pushglobalfuncname`: a binding called through no name (`pcall(string.gsub, ...)`)
/// is named by where `package.loaded` holds it ("string.gsub"; "print" for a global). Lua 5.1
/// says `?`.
fn global_func_name(lua: &Lua) -> Option<String> {
    if !cfg!(feature = "lua53") {
        return None;
    }
    let f = lua.inspect_stack(METHOD_LEVEL, |d| d.function())?;
    let loaded: mlua::Table = lua.named_registry_value("_LOADED").ok()?;
    for (module, t) in loaded.pairs::<String, Value>().flatten() {
        let Value::Table(t) = t else { continue };
        for (name, v) in t.pairs::<Value, Value>().flatten() {
            if let (Value::String(name), Value::Function(g)) = (name, v)
                && g == f
            {
                let name = name.to_string_lossy();
                return Some(match module.as_str() {
                    "_G" => name,
                    _ => format!("{module}.{name}"),
                });
            }
        }
    }
    None
}

/// The message of an error that Lua code raised while a binding was running, without the
/// traceback mlua appends when it calls a function; `None` for mlua's own errors.
fn raised_by_lua(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::RuntimeError(s) => Some(match s.rfind("\nstack traceback:\n") {
            Some(at) => s[..at].to_string(),
            None => s.clone(),
        }),
        mlua::Error::CallbackError { cause, .. } => raised_by_lua(cause),
        #[cfg(feature = "lua53")]
        mlua::Error::GarbageCollectorError(s) => Some(s.clone()),
        _ => None,
    }
}

/// The name the running binding was called by (`lua_getinfo`'s "n"), or `?`.
pub fn binding_name(lua: &Lua) -> String {
    lua.inspect_stack(METHOD_LEVEL, |d| d.names().name.map(|s| s.into_owned()))
        .flatten()
        .unwrap_or_else(|| "?".to_string())
}

/// `luaL_argerror`'s text: method calls don't count `self`, and an error on `self` reads differently.
fn arg_message(lua: &Lua, n: usize, msg: &str) -> String {
    let (name, method) = lua
        .inspect_stack(METHOD_LEVEL, |d| {
            let names = d.names();
            (
                names.name.map(|s| s.into_owned()),
                names.name_what == Some("method"),
            )
        })
        .unwrap_or((None, false));
    let name = name
        .or_else(|| global_func_name(lua))
        .unwrap_or_else(|| "?".to_string());
    match (method, n) {
        (true, 1) => format!("calling '{name}' on bad self ({msg})"),
        (true, n) => format!("bad argument #{} to '{name}' ({msg})", n - 1),
        (false, n) => format!("bad argument #{n} to '{name}' ({msg})"),
    }
}

/// Calls Lua function `f` from a binding as a firmware C function does with `lua_call`: an error
/// it raises leaves the binding as the very value it raised (no traceback, no second position).
pub fn call_lua(lua: &Lua, f: &Function, args: impl mlua::IntoLuaMulti) -> FwResult<MultiValue> {
    let pcall = lua
        .app_data_ref::<Rc<crate::runtime::Runtime>>()
        .and_then(|rt| rt.helpers.borrow().as_ref().map(|h| h.pcall.clone()));
    let Some(pcall) = pcall else {
        return Ok(f.call(args)?);
    };
    let mut args = args.into_lua_multi(lua)?;
    args.push_front(Value::Function(f.clone()));
    let mut r = pcall.call::<MultiValue>(args)?;
    match r.pop_front() {
        Some(Value::Boolean(true)) => Ok(r),
        _ => match r.pop_front() {
            Some(Value::Error(e)) => Err(FwError::Lua(*e)),
            v => Err(FwError::Raise(v.unwrap_or(Value::Nil))),
        },
    }
}

/// The text of an mlua error without mlua's decoration (such as the traceback it appends to an
/// error raised inside one of its protected calls).
pub fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(s) => match s.rfind("\nstack traceback:\n") {
            Some(at) => s[..at].to_string(),
            None => s.clone(),
        },
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// A binding as the one native function dispatches to it.
type Binding = Rc<dyn Fn(&Lua, Args) -> FwResult<MultiValue>>;

/// Every module binding of a state, behind one native function.
///
/// mlua makes each Rust function a C closure with a userdata (and its finaliser) of its own. A
/// board keeps its module tables in flash, out of the collector's way; here they are in the Lua
/// heap and every collection cycle marks and sweeps them, so a few hundred bindings would make a
/// script streaming data through short-lived strings pay for all of them, thousands of times a
/// second. One native, told which binding to run by an integer upvalue of the binding's C closure,
/// keeps the heap the collector walks to the closures alone.
///
/// The table is filled while the modules are installed and then sealed: a function a script makes
/// later (a pipe's reader) carries its binding in a userdata of its own instead of an id, which
/// the collector can free with it.
///
/// No native is ever collected while the state runs: the shared one is held here. (An mlua
/// function that a script could reach after the collector had finalised it would run on freed
/// memory: a script's finaliser may call anything that became garbage in the same cycle. A
/// [`OwnBinding`] finalised that way fails with an error instead, as mlua's userdata do.)
struct Natives {
    maker: fast::Maker,
    native: Function,
    table: Rc<RefCell<Vec<Binding>>>,
    sealed: bool,
}

/// Makes a Lua function from a binding. The binding reports failure with [`FwError`]; the caller
/// sees a plain Lua error string with its own position, exactly as from a firmware C function.
pub fn bind<F, R>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, Args) -> FwResult<R> + 'static,
    R: IntoLuaMulti,
{
    bind_with(lua, f, |maker, native, id| {
        fast::closure(maker, fast::plain, native, id)
    })
}

/// A binding made after the seal, carried by its closure instead of an id.
struct OwnBinding(Binding);

impl UserData for OwnBinding {}

fn bind_with<F, R>(
    lua: &Lua,
    f: F,
    wrap: impl FnOnce(&fast::Maker, &Function, Value) -> mlua::Result<Function>,
) -> mlua::Result<Function>
where
    F: Fn(&Lua, Args) -> FwResult<R> + 'static,
    R: IntoLuaMulti,
{
    let natives = lua
        .app_data_ref::<Natives>()
        .ok_or_else(|| mlua::Error::runtime("bindings made before the shim was installed"))?;
    let f: Binding =
        Rc::new(move |lua, args| f(lua, args).and_then(|r| Ok(r.into_lua_multi(lua)?)));
    if natives.sealed {
        let (maker, native) = (natives.maker.clone(), natives.native.clone());
        drop(natives);
        let own = Value::UserData(lua.create_userdata(OwnBinding(f))?);
        return wrap(&maker, &native, own);
    }
    let id = {
        let mut table = natives.table.borrow_mut();
        table.push(f);
        table.len() - 1
    };
    let (maker, native) = (natives.maker.clone(), natives.native.clone());
    drop(natives);
    wrap(&maker, &native, Value::Integer(id as i64))
}

/// The native behind bindings: `native(id, ...)` runs binding `id` (an index into the table, or
/// an [`OwnBinding`]) on the other arguments and returns `false, results...` or the error value
/// for the closure to raise.
fn native(lua: &Lua, table: Rc<RefCell<Vec<Binding>>>) -> mlua::Result<Function> {
    lua.create_function(move |lua, mut args: MultiValue| {
        let f = match args.pop_front() {
            Some(Value::Integer(id)) => table.borrow().get(id as usize).cloned(),
            Some(Value::UserData(ud)) => ud.borrow::<OwnBinding>().ok().map(|b| b.0.clone()),
            _ => None,
        };
        let Some(f) = f else {
            // A function whose binding the collector already finalised (see `Natives`).
            return Ok((
                Value::String(lua.create_string("function no longer exists")?),
                MultiValue::new(),
            ));
        };
        // `false, results...` or the error: as a pair, so no vector is made for the flag.
        match f(lua, Args(args)) {
            Ok(vals) => Ok((Value::Boolean(false), vals)),
            Err(e) => Ok((e.into_value(lua)?, MultiValue::new())),
        }
    })
}

/// Functions made with mlua's `create_function` that a script can reach, held for the state's
/// life so that the collector never finalises one (see [`Natives`]).
#[derive(Default)]
struct Kept(RefCell<Vec<Function>>);

/// Keeps `f`, an mlua function a script can reach, from ever being collected.
pub(crate) fn keep_alive(lua: &Lua, f: &Function) {
    if lua.app_data_ref::<Kept>().is_none() {
        lua.set_app_data(Kept::default());
    }
    if let Some(k) = lua.app_data_ref::<Kept>() {
        k.0.borrow_mut().push(f.clone());
    }
}

/// Installs the native and the closure maker; done once when a state is created.
pub(crate) fn install_shim(lua: &Lua) -> mlua::Result<()> {
    let table = Rc::new(RefCell::new(Vec::new()));
    let native = native(lua, table.clone())?;
    fast::install_translator(lua)?;
    lua.set_app_data(Natives {
        maker: fast::Maker::new(lua)?,
        native,
        table,
        sealed: false,
    });
    Ok(())
}

/// Ends the module installation: bindings made from now on get natives of their own.
pub(crate) fn seal_bindings(lua: &Lua) {
    if let Some(mut n) = lua.app_data_mut::<Natives>() {
        n.sealed = true;
    }
}

/// Lua's type name for a value, as `luaL_typename` prints it.
pub fn typename(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A binding's arguments, 1-based like the Lua stack, with `luaL_check*` semantics.
pub struct Args(pub MultiValue);

impl Args {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Argument `n` (nil when absent).
    pub fn get(&self, n: usize) -> Value {
        self.arg(n).clone()
    }

    /// Argument `n`, borrowed: cloning a reference-type value costs mlua an allocation.
    pub fn arg(&self, n: usize) -> &Value {
        self.0.get(n - 1).unwrap_or(&Value::Nil)
    }

    pub fn is_none_or_nil(&self, n: usize) -> bool {
        matches!(self.arg(n), Value::Nil)
    }

    /// `lua_isnumber`: numbers and strings that convert.
    pub fn is_number(&self, n: usize) -> bool {
        to_number(self.arg(n)).is_some()
    }

    /// `lua_isstring`: strings and numbers.
    pub fn is_string(&self, n: usize) -> bool {
        matches!(
            self.arg(n),
            Value::String(_) | Value::Integer(_) | Value::Number(_)
        )
    }

    pub fn is_function(&self, n: usize) -> bool {
        matches!(self.arg(n), Value::Function(_))
    }

    fn type_error<T>(&self, n: usize, expected: &str) -> FwResult<T> {
        let got = if n > self.len() {
            "no value"
        } else {
            typename(self.arg(n))
        };
        arg_err(n, format!("{expected} expected, got {got}"))
    }

    /// `luaL_checknumber`.
    pub fn check_number(&self, n: usize) -> FwResult<f64> {
        match to_number(self.arg(n)) {
            Some(x) => Ok(x),
            None => self.type_error(n, "number"),
        }
    }

    /// `luaL_checkinteger` (5.1 truncates; 5.3 refuses fractions).
    pub fn check_integer(&self, n: usize) -> FwResult<i64> {
        let x = self.check_number(n)?;
        to_integer(x).ok_or_else(|| FwError::Arg(n, "number has no integer representation".into()))
    }

    /// `luaL_optinteger`.
    pub fn opt_integer(&self, n: usize, default: i64) -> FwResult<i64> {
        if self.is_none_or_nil(n) {
            Ok(default)
        } else {
            self.check_integer(n)
        }
    }

    /// `luaL_checklstring`: numbers convert to their string form.
    pub fn check_bytes(&self, lua: &Lua, n: usize) -> FwResult<mlua::LuaString> {
        match self.get(n) {
            Value::String(s) => Ok(s),
            v @ (Value::Integer(_) | Value::Number(_)) => match lua.coerce_string(v)? {
                Some(s) => Ok(s),
                None => self.type_error(n, "string"),
            },
            _ => self.type_error(n, "string"),
        }
    }

    /// `luaL_checkstring`, as UTF-8 text (lossy: names and addresses are ASCII on a board).
    pub fn check_str(&self, lua: &Lua, n: usize) -> FwResult<String> {
        match self.arg(n) {
            Value::String(s) => Ok(s.to_string_lossy()),
            _ => Ok(self.check_bytes(lua, n)?.to_string_lossy()),
        }
    }

    /// `luaL_checktype(L, n, LUA_TFUNCTION)`.
    pub fn check_function(&self, n: usize) -> FwResult<Function> {
        match self.get(n) {
            Value::Function(f) => Ok(f),
            _ => self.type_error(n, "function"),
        }
    }

    /// `luaL_checkudata`: the userdata of type `T` named `tname` in messages.
    /// Handle types are cheap clones of shared state, so the handle is returned by value.
    pub fn check_udata<T: UserData + Clone + 'static>(
        &self,
        n: usize,
        tname: &str,
    ) -> FwResult<(AnyUserData, T)> {
        if let Value::UserData(ud) = self.get(n)
            && let Ok(b) = ud.borrow::<T>()
        {
            let handle = (*b).clone();
            drop(b);
            return Ok((ud, handle));
        }
        self.type_error(n, tname)
    }
}

/// `lua_tonumber`.
pub fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(x) => Some(*x),
        Value::String(s) => parse_number(&s.to_string_lossy()),
        _ => None,
    }
}

/// Lua's string-to-number rule: decimal (with exponent), or hex with 0x; surrounding spaces allowed.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()? as f64
    } else {
        if body.is_empty() || body.starts_with(|c: char| c.is_alphabetic()) {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `lua_tointeger` for the Lua version this build uses.
pub fn to_integer(x: f64) -> Option<i64> {
    if cfg!(feature = "lua53") && x.fract() != 0.0 {
        return None;
    }
    if x.is_finite() {
        Some(x as i64)
    } else {
        Some(0)
    }
}

/// Makes Lua strings of received bytes, one per chunk on a streaming socket. With a device heap,
/// mlua protects each string it creates by first making two C closures (Lua 5.1 has no other
/// way to push a C function), which costs several times the string itself. This keeps one C
/// function and calls it under `lua_pcall` instead: the same protection (a failed allocation
/// comes back as an error, never a jump over Rust frames), nothing allocated but the string.
pub(crate) struct StringMaker(Function);

impl StringMaker {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<StringMaker> {
        // SAFETY: `make_string` follows the lua_CFunction contract (see there).
        Ok(StringMaker(unsafe { lua.create_c_function(make_string)? }))
    }

    /// The Lua string of `bytes` (see [`push_string`]).
    pub(crate) fn make(&self, lua: &Lua, bytes: &[u8]) -> mlua::Result<mlua::LuaString> {
        lua.exec_raw_lua(|raw| unsafe {
            if mlua::ffi::lua_checkstack(raw.state(), 3) == 0 {
                return Err(mlua::Error::StackError);
            }
            push_string(raw, &self.0, bytes)?;
            raw.pop::<mlua::LuaString>()
        })
    }

    /// `bytes` as a callback argument: the string goes straight onto the Lua stack.
    pub(crate) fn arg<'a>(&'a self, bytes: &'a [u8]) -> NewString<'a> {
        NewString(&self.0, bytes)
    }
}

/// Received bytes to be passed to a callback as a Lua string, made by a [`StringMaker`].
pub(crate) struct NewString<'a>(&'a Function, &'a [u8]);

impl mlua::IntoLua for NewString<'_> {
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        lua.create_string(self.1).map(Value::String)
    }

    unsafe fn push_into_stack(self, raw: &mlua::state::RawLua) -> mlua::Result<()> {
        unsafe {
            if mlua::ffi::lua_checkstack(raw.state(), 3) == 0 {
                return Err(mlua::Error::StackError);
            }
            push_string(raw, self.0, self.1)
        }
    }
}

thread_local! {
    /// The bytes `make_string` is to make a string of, while `push_string` calls it.
    static MAKING: std::cell::Cell<(*const u8, usize)> =
        const { std::cell::Cell::new((std::ptr::null(), 0)) };
}

/// Pushes the string of `bytes`. Short of heap, the firmware's emergency collector runs before an
/// allocation fails; so does a full collection here (mlua's own would need heap for its
/// protection), and a second try. Any other failure (a finaliser's error or panic during that
/// collection) comes back as it is.
///
/// SAFETY: the stack must have room for three values.
unsafe fn push_string(
    raw: &mlua::state::RawLua,
    maker: &Function,
    bytes: &[u8],
) -> mlua::Result<()> {
    use mlua::ffi;
    let state = raw.state();
    let mut status = ffi::LUA_OK;
    for collect in [false, true] {
        // SAFETY: none of these pushes allocates (a reference, a boolean); `bytes` outlives the
        // call that reads it, and is unset again before anything can fail.
        status = unsafe {
            raw.push(maker)?;
            ffi::lua_pushboolean(state, collect as _);
            MAKING.with(|m| m.set((bytes.as_ptr(), bytes.len())));
            let status = ffi::lua_pcall(state, 1, 1, 0);
            MAKING.with(|m| m.set((std::ptr::null(), 0)));
            status
        };
        if status != ffi::LUA_ERRMEM {
            break;
        }
        unsafe { ffi::lua_pop(state, 1) };
    }
    if status == ffi::LUA_ERRMEM {
        return Err(mlua::Error::MemoryError("not enough memory".into()));
    }
    unsafe { pcall_result(raw, status) }
}

/// What a `lua_pcall` of the simulator's own C function ended with; a failure's value is popped.
/// (Short of memory is "not enough memory", as the firmware reports it.)
///
/// SAFETY: `status` is what `lua_pcall` just returned on `raw`'s state.
pub(crate) unsafe fn pcall_result(raw: &mlua::state::RawLua, status: c_int) -> mlua::Result<()> {
    use mlua::ffi;
    match status {
        ffi::LUA_OK => Ok(()),
        ffi::LUA_ERRMEM => {
            unsafe { ffi::lua_pop(raw.state(), 1) };
            Err(mlua::Error::MemoryError("not enough memory".into()))
        }
        _ => match unsafe { raw.pop_value() } {
            Value::Error(e) => Err(*e),
            v => Err(mlua::Error::runtime(
                error_value_text(&v).unwrap_or_else(|| "(error object)".into()),
            )),
        },
    }
}

/// An error value's text as `lua_tostring` gives it (an mlua error as the message Lua would have
/// raised); `None` for values that have none (tables, functions, ...).
pub fn error_value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Error(e) => Some(lua_error_text(e)),
        _ => None,
    }
}

/// `make_string(collect)`: the string of the bytes `push_string` is making, after a full
/// collection if `collect`. Called any other way it makes nothing (no script reaches it, as
/// `guard.lua` sees to, and it would have no bytes to read if one did).
unsafe extern "C-unwind" fn make_string(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    let (ptr, len) = MAKING.with(|m| m.get());
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: `push_string` set these from a slice that outlives this call.
    unsafe {
        if mlua::ffi::lua_toboolean(state, 1) != 0 {
            mlua::ffi::lua_gc(state, mlua::ffi::LUA_GCCOLLECT, 0);
        }
        mlua::ffi::lua_pushlstring(state, ptr.cast(), len);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_lua() {
        assert_eq!(parse_number(" 12 "), Some(12.0));
        assert_eq!(parse_number("0x10"), Some(16.0));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number(""), None);
    }
}
