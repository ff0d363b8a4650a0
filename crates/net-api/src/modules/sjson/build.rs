//! The decoder's fast way of making a document: one protected call per `write`.
//!
//! Without a `metatable` option the tables the decoder fills are fresh and no script sees them
//! until the document is complete, so when each store happens cannot be told apart, only what
//! ends up stored. So the tokenizer's pushes and pops are written down as a list of steps while
//! a piece of the document is tokenized, and the whole list is then carried out by one C
//! function under one `lua_pcall`: the open tables sit on the Lua stack, strings are made
//! straight from the kept bytes, and stores are raw. A failed allocation anywhere in it is `not
//! enough memory`, as a failed store is on the board. (Through mlua each store on a device
//! profile, where any allocation may fail, was a protected call of its own, and each table a
//! registry reference.)
//!
//! Between writes the open tables are kept in a table of the decoder's own (`work[level]`, made
//! only when a write ends inside the document), so a document fed a byte at a time gives what it
//! gives at once.

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr;

use mlua::{Function, Lua, Table, Value, ffi};

use super::decode::unescape_into;

/// Where a string's text is: stream position of its first byte, length, escapes in it.
#[derive(Clone, Copy)]
pub struct Text {
    pub at: usize,
    pub len: usize,
    pub esc: usize,
}

/// The key a value is stored under in its table.
#[derive(Clone, Copy)]
pub enum Key {
    Index(i64),
    Text(Text),
}

/// A value that is not a table.
#[derive(Clone, Copy)]
pub enum Scalar {
    Text(Text),
    Number(f64),
    Integer(i64),
    Bool(bool),
    /// The decoder's `null` value.
    Null,
}

/// What a new table is made as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    /// A list, with room for this many elements (0: unknown, grown as they come).
    List(u32),
}

/// One step of making the document. A value goes into the innermost open table, or becomes the
/// document when none is open.
#[derive(Clone, Copy)]
pub enum Op {
    /// A new table, stored under the key and open from now on.
    Open(Key, Shape),
    /// The innermost open table is complete.
    Close,
    Set(Key, Scalar),
}

/// What `build_c` works from, handed over in a thread-local for the length of one call.
struct Ctx<'a> {
    ops: &'a [Op],
    buf: &'a [u8],
    /// Stream position of `buf[0]`.
    buf_start: usize,
    /// Tables open before the steps (in), after them (out).
    open: usize,
    scratch: &'a mut Vec<u8>,
}

thread_local! {
    static CTX: Cell<*mut Ctx<'static>> = const { Cell::new(ptr::null_mut()) };
}

pub struct Builder {
    /// `work[level]`: the open table at that level, once a write has ended with one open.
    work: Option<Table>,
    ops: Vec<Op>,
    open: usize,
    /// Unescaped text, reused from string to string.
    scratch: Vec<u8>,
    /// For each table open while the steps are written down: where its `Open` step is (`None`
    /// once carried out), how many values it has had, and whether it may be made to size.
    sizing: Vec<(Option<usize>, u32, bool)>,
}

impl Builder {
    /// `ops`: an empty list to write the steps in (a finished decoder's, so its memory is warm).
    pub fn new(ops: Vec<Op>) -> Builder {
        Builder {
            work: None,
            ops,
            open: 0,
            scratch: Vec::new(),
            sizing: Vec::new(),
        }
    }

    /// Writes down a step. A list whose `Open` and `Close` fall in the same piece is made with
    /// room for all its elements (a table grown one element at a time is rehashed at 1, 2, 4...).
    /// Only a list without `null`s: its holes would leave `#` to depend on the array's size.
    /// Objects are grown as the firmware grows them, so that `pairs` visits their keys in the
    /// firmware's order.
    #[inline]
    pub fn push(&mut self, op: Op) {
        match op {
            Op::Open(_, shape) => {
                if let Some(parent) = self.sizing.last_mut() {
                    parent.1 = parent.1.saturating_add(1);
                }
                let list = matches!(shape, Shape::List(_));
                self.sizing.push((Some(self.ops.len()), 0, list));
            }
            Op::Set(_, v) => {
                if let Some(parent) = self.sizing.last_mut() {
                    parent.1 = parent.1.saturating_add(1);
                    if matches!(v, Scalar::Null) {
                        parent.2 = false;
                    }
                }
            }
            Op::Close => {
                if let Some((Some(at), n, true)) = self.sizing.pop()
                    && let Some(Op::Open(_, shape)) = self.ops.get_mut(at)
                {
                    *shape = Shape::List(n);
                }
            }
        }
        self.ops.push(op);
    }

