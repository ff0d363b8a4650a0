//! `node`: the chip's identity and heap, restarts, the task queues, the error handler, and the
//! console hooks (`input`, `output`).

use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::{Priority, ResetCause, Runtime};

pub const CHIP_ID: i64 = 0x00C0_FFEE;
pub const FLASH_ID: i64 = 0x0016_40EF;
pub const FLASH_SIZE: i64 = 4 * 1024 * 1024;

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>, reset: Option<ResetCause>) -> mlua::Result<()> {
    let r = rt.clone();
    let heap = bind(lua, move |lua, _| Ok(r.heap.free(lua, &r)))?;
    let r = rt.clone();
    let restart = bind(lua, move |_, _| {
        r.request_reset(ResetCause::Restart);
        Ok(())
    })?;
    let r = rt.clone();
    let dsleep = bind(lua, move |_, a| {
        if a.is_number(2) && !(0..=4).contains(&a.check_integer(2)?) {
            return fw_err("wrong arg range");
        }
        if a.is_number(1) && a.check_integer(1)? < 0 {
            return fw_err("wrong arg range");
        }
        r.request_reset(ResetCause::DeepSleep);
        Ok(())
    })?;
    let bootreason = bind(lua, move |_, _| {
        // (rawcode, reason): 1/0 power-on; 2/4 software restart; 2/3 software watchdog; 5 deep-sleep wake.
        Ok(match reset {
            None => (1, 0),
            Some(ResetCause::Restart | ResetCause::Error) => (2, 4),
            Some(ResetCause::Panic | ResetCause::Watchdog | ResetCause::SoftWatchdog) => (2, 3),
            Some(ResetCause::DeepSleep) => (2, 5),
        })
    })?;
    let cpu = Rc::new(std::cell::Cell::new(80i64));
    let c = cpu.clone();
    let setcpufreq = bind(lua, move |_, a| {
        let f = a.check_integer(1)?;
        arg_check(f == 80 || f == 160, 1, "wrong arg range")?;
        c.set(f);
        Ok(f)
    })?;
    let getcpufreq = bind(lua, move |_, _| Ok(cpu.get()))?;
    let r = rt.clone();
    let setonerror = bind(lua, move |_, a| {
        *r.onerror.borrow_mut() = match a.get(1) {
            Value::Function(f) => Some(f),
            Value::Nil => None,
            _ => return arg_err(1, "function expected"),
        };
        Ok(())
    })?;
    let r = rt.clone();
    let compile = bind(lua, move |lua, a| compile(lua, &r, &a))?;
    let node = module_table(
        lua,
        vec![
            ("heap", heap),
            ("chipid", bind(lua, |_, _| Ok(CHIP_ID))?),
            ("flashid", bind(lua, |_, _| Ok(FLASH_ID))?),
            ("flashsize", bind(lua, |_, _| Ok(FLASH_SIZE))?),
            ("info", bind(lua, info)?),
            ("restart", restart),
            ("dsleep", dsleep),
            ("bootreason", bootreason),
            ("setcpufreq", setcpufreq),
            ("getcpufreq", getcpufreq),
            ("random", bind(lua, random)?),
            ("setonerror", setonerror),
            ("compile", compile),
            ("stripdebug", bind(lua, |_, _| Ok(Value::Nil))?),
        ],
    )?;
    node.set("CPU80MHZ", 80)?;
    node.set("CPU160MHZ", 160)?;
    node.set("task", task_table(lua, rt)?)?;
    node.set("egc", egc_table(lua)?)?;
    crate::console::repl::install(lua, rt, &node)?;
    lua.globals().set("node", node)
}

