//! `file`: the flash file system (SPIFFS on a board) over the flash root that
//! `host_backend::flash` confines.
//!
//! The host side (names, modes, positions, capacity, confinement) lives in `host-backend`; this
//! file is the thin Lua binding with the firmware's argument checks, messages and return values.
//! A `file.obj` is a handle on shared [`FileState`]. The module-level forms (`file.read()`, ...)
//! act on the last file `file.open` opened, the firmware's default file, which the module keeps
//! alive the way the firmware's registry reference does. Closing a handle, or the garbage collector
//! dropping the last one, closes the host file and frees its slot among the open files.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use host_backend::flash::{Flash, MAX_NAME_LEN};
use host_backend::flash_file::{FlashFile, OpenMode, Whence, geometry};
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::config::Firmware;
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, arg_check, arg_err, bind, fw_err};
use crate::modules::{module_table, register_methods};
use crate::runtime::Runtime;

const TYPE: &str = "file.obj";
/// `FILE_READ_CHUNK`: what `read()` and `readline()` return at most.
const READ_CHUNK: usize = 1024;
/// What `getcontents` asks for (`LUAI_MAXINT32`): the whole file.
const WHOLE_FILE: usize = i32::MAX as usize;
const NO_FILE: &str = "open a file first";
const FORMAT_FAILED: &str = "Failed to format file system";

/// One opened file. `file` is `None` once closed.
pub struct FileState {
    file: Option<FlashFile>,
    open: Rc<Cell<usize>>,
}

impl FileState {
    fn close(&mut self) {
        if self.file.take().is_some() {
            self.open.set(self.open.get() - 1);
        }
    }
}

impl Drop for FileState {
    fn drop(&mut self) {
        self.close();
    }
}

#[derive(Clone)]
pub struct FileObj(Rc<RefCell<FileState>>);
handle_type!(FileObj, TYPE);

impl FileObj {
    /// Runs `f` on the open file, or fails as the firmware does when there is none.
    fn with<R>(obj: Option<FileObj>, f: impl FnOnce(&mut FlashFile) -> R) -> FwResult<R> {
        let Some(obj) = obj else {
            return fw_err(NO_FILE);
        };
        let mut st = obj.0.borrow_mut();
        match st.file.as_mut() {
            Some(file) => Ok(f(file)),
            None => fw_err(NO_FILE),
        }
    }

    fn is(&self, other: &FileObj) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// The module's state: the default file, the open-file count and the registered callbacks.
struct Files {
    rt: Rc<Runtime>,
    /// The last opened file (the firmware's `file_fd`), which the module-level forms act on.
    default: RefCell<Option<FileObj>>,
    open: Rc<Cell<usize>>,
    /// Every file opened this boot, so `format` can close them all.
    handles: RefCell<Vec<Weak<RefCell<FileState>>>>,
    /// `file.on("rtc", fn)`: kept, never called, since SPIFFS stores no time stamps.
    rtc: RefCell<Option<Function>>,
    /// `string.match` as it was at boot, for `list(pattern)`.
    matcher: Function,
}

/// The firmware's name check (`filename invalid`): no NUL, and a base name (or, for `stat`, the
/// whole name) of at most 31 bytes. `None` for a name that is not UTF-8, which no host file has.
fn check_name(lua: &Lua, a: &Args, n: usize, whole: bool) -> FwResult<Option<String>> {
    let s = a.check_bytes(lua, n)?;
    let bytes = s.as_bytes();
    let base = if whole {
        &bytes[..]
    } else {
        bytes.rsplit(|&c| c == b'/').next().unwrap_or(&bytes[..])
    };
    arg_check(
        !bytes.contains(&0) && base.len() <= MAX_NAME_LEN,
        n,
        "filename invalid",
    )?;
    Ok(String::from_utf8(bytes.to_vec()).ok())
}

/// `luaL_checkoption` with a default.
fn check_option<'a>(
    lua: &Lua,
    a: &Args,
    n: usize,
    default: &str,
    names: &[&'a str],
) -> FwResult<&'a str> {
    let name = if a.is_none_or_nil(n) {
        default.to_string()
    } else {
        a.check_str(lua, n)?
    };
    match names.iter().find(|o| **o == name) {
        Some(o) => Ok(o),
        None => arg_err(n, format!("invalid option '{name}'")),
    }
}

impl Files {
    /// The file a call acts on: a `file.obj` first argument, else the default file. Also returns
    /// where the call's own arguments start.
    fn target(&self, a: &Args) -> FwResult<(Option<FileObj>, usize)> {
        if let Value::UserData(_) = a.get(1) {
            let (_, obj) = a.check_udata::<FileObj>(1, TYPE)?;
            return Ok((Some(obj), 2));
        }
        Ok((self.default.borrow().clone(), 1))
    }

