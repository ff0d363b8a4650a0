//! Every ESP8266 `wifi` function's values and errors (firmware 3.0), with the exact texts of
//! `app/modules/wifi.c`.

use super::{E, run_vt, run_with_project};

#[test]
fn station_config_errors_have_the_firmwares_text() {
    let r = run_vt(
        &format!(
            "{E}\
             E(function() wifi.sta.config() end)\n\
             E(function() wifi.sta.config({{}}) end)\n\
             E(function() wifi.sta.config({{ssid = {{}}}}) end)\n\
             E(function() wifi.sta.config({{ssid = ('x'):rep(33)}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', pwd = true}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', pwd = ('x'):rep(65)}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', bssid = 'aa:bb'}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', bssid = true}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', auto = 1}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', save = 'yes'}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', connect_cb = 1}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', got_ip_cb = 1}}) end)\n\
             E(function() wifi.sta.config({{ssid = 'a', dhcp_timeout_cb = 1}}) end)\n"
        ),
        &[],
    );
    assert_eq!(
        r.stdout,
        "bad argument #1 to 'config' (config table not found!)\n\
         bad argument #1 to 'config' (ssid required)\n\
         bad argument #1 to 'config' (ssid:not string)\n\
         bad argument #1 to 'config' (ssid: length:0-32)\n\
         bad argument #1 to 'config' (pwd:not string)\n\
         bad argument #1 to 'config' (pwd: length:0-64)\n\
         bad argument #1 to 'config' (bssid: FF:FF:FF:FF:FF:FF)\n\
         bad argument #1 to 'config' (bssid:not string)\n\
         bad argument #1 to 'config' (auto:not boolean)\n\
         bad argument #1 to 'config' (save:not boolean)\n\
         bad argument #1 to 'config' (connect_cb:not function)\n\
         bad argument #1 to 'config' (gotip_cb:not function)\n\
         bad argument #1 to 'config' (dhcp_timeout_cb:not function)\n",
        "{r:?}"
    );
}

#[test]
fn other_functions_refuse_bad_arguments_as_the_firmware_does() {
    let r = run_vt(
        &format!(
            "{E}E(function() wifi.setmode(7) end)\n\
             E(function() wifi.setmode(1, 1) end)\n\
             E(function() wifi.setphymode(4) end)\n\
             E(function() wifi.setmaxtxpower(83) end)\n\
             E(function() wifi.setcountry('DE') end)\n\
             E(function() wifi.setcountry({{country = 'DEU'}}) end)\n\
             E(function() wifi.setcountry({{start_ch = 15}}) end)\n\
             E(function() wifi.setcountry({{start_ch = 5, end_ch = 3}}) end)\n\
             E(function() wifi.setcountry({{policy = 2}}) end)\n\
             E(function() wifi.suspend({{}}) end)\n\
             E(function() wifi.sta.sethostname('-bad') end)\n\
             E(function() wifi.sta.setmac('12:34') end)\n\
             E(function() wifi.sta.autoconnect(2) end)\n\
             E(function() wifi.sta.setaplimit(6) end)\n\
             E(function() wifi.sta.changeap(0) end)\n\
             E(function() wifi.sta.sleeptype(3) end)\n\
             E(function() wifi.sta.setip('10.0.0.2') end)\n\
             E(function() wifi.sta.getap(true) end)\n\
             E(function() wifi.sta.getap({{channel = 14}}, print) end)\n\
             E(function() wifi.sta.getap({{ssid = ('x'):rep(33)}}, print) end)\n\
             E(function() wifi.sta.getap(nil, 2, print) end)\n\
             E(function() wifi.eventmon.register(11, print) end)\n\
             E(function() wifi.ap.getclient() end)\n\
             E(function() wifi.setmode(wifi.SOFTAP) wifi.sta.getap(print) end)\n"
        ),
        &[],
    );
    assert_eq!(
        r.stdout,
        "bad argument #1 to 'setmode' (Invalid mode)\n\
         bad argument #2 to 'setmode' (boolean expected, got number)\n\
         wrong arg type\n\
         bad argument #1 to 'setmaxtxpower' (tx power out of range (0->82))\n\
         bad argument #1 to 'setcountry' (Table not found!)\n\
         bad argument #1 to 'setcountry' (country: country code must be 2 chars)\n\
         bad argument #1 to 'setcountry' (start_ch: Range:1-14)\n\
         bad argument #1 to 'setcountry' (end_ch: can't be less than start_ch)\n\
         bad argument #1 to 'setcountry' (policy: must be 0 or 1)\n\
         \n The option \"PMSLEEP_ENABLE\" in \"app/include/user_config.h\" was disabled during FW build!\n\
         wifi.suspend is unavailable\n\
         bad argument #1 to 'sethostname' (Invalid hostname)\n\
         bad argument #1 to 'setmac' (MAC:FF:FF:FF:FF:FF:FF)\n\
         bad argument #1 to 'autoconnect' (0 or 1)\n\
         bad argument #1 to 'setaplimit' (Valid range: 1-5)\n\
         bad argument #1 to 'changeap' (Valid range: 1-5)\n\
         bad argument #1 to 'sleeptype' (range:0-2)\n\
         wrong arg type\n\
         wrong arg type\n\
         channel: 0 or 1-13\n\
         ssid:<32\n\
         wrong arg type\n\
         valid wifi events:0-10\n\
         Can't list clients in STATION mode\n\
         Can't list ap in SOFTAP mode\n",
        "{r:?}"
    );
}

