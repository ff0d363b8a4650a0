//! `wifi`: the station's life on the device clock (joining, failing, being dropped,
//! reconnecting), every ESP8266 function's values and errors, the 1.5 and 2.x/3.0 forms, the
//! ESP32 API, and the `[wifi]` section of the project file. Scripts follow the boot code of public
//! projects; times are exact under `--virtual-time`.

#[path = "wifi/esp32.rs"]
mod esp32;
#[path = "wifi/functions.rs"]
mod functions;
#[path = "wifi/generations.rs"]
mod generations;
#[path = "wifi/life.rs"]
mod life;
#[path = "wifi/patterns.rs"]
mod patterns;

use crate::support::{Flash, Ran};

/// Runs `script` as init.lua with a project file, under virtual time.
pub fn run_with_project(script: &str, toml: &str, args: &[&str]) -> Ran {
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", toml)]);
    let mut all = vec!["--virtual-time"];
    all.extend_from_slice(args);
    f.run("init.lua", &all)
}

/// Runs `script` with the default project, under virtual time.
pub fn run_vt(script: &str, args: &[&str]) -> Ran {
    run_with_project(script, "", args)
}

/// Prints every station event with its arguments and the device time in ms.
pub const LOG_EVENTS: &str = r#"
local function ms() return math.floor(tmr.now() / 1000) end
local E = wifi.eventmon
E.register(E.STA_CONNECTED, function(T) print(ms(), "CONNECTED", T.SSID, T.BSSID, T.channel) end)
E.register(E.STA_GOT_IP, function(T) print(ms(), "GOT_IP", T.IP, T.netmask, T.gateway) end)
E.register(E.STA_DISCONNECTED, function(T) print(ms(), "DISCONNECTED", T.SSID, T.BSSID, T.reason, wifi.sta.status()) end)
"#;

/// Lua helper: `E(fn)` prints the error `fn` raises, without the `init.lua:N: ` prefix.
pub const E: &str = "local function E(f) local ok, m = pcall(f) print(ok and 'no error' or (m:gsub('^init.lua:%d+: ', ''))) end\n";
