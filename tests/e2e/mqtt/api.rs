//! The `mqtt` API's edges: argument errors with the firmware's texts, what a connected client
//! refuses, and the 2.2 and 1.5 generations' forms.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::broker::{Broker, Setup};
use super::device::Device;
use super::{lines, with_port};
use crate::support::{BIN, Flash, run_lua};

#[test]
fn argument_errors_are_the_firmware_texts() {
    let ran = run_lua(
        r#"
m = mqtt.Client("dev", 30)
local function try(f, ...) print(select(2, pcall(f, ...))) end
try(function() m:on("connect") end)
try(function() m:on("nope", print) end)
try(function() m:lwt() end)
try(function() m:lwt("t") end)
try(function() m:publish("t", "x", 0, 0) end)
try(function() m:subscribe("t", 0) end)
try(function() m:unsubscribe("t") end)
try(function() m:connect() end)
try(function() m.publish(42) end)
print(m:close())
"#,
        &[],
    );
    assert_eq!(
        lines(&ran.stdout),
        [
            "init.lua:4: bad argument #2 to 'on' (function expected, got no value)",
            "init.lua:5: bad argument #1 to 'on' (invalid option 'nope')",
            "init.lua:6: bad argument #1 to 'lwt' (need lwt topic)",
            "init.lua:7: bad argument #2 to 'lwt' (need lwt message)",
            "init.lua:8: not connected",
            "init.lua:9: not connected",
            "init.lua:10: not connected",
            "init.lua:11: bad argument #1 to 'connect' (string expected, got no value)",
            "init.lua:12: bad argument #1 to 'publish' (mqtt.socket expected, got number)",
            "",
        ],
        "{}",
        ran.stderr
    );
}

#[test]
fn the_2x_connect_form_under_3_0_is_noted_and_works_under_2_2() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev14", 30)
print(m:connect("127.0.0.1", {port}, 0, 0, function(c) print("connect"); c:close() end,
  function(c, r) print("connfail", r) end))
"#,
    );
    // 3.0: the callback is the failure callback, so nothing prints; the run goes on connected.
    let legacy = run_lua(&script, &["--firmware", "2.2"]);
    assert_eq!(
        lines(&legacy.stdout),
        ["true", "connect"],
        "{}",
        legacy.stderr
    );
    let mut current = Command::new(BIN);
    let flash = Flash::new(&[("init.lua", &script)]);
    current
        .arg("run")
        .arg(flash.file("init.lua"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = current.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The firmware's own note goes out on the UART; the simulator's hint to stderr.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Warning, deprecated API! mqtt.connect secure parameter as integer. It will be removed \
         in the future. See documentation for details.\nnil\n"
    );
    assert_eq!(
        stderr
            .matches("is the 2.x form; under firmware 3.0 its callback is the failure")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn older_generations_have_their_own_on_close_and_clean_session() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev18", 30)
print(pcall(m.on, m, "puback", print))
print(pcall(m.on, m, "overflow", print))
m:on("offline", function() print("offline") end)
m:connect("127.0.0.1", {port}, 0, 0, function(c)
  print("connect")
  print("close", c:close())
  print("again", c:close())
end)
"#,
    );
    let v22 = run_lua(&script, &["--firmware", "2.2"]);
    assert_eq!(
        lines(&v22.stdout),
        [
            "false\tmethod not supported",
            "true",
            "connect",
            "close\ttrue",
            "again\tfalse"
        ],
        "{}",
        v22.stderr
    );
    let v15 = run_lua(&script, &["--firmware", "1.5"]);
    assert_eq!(
        lines(&v15.stdout)[..2],
        ["false\tmethod not supported", "false\tmethod not supported"],
        "{}",
        v15.stderr
    );
    // 2.x defaulted to a clean session (c1); 3.0 leaves it off (c0).
    let log = b.log();
    assert!(log.contains("as dev18 (p2, c1, k30)"), "{log}");
}

#[test]
fn a_2_2_client_with_autoreconnect_comes_back_after_the_broker_restarts() {
    let mut b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
local n = 0
m = mqtt.Client("dev19", 30)
m:on("offline", function() print("offline") end)
m:connect("127.0.0.1", {port}, 0, 1, function(c)
  n = n + 1
  print("connect", n)
  if n == 2 then c:close() end
end)
"#,
    );
    let mut dev = Device::start(&script, &["--firmware", "2.2"]);
    dev.expect("connect\t1");
    b.restart();
    dev.expect("connect\t2");
    assert_eq!(
        dev.finish(),
        [
            "Warning, deprecated API! autoreconnect == 1 is deprecated. It will be removed in the \
             next version. See documentation for details.",
            "connect\t1",
            "offline",
            "connect\t2"
        ]
    );
}

#[test]
fn errors_and_refusals_on_a_connected_client() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
local function try(f) print(select(2, pcall(f))) end
-- nil in the middle shifts the optional arguments: the 1 is not the clean-session flag.
m = mqtt.Client("dev20", 30, nil, nil, 1)
m:connect("127.0.0.1", {port}, function(c)
  try(function() c:connect("127.0.0.1", {port}) end)
  try(function() c:subscribe({}) end)
  try(function() c:unsubscribe({}) end)
  try(function() c:subscribe({t = "x"}) end)
  try(function() c:publish("t", "x", 0) end)
  print(c:publish("", "x", 0, 0), c:publish("t", string.rep("x", 1500), 0, 0),
        c:publish("t", "x", 3, 0))
  local big = {}
  for i = 1, 20 do big[string.rep("t", 100) .. i] = 0 end
  try(function() c:subscribe(big) end)
  c:close()
end)
"#,
    );
    let ran = run_lua(&script, &[]);
    assert_eq!(
        lines(&ran.stdout),
        [
            "init.lua:6: already connected",
            "init.lua:7: no topics found",
            "init.lua:8: no topics found",
            "init.lua:9: bad argument #-2 to 'subscribe' (number expected, got string)",
            "init.lua:10: bad argument #4 to 'publish' (number expected, got no value)",
            "false\tfalse\tfalse",
            "init.lua:15: buffer overflow, can't enqueue all subscriptions",
        ],
        "{}",
        ran.stderr
    );
    assert!(b.log().contains("as dev20 (p2, c0, k30)"), "{}", b.log());
}

#[test]
fn an_error_in_an_mqtt_callback_panics_the_esp8266_as_net_callbacks_do() {
    let b = Broker::start(Setup::default());
    let script = with_port(
        b.port,
        r#"
m = mqtt.Client("dev21", 30)
m:connect("127.0.0.1", {port}, function(c) error("boom") end)
"#,
    );
    let ran = run_lua(&script, &[]);
    assert!(
        ran.stderr
            .contains("PANIC: unprotected error in call to Lua API (init.lua:3: boom)"),
        "{}",
        ran.stderr
    );
    assert_ne!(ran.status, 0);
}
