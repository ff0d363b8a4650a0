//! LFS, the Lua Flash Store: modules kept in flash and run from there, costing no heap.
//!
//! A board's LFS holds compiled functions in a flash partition; the simulator holds the modules
//! of an [`Image`] compiled into the device's Lua state at boot, outside the device heap's
//! account (as flash is), and hands them out as the firmware does:
//! - 3.0: `node.LFS.get(name)`, `list()`, `reload(image)`, and the fields `time` and `config`;
//!   other field names are module names; `node.flashindex` and `node.flashreload` remain as
//!   deprecated synonyms.
//! - 2.2: `node.flashindex(name)`, which answers a miss with the image's time, flash addresses,
//!   size and module list, and `node.flashreload(image)`.
//! - 1.5 had no LFS.
//!
//! The image format is the simulator's own ([`Image::parse`]), made by `nodemcu-sim lfs build`
//! or from sources with `--lfs`; one made by the firmware's `luac.cross` holds code for the
//! board's Lua VM and is refused with an error saying to pass the sources. A successful reload
//! keeps the image for the boots that follow (the run's [`LfsSlot`]) and restarts the device.

use std::rc::Rc;
use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, Table, Value};

use crate::config::Firmware;
use crate::lauxlib::{Args, FwResult, bind};
use crate::runtime::{ResetCause, Runtime};

const MAGIC: &str = "nodemcu-sim-lfs 1\n";
/// The LFS partition the simulated build has, and where a board would map it: the 128 KB just
/// below the file system (`file.fscfg()` starts at 0x80000), where a 3.0 build puts it.
const LFS_SIZE: i64 = 0x20000;
const LFS_BASE: i64 = 0x0006_0000;
const LFS_MAPPED: i64 = 0x4020_0000 + LFS_BASE;

/// The modules of an LFS image, and when it was built (Unix time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub time: i64,
    pub modules: Vec<(String, Vec<u8>)>,
}

/// The run's LFS: the image the next boot loads, shared by every boot of one run.
pub type LfsSlot = Arc<Mutex<Option<Arc<Image>>>>;

impl Image {
    /// The image's bytes:
    /// `nodemcu-sim-lfs 1\n`, `time SECONDS\n`, then per module `module NAME LENGTH\n` and that
    /// many bytes of Lua source followed by `\n`, and last `end\n`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{MAGIC}time {}\n", self.time).into_bytes();
        for (name, src) in &self.modules {
            out.extend_from_slice(format!("module {name} {}\n", src.len()).as_bytes());
            out.extend_from_slice(src);
            out.push(b'\n');
        }
        out.extend_from_slice(b"end\n");
        out
    }

    /// Reads an image; the error is what `reload` returns to the script.
    pub fn parse(bytes: &[u8]) -> Result<Image, String> {
        let Some(mut rest) = bytes.strip_prefix(MAGIC.as_bytes()) else {
            return Err(if bytes.starts_with(&[0x1f, 0x8b]) || bytes.len() >= 4 {
                "not a nodemcu-sim LFS image (one made by luac.cross holds code for the board's \
                 VM: build the image from its sources with `nodemcu-sim lfs build`)"
                    .into()
            } else {
                "incorrect LFS header signature".into()
            });
        };
        let line = |rest: &mut &[u8]| -> Result<String, String> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("LFS length mismatch")?;
            let l = String::from_utf8_lossy(&rest[..end]).into_owned();
            *rest = &rest[end + 1..];
            Ok(l)
        };
        let time = line(&mut rest)?
            .strip_prefix("time ")
            .and_then(|t| t.parse().ok())
            .ok_or("Incorrect LFS header version")?;
        let mut modules = Vec::new();
        loop {
            let l = line(&mut rest)?;
            if l == "end" {
                break;
            }
            let mut parts = l.splitn(3, ' ');
            let (Some("module"), Some(name), Some(len)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err("LFS length mismatch".into());
            };
            let len: usize = len.parse().map_err(|_| "LFS length mismatch")?;
            // `get`, not `len + 1`: the length is the file's word, and may be any number.
            if rest.get(len) != Some(&b'\n') {
                return Err("LFS length mismatch".into());
            }
            modules.push((name.to_string(), rest[..len].to_vec()));
            rest = &rest[len + 1..];
        }
        if !rest.is_empty() {
            return Err("LFS length mismatch".into());
        }
        if bytes.len() as i64 > LFS_SIZE {
            return Err("LFS Image too big for configured LFS region".into());
        }
        // What luac.cross checks before writing an image: a module that does not compile
        // would otherwise be found only by the boot that loads it, which could then not boot.
        compiles(&modules)?;
        Ok(Image { time, modules })
    }
}