    /// Opens a file as `file.open` does and makes it the default file (or leaves none on failure).
    fn open_file(&self, name: Option<&str>, mode: OpenMode) -> Option<FileObj> {
        let obj = self.open_handle(name, mode);
        *self.default.borrow_mut() = obj.clone();
        obj
    }

    fn open_handle(&self, name: Option<&str>, mode: OpenMode) -> Option<FileObj> {
        self.handles.borrow_mut().retain(|w| w.strong_count() > 0);
        if let Some(max) = self.rt.cfg.target.max_open_files()
            && self.open.get() >= max
        {
            self.rt.warn_once(
                "file.max_open",
                &format!("file.open: {max} files are open already, the most SPIFFS allows on this chip; it returns nil"),
            );
            return None;
        }
        let file = self.rt.flash.open(name?, mode)?;
        self.open.set(self.open.get() + 1);
        let st = Rc::new(RefCell::new(FileState {
            file: Some(file),
            open: self.open.clone(),
        }));
        self.handles.borrow_mut().push(Rc::downgrade(&st));
        Some(FileObj(st))
    }

    /// Closes `obj` and forgets it as the default file.
    fn close(&self, obj: &FileObj) {
        obj.0.borrow_mut().close();
        let mut default = self.default.borrow_mut();
        if default.as_ref().is_some_and(|d| d.is(obj)) {
            *default = None;
        }
    }

    fn open(&self, lua: &Lua, a: &Args) -> FwResult<Value> {
        let name = check_name(lua, a, 1, false)?;
        let mode = if a.is_none_or_nil(2) {
            OpenMode::Read
        } else {
            OpenMode::parse(&a.check_bytes(lua, 2)?.as_bytes())
        };
        match self.open_file(name.as_deref(), mode) {
            Some(obj) => Ok(Value::UserData(lua.create_userdata(obj)?)),
            None => Ok(Value::Nil),
        }
    }

    fn close_fn(&self, a: &Args) -> FwResult<()> {
        let obj = match a.get(1) {
            Value::UserData(_) => Some(a.check_udata::<FileObj>(1, TYPE)?.1),
            _ => self.default.borrow().clone(),
        };
        if let Some(obj) = obj {
            self.close(&obj);
        }
        Ok(())
    }

    /// `read([n | endchar])`: up to 1024 bytes, or `n`, or through the next `endchar`.
    fn read(&self, lua: &Lua, a: &Args) -> FwResult<Value> {
        let (obj, n) = self.target(a)?;
        let (max, end) = match a.get(n) {
            Value::Integer(_) | Value::Number(_) => {
                // The firmware passes the count through `unsigned` into an `int`.
                let count = a.check_integer(n)? as u32 as i32;
                (count.max(0) as usize, None)
            }
            Value::String(s) => match &s.as_bytes()[..] {
                [c] => (READ_CHUNK, Some(*c)),
                _ => return fw_err("wrong arg range"),
            },
            _ => (READ_CHUNK, None),
        };
        self.read_into(lua, obj, max, end)
    }

    fn read_into(
        &self,
        lua: &Lua,
        obj: Option<FileObj>,
        max: usize,
        end: Option<u8>,
    ) -> FwResult<Value> {
        match FileObj::with(obj, |f| f.read(max, end))? {
            Some(bytes) => Ok(Value::String(lua.create_string(bytes)?)),
            None => Ok(Value::Nil),
        }
    }

    /// `write(s)` and `writeline(s)`: true, or nil when the file system refused.
    fn write(&self, lua: &Lua, a: &Args, newline: bool) -> FwResult<Option<bool>> {
        let (obj, n) = self.target(a)?;
        FileObj::with(obj.clone(), |_| ())?;
        let data = a.check_bytes(lua, n)?;
        let ok = FileObj::with(obj, |f| {
            f.write(&data.as_bytes()) && (!newline || f.write(b"\n"))
        })?;
        Ok(ok.then_some(true))
    }

    /// `seek([whence[, offset]])`: the new position, or nil.
    fn seek(&self, lua: &Lua, a: &Args) -> FwResult<Option<i64>> {
        let (obj, n) = self.target(a)?;
        FileObj::with(obj.clone(), |_| ())?;
        let whence = match check_option(lua, a, n, "cur", &["set", "cur", "end"])? {
            "set" => Whence::Set,
            "end" => Whence::End,
            _ => Whence::Cur,
        };
        let offset = a.opt_integer(n + 1, 0)?;
        Ok(FileObj::with(obj, |f| f.seek(whence, offset))?.map(|p| p as i64))
    }

