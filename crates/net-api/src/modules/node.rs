//! `node`: the chip's identity and heap, restarts and sleep, the task queues, the error handler,
//! the compiler and the console hooks (`input`, `output`), per firmware generation and chip.
//!
//! The table is assembled from what the generation's `node.c` registers in a default build
//! (`--firmware 1.5 | 2.2 | 3.0`), or, under `--target esp32`, what the ESP32 port's does; a
//! function the build lacks is nil. What the functions report lives in `node/info.rs`, sleep
//! and clocks in `node/power.rs`; `node.LFS` and its 2.x synonyms in `lfs.rs`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use crate::config::{Firmware, Target};
use crate::lauxlib::{Args, FwResult, arg_check, arg_err, bind, fw_err};
use crate::modules::module_table;
use crate::runtime::{Priority, ResetCause, Runtime};

mod info;
mod power;

pub use info::{CHIP_ID, FLASH_ID, FLASH_SIZE};

/// The egc modes (`legc.h`).
const EGC: [(&str, i64); 4] = [
    ("NOT_ACTIVE", 0),
    ("ON_ALLOC_FAILURE", 1),
    ("ON_MEM_LIMIT", 2),
    ("ALWAYS", 4),
];

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>, reset: Option<ResetCause>) -> mlua::Result<()> {
    let fw = rt.cfg.firmware;
    let esp32 = rt.cfg.target == Target::Esp32;
    let node = module_table(lua, common(lua, rt, reset)?)?;
    let extra = if esp32 {
        esp32_only(lua, rt)?
    } else {
        esp8266_only(lua, rt)?
    };
    for (k, f) in extra {
        node.set(k, f)?;
    }
    if esp32 {
        node.set("wakeup", power::wakeup_table(lua)?)?;
    } else {
        node.set("CPU80MHZ", 80)?;
        node.set("CPU160MHZ", 160)?;
    }
    // `LFS`, `flashindex` and `flashreload` are installed by `lfs.rs`.
    if fw >= Firmware::V3_0 || esp32 {
        node.set("setonerror", setonerror(lua, rt)?)?;
    }
    // 3.0 has `egc` only in its Lua 5.1 build; the older generations were 5.1 only.
    if cfg!(feature = "lua51") || (fw < Firmware::V3_0 && !esp32) {
        node.set("egc", egc_table(lua, rt)?)?;
    }
    node.set("task", task_table(lua, rt)?)?;
    crate::console::repl::install(lua, rt, &node)?;
    lua.globals().set("node", node)
}

/// What every generation and both chips have.
fn common<'a>(
    lua: &Lua,
    rt: &Rc<Runtime>,
    reset: Option<ResetCause>,
) -> mlua::Result<Vec<(&'a str, Function)>> {
    let r = rt.clone();
    let heap = bind(lua, move |lua, _| Ok(r.heap.free(lua, &r)))?;
    let r = rt.clone();
    let restart = bind(lua, move |_, _| {
        r.request_reset(ResetCause::Restart);
        Ok(())
    })?;
    let target = rt.cfg.target;
    let bootreason = bind(lua, move |_, _| Ok(info::bootreason(target, reset)))?;
    let r = rt.clone();
    let info = bind(lua, move |lua, a| info::info(lua, &r, &a))?;
    let r = rt.clone();
    let compile = bind(lua, move |lua, a| compile(lua, &r, &a))?;
    let r = rt.clone();
    let stripdebug = bind(lua, move |_, a| stripdebug(&r, &a))?;
    Ok(vec![
        ("heap", heap),
        ("info", info),
        ("restart", restart),
        ("bootreason", bootreason),
        ("compile", compile),
        ("stripdebug", stripdebug),
    ])
}