#[test]
fn radio_settings_report_what_was_set() {
    let r = run_vt(
        "print(wifi.getphymode(), wifi.setphymode(wifi.PHYMODE_G), wifi.getphymode())\n\
         print(wifi.sleeptype(), wifi.sta.sleeptype(wifi.LIGHT_SLEEP), wifi.sleeptype())\n\
         print(wifi.nullmodesleep(), wifi.nullmodesleep(false), wifi.nullmodesleep())\n\
         print(wifi.setmaxtxpower(82))\n\
         local c = wifi.getcountry() print(c.country, c.start_ch, c.end_ch, c.policy)\n\
         print(wifi.setcountry({country = 'de', start_ch = 1, end_ch = 13, policy = wifi.COUNTRY_MANUAL}))\n\
         c = wifi.getcountry() print(c.country, c.start_ch, c.end_ch, c.policy)\n\
         print(wifi.startsmart, wifi.stopsmart, wifi.sleep, wifi.monitor)\n\
         print(wifi.OPEN, wifi.WPA_PSK, wifi.WPA2_PSK, wifi.WPA_WPA2_PSK, wifi.NONE_SLEEP, wifi.MODEM_SLEEP)\n\
         print(wifi.STA_IDLE, wifi.STA_CONNECTING, wifi.STA_WRONGPWD, wifi.STA_APNOTFOUND, wifi.STA_FAIL, wifi.STA_GOTIP)\n\
         print(wifi.eventmon.EVENT_MAX, wifi.eventmon.WIFI_MODE_CHANGED, wifi.eventmon.reason['4WAY_HANDSHAKE_TIMEOUT'])\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "3\t2\t2\n\
         2\t1\t1\n\
         true\tfalse\tfalse\n\
         82\n\
         CN\t1\t13\t0\n\
         true\n\
         DE\t1\t13\t1\n\
         nil\tnil\tnil\tnil\n\
         0\t2\t3\t4\t0\t2\n\
         0\t1\t2\t3\t4\t5\n\
         10\t8\t15\n",
        "{r:?}"
    );
}

/// `getconfig`'s table and positional forms, the stored APs, host name and MACs.
#[test]
fn station_configuration_reads_back_in_both_forms() {
    let r = run_vt(
        "wifi.sta.config({ssid = 'home', pwd = 'secret123', bssid = 'AA:BB:CC:DD:EE:FF', auto = false})\n\
         print(wifi.sta.getconfig())\n\
         local t = wifi.sta.getconfig(true)\n\
         print(t.ssid, t.pwd, t.bssid_set, t.bssid)\n\
         t = wifi.sta.getdefaultconfig(true) print(t.ssid, t.pwd)\n\
         wifi.sta.config({ssid = 'open', auto = false, save = false})\n\
         t = wifi.sta.getconfig(true) print(t.ssid, t.pwd, t.bssid_set, t.bssid)\n\
         t = wifi.sta.getdefaultconfig(true) print(t.ssid)\n\
         local i = wifi.sta.getapinfo() print(i.qty, i[1].ssid, i[1].pwd, i[1].bssid, wifi.sta.getapindex())\n\
         print(wifi.sta.setaplimit(2), wifi.sta.changeap(2), wifi.sta.changeap(1))\n\
         print(wifi.sta.gethostname(), wifi.sta.sethostname('my-node-1'), wifi.sta.gethostname())\n\
         print(wifi.sta.getmac(), wifi.sta.setmac('03:00:00:00:00:01'), wifi.sta.setmac('02:11:22:33:44:55'), wifi.sta.getmac())\n\
         print(wifi.sta.clearconfig(), wifi.sta.getconfig())\n\
         print(wifi.sta.getdefaultconfig())\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "home\tsecret123\t1\taa:bb:cc:dd:ee:ff\n\
         home\tsecret123\ttrue\taa:bb:cc:dd:ee:ff\n\
         home\tsecret123\n\
         open\tnil\tfalse\t00:00:00:00:00:00\n\
         home\n\
         1\thome\tsecret123\taa:bb:cc:dd:ee:ff\t1\n\
         true\tfalse\ttrue\n\
         NODE-C0FFEE\ttrue\tmy-node-1\n\
         5c:cf:7f:c0:ff:ee\tfalse\ttrue\t02:11:22:33:44:55\n\
         true\t\t\t0\t00:00:00:00:00:00\n\
         \t\t0\t00:00:00:00:00:00\n",
        "{r:?}"
    );
}

