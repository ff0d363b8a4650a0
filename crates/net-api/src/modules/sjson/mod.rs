//! `sjson`: the firmware's streaming JSON module (2.2 and 3.0; 1.5 had `cjson` instead).
//!
//! `sjson.decode(s[, opts])` and `sjson.decoder([opts])` with `:write(s)` / `:result()`;
//! `sjson.encode(t[, opts])` and `sjson.encoder(t[, opts])` with `:read([n])`. The tokenizer
//! (`jsonsl.rs`) is a port of the one the firmware uses, so the documents it takes and the error
//! names it stops at are the board's; `decode.rs` and `encode.rs` build and print values by the
//! firmware's rules (see there), `build.rs` makes a decoded document in one protected call per
//! write when no `metatable` option watches the stores, and `store.rs` makes the stores one by
//! one when one does. Differences a script might notice are in docs/modules/sjson.md.

mod build;
mod decode;
mod encode;
pub mod jsonsl;
mod store;

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{LightUserData, Lua, Table, Value};

use crate::config::Firmware;
use crate::handle_type;
use crate::lauxlib::{Args, FwError, FwResult, arg_err, bind, fw_err, typename};
use crate::modules::{module_table, register_methods};
use crate::runtime::Runtime;
use decode::{Decoder, Fns};
use encode::{Encoder, Numbers};
use store::Storer;

const DECODER: &str = "sjson.decoder";
const ENCODER: &str = "sjson.encoder";
/// `sjson.encode` reads the encoder with this size: longer texts come back cut there.
const ENCODE_ALL: usize = 1_000_000;
/// `encoder:read()` without a size.
const READ_SIZE: usize = 1024;

#[derive(Clone)]
pub struct DecoderHandle(Rc<RefCell<Decoder>>);
handle_type!(DecoderHandle, DECODER);

#[derive(Clone)]
pub struct EncoderHandle(Rc<RefCell<Encoder>>);
handle_type!(EncoderHandle, ENCODER);

/// An error raised by Lua code the module called (a `__newindex`, a function value) goes on to
/// the script as it was raised.
pub(crate) fn raise(lua: &Lua, e: mlua::Error) -> FwError {
    match e {
        // mlua adds the traceback of where it caught the error; the script raised only the text.
        mlua::Error::RuntimeError(m) => match lua.create_string(
            m.split_once("\nstack traceback:")
                .map_or(m.as_str(), |(text, _)| text),
        ) {
            Ok(s) => FwError::Raise(Value::String(s)),
            Err(e) => FwError::Lua(e),
        },
        mlua::Error::CallbackError { cause, .. } => raise(lua, (*cause).clone()),
        e => FwError::Lua(e),
    }
}

fn opts(a: &Args, n: usize) -> Option<Table> {
    match a.arg(n) {
        Value::Table(t) => Some(t.clone()),
        _ => None,
    }
}

fn new_decoder(lua: &Lua, opts: Option<Table>, fns: &Rc<Fns>) -> FwResult<DecoderHandle> {
    let fns = fns.clone();
    let d = match opts {
        None => Decoder::new(
            fns,
            Value::LightUserData(LightUserData(std::ptr::null_mut())),
            None,
            None,
        ),
        Some(o) => {
            let null: Value = o.get("null")?;
            let metatable = match o.get::<Value>("metatable")? {
                Value::Table(t) => Some(t),
                _ => None,
            };
            let path = match &metatable {
                Some(mt) if !matches!(mt.get::<Value>("checkpath")?, Value::Nil) => {
                    Some(lua.create_table()?)
                }
                _ => None,
            };
            Decoder::new(fns, null, metatable, path)
        }
    };
    Ok(DecoderHandle(Rc::new(RefCell::new(d))))
}

/// `decoder:write(s)` on a checked decoder; the result once the document is complete.
fn write(lua: &Lua, d: &DecoderHandle, s: &[u8]) -> FwResult<Option<Value>> {
    let Ok(mut d) = d.0.try_borrow_mut() else {
        return fw_err("JSON parse error: previous call");
    };
    if d.error.is_some() {
        return fw_err("JSON parse error: previous call");
    }
    if !d.complete {
        if let Err(e) = d.write(lua, s) {
            if matches!(e, mlua::Error::MemoryError(_)) {
                // The board's emergency collection: the half-built document goes first, so the
                // error itself can still be made.
                d.abandon(lua);
            }
            return Err(raise(lua, e));
        }
        if let Some(e) = d.error {
            return fw_err(format!("JSON parse error: {}", e.name()));
        }
    }
    Ok(d.complete.then(|| d.result()))
}