    /// The emptied list of steps, for the next decoder.
    pub fn into_ops(self) -> Vec<Op> {
        let mut ops = self.ops;
        ops.clear();
        ops
    }

    /// Carries out the steps written down so far; `buf` holds the stream from `buf_start` on,
    /// including every text the steps name. `f` is [`build_function`]'s; `root` is the document
    /// so far, and is replaced when a step makes it.
    pub fn flush(
        &mut self,
        lua: &Lua,
        f: &Function,
        null: &Value,
        root: &mut Value,
        buf: &[u8],
        buf_start: usize,
    ) -> mlua::Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let mut ctx = Ctx {
            ops: &self.ops,
            buf,
            buf_start,
            open: self.open,
            scratch: &mut self.scratch,
        };
        let r = lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 4) == 0 {
                return Err(mlua::Error::StackError);
            }
            raw.push(f)?;
            match &self.work {
                Some(w) => raw.push(w)?,
                None => ffi::lua_pushnil(state),
            }
            raw.push(null)?;
            raw.push(&*root)?;
            // SAFETY: `ctx` lives until after the call, and the previous pointer (a decode
            // inside a finaliser run by this one's allocations) is put back before it returns.
            let prev = CTX.with(|c| c.replace((&mut ctx as *mut Ctx).cast()));
            let status = ffi::lua_pcall(state, 3, 2, 0);
            CTX.with(|c| c.set(prev));
            crate::lauxlib::pcall_result(raw, status)?;
            let made = raw.pop_value();
            let work = raw.pop_value();
            Ok((work, made))
        });
        let open = ctx.open;
        self.ops.clear();
        for s in &mut self.sizing {
            s.0 = None;
        }
        let (work, made) = r?;
        self.open = open;
        self.work = match work {
            Value::Table(t) => Some(t),
            _ => None,
        };
        *root = made;
        Ok(())
    }
}

/// The C function `Builder::flush` calls; one per Lua state is enough.
pub fn build_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `build_c` follows the lua_CFunction contract (see there).
    unsafe { lua.create_c_function(build_c) }
}

/// Pushes a text's bytes as a string.
///
/// SAFETY: room for one more value on the stack.
unsafe fn push_text(state: *mut ffi::lua_State, ctx: &mut Ctx, t: Text) {
    let bytes = ctx
        .buf
        .get(t.at.saturating_sub(ctx.buf_start)..)
        .unwrap_or(&[]);
    let s: &[u8] = if t.esc == 0 {
        &bytes[..t.len.min(bytes.len())]
    } else {
        ctx.scratch.clear();
        unescape_into(ctx.scratch, bytes, t.len);
        &ctx.scratch[..]
    };
    unsafe { ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len()) };
}

/// SAFETY: as `push_text`; the decoder's `null` value is at stack index 2.
unsafe fn push_scalar(state: *mut ffi::lua_State, ctx: &mut Ctx, v: Scalar) {
    unsafe {
        match v {
            Scalar::Text(t) => push_text(state, ctx, t),
            Scalar::Number(x) => ffi::lua_pushnumber(state, x),
            Scalar::Integer(i) => ffi::lua_pushinteger(state, i as ffi::lua_Integer),
            Scalar::Bool(b) => ffi::lua_pushboolean(state, b as c_int),
            Scalar::Null => ffi::lua_pushvalue(state, 2),
        }
    }
}