/// A static address: `setip` takes effect at once (DHCP stops), and STA_GOT_IP reports it as
/// soon as the station joins.
#[test]
fn a_static_ip_is_used_from_setip_on() {
    let r = run_vt(
        "local function ms() return math.floor(tmr.now() / 1000) end\n\
         print(wifi.sta.setip({ip = '192.168.1.50', netmask = '255.255.255.0', gateway = '192.168.1.1'}))\n\
         print(wifi.sta.getip()) print(wifi.sta.getbroadcast())\n\
         wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(T) print(ms(), T.IP, T.netmask, T.gateway) end)\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "true\n192.168.1.50\t255.255.255.0\t192.168.1.1\n192.168.1.255\n1500\t192.168.1.50\t255.255.255.0\t192.168.1.1\n",
        "{r:?}"
    );
}

/// A scan lists the project's access points after 1.56 s, in both output formats and filtered.
#[test]
fn getap_lists_the_neighbourhood() {
    let r = run_with_project(
        "local function ms() return math.floor(tmr.now() / 1000) end\n\
         local function show(t) local k = {} for s in pairs(t) do k[#k + 1] = s end table.sort(k)\n\
           for _, s in ipairs(k) do print(ms(), s, t[s]) end end\n\
         wifi.sta.getap(show)\n\
         tmr.create():alarm(2000, tmr.ALARM_SINGLE, function() wifi.sta.getap(1, show) end)\n\
         tmr.create():alarm(4000, tmr.ALARM_SINGLE, function() wifi.sta.getap({ssid = 'cafe'}, 1, show) end)\n\
         tmr.create():alarm(6000, tmr.ALARM_SINGLE, function() wifi.sta.getap({channel = 11}, show) end)\n",
        "[[wifi.ap]]\nssid = \"home\"\npwd = \"secret123\"\n[[wifi.ap]]\nssid = \"cafe\"\nrssi = -80\nchannel = 11\nbssid = \"aa:00:00:00:00:02\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "1560\tcafe\t0,-80,aa:00:00:00:00:02,11\n\
         1560\thome\t3,-60,02:00:00:00:00:01,6\n\
         3560\t02:00:00:00:00:01\thome,-60,3,6\n\
         3560\taa:00:00:00:00:02\tcafe,-80,0,11\n\
         5560\taa:00:00:00:00:02\tcafe,-80,0,11\n\
         7560\tcafe\t0,-80,aa:00:00:00:00:02,11\n",
        "{r:?}"
    );
}

/// An access point: its configuration, address, clients joining and leaving at project times
/// with AP_STACONNECTED / AP_STADISCONNECTED, `getclient`, `deauth`, DHCP range.
#[test]
fn an_access_point_serves_its_clients() {
    let r = run_with_project(
        "local function ms() return math.floor(tmr.now() / 1000) end\n\
         wifi.setmode(wifi.SOFTAP)\n\
         print(wifi.ap.config({ssid = 'node-ap', pwd = 'password1', channel = 3, max = 2,\n\
           staconnected_cb = function(T) print(ms(), 'joined', T.MAC, T.AID) end}))\n\
         wifi.eventmon.register(wifi.eventmon.AP_STADISCONNECTED, function(T) print(ms(), 'left', T.MAC, T.AID) end)\n\
         print(wifi.ap.getconfig())\n\
         local c = wifi.ap.getconfig(true) print(c.ssid, c.pwd, c.auth, c.channel, c.hidden, c.max, c.beacon)\n\
         c = wifi.ap.getdefaultconfig(true) print(c.ssid, c.auth)\n\
         print(wifi.ap.getip()) print(wifi.ap.getbroadcast(), wifi.ap.getmac(), wifi.getchannel())\n\
         print(wifi.ap.dhcp.config({start = '192.168.4.10'}))\n\
         print(wifi.ap.dhcp.stop(), wifi.ap.dhcp.start())\n\
         tmr.create():alarm(3500, tmr.ALARM_SINGLE, function()\n\
           for mac, ip in pairs(wifi.ap.getclient()) do print(ms(), 'client', mac, ip) end\n\
           print(wifi.ap.deauth('aa:aa:aa:aa:aa:01'))\n\
         end)\n",
        "[[wifi.event]]\nat = 3000\nkind = \"join\"\nmac = \"aa:aa:aa:aa:aa:01\"\n[[wifi.event]]\nat = 4000\nkind = \"join\"\n[[wifi.event]]\nat = 5000\nkind = \"leave\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "true\n\
         node-ap\tpassword1\n\
         node-ap\tpassword1\t4\t3\tfalse\t2\t100\n\
         node-ap\t4\n\
         192.168.4.1\t255.255.255.0\t192.168.4.1\n\
         192.168.4.255\t5e:cf:7f:c0:ff:ee\t3\n\
         192.168.4.10\t192.168.4.11\n\
         true\ttrue\n\
         3000\tjoined\taa:aa:aa:aa:aa:01\t1\n\
         3500\tclient\taa:aa:aa:aa:aa:01\t192.168.4.10\n\
         true\n\
         3500\tleft\taa:aa:aa:aa:aa:01\t1\n\
         4000\tjoined\t02:00:00:00:10:01\t1\n\
         5000\tleft\t02:00:00:00:10:01\t1\n",
        "{r:?}"
    );
}

