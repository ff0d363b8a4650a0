//! Each generation's forms: 1.5's positional `wifi.sta.config` and status monitor, what 1.5
//! lacked, and the notes 2.x/3.0 give for what they removed.

use super::{E, LOG_EVENTS, run_vt};

/// 1.5: `wifi.sta.config(ssid, pwd[, auto[, bssid]])`, saved and joined; its argument errors.
#[test]
fn firmware_1_5_takes_the_positional_config() {
    let r = run_vt(
        &format!(
            "{LOG_EVENTS}{E}print(wifi.sta.config('home', 'password1'))\n\
             print(wifi.sta.getconfig())\n\
             local t = wifi.sta.getdefaultconfig(true) print(t.ssid, t.pwd, t.bssid, t.bssid_set)\n\
             print(wifi.sta.config('cafe', '', 0, 'AA:BB:CC:DD:EE:01'), wifi.sta.status())\n\
             print(wifi.sta.getconfig())\n\
             print(wifi.sta.config('home', 'password1', 'aa:bb:cc:dd:ee:02'))\n\
             E(function() wifi.sta.config('home', 'short') end)\n\
             E(function() wifi.sta.config(('x'):rep(32), '') end)\n\
             E(function() wifi.sta.config('home', '', 2) end)\n\
             E(function() wifi.sta.config('home', '', nil) end)\n\
             E(function() wifi.sta.config('home', '', 1, 'aa:bb') end)\n\
             E(function() wifi.sta.config({{ssid = 'home', pwd = 'short'}}) end)\n"
        ),
        &["--firmware", "1.5"],
    );
    assert_eq!(
        r.stdout,
        "true\n\
         home\tpassword1\t0\t00:00:00:00:00:00\n\
         home\tpassword1\tnil\tnil\n\
         true\t0\n\
         cafe\t\t1\taa:bb:cc:dd:ee:01\n\
         true\n\
         bad argument #2 to 'config' (length:0 or 8-64)\n\
         bad argument #1 to 'config' (length:1-32)\n\
         wrong arg type\n\
         wrong arg type\n\
         bad argument #1 to 'config' (MAC:FF:FF:FF:FF:FF:FF)\n\
         bad argument #1 to 'config' (pwd: length:8-64)\n\
         1500\tCONNECTED\thome\taa:bb:cc:dd:ee:02\t6\n\
         2000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n",
        "{r:?}"
    );
}

/// 1.5's status monitor: callbacks by status, called with the previous status as the timer
/// polls; `eventMonStop('unreg')` stops and forgets them.
#[test]
fn firmware_1_5_has_the_status_monitor() {
    let r = run_vt(
        "local function ms() return math.floor(tmr.now() / 1000) end\n\
         print(pcall(wifi.sta.eventMonStart))\n\
         wifi.sta.eventMonReg(wifi.STA_CONNECTING, function(prev) print(ms(), 'connecting, was', prev) end)\n\
         wifi.sta.eventMonReg(wifi.STA_GOTIP, function(prev) print(ms(), 'got ip, was', prev, wifi.sta.getip())\n\
           wifi.sta.eventMonStop('unreg')\n\
           print(pcall(wifi.sta.eventMonStart))\n\
         end)\n\
         wifi.sta.eventMonStart(250)\n\
         print(pcall(wifi.sta.eventMonReg, 6))\n",
        &["--firmware", "1.5"],
    );
    assert_eq!(
        r.stdout,
        "false\tNo callbacks defined\n\
         false\tvalid wifi status:0-5\n\
         250\tconnecting, was\t0\n\
         2000\tgot ip, was\t1\t127.0.0.1\t255.0.0.0\t127.0.0.1\n\
         false\tNo callbacks defined\n",
        "{r:?}"
    );
}

/// 1.5 lacked what 2.x added (nil there), had `wifi.sleep`, and its eventmon had no
/// WIFI_MODE_CHANGED (8 events).
#[test]
fn firmware_1_5_lacks_the_later_api() {
    let r = run_vt(
        "print(wifi.sta.clearconfig, wifi.setcountry, wifi.getcountry, wifi.setmaxtxpower, wifi.suspend, wifi.resume, wifi.COUNTRY_AUTO)\n\
         print(wifi.eventmon.WIFI_MODE_CHANGED, wifi.eventmon.EVENT_MAX, pcall(wifi.eventmon.register, 9, print))\n\
         print(wifi.sleep(1)) print(wifi.getmode(), wifi.sta.status(), wifi.sleep(), wifi.sleep(0))\n\
         wifi.sta.config({ssid = 'home', pwd = 'password1', bssid = 'aa:bb:cc:dd:ee:ff'})\n\
         local t = wifi.sta.getconfig(true) print(t.ssid, t.pwd, t.bssid, t.bssid_set)\n\
         t = wifi.sta.getdefaultconfig(true) print(t.ssid)\n\
         print(type(wifi.sta.eventMonReg), type(wifi.sta.getapinfo))\n",
        &["--firmware", "1.5"],
    );
    assert_eq!(
        r.stdout,
        "nil\tnil\tnil\tnil\tnil\tnil\tnil\n\
         nil\t8\tfalse\tvalid wifi events:0-8\n\
         1\tnil\n\
         0\t0\t1\t0\tnil\n\
         home\tpassword1\taa:bb:cc:dd:ee:ff\tnil\n\
         nodemcu-sim\n\
         function\tfunction\n",
        "{r:?}"
    );
}

/// 3.0 and 2.2: the positional config fails with the firmware's error and one note; the status
/// monitor is gone (nil) with one note per name.
#[test]
fn newer_firmware_notes_what_2_1_removed() {
    for fw in ["3.0", "2.2"] {
        let r = run_vt(
            "print(pcall(wifi.sta.config, 'home', 'password1'))\n\
             print(pcall(wifi.sta.config, 'home', 'password1'))\n\
             print(wifi.sta.eventMonReg, wifi.sta.eventMonReg, wifi.sta.eventMonStart, wifi.sta.eventMonStop)\n\
             print(type(wifi.sta.clearconfig), type(wifi.setcountry), wifi.sleep)\n",
            &["--firmware", fw],
        );
        assert_eq!(
            r.stdout,
            "false\tbad argument #1 to '?' (config table not found!)\n\
             false\tbad argument #1 to '?' (config table not found!)\n\
             nil\tnil\tnil\tnil\n\
             function\tfunction\tnil\n",
            "{fw}: {r:?}"
        );
        assert_eq!(
            r.stderr,
            "nodemcu-sim: wifi.sta.config(ssid, pwd) was removed in firmware 2.1 (positional station config); this script may be written for 1.x: try --firmware 1.5\n\
             nodemcu-sim: wifi.sta.eventMonReg was removed in firmware 2.1 (the station status monitor; use wifi.eventmon); this script may be written for 1.x: try --firmware 1.5\n\
             nodemcu-sim: wifi.sta.eventMonStart was removed in firmware 2.1 (the station status monitor; use wifi.eventmon); this script may be written for 1.x: try --firmware 1.5\n\
             nodemcu-sim: wifi.sta.eventMonStop was removed in firmware 2.1 (the station status monitor; use wifi.eventmon); this script may be written for 1.x: try --firmware 1.5\n",
            "{fw}: {r:?}"
        );
    }
}
