//! Misuse of TCP sockets and servers: every firmware error, with the caller's `chunk:line:`
//! prefix when a Lua function made the call, and the `bad argument` texts.

use super::closed_port;
use crate::support::run_lua;

#[test]
fn misuse_raises_the_firmware_errors_with_the_callers_position() {
    let port = closed_port();
    let r = run_lua(
        &format!(
            r#"
local function try(f) local ok, e = pcall(f) print(e) end
local sk = net.createConnection()
try(function() sk:close() end)
try(function() sk:send("x") end)
try(function() sk:on("data", print) end)
try(function() sk:on("receive", 42) end)
try(function() sk:connect(0, "127.0.0.1") end)
try(function() sk:dns("127.0.0.1") end)
try(function() sk:ttl() end)
try(function() sk:send("") end)
try(function() sk.close(42) end)
try(function() sk.send({{}}, "x") end)
local sv = net.createServer(net.TCP, 30)
try(function() sv:listen(0) end)
try(function() sv:listen(0, "1.2.3", print) end)
try(function() sv:listen(0, "300.1.1.1", print) end)
try(function() sv:close() end)
sv:listen(0, "127.0.0.1", function() end)
try(function() sv:listen(0, function() end) end)
local used = sv:getaddr()
local sv2 = net.createServer()
try(function() sv2:listen(used, "127.0.0.1", function() end) end)
try(function() sk.close(sv) end)
sv:close()
try(function() net.createServer(net.TCP, 0) end)
try(function() net.createServer(net.TCP, 28801) end)
sk:connect({port}, "127.0.0.1")
try(function() sk:connect({port}, "127.0.0.1") end)
sk:close()
print(sv:getaddr())
print(pcall(sk.close, sk))
"#
        ),
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "init.lua:4: not connected\n\
         init.lua:5: not connected\n\
         init.lua:6: invalid callback name\n\
         init.lua:7: invalid callback function\n\
         init.lua:8: specify port\n\
         init.lua:9: no callback specified\n\
         init.lua:10: socket is not open/bound yet\n\
         init.lua:11: no data to send\n\
         init.lua:12: invalid user data\n\
         init.lua:13: invalid user data\n\
         init.lua:15: need callback\n\
         init.lua:16: invalid IP address\n\
         init.lua:17: invalid IP address\n\
         nil\n\
         init.lua:20: already listening\n\
         init.lua:23: address in use\n\
         init.lua:24: invalid user data\n\
         init.lua:26: wrong arg type\n\
         init.lua:27: wrong arg type\n\
         init.lua:29: already connected\n\
         nil\tnil\n\
         false\tnot connected\n"
    );
}

#[test]
fn bad_argument_types_to_every_method_name_the_argument_as_the_firmware_does() {
    let r = run_lua(
        r#"
local function try(f, ...) local ok, e = pcall(f, ...) print(e) end
local sk = net.createConnection()
try(function() sk:connect("x") end)
try(function() sk:connect() end)
try(function() sk:connect(80, "127.0.0.1", 5) end)
try(function() sk:send() end)
try(function() sk:send({}) end)
try(function() sk:on() end)
try(function() sk:on({}, print) end)
try(function() sk:dns() end)
try(function() sk:dns(true, print) end)
sk:dns("127.0.0.1", function() end)
try(function() sk:ttl("x") end)
for _, m in ipairs({"close", "on", "send", "hold", "unhold", "dns", "ttl", "getpeer", "getaddr", "connect"}) do
  local ok, e = pcall(sk[m], "not a socket")
  print(m, e)
end
local sv = net.createServer()
for _, m in ipairs({"listen", "getaddr", "close"}) do
  local ok, e = pcall(sv[m], 1)
  print(m, e)
end
print(sv.on, sv.send)
"#,
        &[],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let expected = "init.lua:4: bad argument #1 to 'connect' (number expected, got string)\n\
         init.lua:5: bad argument #1 to 'connect' (number expected, got no value)\n\
         init.lua:6: bad argument #3 to 'connect' (not a function)\n\
         init.lua:7: bad argument #1 to 'send' (string expected, got no value)\n\
         init.lua:8: bad argument #1 to 'send' (string expected, got table)\n\
         init.lua:9: bad argument #1 to 'on' (string expected, got no value)\n\
         init.lua:10: bad argument #1 to 'on' (string expected, got table)\n\
         init.lua:11: bad argument #1 to 'dns' (string expected, got no value)\n\
         init.lua:12: bad argument #1 to 'dns' (string expected, got boolean)\n\
         init.lua:14: socket is not open/bound yet\n";
    let mut want = expected.to_string();
    for m in [
        "close", "on", "send", "hold", "unhold", "dns", "ttl", "getpeer", "getaddr", "connect",
    ] {
        want += &format!("{m}\tinvalid user data\n");
    }
    for m in ["listen", "getaddr", "close"] {
        want += &format!("{m}\tinvalid user data\n");
    }
    want += "nil\tnil\n";
    assert_eq!(r.stdout, want);
}

/// An error raised by a binding inside a callback reads as on the board: the method is the C
/// function right below the script's frame, with no frame of the simulator's in between; for a
/// socket method with a fast path and for any other binding alike.
#[test]
fn a_bindings_error_in_a_callback_has_the_firmwares_traceback() {
    let r = run_lua(
        "node.setonerror(function(s) print(s) end)\n\
         local sk = net.createConnection()\n\
         tmr.create():alarm(5, tmr.ALARM_SINGLE, function()\n\
           sk:send('x')\n\
         end)\n\
         tmr.create():alarm(10, tmr.ALARM_SINGLE, function()\n\
           sk:connect('x')\n\
         end)\n",
        &["--virtual-time", "--target", "host"],
    );
    // Lua 5.3 names a method call "method 'send'", 5.1 "function 'send'".
    let kind = if cfg!(feature = "lua53") {
        "method"
    } else {
        "function"
    };
    let expected = format!(
        "init.lua:4: not connected\nstack traceback:\n\t[C]: in {kind} 'send'\n\
         \tinit.lua:4: in function <init.lua:3>\n\
         init.lua:7: bad argument #1 to 'connect' (number expected, got string)\n\
         stack traceback:\n\t[C]: in {kind} 'connect'\n\tinit.lua:7: in function <init.lua:6>\n"
    );
    assert_eq!(r.stdout, expected, "{}", r.stderr);
}

/// A binding called in tail position still names its caller's line and itself, as a C function
/// of the firmware does (the script's frame is not replaced by a wrapper of the simulator's).
#[test]
fn a_binding_called_in_tail_position_keeps_the_callers_position_and_name() {
    let r = run_lua(
        "local sk = net.createConnection()\n\
         print(select(2, pcall(function() return sk:send() end)))\n\
         print(select(2, pcall(function() return sk:connect('x') end)))\n\
         print(select(2, pcall(function() return tmr.create():alarm('x') end)))\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "init.lua:2: bad argument #1 to 'send' (string expected, got no value)\n\
         init.lua:3: bad argument #1 to 'connect' (number expected, got string)\n\
         init.lua:4: bad argument #1 to 'alarm' (number expected, got string)\n",
        "{}",
        r.stderr
    );
}