/// The ESP8266's functions, by generation.
fn esp8266_only<'a>(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Vec<(&'a str, Function)>> {
    let fw = rt.cfg.firmware;
    let r = rt.clone();
    let dsleep = bind(lua, move |_, a| power::dsleep(&r, &a))?;
    let cpu = power::Cpu::new();
    let c = cpu.clone();
    let setcpufreq = bind(lua, move |_, a| c.set(&a))?;
    let size = Rc::new(std::cell::Cell::new(FLASH_SIZE));
    let s = size.clone();
    let flashsize = bind(lua, move |_, a| {
        // Before 3.0 a number argument sets the size the SDK assumes.
        if fw < Firmware::V3_0 && matches!(a.get(1), Value::Integer(_) | Value::Number(_)) {
            s.set(a.check_integer(1)?);
        }
        Ok(s.get())
    })?;
    let mut fns = vec![
        ("dsleep", dsleep),
        ("chipid", bind(lua, |_, _| Ok(CHIP_ID))?),
        ("flashid", bind(lua, |_, _| Ok(FLASH_ID))?),
        ("flashsize", flashsize),
        ("setcpufreq", setcpufreq),
        ("restore", bind(lua, |_, _| Ok(()))?),
    ];
    if fw >= Firmware::V2_2 {
        fns.push(("getcpufreq", bind(lua, move |_, _| Ok(cpu.get()))?));
        fns.push(("random", bind(lua, random)?));
        let r = rt.clone();
        fns.push((
            "sleep",
            bind(lua, move |_, a| power::sleep_unavailable(&r, &a))?,
        ));
    }
    if power::has_dsleep_max(rt.cfg.target, fw) {
        fns.push(("dsleepMax", bind(lua, |_, _| Ok(power::dsleep_max()))?));
    }
    if fw >= Firmware::V3_0 {
        let r = rt.clone();
        fns.push((
            "getpartitiontable",
            bind(lua, move |lua, _| Ok(info::partition_table(lua, &r)?))?,
        ));
        let r = rt.clone();
        fns.push((
            "setpartitiontable",
            bind(lua, move |_, a| {
                info::check_partition_values(&a)?;
                // The firmware writes the table and spins until the watchdog resets the chip.
                r.request_reset(ResetCause::Watchdog);
                Ok(())
            })?,
        ));
        fns.extend(startup_fns(lua)?);
    }
    Ok(fns)
}

/// The ESP32 port's functions (branch `dev-esp32`): no CPU clock, flash id or `random`.
fn esp32_only<'a>(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Vec<(&'a str, Function)>> {
    let r = rt.clone();
    let dsleep = bind(lua, move |_, a| power::dsleep_esp32(&r, &a))?;
    let r = rt.clone();
    let sleep = bind(lua, move |_, a| power::sleep_esp32(&r, &a))?;
    let r = rt.clone();
    let uptime = bind(lua, move |_, _| Ok(power::uptime(&r)))?;
    Ok(vec![
        ("dsleep", dsleep),
        ("sleep", sleep),
        ("uptime", uptime),
        ("chipid", bind(lua, |_, _| Ok(info::CHIP_ID_ESP32))?),
        ("chipmodel", bind(lua, |_, _| Ok("esp32"))?),
        ("osprint", bind(lua, |_, _| Ok(()))?),
    ])
}

/// `node.setonerror([fn])`: anything but a function puts the default handler back. The built-in
/// NTest gets it privately too, so it can catch callback errors in every generation.
pub(crate) fn setonerror(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Function> {
    let r = rt.clone();
    bind(lua, move |_, a| {
        *r.onerror.borrow_mut() = match a.get(1) {
            Value::Function(f) => Some(f),
            _ => None,
        };
        Ok(())
    })
}

/// The start-up options of `node.startup` and `node.startupcommand` (3.0). A board keeps them
/// in flash; here they last for the run.
#[derive(Default)]
struct Startup {
    command: Option<Vec<u8>>,
    banner: bool,
    delay_mount: bool,
    frequency: i64,
}

fn startup_fns<'a>(lua: &Lua) -> mlua::Result<Vec<(&'a str, Function)>> {
    let st = Rc::new(RefCell::new(Startup {
        banner: true,
        frequency: 80,
        ..Default::default()
    }));
    let s = st.clone();
    let command = bind(lua, move |lua, a| {
        s.borrow_mut().command = Some(a.check_bytes(lua, 1)?.as_bytes().to_vec());
        Ok(true)
    })?;
    let startup = bind(lua, move |lua, a| {
        if !a.is_empty() {
            let Value::Table(t) = a.get(1) else {
                return arg_err(
                    1,
                    format!("table expected, got {}", crate::lauxlib::typename(a.arg(1))),
                );
            };
            set_startup(&mut st.borrow_mut(), &t)?;
        }
        let s = st.borrow();
        let t = lua.create_table()?;
        if let Some(c) = &s.command {
            t.set("command", lua.create_string(c)?)?;
        }
        t.set("banner", s.banner)?;
        t.set("delay_mount", s.delay_mount)?;
        t.set("frequency", s.frequency)?;
        Ok(t)
    })?;
    Ok(vec![("startupcommand", command), ("startup", startup)])
}

/// Applies `node.startup{...}`; an empty table resets every option.
fn set_startup(s: &mut Startup, t: &Table) -> FwResult<()> {
    let mut any = false;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = k else { continue };
        any = true;
        let truthy = !matches!(v, Value::Nil | Value::Boolean(false));
        match k.as_bytes().as_ref() {
            b"command" => match v {
                Value::String(c) => s.command = Some(c.as_bytes().to_vec()),
                _ => return fw_err("bad argument #-1 to 'startup' (string expected)"),
            },
            b"banner" => s.banner = truthy,
            b"delay_mount" => s.delay_mount = truthy,
            b"frequency" => {
                s.frequency = if crate::lauxlib::to_number(&v) == Some(160.0) {
                    160
                } else {
                    80
                }
            }
            _ => {}
        }
    }
    if !any {
        *s = Startup {
            banner: true,
            frequency: 80,
            ..Default::default()
        };
    }
    Ok(())
}

