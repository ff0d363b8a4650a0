//! The one-shot forms, `http.get`, `http.post` and `http.put`: a connection made with the
//! script's options, `Connection: close`, and callbacks that gather the body and headers for the
//! script's callback (or for the return values when there is none).

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use super::run::request;
use super::{COMPLETE, DATA, HEADERS, create_connection};
use crate::lauxlib::{Args, FwResult, arg_check, arg_err};
use crate::runtime::Runtime;

/// The body and headers a one-shot request gathers.
#[derive(Default)]
struct Gathered {
    headers: Option<Table>,
    body: Vec<u8>,
}

/// `http.get(url[, options][, callback])`.
pub(super) fn oneshot_get(lua: &Lua, rt: &Rc<Runtime>, a: &Args) -> FwResult<MultiValue> {
    a.check_str(lua, 1)?;
    let (opts, cb, cb_at) = if a.is_function(2) {
        (Value::Nil, a.get(2), 3)
    } else {
        (a.get(2), a.get(3), 3)
    };
    oneshot(lua, rt, a.get(1), 0, opts, None, cb, cb_at)
}

/// `http.post(url, options, body[, callback])` and `http.put`.
pub(super) fn oneshot_with_body(
    lua: &Lua,
    rt: &Rc<Runtime>,
    a: &Args,
    method: i64,
) -> FwResult<MultiValue> {
    a.check_str(lua, 1)?;
    let opts = a.get(2);
    arg_check(
        matches!(opts, Value::Nil | Value::Table(_)),
        2,
        "options must be nil or a table",
    )?;
    let body = a.check_bytes(lua, 3)?.as_bytes().to_vec();
    oneshot(lua, rt, a.get(1), method, opts, Some(body), a.get(4), 4)
}

#[allow(clippy::too_many_arguments)]
fn oneshot(
    lua: &Lua,
    rt: &Rc<Runtime>,
    url: Value,
    method: i64,
    opts: Value,
    body: Option<Vec<u8>>,
    cb: Value,
    cb_at: usize,
) -> FwResult<MultiValue> {
    let opts = match opts {
        Value::Nil => lua.create_table()?,
        Value::Table(t) => t,
        _ => return arg_err(2, "options must be nil or a table"),
    };
    let is_async = matches!(cb, Value::Function(_));
    arg_check(
        matches!(cb, Value::Nil) || is_async,
        cb_at,
        "callback must be nil or a function",
    )?;
    // The one-shot forms write `async` into the script's own options table.
    opts.set("async", is_async)?;
    let args = Args(MultiValue::from_iter([
        url,
        Value::Integer(method),
        Value::Table(opts),
    ]));
    let (ud, c) = create_connection(lua, rt, &args)?;
    if let Some(body) = body {
        let mut st = c.0.borrow_mut();
        if st.headers.get("Content-Type").is_none() {
            st.headers
                .set("Content-Type", Some("application/x-www-form-urlencoded"));
        }
        st.body = Some(body);
    }
    c.0.borrow_mut().headers.set("Connection", Some("close"));
    let gathered = Rc::new(RefCell::new(Gathered::default()));
    let g = gathered.clone();
    let on_headers = lua.create_function(move |_, (_code, h): (Value, Table)| {
        g.borrow_mut().headers = Some(h);
        Ok(())
    })?;
    let g = gathered.clone();
    let on_data = lua.create_function(move |_, (_code, d): (Value, mlua::LuaString)| {
        g.borrow_mut().body.extend_from_slice(&d.as_bytes());
        Ok(())
    })?;
    let g = gathered.clone();
    let user_cb = match cb {
        Value::Function(f) => Some(f),
        _ => None,
    };
    let on_complete = lua.create_function(move |lua, (code, _): (Value, Value)| {
        let Some(f) = &user_cb else {
            return Ok(());
        };
        let g = g.borrow();
        let body = lua.create_string(&g.body)?;
        let headers = g.headers.clone().map_or(Value::Nil, Value::Table);
        f.call::<()>((code, body, headers))
    })?;
    {
        let mut st = c.0.borrow_mut();
        st.callbacks[HEADERS] = Some(on_headers);
        st.callbacks[DATA] = Some(on_data);
        st.callbacks[COMPLETE] = Some(on_complete);
    }
    let req_args = Args(MultiValue::from_iter([Value::UserData(ud)]));
    request(lua, rt, &req_args)?;
    if is_async {
        return Ok(MultiValue::new());
    }
    let status = c.0.borrow().status;
    let g = gathered.borrow();
    Ok(MultiValue::from_iter([
        Value::Integer(status.into()),
        Value::String(lua.create_string(&g.body)?),
        g.headers.clone().map_or(Value::Nil, Value::Table),
    ]))
}