fn result(d: &DecoderHandle) -> FwResult<Value> {
    match d.0.try_borrow() {
        Ok(d) if d.complete => Ok(d.result()),
        _ => fw_err("decode not complete"),
    }
}

fn new_encoder(a: &Args, fw: Firmware) -> FwResult<EncoderHandle> {
    let Value::Table(t) = a.get(1) else {
        let got = if a.is_empty() {
            "no value"
        } else {
            typename(a.arg(1))
        };
        return arg_err(1, format!("table expected, got {got}"));
    };
    let null = match opts(a, 2) {
        Some(o) => match o.get::<Value>("null")? {
            Value::Nil => None,
            v => Some(v),
        },
        None => None,
    };
    let numbers = if fw >= Firmware::V3_0 {
        Numbers::Float19
    } else {
        Numbers::LuaToString
    };
    let e = Encoder::new(t, null, numbers)?;
    Ok(EncoderHandle(Rc::new(RefCell::new(e))))
}

fn read(lua: &Lua, e: &EncoderHandle, size: usize) -> FwResult<Option<mlua::LuaString>> {
    let Ok(mut e) = e.0.try_borrow_mut() else {
        return Ok(None);
    };
    match e.read(lua, size)? {
        Some(bytes) => Ok(Some(lua.create_string(bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn install(lua: &Lua, rt: &Rc<Runtime>) -> mlua::Result<()> {
    let fw = rt.cfg.firmware;
    // With a device heap an allocation can fail: the decoder's stores must run protected.
    let protect = rt.cfg.target.heap().is_some();
    if fw < Firmware::V2_2 {
        return Ok(());
    }
    let fns = Rc::new(Fns {
        storer: Storer::new(lua, protect)?,
        build: build::build_function(lua)?,
        spare_ops: RefCell::default(),
    });
    let fns2 = fns.clone();
    register_methods(
        lua,
        DECODER,
        vec![
            (
                "write",
                bind(lua, |lua, a| {
                    let (_, d) = a.check_udata::<DecoderHandle>(1, DECODER)?;
                    let s = a.check_bytes(lua, 2)?;
                    write(lua, &d, &s.as_bytes())
                })?,
            ),
            (
                "result",
                bind(lua, |_, a| {
                    let (_, d) = a.check_udata::<DecoderHandle>(1, DECODER)?;
                    result(&d)
                })?,
            ),
        ],
    )?;
    register_methods(
        lua,
        ENCODER,
        vec![(
            "read",
            bind(lua, |lua, a| {
                let (_, e) = a.check_udata::<EncoderHandle>(1, ENCODER)?;
                let size = match a.arg(2) {
                    Value::Integer(_) | Value::Number(_) => a.check_integer(2)?.max(1) as usize,
                    _ => READ_SIZE,
                };
                read(lua, &e, size)
            })?,
        )],
    )?;
    let t = module_table(
        lua,
        vec![
            (
                "encode",
                bind(lua, move |lua, a| {
                    let e = new_encoder(&a, fw)?;
                    read(lua, &e, ENCODE_ALL)
                })?,
            ),
            (
                "decode",
                bind(lua, move |lua, a| {
                    let d = new_decoder(lua, opts(&a, 2), &fns)?;
                    let s = a.check_bytes(lua, 1)?;
                    match write(lua, &d, &s.as_bytes())? {
                        Some(v) => Ok(v),
                        None => fw_err("Incomplete JSON object passed to sjson.decode"),
                    }
                })?,
            ),
            (
                "encoder",
                bind(lua, move |lua, a| {
                    let e = new_encoder(&a, fw)?;
                    Ok(lua.create_userdata(e)?)
                })?,
            ),
            (
                "decoder",
                bind(lua, move |lua, a| {
                    let d = new_decoder(lua, opts(&a, 1), &fns2)?;
                    Ok(lua.create_userdata(d)?)
                })?,
            ),
        ],
    )?;
    if fw == Firmware::V2_2 {
        // 3.0's module table lost the constant (its docs still name it).
        t.set("NULL", LightUserData(std::ptr::null_mut()))?;
    }
    lua.globals().set("sjson", t)
}