/// Builds an image from Lua sources (name, bytes), checking that each compiles, as luac.cross
/// does before it writes an image; the error names the module and the line.
pub fn build(time: i64, sources: Vec<(String, Vec<u8>)>) -> Result<Image, String> {
    for (name, _) in &sources {
        if name.is_empty() || name.contains([' ', '\n']) {
            return Err(format!("'{name}' cannot be an LFS module name"));
        }
    }
    compiles(&sources)?;
    let mut modules = sources;
    modules.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = modules.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("two modules named '{}'", w[0].0));
    }
    let image = Image { time, modules };
    if image.to_bytes().len() as i64 > LFS_SIZE {
        return Err("LFS Image too big for configured LFS region".into());
    }
    Ok(image)
}

/// Each module compiles; the error names the module and the line.
fn compiles(modules: &[(String, Vec<u8>)]) -> Result<(), String> {
    let lua = Lua::new();
    for (name, src) in modules {
        // Sources only: bytecode in an image is refused here, before it could reach a boot.
        lua.load(src.as_slice())
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_name(format!("={name}"))
            .into_function()
            .map_err(|e| crate::lauxlib::lua_error_text(&e))?;
    }
    Ok(())
}

/// The modules of the loaded image, compiled: name to function, in name order.
struct Loaded {
    time: i64,
    used: i64,
    functions: Vec<(String, Function)>,
}

impl Loaded {
    fn get(&self, name: &[u8]) -> Option<Function> {
        self.functions
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, f)| f.clone())
    }
}

/// Compiles the run's image into the booting device, outside the heap's account, and binds the
/// generation's LFS API into `node`.
pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    if rt.cfg.firmware < Firmware::V2_2 {
        return Ok(());
    }
    let image = rt.cfg.lfs.lock().map(|s| s.clone()).unwrap_or(None);
    let loaded = match image {
        Some(img) => Some(Rc::new(compile(lua, &img)?)),
        None => None,
    };
    let node: Table = lua.globals().get("node")?;
    let (l, r) = (loaded.clone(), rt.clone());
    let reload_fn = bind(lua, move |_, a| reload(&r, &a))?;
    if rt.cfg.firmware < Firmware::V3_0 {
        node.set(
            "flashindex",
            bind(lua, move |lua, a| index_2x(lua, l.as_deref(), &a))?,
        )?;
        node.set("flashreload", reload_fn)?;
        return Ok(());
    }
    let l = loaded.clone();
    let get = bind(lua, move |_, a| Ok(get(l.as_deref(), &a)))?;
    let l = loaded.clone();
    let list = bind(lua, move |lua, _| list(lua, l.as_deref()))?;
    let t = crate::modules::module_table(
        lua,
        vec![("get", get.clone()), ("list", list), ("reload", reload_fn)],
    )?;
    let l = loaded.clone();
    let field = lua.create_function(move |lua, (_, key): (Value, Value)| {
        let Value::String(k) = key else {
            return Ok(Value::Nil);
        };
        let l = l.as_deref();
        match &*k.as_bytes() {
            b"config" => Ok(Value::Table(config(lua, l)?)),
            b"time" => Ok(l.map_or(Value::Nil, |l| Value::Integer(l.time))),
            name => Ok(l
                .and_then(|l| l.get(name))
                .map_or(Value::Nil, Value::Function)),
        }
    })?;
    let mt = lua.create_table()?;
    mt.set("__index", field)?;
    t.set_metatable(Some(mt))?;
    node.set("LFS", t)?;
    node.set("flashindex", get)?;
    let r = rt.clone();
    node.set(
        "flashreload",
        bind(lua, move |_, a| {
            r.uart(
                b"Warning, deprecated API! node.flashreload. It will be removed soon. \
                  Use node.LFS interface instead. See documentation for details.\n",
            );
            reload(&r, &a)
        })?,
    )
}

