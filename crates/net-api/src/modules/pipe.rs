//! `pipe`: the firmware's byte FIFO of records, and the plumbing behind the console.
//!
//! A pipe holds bytes in chunks of at most [`CHUNK`] bytes (`LUAL_BUFFERSIZE` on the board), which
//! is what `p:nrec()` counts. `p:read()` takes a number of bytes or a record ended by a delimiter
//! character, `p:unread()` puts bytes back at the head, `p:write()` appends at the tail.
//!
//! A pipe created with a reader function gets that function posted as a task (at the pipe's
//! priority) when it is written to; the function is called as `fn(pipe)` and decides by its return
//! value whether it is posted again: `true` while the pipe still holds data, `false` never, `nil`
//! only if the pipe was written to while the reader ran. At most one reader task is pending per
//! pipe. (The firmware's code reposts a reader that returns `nil` after every run, a busy loop
//! nobody sees on a board but one that would keep a simulated run spinning forever on a reader
//! that never reads; here `nil` means what the firmware's own comment says it means.)
//!
//! The console uses two pipes, as the firmware does: `node.output(fn)` sends `print` into a pipe
//! read by `fn` (telnet's way of taking the console over), and every typed line and
//! `node.input(s)` goes through the stdin pipe, read one line per task by the interpreter
//! (`console/repl.rs`).
//!
//! On the board a pipe is a Lua table; here it is a userdata, so `type(p)` says `userdata`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use mlua::{
    AnyUserData, Function, Lua, MultiValue, UserData, UserDataFields, UserDataMethods, Value,
};

use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind};
use crate::modules::{module_table, register_methods};
use crate::runtime::{Priority, Runtime};

const TYPE: &str = "pipe.obj";
/// `LUAL_BUFFERSIZE` of the ESP8266 build: the largest record a pipe stores.
pub const CHUNK: usize = 256;

/// What `read` takes off the head of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSpec {
    /// Up to this many bytes.
    Size(usize),
    /// Up to and including the delimiter, which is returned only if `keep`.
    Delim(u8, bool),
}

/// Who reads a pipe when it is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReaderKind {
    /// The Lua function kept in the pipe's user value.
    Lua,
    /// The console's interpreter (the stdin pipe).
    Stdin,
}

#[derive(Debug)]
struct Reader {
    prio: Priority,
    kind: ReaderKind,
    /// Written since the reader last decided (the firmware's CB_WRITE_UPDATED).
    written: bool,
    /// A reader task is queued.
    pending: bool,
}

/// The bytes of a pipe and the state of its reader. Plain Rust, so the chunk rules are unit-tested.
#[derive(Debug, Default)]
pub struct PipeState {
    chunks: VecDeque<Vec<u8>>,
    reader: Option<Reader>,
}

impl PipeState {
    /// Appends at the tail, filling the last chunk before starting a new one.
    pub fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.chunks.back_mut() {
                Some(last) if last.len() < CHUNK => {
                    let n = (CHUNK - last.len()).min(bytes.len());
                    last.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                }
                _ => self.chunks.push_back(Vec::with_capacity(CHUNK)),
            }
        }
    }

    /// Puts bytes back at the head, filling the first chunk before starting a new one in front.
    pub fn unread(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.chunks.front_mut() {
                Some(first) if first.len() < CHUNK => {
                    let n = (CHUNK - first.len()).min(bytes.len());
                    let (rest, tail) = bytes.split_at(bytes.len() - n);
                    first.splice(0..0, tail.iter().copied());
                    bytes = rest;
                }
                _ => self.chunks.push_front(Vec::with_capacity(CHUNK)),
            }
        }
    }

    /// Takes a record off the head; `None` when the pipe is empty. A record whose delimiter never
    /// comes is returned whole, emptying the pipe.
    pub fn read(&mut self, spec: ReadSpec) -> Option<Vec<u8>> {
        if self.chunks.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        let mut left = match spec {
            ReadSpec::Size(n) => n,
            ReadSpec::Delim(..) => 0,
        };
        while let Some(head) = self.chunks.front_mut() {
            let done = match spec {
                ReadSpec::Size(_) => {
                    let n = left.min(head.len());
                    out.extend(head.drain(..n));
                    left -= n;
                    left == 0
                }
                ReadSpec::Delim(d, keep) => match head.iter().position(|b| *b == d) {
                    Some(i) => {
                        let rec: Vec<u8> = head.drain(..=i).collect();
                        out.extend_from_slice(&rec[..i + usize::from(keep)]);
                        true
                    }
                    None => {
                        out.append(head);
                        false
                    }
                },
            };
            if head.is_empty() {
                self.chunks.pop_front();
            }
            if done {
                break;
            }
        }
        Some(out)
    }

    /// `p:nrec()`: the number of chunks.
    pub fn nrec(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// True if a whole `\n`-ended line is waiting (what the interpreter needs to run something).
    pub fn has_line(&self) -> bool {
        self.chunks.iter().any(|c| c.contains(&b'\n'))
    }
}

