//! Tab completion for the console, answered from the device's Lua state between two callbacks.
//!
//! The word left of the cursor is a path of names (`net.dns.res`, `sock:se`): the part before the
//! last `.` or `:` is looked up from the globals without running any Lua code (raw lookups, and a
//! metatable's `__index` only when it is a table, which is how every module object keeps its
//! methods), and the names under it that start with the last part are offered. After `:` only
//! functions are offered; at the start of a word, the globals and Lua's keywords.

use mlua::{Lua, Table, Value};

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// How deep `__index` tables are followed (they can chain).
const INDEX_DEPTH: usize = 4;

/// Completions of `text`: the byte offset the candidates replace from, and the candidates.
pub(crate) fn complete(lua: &Lua, text: &str) -> (usize, Vec<String>) {
    let start = text
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':'))
        .map_or(0, |i| i + 1);
    let word = &text[start..];
    let (partial, names) = match word.rfind(['.', ':']) {
        None => {
            let mut names = members(&Value::Table(lua.globals()), false);
            names.extend(KEYWORDS.iter().map(|k| k.to_string()));
            (word, names)
        }
        Some(i) => {
            let methods = word.as_bytes()[i] == b':';
            let names = resolve(lua, &word[..i])
                .map(|v| members(&v, methods))
                .unwrap_or_default();
            (&word[i + 1..], names)
        }
    };
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(partial))
        .collect();
    names.sort();
    names.dedup();
    (text.len() - partial.len(), names)
}

/// The value a dotted path names, looked up without running Lua code.
fn resolve(lua: &Lua, path: &str) -> Option<Value> {
    let mut v = Value::Table(lua.globals());
    for name in path.split('.') {
        if !is_name(name) {
            return None;
        }
        v = field(&v, name, INDEX_DEPTH)?;
    }
    Some(v)
}

fn field(v: &Value, name: &str, depth: usize) -> Option<Value> {
    if depth == 0 {
        return None;
    }
    if let Value::Table(t) = v
        && let Ok(found) = t.raw_get::<Value>(name)
        && !found.is_nil()
    {
        return Some(found);
    }
    field(&Value::Table(index_table(v)?), name, depth - 1)
}

/// The `__index` of a value's metatable, when it is a table.
fn index_table(v: &Value) -> Option<Table> {
    let index = match v {
        Value::Table(t) => t.metatable()?.raw_get::<Value>("__index").ok()?,
        Value::UserData(ud) => ud.metatable().ok()?.get::<Value>("__index").ok()?,
        _ => return None,
    };
    match index {
        Value::Table(t) => Some(t),
        _ => None,
    }
}

/// The names a value offers: its own string keys and those of its `__index` tables.
fn members(v: &Value, methods_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = Some(v.clone());
    for _ in 0..INDEX_DEPTH {
        let Some(v) = current.take() else { break };
        if let Value::Table(t) = &v {
            for (k, val) in t.pairs::<Value, Value>().flatten() {
                if let Value::String(k) = k
                    && let Ok(k) = k.to_str()
                    && is_name(&k)
                    && (!methods_only || matches!(val, Value::Function(_)))
                {
                    out.push(k.to_string());
                }
            }
        }
        current = index_table(&v).map(Value::Table);
    }
    out
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Device};

    fn device() -> (tempfile::TempDir, Device) {
        let dir = tempfile::tempdir().unwrap();
        let d = Device::boot(Config::new(dir.path().to_path_buf()), None).unwrap();
        (dir, d)
    }

    #[test]
    fn completes_globals_members_and_methods() {
        let (_dir, d) = device();
        d.lua
            .load("tm = tmr.create() p = pipe.create() cfg = { ssid = 1, [2] = 3 }")
            .exec()
            .unwrap();
        assert_eq!(
            complete(&d.lua, "x = tmr.cr"),
            (8, vec!["create".to_string()])
        );
        assert_eq!(
            complete(&d.lua, "=tm:sta"),
            (4, vec!["start".into(), "state".into()])
        );
        assert_eq!(
            complete(&d.lua, "p:rea"),
            (2, vec!["read".into(), "reader".into()])
        );
        assert_eq!(complete(&d.lua, "cfg."), (4, vec!["ssid".into()]));
        assert_eq!(complete(&d.lua, "cfg:"), (4, Vec::<String>::new()));
        assert!(
            complete(&d.lua, "net.")
                .1
                .contains(&"createServer".to_string())
        );
        assert_eq!(complete(&d.lua, "print(nod"), (6, vec!["node".into()]));
        assert_eq!(complete(&d.lua, "whi"), (0, vec!["while".into()]));
        assert_eq!(complete(&d.lua, "nosuch.x"), (7, Vec::<String>::new()));
    }
}