    fn flush(&self, a: &Args) -> FwResult<Option<bool>> {
        let (obj, _) = self.target(a)?;
        Ok(FileObj::with(obj, |f| f.flush())?.then_some(true))
    }

    /// `list([pattern])`: `{name = size}`, keeping the names `string.match` accepts.
    fn list(&self, lua: &Lua, a: &Args) -> FwResult<Table> {
        let pattern = if a.is_none_or_nil(1) {
            None
        } else {
            Some(a.check_bytes(lua, 1)?)
        };
        let t = lua.create_table()?;
        for (name, size) in self.rt.flash.list() {
            if let Some(p) = &pattern
                && !self.matches(&name, p)?
            {
                continue;
            }
            t.set(name, size as i64)?;
        }
        Ok(t)
    }

    /// `string.match(name, pattern)`, called protected as the firmware does: its error (a bad
    /// pattern) is raised as it is, with no position.
    fn matches(&self, name: &str, pattern: &mlua::LuaString) -> FwResult<bool> {
        let pcall = crate::callback::helpers(&self.rt.helpers.borrow())?
            .pcall
            .clone();
        let r = pcall.call::<MultiValue>((self.matcher.clone(), name, pattern.clone()))?;
        match r.front() {
            Some(Value::Boolean(false)) => {
                Err(FwError::Raise(r.get(1).cloned().unwrap_or(Value::Nil)))
            }
            _ => Ok(!matches!(r.get(1), None | Some(Value::Nil))),
        }
    }

    fn stat(&self, lua: &Lua, a: &Args) -> FwResult<Value> {
        let name = check_name(lua, a, 1, true)?;
        let Some((name, size)) = name.and_then(|n| Some((n.clone(), self.rt.flash.size_of(&n)?)))
        else {
            return Ok(Value::Nil);
        };
        let t = lua.create_table()?;
        t.set("size", size as i64)?;
        t.set("name", Flash::device_name(&name).unwrap_or(&name))?;
        for flag in ["is_dir", "is_rdonly", "is_hidden", "is_sys", "is_arch"] {
            t.set(flag, false)?;
        }
        // SPIFFS keeps no time stamps: the firmware reports its default date.
        let time = lua.create_table()?;
        for (k, v) in [
            ("year", 1970),
            ("mon", 1),
            ("day", 1),
            ("hour", 0),
            ("min", 0),
            ("sec", 0),
        ] {
            time.set(k, v)?;
        }
        t.set("time", time)?;
        Ok(Value::Table(t))
    }

    /// `getcontents(name)`: the whole file; nil for an empty one; nothing at all when it cannot
    /// be opened. Like the firmware, it goes through `open` and `close`, so afterwards there is no
    /// default file.
    fn getcontents(&self, lua: &Lua, a: &Args) -> FwResult<MultiValue> {
        let name = check_name(lua, a, 1, false)?;
        let Some(obj) = self.open_file(name.as_deref(), OpenMode::Read) else {
            return Ok(MultiValue::new());
        };
        let contents = self.read_into(lua, Some(obj.clone()), WHOLE_FILE, None);
        self.close(&obj);
        Ok(MultiValue::from_iter([contents?]))
    }

    /// `putcontents(name, s)`: true, or nil when the file cannot be opened or written.
    fn putcontents(&self, lua: &Lua, a: &Args) -> FwResult<Option<bool>> {
        let name = check_name(lua, a, 1, false)?;
        let Some(obj) = self.open_file(name.as_deref(), OpenMode::WritePlus) else {
            return Ok(None);
        };
        // The file is created before the contents are checked, as on the board.
        let data = a.check_bytes(lua, 2)?;
        let ok = FileObj::with(Some(obj.clone()), |f| f.write(&data.as_bytes()))?;
        self.close(&obj);
        Ok(ok.then_some(true))
    }

    fn format(&self) -> FwResult<()> {
        let root = self.rt.flash.root().display().to_string();
        if !self.rt.cfg.flash_explicit {
            self.rt.diag(&format!(
                "file.format() refused: the flash {root} was not named with --flash, so nothing was erased"
            ));
            return fw_err(FORMAT_FAILED);
        }
        for st in self.handles.borrow_mut().drain(..) {
            if let Some(st) = st.upgrade() {
                st.borrow_mut().close();
            }
        }
        *self.default.borrow_mut() = None;
        match self.rt.flash.format() {
            Ok(_) => {
                self.rt.uart(b"format done.\n");
                Ok(())
            }
            Err(e) => {
                self.rt
                    .diag(&format!("file.format() failed on {root}: {e}"));
                fw_err(FORMAT_FAILED)
            }
        }
    }