/// A pipe handle: what the userdata holds and what Rust code passes around.
#[derive(Clone)]
pub struct Pipe(pub(crate) Rc<RefCell<PipeState>>);

impl UserData for Pipe {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| {
            lua.named_registry_value::<mlua::Table>(TYPE)
        });
        fields.add_meta_field("__name", TYPE);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // `#p` is the firmware's table length: the chunks plus the reader slot.
        methods.add_meta_method("__len", |_, p, ()| Ok(p.0.borrow().nrec() + 1));
        methods.add_meta_function("__tostring", |_, ud: AnyUserData| {
            Ok(format!("Pipe: {:p}", ud.to_pointer()))
        });
    }
}

/// `checkPipeTable`: argument 1 must be a pipe.
fn check_pipe(a: &Args) -> FwResult<(AnyUserData, Pipe)> {
    match a.check_udata::<Pipe>(1, TYPE) {
        Ok(p) => Ok(p),
        Err(_) => arg_err(1, "pipe table"),
    }
}

/// `getsize_delim`: a positive size, `"c"` (delimiter dropped), `"c+"` (kept), or nil for `"\n"`.
fn read_spec(lua: &Lua, a: &Args, n: usize) -> FwResult<ReadSpec> {
    match a.get(n) {
        Value::Integer(_) | Value::Number(_) => {
            let size = a.check_integer(n)?;
            arg_check(size > 0, n, "invalid chunk size")?;
            Ok(ReadSpec::Size(size as usize))
        }
        Value::Nil => Ok(ReadSpec::Delim(b'\n', false)),
        Value::String(_) => {
            let s = a.check_bytes(lua, n)?;
            match &s.as_bytes()[..] {
                [d] => Ok(ReadSpec::Delim(*d, false)),
                [d, b'+'] => Ok(ReadSpec::Delim(*d, true)),
                _ => arg_err(n, "invalid delimiter"),
            }
        }
        _ => arg_err(n, "invalid delimiter"),
    }
}

/// `lua_tolstring` as `write` and `unread` use it: strings and numbers; anything else is empty.
fn bytes_of(lua: &Lua, v: Value) -> mlua::Result<Vec<u8>> {
    Ok(match v {
        Value::String(s) => s.as_bytes().to_vec(),
        v @ (Value::Integer(_) | Value::Number(_)) => lua
            .coerce_string(v)?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default(),
        _ => Vec::new(),
    })
}

/// Makes a pipe userdata. `reader` is the function (kept in the user value, where Lua's collector
/// sees it) or the interpreter, with the priority its task is posted at.
pub(crate) fn create(
    lua: &Lua,
    reader: Option<(ReaderKind, Option<Function>, Priority)>,
) -> mlua::Result<AnyUserData> {
    let mut st = PipeState::default();
    if let Some((kind, _, prio)) = &reader {
        st.reader = Some(Reader {
            prio: *prio,
            kind: *kind,
            written: false,
            pending: false,
        });
    }
    let ud = lua.create_userdata(Pipe(Rc::new(RefCell::new(st))))?;
    if let Some((_, Some(f), _)) = reader {
        ud.set_user_value(f)?;
    }
    Ok(ud)
}

/// The handle inside a pipe userdata.
pub(crate) fn handle(ud: &AnyUserData) -> mlua::Result<Pipe> {
    Ok(ud.borrow::<Pipe>()?.clone())
}