/// `node.task.post([prio], fn)`: `fn(prio)` runs later, HIGH before MEDIUM before LOW.
fn task_table(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Table> {
    let r = rt.clone();
    // 3.0's ESP8266 build checks with luaL_checktype; the others with their own message.
    let checktype = rt.cfg.firmware >= Firmware::V3_0 && rt.cfg.target != Target::Esp32;
    let post = bind(lua, move |_, a| {
        let (prio, n) = if matches!(a.get(1), Value::Integer(_) | Value::Number(_)) {
            let p = a.check_integer(1)?;
            arg_check((0..=2).contains(&p), 1, "invalid  priority")?;
            (p, 2)
        } else {
            (Priority::Medium as i64, 1)
        };
        let f = if checktype {
            a.check_function(n)?
        } else {
            match a.get(n) {
                Value::Function(f) => f,
                _ => return arg_err(n, "invalid function"),
            }
        };
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

/// `node.egc`: the emergency garbage collector's settings, checked as the firmware checks them.
/// The simulator's collector already runs when an allocation would fail, so the mode is kept
/// only for the checks. `meminfo` (2.2 and 3.0 on the ESP8266) reports the device heap in use.
fn egc_table(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<Table> {
    let fw = rt.cfg.firmware;
    let setmode = bind(lua, move |_, a| {
        let mode = a.check_integer(1)? as u32;
        let limit = a.opt_integer(2, 0)?;
        arg_check(mode <= 1 | 2 | 4, 1, "invalid mode")?;
        let limit_ok = if fw == Firmware::V1_5 {
            limit as u32 > 0
        } else {
            limit != 0
        };
        arg_check(mode & 2 == 0 || limit_ok, 1, "limit must be non-zero")?;
        Ok(())
    })?;
    let mut fns = vec![("setmode", setmode)];
    if fw >= Firmware::V2_2 && rt.cfg.target != Target::Esp32 {
        let r = rt.clone();
        fns.push((
            "meminfo",
            bind(lua, move |lua, _| {
                let used = r.heap.used_device(lua) as i64;
                Ok((used, used))
            })?,
        ));
    }
    let t = module_table(lua, fns)?;
    for (k, v) in EGC {
        t.set(k, v)?;
    }
    Ok(t)
}

/// `node.stripdebug([level[, function]])`. Nothing is stripped on the host: the level is kept
/// for the calls that read it back, and a function's "bytes stripped" is 0.
fn stripdebug(rt: &Runtime, a: &Args) -> FwResult<Value> {
    struct Level(std::cell::Cell<i64>);
    // 1.5 and 2.2 default to LUA_OPTIMIZE_DEBUG 2; 3.0 keeps LUAI_OPTIMIZE_DEBUG 1 and reports
    // it plus one: both read 2.
    let level = rt.state(|_| Level(std::cell::Cell::new(2)));
    if rt.cfg.firmware < Firmware::V3_0 && rt.cfg.target != Target::Esp32 {
        if a.is_empty() {
            return Ok(Value::Integer(level.0.get()));
        }
        let l = a.check_integer(1)?;
        arg_check((1..=3).contains(&l), 1, "must in range 1-3")?;
        if a.len() == 1 {
            level.0.set(l);
            return Ok(Value::Nil);
        }
        if l == 1 {
            return Ok(Value::Integer(0));
        }
        if !a.is_function(2) {
            a.check_integer(2)?;
        }
        return Ok(Value::Integer(0));
    }
    let n = a.len();
    let mut strip = 0;
    if !a.is_none_or_nil(1) {
        strip = crate::lauxlib::to_number(a.arg(1)).map_or(0, |x| x as i64);
        arg_check(strip > 0 && strip < 4, 1, "Invalid strip level")?;
    }
    let isfunc = a.is_function(2) || (a.is_number(2) && a.check_integer(2)? > 0);
    arg_check(n < 2 || isfunc, 2, "not a valid function")?;
    if isfunc {
        return Ok(Value::Integer(0));
    }
    if strip > 0 {
        level.0.set(strip);
    }
    Ok(Value::Integer(level.0.get()))
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

/// `node.compile("x.lua")`: writes `x.lc`, bytecode that `require` and `dofile` load, sealed as
/// the simulator's own (`chunks.rs`).
fn compile(lua: &Lua, rt: &Runtime, a: &Args) -> FwResult<()> {
    let name = a.check_str(lua, 1)?;
    let base = name.rsplit('/').next().unwrap_or(&name);
    if rt.cfg.target != Target::Esp32 {
        arg_check(
            base.len() <= host_backend::flash::MAX_NAME_LEN && !name.contains('\0'),
            1,
            "filename invalid",
        )?;
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
