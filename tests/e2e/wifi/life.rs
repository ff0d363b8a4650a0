//! The station's life: joining the saved network at boot, failing, being dropped, reconnecting,
//! and the saved configuration across a restart, at exact device times.

use super::{LOG_EVENTS, run_vt, run_with_project};

/// A board whose user saved a network joins it at boot: STA_CONNECTED at 1.5 s, STA_GOT_IP at
/// 2 s, and `getip()` is nil until then.
#[test]
fn the_saved_network_is_joined_at_boot() {
    let r = run_vt(
        &format!(
            "{LOG_EVENTS}print(wifi.sta.getip(), wifi.sta.status(), wifi.sta.getrssi())\n\
             tmr.create():alarm(1999, tmr.ALARM_SINGLE, function() print('1999', wifi.sta.getip(), wifi.sta.status()) end)\n\
             tmr.create():alarm(2001, tmr.ALARM_SINGLE, function() print('2001', wifi.sta.getip()) print(wifi.sta.status(), wifi.sta.getrssi(), wifi.getchannel()) end)\n"
        ),
        &[],
    );
    assert_eq!(
        r.stdout,
        "nil\t1\tnil\n\
         1500\tCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t6\n\
         1999\tnil\t1\n\
         2000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n\
         2001\t127.0.0.1\t255.0.0.0\t127.0.0.1\n\
         5\t-60\t6\n",
        "{r:?}"
    );
}

/// The common station setup of public projects: mode, config with the callbacks in the table,
/// and the server started on STA_GOT_IP.
#[test]
fn a_config_with_callbacks_joins_two_seconds_later() {
    let r = run_with_project(
        "local function ms() return math.floor(tmr.now() / 1000) end\n\
         wifi.setmode(wifi.STATION)\n\
         tmr.create():alarm(5000, tmr.ALARM_SINGLE, function()\n\
           print(ms(), 'config', wifi.sta.config({ssid = 'home', pwd = 'secret123', save = false,\n\
             connect_cb = function(T) print(ms(), 'connect_cb', T.SSID, T.BSSID, T.channel) end,\n\
             got_ip_cb = function(T) print(ms(), 'got_ip_cb', T.IP) end}))\n\
         end)\n",
        "[wifi]\nsaved = false\n[[wifi.ap]]\nssid = \"home\"\npwd = \"secret123\"\nrssi = -71\nchannel = 11\nbssid = \"aa:bb:cc:dd:ee:01\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "5000\tconfig\ttrue\n\
         6500\tconnect_cb\thome\taa:bb:cc:dd:ee:01\t11\n\
         7000\tgot_ip_cb\t127.0.0.1\n",
        "{r:?}"
    );
}

/// `saved = false`: a board never configured is idle with no address and stays so.
#[test]
fn a_board_with_nothing_saved_stays_idle() {
    let r = run_with_project(
        &format!(
            "{LOG_EVENTS}tmr.create():alarm(10000, tmr.ALARM_SINGLE, function()\n\
               print(wifi.sta.getip(), wifi.sta.status(), wifi.sta.getconfig())\n\
               print(wifi.sta.getapinfo().qty)\n\
             end)\n"
        ),
        "[wifi]\nsaved = false\n",
        &[],
    );
    assert_eq!(r.stdout, "nil\t0\t\t\t0\t00:00:00:00:00:00\n0\n", "{r:?}");
}

/// An absent network: STA_DISCONNECTED with NO_AP_FOUND every 2 s and STA_APNOTFOUND; the
/// script's reconnect logic gives up after three tries and falls back to an access point.
#[test]
fn an_absent_network_is_retried_until_the_script_gives_up() {
    let r = run_with_project(
        &format!(
            "{LOG_EVENTS}local tries = 0\n\
             E.register(E.STA_DISCONNECTED, function(T)\n\
               tries = tries + 1\n\
               print(ms(), 'lost', T.SSID, T.BSSID, T.reason == E.reason.NO_AP_FOUND, wifi.sta.status() == wifi.STA_APNOTFOUND)\n\
               if tries == 3 then wifi.sta.disconnect() wifi.setmode(wifi.SOFTAP) print(ms(), 'AP', wifi.ap.getip()) end\n\
             end)\n"
        ),
        "[wifi]\nsaved = { ssid = \"gone\", pwd = \"whatever1\" }\n[[wifi.ap]]\nssid = \"other\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "2000\tlost\tgone\t00:00:00:00:00:00\ttrue\ttrue\n\
         4000\tlost\tgone\t00:00:00:00:00:00\ttrue\ttrue\n\
         6000\tlost\tgone\t00:00:00:00:00:00\ttrue\ttrue\n\
         6000\tAP\t192.168.4.1\t255.255.255.0\t192.168.4.1\n",
        "{r:?}"
    );
}

/// A refused password: AUTH_FAIL (202) and STA_WRONGPWD, retried; a corrected config joins.
#[test]
fn a_refused_password_reports_auth_fail_then_a_new_config_joins() {
    let r = run_with_project(
        &format!(
            "{LOG_EVENTS}E.register(E.STA_DISCONNECTED, function(T)\n\
               print(ms(), 'DISCONNECTED', T.SSID, T.BSSID, T.reason, wifi.sta.status())\n\
               if T.reason == E.reason.AUTH_FAIL and ms() >= 4000 then\n\
                 wifi.sta.config({{ssid = 'home', pwd = 'right-one'}})\n\
               end\n\
             end)\n"
        ),
        "[wifi]\nsaved = { ssid = \"home\", pwd = \"wrong-one\" }\n[[wifi.ap]]\nssid = \"home\"\npwd = \"right-one\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "2000\tDISCONNECTED\thome\t02:00:00:00:00:01\t202\t2\n\
         4000\tDISCONNECTED\thome\t02:00:00:00:00:01\t202\t2\n\
         5500\tCONNECTED\thome\t02:00:00:00:00:01\t6\n\
         6000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n",
        "{r:?}"
    );
}