/// `p:write(s)` from Lua or Rust: appends, and posts the reader if it is not already due.
pub(crate) fn write(rt: &Rc<Runtime>, ud: &AnyUserData, bytes: &[u8]) -> mlua::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let pipe = handle(ud)?;
    let post = {
        let mut st = pipe.0.borrow_mut();
        st.write(bytes);
        match st.reader.as_mut() {
            Some(r) if !r.written => {
                r.written = true;
                !std::mem::replace(&mut r.pending, true)
            }
            _ => false,
        }
    };
    if post {
        post_reader(rt, ud, &pipe);
    }
    Ok(())
}

fn post_reader(rt: &Rc<Runtime>, ud: &AnyUserData, pipe: &Pipe) {
    let Some(prio) = pipe.0.borrow().reader.as_ref().map(|r| r.prio) else {
        return;
    };
    let (ud, weak) = (ud.clone(), Rc::downgrade(rt));
    rt.post_internal(prio, Box::new(move |lua| run_reader(lua, &weak, &ud)));
}

/// One reader task: calls the reader, then reposts it as its return value says.
fn run_reader(lua: &Lua, rt: &Weak<Runtime>, ud: &AnyUserData) -> mlua::Result<()> {
    let Some(rt) = rt.upgrade() else {
        return Ok(());
    };
    let pipe = handle(ud)?;
    let kind = {
        let mut st = pipe.0.borrow_mut();
        let Some(r) = st.reader.as_mut() else {
            return Ok(());
        };
        // While the reader runs, a write posts it again (the firmware's CB_ACTIVE state).
        r.pending = false;
        r.written = false;
        r.kind
    };
    let verdict = match kind {
        ReaderKind::Stdin => crate::console::repl::read_stdin(lua, &rt, ud)?,
        ReaderKind::Lua => call_reader(lua, &rt, ud)?,
    };
    let repost = {
        let mut st = pipe.0.borrow_mut();
        let nonempty = !st.is_empty();
        let Some(r) = st.reader.as_mut() else {
            return Ok(());
        };
        // `true` reposts while data is left; `nil` and `false` do not: a write made while the
        // reader ran has already posted it again.
        let repost = verdict == Some(true) && nonempty;
        r.written = repost || r.pending;
        repost && !std::mem::replace(&mut r.pending, true)
    };
    if repost {
        post_reader(&rt, ud, &pipe);
    }
    Ok(())
}

