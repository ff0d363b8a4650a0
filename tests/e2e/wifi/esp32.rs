//! `--target esp32`: the ESP32 firmware's `wifi` (dev-esp32): `wifi.mode`/`start`, explicit
//! `wifi.sta.connect()`, events through `wifi.sta.on` / `wifi.ap.on` as `(event, info)`.

use super::{E, run_vt, run_with_project};

/// The station setup of ESP32 projects: mode, config, start, connect, and the events with their
/// info tables at exact times.
#[test]
fn the_esp32_station_joins_after_start_and_connect() {
    let r = run_vt(
        &format!(
            "{E}local function ms() return math.floor(tmr.now() / 1000) end\n\
             local function on(ev, info) local k = {{}} for n, v in pairs(info) do k[#k + 1] = n .. '=' .. tostring(v) end\n\
               table.sort(k) print(ms(), ev, table.concat(k, ' ')) end\n\
             for _, ev in ipairs({{'start', 'stop', 'connected', 'disconnected', 'got_ip'}}) do wifi.sta.on(ev, on) end\n\
             print(wifi.mode(wifi.STATION), wifi.getmode())\n\
             E(function() wifi.sta.connect() end)\n\
             wifi.sta.config({{ssid = 'home', pwd = 'password1'}})\n\
             wifi.start()\n\
             wifi.sta.connect()\n\
             tmr.create():alarm(3000, tmr.ALARM_SINGLE, function() wifi.sta.disconnect() wifi.stop() end)\n"
        ),
        &["--target", "esp32"],
    );
    assert_eq!(
        r.stdout,
        "nil\t1\n\
         connect failed, code 12290\n\
         0\tstart\t\n\
         1500\tconnected\tauth=3 bssid=02:00:00:00:00:01 channel=6 ssid=home\n\
         2000\tgot_ip\tgw=127.0.0.1 ip=127.0.0.1 netmask=255.0.0.0\n\
         3000\tdisconnected\tbssid=02:00:00:00:00:01 reason=8 ssid=home\n\
         3000\tstop\t\n",
        "{r:?}"
    );
}

/// The ESP32 does not retry: a missing network is reported once.
#[test]
fn the_esp32_station_reports_a_missing_network_once() {
    let r = run_with_project(
        "wifi.sta.on('disconnected', function(ev, t) print(math.floor(tmr.now() / 1000), ev, t.ssid, t.reason) end)\n\
         wifi.start() wifi.sta.connect()\n",
        "target = \"esp32\"\n[wifi]\nsaved = { ssid = \"gone\" }\n[[wifi.ap]]\nssid = \"other\"\n",
        &[],
    );
    assert_eq!(r.stdout, "2000\tdisconnected\tgone\t201\n", "{r:?}");
}