/// `node.task.post([prio], fn)`: `fn(prio)` runs later, HIGH before MEDIUM before LOW.
fn task_table(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Table> {
    let r = rt.clone();
    let post = bind(lua, move |_, a| {
        let (prio, n) = if matches!(a.get(1), Value::Integer(_) | Value::Number(_)) {
            let p = a.check_integer(1)?;
            arg_check((0..=2).contains(&p), 1, "invalid  priority")?;
            (p, 2)
        } else {
            (Priority::Medium as i64, 1)
        };
        let f = a.check_function(n)?;
        let level = [Priority::Low, Priority::Medium, Priority::High][prio as usize];
        let rr = r.clone();
        if !r.post_task(level, Box::new(move |lua| rr.call_protected(lua, &f, prio))) {
            return fw_err("Task queue overflow. Task not posted");
        }
        Ok(())
    })?;
    let t = module_table(lua, vec![("post", post)])?;
    t.set("LOW_PRIORITY", 0)?;
    t.set("MEDIUM_PRIORITY", 1)?;
    t.set("HIGH_PRIORITY", 2)?;
    Ok(t)
}

/// `node.egc`: the emergency garbage collector's settings. The host collector needs none of them;
/// the calls are accepted so scripts that tune it run unchanged.
fn egc_table(lua: &Lua) -> mlua::Result<Table> {
    let setmode = bind(lua, |_, a| {
        a.check_integer(1)?;
        Ok(())
    })?;
    let meminfo = bind(lua, |lua, _| {
        let used = lua.used_memory() as i64;
        Ok((used, used, 0))
    })?;
    let t = module_table(lua, vec![("setmode", setmode), ("meminfo", meminfo)])?;
    for (k, v) in [
        ("NOT_ACTIVE", 0),
        ("ON_ALLOC_FAILURE", 1),
        ("ON_MEM_LIMIT", 2),
        ("ALWAYS", 4),
    ] {
        t.set(k, v)?;
    }
    Ok(t)
}

/// `node.random()`, `node.random(n)`, `node.random(l, u)`.
fn random(lua: &Lua, a: Args) -> FwResult<Value> {
    let (l, u) = match a.len() {
        0 => {
            return Ok(Value::Number(
                rand_u32(lua) as f64 / (u32::MAX as f64 + 1.0),
            ));
        }
        1 => (1, a.check_integer(1)?),
        2 => (a.check_integer(1)?, a.check_integer(2)?),
        _ => return fw_err("wrong number of arguments"),
    };
    arg_check(l <= u, 2, "interval is empty")?;
    // In 128 bits: the interval may span all of the 64-bit integers.
    let span = (i128::from(u) - i128::from(l) + 1) as u128;
    let r = u128::from(rand_u32(lua)) % span;
    Ok(Value::Integer((i128::from(l) + r as i128) as i64))
}

/// A small xorshift generator kept per device (the chip's hardware RNG has no seed to replay).
fn rand_u32(lua: &Lua) -> u32 {
    struct Rng(u64);
    if lua.app_data_ref::<Rng>().is_none() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        lua.set_app_data(Rng(seed | 1));
    }
    let Some(mut r) = lua.app_data_mut::<Rng>() else {
        return 0; // just set above
    };
    r.0 ^= r.0 << 13;
    r.0 ^= r.0 >> 7;
    r.0 ^= r.0 << 17;
    (r.0 >> 16) as u32
}

/// `node.info([group])`.
fn info(lua: &Lua, a: Args) -> FwResult<mlua::MultiValue> {
    use mlua::IntoLuaMulti;
    let group = if a.is_none_or_nil(1) {
        None
    } else {
        Some(a.check_str(lua, 1)?)
    };
    let t = lua.create_table()?;
    match group.as_deref() {
        None => {
            return Ok((3, 0, 0, CHIP_ID, FLASH_ID, FLASH_SIZE / 1024, 0, 40).into_lua_multi(lua)?);
        }
        Some("hw") => {
            t.set("chip_id", CHIP_ID)?;
            t.set("flash_id", FLASH_ID)?;
            t.set("flash_size", FLASH_SIZE / 1024)?;
            t.set("flash_mode", 0)?;
            t.set("flash_speed", 40_000_000)?;
        }
        Some("sw_version") => {
            t.set("node_version_major", 3)?;
            t.set("node_version_minor", 0)?;
            t.set("node_version_revision", 0)?;
            t.set("git_branch", "nodemcu-sim")?;
            t.set("git_commit_id", env!("CARGO_PKG_VERSION"))?;
            t.set(
                "git_release",
                format!("nodemcu-sim {}", env!("CARGO_PKG_VERSION")),
            )?;
            t.set("git_commit_dts", "202611250000")?;
        }
        Some("build_config") => {
            t.set("ssl", true)?;
            t.set("lfs_size", 0)?;
            t.set("modules", "bit,file,net,node,pipe,tls,tmr,uart,wifi")?;
            t.set("number_type", "float")?;
        }
        Some("lfs") => {
            t.set("lfs_size", 0)?;
        }
        Some(_) => return arg_err(1, "invalid group"),
    }
    Ok(t.into_lua_multi(lua)?)
}

/// `node.compile("x.lua")`: writes `x.lc`, bytecode that `require` and `dofile` load, sealed as
/// the simulator's own (`chunks.rs`).
fn compile(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<()> {
    let name = a.check_str(lua, 1)?;
    if name.len() > host_backend::flash::MAX_NAME_LEN {
        return fw_err("filename too long");
    }
    let Some(stem) = name.strip_suffix(".lua") else {
        return fw_err("not a .lua file");
    };
    let f: Function = match crate::stdlib::load_flash(lua, rt, &name) {
        Ok(f) => f,
        Err(m) => return fw_err(m),
    };
    let out = format!("{stem}.lc");
    match rt.flash.resolve(&out) {
        Some(path) if std::fs::write(&path, crate::chunks::seal(f.dump(true))).is_ok() => Ok(()),
        _ => fw_err("cannot open/write to file"),
    }
}