/// The network drops the station at a given time: STA_DISCONNECTED with the reason, no address,
/// STA_CONNECTING, then the SDK reconnects by itself.
#[test]
fn a_drop_reconnects_as_the_sdk_does() {
    let r = run_with_project(
        &format!(
            "{LOG_EVENTS}tmr.create():alarm(60001, tmr.ALARM_SINGLE, function() print(ms(), wifi.sta.getip(), wifi.sta.status()) end)\n"
        ),
        "[[wifi.event]]\nat = 60000\nkind = \"drop\"\nreason = 4\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "1500\tCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t6\n\
         2000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n\
         60000\tDISCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t4\t1\n\
         60001\tnil\t1\n\
         61500\tCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t6\n\
         62000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n",
        "{r:?}"
    );
}

/// A network that goes down is lost with BEACON_TIMEOUT, not found while down, and joined again
/// once it is back.
#[test]
fn a_network_down_then_up() {
    let r = run_with_project(
        LOG_EVENTS,
        "[[wifi.event]]\nat = 5000\nkind = \"down\"\n[[wifi.event]]\nat = 8000\nkind = \"up\"\n",
        &[],
    );
    assert_eq!(
        r.stdout,
        "1500\tCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t6\n\
         2000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n\
         5000\tDISCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t200\t1\n\
         7000\tDISCONNECTED\tnodemcu-sim\t00:00:00:00:00:00\t201\t3\n\
         9000\tDISCONNECTED\tnodemcu-sim\t00:00:00:00:00:00\t201\t3\n\
         10500\tCONNECTED\tnodemcu-sim\t02:00:00:00:00:01\t6\n\
         11000\tGOT_IP\t127.0.0.1\t255.0.0.0\t127.0.0.1\n",
        "{r:?}"
    );
}

/// A script with no Wi-Fi callback does not wait for the station: the run ends at once.
#[test]
fn a_script_without_wifi_callbacks_does_not_wait_for_the_station() {
    let r = crate::support::run_lua("print(wifi.sta.status())\n", &[]);
    assert_eq!(r.stdout, "1\n");
    assert!(r.elapsed.as_millis() < 1500, "{r:?}");
}

/// What `config{save=true}` and `setmode(m)` store survives `node.restart()`; `save=false` and
/// `setmode(m, false)` do not.
#[test]
fn the_saved_configuration_survives_a_restart() {
    let script = "if not file.exists('booted') then\n\
           file.putcontents('booted', '1')\n\
           wifi.sta.config({ssid = 'kept', pwd = 'password1', auto = false})\n\
           wifi.sta.config({ssid = 'lost', pwd = 'password2', auto = false, save = false})\n\
           wifi.setmode(wifi.STATIONAP)\n\
           wifi.setmode(wifi.SOFTAP, false)\n\
           print(wifi.getmode(), wifi.getdefaultmode(), wifi.sta.getconfig(), wifi.sta.getdefaultconfig())\n\
           node.restart()\n\
         else\n\
           print(wifi.getmode(), wifi.sta.getconfig())\n\
           tmr.create():alarm(100, tmr.ALARM_SINGLE, function() print(wifi.sta.status()) end)\n\
         end\n";
    let r = run_vt(script, &["--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("2\t3\tlost\tkept\tpassword1\t0\t00:00:00:00:00:00\n"),
        "{r:?}"
    );
    // auto = false was saved too: the second boot does not connect.
    assert!(
        r.stdout
            .ends_with("3\tkept\tpassword1\t0\t00:00:00:00:00:00\n0\n"),
        "{r:?}"
    );
}

/// A mistake in `[wifi]` stops the run before the script, naming the file, line and key.
#[test]
fn a_bad_wifi_section_names_file_line_and_key() {
    let r = run_with_project(
        "print('ran')\n",
        "[wifi]\nsaved = { ssid = \"home\" }\n[[wifi.event]]\nat = 1000\nkind = \"drop\"\nresaon = 8\n",
        &[],
    );
    assert_eq!(r.status, 2, "{r:?}");
    assert_eq!(r.stdout, "");
    for part in ["nodemcu-sim.toml", "line 6", "resaon"] {
        assert!(r.stderr.contains(part), "{part}: {r:?}");
    }
}

/// A handler that never gives up keeps the run going, as the board would retry for ever;
/// `--timeout` ends it.
#[test]
fn endless_retries_end_at_the_timeout() {
    let r = run_with_project(
        "wifi.eventmon.register(wifi.eventmon.STA_DISCONNECTED, function(T) print(math.floor(tmr.now() / 1000), T.reason) end)\n",
        "[wifi]\nsaved = { ssid = \"gone\" }\n[[wifi.ap]]\nssid = \"other\"\n",
        &["--timeout", "7000"],
    );
    assert_eq!(r.status, 124, "{r:?}");
    assert_eq!(r.stdout, "2000\t201\n4000\t201\n6000\t201\n", "{r:?}");
}