#[test]
fn esp32_functions_values_and_errors() {
    let r = run_vt(
        &format!(
            "{E}E(function() wifi.mode(5) end)\n\
             E(function() wifi.sta.on('nope', print) end)\n\
             E(function() wifi.sta.on('got_ip', 1) end)\n\
             E(function() wifi.sta.config('home', 'pwd') end)\n\
             E(function() wifi.sta.config({{pwd = 'x'}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', bssid = 'zz'}}) end)\n\
             E(function() wifi.sta.scan({{}}, print) end)\n\
             E(function() wifi.sta.setip({{ip = '1.2.3', netmask = '255.0.0.0', gateway = '1.1.1.1'}}) end)\n\
             E(function() wifi.ap.config({{ssid = 'x', auth = 42}}) end)\n\
             E(function() wifi.sta.powersave('lots') end)\n\
             print(wifi.sta.getip, wifi.sta.status, wifi.eventmon, wifi.setmode)\n\
             wifi.sta.config({{ssid = 'home', pwd = 'password1', bssid = 'AC-1D-1C-B1-0B-22', scan_method = 'all', channel = 6}}, true)\n\
             local c = wifi.sta.getconfig()\n\
             print(c.ssid, c.pwd, c.bssid, c.pmf, c.scan_method, c.channel, c.sort_by, c.rm, c.sae_pwe)\n\
             print(wifi.sta.getmac(), wifi.ap.getmac(), wifi.getchannel())\n\
             print(wifi.sta.getpowersave(), wifi.sta.powersave('max'), wifi.sta.getpowersave())\n\
             print(wifi.sta.PMF_AVAILABLE, wifi.sta.PMF_REQUIRED, wifi.AUTH_WPA3_PSK, wifi.STR_WIFI_SECOND_CHAN_BELOW)\n\
             print(wifi.ap.config({{ssid = 'esp-ap', pwd = 'password1'}}), wifi.ap.sethostname('ap'), wifi.sta.sethostname('sta'))\n"
        ),
        &["--target", "esp32"],
    );
    assert_eq!(
        r.stdout,
        "invalid wifi mode 5\n\
         unknown event: nope\n\
         bad argument #2 to 'on' (function expected, got number)\n\
         bad argument #1 to 'config' (table expected, got string)\n\
         bad argument #-1 to 'config' (string expected, got nil)\n\
         invalid BSSID: zz\n\
         failed to start scan, code 12290\n\
         Could not parse IP address, aborting\n\
         unknown auth mode 42\n\
         bad argument #1 to 'powersave' (invalid option 'lots')\n\
         nil\tnil\tnil\tnil\n\
         home\tpassword1\tac:1d:1c:b1:0b:22\t1\tall\t6\trssi\tfalse\t0\n\
         5c:cf:7f:c0:ff:ee\t5e:cf:7f:c0:ff:ee\t1\t0\n\
         min\tnil\tmax\n\
         1\t2\t6\t2\n\
         nil\ttrue\ttrue\n",
        "{r:?}"
    );
}

/// A scan on the ESP32: `fn(nil, list)` with one table per access point.
#[test]
fn the_esp32_scan_lists_access_points() {
    let r = run_with_project(
        "wifi.start()\n\
         wifi.sta.scan({}, function(err, list)\n\
           print(math.floor(tmr.now() / 1000), err, #list)\n\
           for _, ap in ipairs(list) do print(ap.ssid, ap.bssid, ap.channel, ap.rssi, ap.auth, ap.bandwidth) end\n\
         end)\n\
         print(pcall(wifi.sta.scan, {}, print))\n",
        "target = \"esp32\"\n[[wifi.ap]]\nssid = \"home\"\npwd = \"password1\"\n[[wifi.ap]]\nssid = \"cafe\"\nchannel = 1\nrssi = -85\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "false\tscan already in progress\n\
         1560\tnil\t2\n\
         home\t02:00:00:00:00:01\t6\t-60\t3\tHT20\n\
         cafe\t02:00:00:00:00:02\t1\t-85\t0\tHT20\n",
        "{r:?}"
    );
}

/// The ESP32 soft AP: clients joining reach `wifi.ap.on` as `sta_connected` with `mac` and `id`.
#[test]
fn the_esp32_access_point_reports_clients() {
    let r = run_with_project(
        "wifi.mode(wifi.SOFTAP)\n\
         wifi.ap.on('start', function(ev) print(ev) end)\n\
         wifi.ap.on('sta_connected', function(ev, t) print(math.floor(tmr.now() / 1000), ev, t.mac, t.id) end)\n\
         wifi.ap.on('sta_disconnected', function(ev, t) print(math.floor(tmr.now() / 1000), ev, t.mac, t.id) end)\n\
         wifi.ap.config({ssid = 'esp-ap', pwd = 'password1'})\n\
         wifi.start()\n",
        "target = \"esp32\"\n[[wifi.event]]\nat = 1000\nkind = \"join\"\nmac = \"aa:aa:aa:aa:aa:02\"\n[[wifi.event]]\nat = 2500\nkind = \"leave\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "start\n\
         1000\tsta_connected\taa:aa:aa:aa:aa:02\t1\n\
         2500\tsta_disconnected\taa:aa:aa:aa:aa:02\t1\n",
        "{r:?}"
    );
}