    fn on(&self, lua: &Lua, a: &Args) -> FwResult<()> {
        check_option(lua, a, 1, "rtc", &["rtc"])?;
        *self.rtc.borrow_mut() = match a.get(2) {
            Value::Function(f) => Some(f),
            _ => None,
        };
        Ok(())
    }
}

/// A binding with the module's state.
fn binding<R, F>(lua: &Lua, files: &Rc<Files>, body: F) -> mlua::Result<Function>
where
    R: IntoLuaMulti,
    F: Fn(&Files, &Lua, Args) -> FwResult<R> + 'static,
{
    let files = files.clone();
    bind(lua, move |lua, a| body(&files, lua, a))
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    let files = Rc::new(Files {
        rt: rt.clone(),
        default: RefCell::new(None),
        open: Rc::new(Cell::new(0)),
        handles: RefCell::new(Vec::new()),
        rtc: RefCell::new(None),
        matcher: string.get("match")?,
    });
    let close = binding(lua, &files, |fs, _lua, a| fs.close_fn(&a))?;
    let read = binding(lua, &files, |fs, lua, a| fs.read(lua, &a))?;
    let readline = binding(lua, &files, |fs, lua, a| {
        let (obj, _) = fs.target(&a)?;
        fs.read_into(lua, obj, READ_CHUNK, Some(b'\n'))
    })?;
    let write = binding(lua, &files, |fs, lua, a| fs.write(lua, &a, false))?;
    let writeline = binding(lua, &files, |fs, lua, a| fs.write(lua, &a, true))?;
    let seek = binding(lua, &files, |fs, lua, a| fs.seek(lua, &a))?;
    let flush = binding(lua, &files, |fs, _lua, a| fs.flush(&a))?;
    register_methods(
        lua,
        TYPE,
        vec![
            ("close", close.clone()),
            ("read", read.clone()),
            ("readline", readline.clone()),
            ("write", write.clone()),
            ("writeline", writeline.clone()),
            ("seek", seek.clone()),
            ("flush", flush.clone()),
        ],
    )?;
    let module = module_table(
        lua,
        vec![
            ("list", binding(lua, &files, |fs, lua, a| fs.list(lua, &a))?),
            ("open", binding(lua, &files, |fs, lua, a| fs.open(lua, &a))?),
            ("close", close),
            ("write", write),
            ("writeline", writeline),
            ("read", read),
            ("readline", readline),
            ("format", binding(lua, &files, |fs, _lua, _a| fs.format())?),
            (
                "fscfg",
                binding(lua, &files, |fs, _lua, _a| {
                    let (addr, size) = geometry::partition(fs.rt.flash.capacity());
                    Ok((addr as i64, size as i64))
                })?,
            ),
            (
                "remove",
                binding(lua, &files, |fs, lua, a| {
                    if let Some(name) = check_name(lua, &a, 1, false)? {
                        fs.rt.flash.remove(&name);
                    }
                    Ok(())
                })?,
            ),
            ("seek", seek),
            ("flush", flush),
            (
                "rename",
                binding(lua, &files, |fs, lua, a| {
                    let from = check_name(lua, &a, 1, false)?;
                    let to = check_name(lua, &a, 2, false)?;
                    Ok(matches!((from, to), (Some(f), Some(t)) if fs.rt.flash.rename(&f, &t)))
                })?,
            ),
            (
                "exists",
                binding(lua, &files, |fs, lua, a| {
                    let name = check_name(lua, &a, 1, false)?;
                    Ok(name.is_some_and(|n| fs.rt.flash.size_of(&n).is_some()))
                })?,
            ),
            (
                "getcontents",
                binding(lua, &files, |fs, lua, a| fs.getcontents(lua, &a))?,
            ),
            (
                "putcontents",
                binding(lua, &files, |fs, lua, a| fs.putcontents(lua, &a))?,
            ),
            (
                "fsinfo",
                binding(lua, &files, |fs, _lua, _a| {
                    let u = fs.rt.flash.usage();
                    Ok((u.remaining() as i64, u.used as i64, u.total as i64))
                })?,
            ),
            ("on", binding(lua, &files, |fs, lua, a| fs.on(lua, &a))?),
            ("stat", binding(lua, &files, |fs, lua, a| fs.stat(lua, &a))?),
        ],
    )?;
    // What older file.c lacked: stat came with 2.x, getcontents and putcontents with 3.0.
    let fw = rt.cfg.firmware;
    if fw < Firmware::V3_0 {
        module.raw_remove("getcontents")?;
        module.raw_remove("putcontents")?;
    }
    if fw < Firmware::V2_2 {
        module.raw_remove("stat")?;
    }
    lua.globals().set("file", module)
}