fn compile(lua: &Lua, img: &Image) -> mlua::Result<Loaded> {
    let mut functions = crate::heap::exempt(lua, || {
        let mut fns = Vec::new();
        for (name, src) in &img.modules {
            // Sources only: a module written as bytecode is refused (`chunks.rs`).
            let f = lua
                .load(src.as_slice())
                .set_mode(mlua::chunk::ChunkMode::Text)
                .set_name(format!("={name}"))
                .into_function()?;
            fns.push((name.clone(), f));
        }
        Ok(fns)
    })?;
    functions.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Loaded {
        time: img.time,
        used: img.to_bytes().len() as i64,
        functions,
    })
}

/// `node.LFS.get(name)`: the module's function, or nil.
fn get(l: Option<&Loaded>, a: &Args) -> Option<Function> {
    match (l, a.get(1)) {
        (Some(l), Value::String(s)) => l.get(&s.as_bytes()),
        _ => None,
    }
}

/// `node.LFS.list()`: the module names, sorted, or nil without an image.
fn list(lua: &Lua, l: Option<&Loaded>) -> FwResult<Value> {
    let Some(l) = l else { return Ok(Value::Nil) };
    let names = lua.create_sequence_from(l.functions.iter().map(|(n, _)| n.as_str()))?;
    Ok(Value::Table(names))
}

/// `node.LFS.config`.
fn config(lua: &Lua, l: Option<&Loaded>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("lfs_mapped", LFS_MAPPED)?;
    t.set("lfs_base", LFS_BASE)?;
    t.set("lfs_size", LFS_SIZE)?;
    t.set("lfs_used", l.map_or(0, |l| l.used))?;
    Ok(t)
}

/// 2.x `node.flashindex(name)`: the function; or, for another name, the image's time, the
/// flash base, its physical address, the region's size and the module list; without an image,
/// nil and the two addresses.
fn index_2x(lua: &Lua, l: Option<&Loaded>, a: &Args) -> FwResult<mlua::MultiValue> {
    let Some(l) = l else {
        return Ok(mlua::MultiValue::from_iter([
            Value::Nil,
            Value::Integer(LFS_MAPPED),
            Value::Integer(LFS_BASE),
        ]));
    };
    if let Some(f) = get(Some(l), a) {
        return Ok(mlua::MultiValue::from_iter([Value::Function(f)]));
    }
    let Value::Table(names) = list(lua, Some(l))? else {
        return Ok(mlua::MultiValue::new());
    };
    Ok(mlua::MultiValue::from_iter([
        Value::Integer(l.time),
        Value::Integer(LFS_MAPPED),
        Value::Integer(LFS_BASE),
        Value::Integer(LFS_SIZE),
        Value::Table(names),
    ]))
}

/// `reload(image)`: an error string for a bad image (the running LFS is unchanged); for a good
/// one, the board's message, the image kept for the next boot, and a restart.
fn reload(rt: &Rc<Runtime>, a: &Args) -> FwResult<Option<String>> {
    let name = match a.get(1) {
        Value::String(s) => s.to_string_lossy().to_string(),
        Value::Integer(n) => n.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let Some(bytes) = rt.flash.read(&name) else {
        return Ok(Some("LFS image file not found".into()));
    };
    let image = match Image::parse(&bytes) {
        Ok(i) => i,
        Err(e) => return Ok(Some(e)),
    };
    if let Ok(mut slot) = rt.cfg.lfs.lock() {
        *slot = Some(Arc::new(image));
    }
    rt.uart(b"LFS region updated.  Restarting.\n");
    rt.request_reset(ResetCause::Restart);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_round_trips() {
        let img = Image {
            time: 1_700_000_000,
            modules: vec![
                ("a".into(), b"return 1\n".to_vec()),
                ("b".into(), b"x = '\\n'".to_vec()),
            ],
        };
        assert_eq!(Image::parse(&img.to_bytes()), Ok(img));
    }

    #[test]
    fn bad_images_are_refused_with_the_reason() {
        let ok = Image {
            time: 1,
            modules: vec![("m".into(), b"return 2".to_vec())],
        }
        .to_bytes();
        assert_eq!(
            Image::parse(&ok[..ok.len() - 6]),
            Err("LFS length mismatch".into())
        );
        let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
        assert!(Image::parse(&gz).unwrap_err().contains("luac.cross"));
        assert_eq!(
            Image::parse(b"ab"),
            Err("incorrect LFS header signature".into())
        );
    }
}