/// `setmode` reports WIFI_MODE_CHANGED; a station switched off leaves its network with
/// ASSOC_LEAVE; `disconnect(fn)` and `connect(fn)` take the event's callback.
#[test]
fn mode_changes_and_leaving() {
    let r = run_vt(
        "local function ms() return math.floor(tmr.now() / 1000) end\n\
         wifi.eventmon.register(wifi.eventmon.WIFI_MODE_CHANGED, function(T) print(ms(), 'mode', T.old_mode, T.new_mode) end)\n\
         wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(T)\n\
           print(ms(), 'got ip')\n\
           if ms() < 5000 then print(wifi.setmode(wifi.STATIONAP)) end\n\
           wifi.sta.disconnect(function(T) print(ms(), 'left', T.reason, wifi.sta.status(), wifi.sta.getip())\n\
             if ms() < 5000 then tmr.create():alarm(3000, tmr.ALARM_SINGLE, function() wifi.sta.connect(function(T) print(ms(), 'back', T.SSID) end) end) end\n\
           end)\n\
         end)\n\
         wifi.eventmon.unregister(wifi.eventmon.WIFI_MODE_CHANGED)\n\
         wifi.eventmon.register(wifi.eventmon.WIFI_MODE_CHANGED, function(T) print(ms(), 'mode', T.old_mode, T.new_mode) end)\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "2000\tgot ip\n\
         3\n\
         2000\tmode\t1\t3\n\
         2000\tleft\t8\t0\tnil\n\
         6500\tback\tnodemcu-sim\n\
         7000\tgot ip\n\
         7000\tleft\t8\t0\tnil\n",
        "{r:?}"
    );
}

/// Every function with every kind of argument, on both chips and in every generation: only Lua
/// errors, never a crash, and the device runs on.
#[test]
fn no_argument_crashes_the_simulator() {
    let script = include_str!("every_argument.lua");
    for (target, fw) in [("esp8266", "1.5"), ("esp8266", "3.0"), ("esp32", "3.0")] {
        let r = run_vt(script, &["--target", target, "--firmware", fw]);
        assert_eq!(r.status, 0, "{target} {fw}: {r:?}");
        assert!(r.stdout.ends_with("still alive\n"), "{target} {fw}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{target} {fw}: {r:?}");
    }
}

/// The callbacks of `config{...}` take the same slots as `wifi.eventmon.register`: the later
/// one wins, and `unregister` clears either.
#[test]
fn config_callbacks_share_the_eventmon_slots() {
    let r = run_vt(
        "wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function() print('eventmon got ip') end)\n\
         wifi.sta.config({ssid = 'home', pwd = 'password1', got_ip_cb = function() print('config got ip') end,\n\
           connect_cb = function() print('config connected') end})\n\
         wifi.eventmon.unregister(wifi.eventmon.STA_CONNECTED)\n",
        &[],
    );
    assert_eq!(r.stdout, "config got ip\n", "{r:?}");
}

/// An SDK event the firmware does not decode (a client given its address, 9) reaches the
/// catch-all callback registered under EVENT_MAX as `{info = "event 9 not implemented"}`.
#[test]
fn undecoded_events_reach_the_event_max_callback() {
    let r = run_with_project(
        "wifi.setmode(wifi.SOFTAP)\n\
         wifi.eventmon.register(wifi.eventmon.EVENT_MAX, function(T) print('catch-all', T.info) end)\n\
         wifi.eventmon.register(wifi.eventmon.AP_STACONNECTED, function(T) print('joined', T.MAC) end)\n",
        "[[wifi.event]]\nat = 1000\nkind = \"join\"\nmac = \"aa:aa:aa:aa:aa:03\"\n",
        &[],
    );
    assert_eq!(
        r.stdout, "joined\taa:aa:aa:aa:aa:03\ncatch-all\tevent 9 not implemented\n",
        "{r:?}"
    );
}