/// Calls a Lua reader as the firmware's task dispatcher does (`luaL_pcallx`: an error goes to
/// `node.setonerror`). `Some(b)` when it returned a boolean; an error counts as `false`.
fn call_reader(lua: &Lua, rt: &Rc<Runtime>, ud: &AnyUserData) -> mlua::Result<Option<bool>> {
    let Value::Function(cb) = ud.user_value::<Value>()? else {
        return Ok(Some(false));
    };
    let pcallx = crate::callback::helpers(&rt.helpers.borrow())?
        .pcallx
        .clone();
    let r = pcallx.call::<MultiValue>((cb, ud.clone()));
    Ok(match r {
        Ok(r) if matches!(r.front(), Some(Value::Boolean(false))) => {
            rt.report_error(r.get(1).cloned().unwrap_or(Value::Nil));
            Some(false)
        }
        Ok(r) => match r.get(1) {
            Some(Value::Boolean(b)) => Some(*b),
            _ => None,
        },
        Err(e) => {
            let text = crate::lauxlib::lua_error_text(&e);
            rt.report_error(Value::String(lua.create_string(text)?));
            Some(false)
        }
    })
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let read = bind(lua, |lua, a| {
        let (_, p) = check_pipe(&a)?;
        let spec = read_spec(lua, &a, 2)?;
        let rec = p.0.borrow_mut().read(spec);
        Ok(match rec {
            Some(b) => Value::String(lua.create_string(b)?),
            None => Value::Nil,
        })
    })?;
    let reader = bind(lua, |lua, a| {
        let (_, p) = check_pipe(&a)?;
        let spec = read_spec(lua, &a, 2)?;
        Ok(bind(lua, move |lua, _| {
            let rec = p.0.borrow_mut().read(spec);
            Ok(match rec {
                Some(b) => Value::String(lua.create_string(b)?),
                None => Value::Nil,
            })
        })?)
    })?;
    let unread = bind(lua, |lua, a| {
        let bytes = bytes_of(lua, a.get(2))?;
        if !bytes.is_empty() {
            let (_, p) = check_pipe(&a)?;
            p.0.borrow_mut().unread(&bytes);
        }
        Ok(())
    })?;
    let r = rt.clone();
    let write_fn = bind(lua, move |lua, a| {
        // The firmware's write is the pipe's own closure: called on anything but its pipe, it
        // writes nothing.
        if let Value::UserData(ud) = a.get(1)
            && ud.borrow::<Pipe>().is_ok()
        {
            write(&r, &ud, &bytes_of(lua, a.get(2))?)?;
        }
        Ok(())
    })?;
    let nrec = bind(lua, |_, a| {
        let (_, p) = check_pipe(&a)?;
        let n = p.0.borrow().nrec();
        Ok(n as i64)
    })?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("read", read),
            ("reader", reader),
            ("unread", unread),
            ("write", write_fn),
            ("nrec", nrec),
        ],
    )?;
    let create_fn = bind(lua, |lua, a| {
        let reader = match a.get(1) {
            Value::Nil => None,
            _ => {
                let f = a.check_function(1)?;
                let prio = match a.get(2) {
                    Value::Nil => Priority::Medium,
                    v => {
                        let p = crate::lauxlib::to_number(&v).map_or(0, |x| x as i64);
                        arg_check((0..=2).contains(&p), 2, "invalid priority")?;
                        [Priority::Low, Priority::Medium, Priority::High][p as usize]
                    }
                };
                Some((ReaderKind::Lua, Some(f), prio))
            }
        };
        Ok(create(lua, reader)?)
    })?;
    lua.globals()
        .set("pipe", module_table(lua, vec![("create", create_fn)])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(s: &[u8]) -> PipeState {
        let mut p = PipeState::default();
        p.write(s);
        p
    }

    #[test]
    fn records_are_split_by_delimiter_and_size() {
        let mut p = filled(b"ab\ncd\nef");
        assert_eq!(p.read(ReadSpec::Delim(b'\n', true)).unwrap(), b"ab\n");
        assert_eq!(p.read(ReadSpec::Delim(b'\n', false)).unwrap(), b"cd");
        assert_eq!(p.read(ReadSpec::Delim(b'\n', false)).unwrap(), b"ef");
        assert_eq!(p.read(ReadSpec::Delim(b'\n', false)), None);
        let mut p = filled(b"\nx");
        assert_eq!(p.read(ReadSpec::Delim(b'\n', false)).unwrap(), b"");
        let mut p = filled(b"hello");
        assert_eq!(p.read(ReadSpec::Size(2)).unwrap(), b"he");
        assert_eq!(p.read(ReadSpec::Size(10)).unwrap(), b"llo");
        assert!(p.is_empty());
    }

    #[test]
    fn chunks_hold_256_bytes_and_reads_span_them() {
        let data: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        let mut p = filled(&data);
        assert_eq!(p.nrec(), 3);
        assert_eq!(p.read(ReadSpec::Size(300)).unwrap(), &data[..300]);
        assert_eq!(p.nrec(), 2);
        // The tail chunk (88 bytes) has room for 100 more.
        p.write(&[7; 100]);
        assert_eq!(p.nrec(), 2);
        let rest = p.read(ReadSpec::Size(1000)).unwrap();
        assert_eq!(rest.len(), 400);
        assert_eq!(&rest[..300], &data[300..]);
        assert_eq!(p.nrec(), 0);
    }

    #[test]
    fn unread_restores_what_was_read() {
        let data: Vec<u8> = (0..700u32).map(|i| (i % 13) as u8 + b'a').collect();
        let mut p = filled(&data);
        let a = p.read(ReadSpec::Size(400)).unwrap();
        p.unread(&a);
        assert_eq!(p.read(ReadSpec::Size(700)).unwrap(), data);
        let mut p = filled(b"world");
        p.unread(b"hello ");
        assert_eq!(p.nrec(), 1);
        assert_eq!(p.read(ReadSpec::Size(100)).unwrap(), b"hello world");
        assert!(filled(b"a\nb").has_line());
        assert!(!filled(b"ab").has_line());
    }
}