/// Stores `v` under `key` in the table at `table`, or, without `v`, a copy of the value on top
/// of the stack. The key is made first, as the firmware makes it.
///
/// SAFETY: room for three more values on the stack; `table` is a table's absolute index.
unsafe fn store(
    state: *mut ffi::lua_State,
    ctx: &mut Ctx,
    table: c_int,
    key: Key,
    v: Option<Scalar>,
) {
    unsafe {
        // Lua 5.1's `lua_rawseti` takes an int; no list of a document held in memory is that
        // long, but a key past it still goes in whole.
        let index = match key {
            Key::Index(n) if i32::try_from(n).is_ok() => Some(n),
            Key::Index(n) => {
                ffi::lua_pushinteger(state, n as ffi::lua_Integer);
                None
            }
            Key::Text(t) => {
                push_text(state, ctx, t);
                None
            }
        };
        match v {
            Some(v) => push_scalar(state, ctx, v),
            None if index.is_some() => ffi::lua_pushvalue(state, -1),
            None => ffi::lua_pushvalue(state, -2),
        }
        match index {
            Some(n) => ffi::lua_rawseti(state, table, n as ffi::lua_Integer),
            None => ffi::lua_rawset(state, table),
        }
    }
}

/// `build_c(work, null, root)`: carries out the steps in `CTX`; returns the work table (made if
/// a table is still open) and the document. Called any other way (no script can reach it) it
/// finds no steps and does nothing. Nothing here owns memory that a failed allocation's jump out
/// of it would leak.
unsafe extern "C-unwind" fn build_c(state: *mut ffi::lua_State) -> c_int {
    let p = CTX.with(|c| c.get());
    if p.is_null() {
        return 0;
    }
    // SAFETY: `Builder::flush` set the pointer to a context that outlives this call, and no one
    // else uses it meanwhile. The stack has the work table (or nil) at 1, `null` at 2 and the
    // document at 3; the open tables go above (level `l` at `3 + l`), at most the tokenizer's
    // levels.
    unsafe {
        let ctx = &mut *p;
        if ffi::lua_gettop(state) != 3 {
            return 0;
        }
        let has_work = ffi::lua_type(state, 1) == ffi::LUA_TTABLE;
        if ctx.open > 0 && !has_work {
            return 0;
        }
        ffi::luaL_checkstack(state, ctx.open as c_int + 8, c"sjson".as_ptr());
        for level in 1..=ctx.open {
            ffi::lua_rawgeti(state, 1, level as ffi::lua_Integer);
        }
        let mut open = ctx.open as c_int;
        let ops = ctx.ops;
        for &op in ops {
            match op {
                Op::Open(key, shape) => {
                    ffi::luaL_checkstack(state, 4, c"sjson".as_ptr());
                    let narr = match shape {
                        Shape::List(n) => c_int::try_from(n).unwrap_or(0),
                        Shape::Object => 0,
                    };
                    ffi::lua_createtable(state, narr, 0);
                    if open == 0 {
                        ffi::lua_pushvalue(state, -1);
                        ffi::lua_replace(state, 3);
                    } else {
                        store(state, ctx, 3 + open, key, None);
                    }
                    open += 1;
                }
                Op::Close => {
                    if open > 0 {
                        ffi::lua_settop(state, -2);
                        open -= 1;
                    }
                }
                Op::Set(key, v) => {
                    if open == 0 {
                        push_scalar(state, ctx, v);
                        ffi::lua_replace(state, 3);
                    } else {
                        store(state, ctx, 3 + open, key, Some(v));
                    }
                }
            }
        }
        if open > 0 {
            if !has_work {
                ffi::lua_createtable(state, open, 0);
                ffi::lua_replace(state, 1);
            }
            for level in 1..=open {
                ffi::lua_pushvalue(state, 3 + level);
                ffi::lua_rawseti(state, 1, level as ffi::lua_Integer);
            }
        }
        ctx.open = open as usize;
        ffi::lua_pushvalue(state, 1);
        ffi::lua_pushvalue(state, 3);
    }
    2
}
