//! `time` under `--target esp32`: the system clock, calendars, time zones with daylight time, and
//! SNTP against a real NTP responder on loopback (the one `time.rs` uses for `sntp`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::run_lua;
use crate::time::{Responder, ntp};

/// 2026-01-01 00:00:00 UTC.
const T: u32 = 1_767_225_600;
/// What the responder says from its second answer on.
const T2: u32 = T + 100_000;

fn esp32(script: &str, extra: &[&str]) -> String {
    let mut args = vec!["--target", "esp32", "--virtual-time"];
    args.extend_from_slice(extra);
    let r = run_lua(script, &args);
    assert_eq!(r.status, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r.stdout
}

/// `x` as a script prints a number the firmware pushed with `lua_pushnumber`.
fn float(x: i64) -> String {
    if cfg!(feature = "lua53") {
        format!("{x}.0")
    } else {
        x.to_string()
    }
}

#[test]
fn time_is_an_esp32_module_and_absent_on_the_esp8266() {
    let script = "print(type(time), type(rtctime), type(sntp), type(cron))\n\
                  if time then local k = {} for n in pairs(time) do k[#k + 1] = n end \
                  table.sort(k) print(table.concat(k, ' ')) end";
    assert_eq!(
        esp32(script, &[]),
        "table\tnil\tnil\tnil\n\
         cal2epoch epoch2cal get getlocal initntp ntpenabled ntpstop set settimezone\n"
    );
    let r = run_lua(script, &["--virtual-time"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "nil\ttable\ttable\ttable\n");
}

#[test]
fn the_documented_examples_print_what_the_docs_say() {
    let script = r#"calendar={}
calendar.year = 2018-11-20
calendar.mon = 11
calendar.day = 20
calendar.hour = 1
calendar.min = 40
calendar.sec = 50

timestamp = time.cal2epoch(calendar)
time.set(timestamp)
print(timestamp, (time.get()))
--set time to 2018-11-20 01:40:50
time.set(1542678050)
sec, usec = time.get()
print(sec, usec < 1000)
--set timezone to Eastern Standard Time
time.settimezone("EST+5")
localTime = time.getlocal()
print(string.format("%04d-%02d-%02d %02d:%02d:%02d DST:%d", localTime["year"], localTime["mon"], localTime["day"], localTime["hour"], localTime["min"], localTime["sec"], localTime["dst"]))
--Gets current time calendar format, no locale adjustment
time = time.epoch2cal(time.get())
print(string.format("%04d-%02d-%02d %02d:%02d:%02d DST:%d", time["year"], time["mon"], time["day"], time["hour"], time["min"], time["sec"], time["dst"]))
"#;
    // The docs' calendar example says `year = 2018-11-20`, which Lua reads as 1987.
    assert_eq!(
        esp32(script, &[]),
        format!(
            "{}\t564370850\n\
             1542678050\ttrue\n\
             2018-11-19 20:40:50 DST:0\n\
             2018-11-20 01:40:50 DST:0\n",
            float(564_370_850)
        )
    );
}

#[test]
fn set_and_get_step_the_clock_that_then_moves_with_device_time() {
    let script = r#"local s, us = time.get()
print(s, us >= 0 and us < 1000000)
time.set(1000, 250)
s, us = time.get()
print(s, us - 250 < 100)
time.set(2000.9, 1500000)
s, us = time.get()
print(s, us >= 500000 and us < 500100)
time.set("3000")
tmr.create():alarm(1500, tmr.ALARM_SINGLE, function()
  local s, us = time.get()
  print(s, us >= 500000 and us < 501000)
  print(time.cal2epoch({year = 1970, day = 1}))
end)
"#;
    assert_eq!(
        esp32(script, &[]),
        format!(
            "0\ttrue\n1000\ttrue\n2001\ttrue\n3001\ttrue\n{}\n",
            float(0)
        )
    );
}

#[test]
fn epoch2cal_and_cal2epoch_agree_on_known_dates_and_round_trip() {
    let script = r#"local function show(t)
  return string.format("%d-%02d-%02d %02d:%02d:%02d yday %d wday %d dst %d",
    t.year, t.mon, t.day, t.hour, t.min, t.sec, t.yday, t.wday, t.dst)
end
for _, s in ipairs({0, 951782400, 951868800, 1709251199, 2147483647}) do
  local c = time.epoch2cal(s)
  print(s, show(c), time.cal2epoch(c) == s)
end
local bad = 0
for s = 0, 2147483647, 86399 * 37 do
  if time.cal2epoch(time.epoch2cal(s)) ~= s then bad = bad + 1 end
end
print("round trips failed", bad)
for _, c in ipairs({{year = 2000}, {year = 2024, mon = 13, day = 1},
    {year = 2024, mon = 3, day = 0, hour = 24}, {}}) do
  print(string.format("%d", time.cal2epoch(c)))
end
"#;
    assert_eq!(
        esp32(script, &[]),
        "0\t1970-01-01 00:00:00 yday 1 wday 5 dst 0\ttrue\n\
         951782400\t2000-02-29 00:00:00 yday 60 wday 3 dst 0\ttrue\n\
         951868800\t2000-03-01 00:00:00 yday 61 wday 4 dst 0\ttrue\n\
         1709251199\t2024-02-29 23:59:59 yday 60 wday 5 dst 0\ttrue\n\
         2147483647\t2038-01-19 03:14:07 yday 19 wday 3 dst 0\ttrue\n\
         round trips failed\t0\n\
         946598400\n1735689600\n1709251200\n-2209075200\n"
    );
}

#[test]
fn getlocal_follows_the_zone_across_daylight_changes() {
    let script = r#"local function show()
  local t = time.getlocal()
  print(string.format("%d-%02d-%02d %02d:%02d:%02d dst %d yday %d wday %d",
    t.year, t.mon, t.day, t.hour, t.min, t.sec, t.dst, t.yday, t.wday))
end
time.set(1711846799) -- 2024-03-31 00:59:59 UTC
time.settimezone("CET-1CEST,M3.5.0,M10.5.0/3") show()
time.settimezone("EST+5") show()
time.settimezone("CET-1CEST,M3.5.0,M10.5.0/3")
tmr.create():alarm(2000, tmr.ALARM_SINGLE, function()
  show()
  time.set(1762063199) -- 2025-11-02 05:59:59 UTC
  time.settimezone("EST5EDT,M3.2.0,M11.1.0") show()
  tmr.create():alarm(2000, tmr.ALARM_SINGLE, function()
    show()
    -- 01:30 happens twice that night; cal2epoch reads it as standard time.
    print(string.format("%d", time.cal2epoch({year = 2025, mon = 11, day = 2, hour = 1, min = 30})))
    time.settimezone("nonsense") show()
  end)
end)
"#;
    assert_eq!(
        esp32(script, &[]),
        "2024-03-31 01:59:59 dst 0 yday 91 wday 1\n\
         2024-03-30 19:59:59 dst 0 yday 90 wday 7\n\
         2024-03-31 03:00:01 dst 1 yday 91 wday 1\n\
         2025-11-02 01:59:59 dst 1 yday 306 wday 1\n\
         2025-11-02 01:00:01 dst 0 yday 306 wday 1\n\
         1762065000\n\
         2025-11-02 06:00:01 dst 0 yday 306 wday 1\n"
    );
}

#[test]
fn initntp_sets_the_clock_from_a_loopback_server_and_polls_it_hourly() {
    let asked = Arc::new(AtomicUsize::new(0));
    let n = asked.clone();
    let ntpd = Responder::start(move |_| {
        // The first answer says T, later ones T2: the hourly poll must step the clock again.
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            ntp(T)
        } else {
            ntp(T2)
        }
    });
    let script = format!(
        r#"print(time.ntpenabled())
time.initntp("127.0.0.1")
print(time.ntpenabled())
tmr.create():alarm(2000, tmr.ALARM_SINGLE, function()
  print("first", (time.get()) - {T})
end)
tmr.create():alarm(3700000, tmr.ALARM_SINGLE, function()
  print("second", (time.get()) - {T2})
  time.ntpstop()
  print(time.ntpenabled())
end)
"#
    );
    let out = esp32(&script, &["--ntp-port", &ntpd.port_arg()]);
    assert_eq!(out, "false\ntrue\nfirst\t1\nsecond\t99\nfalse\n");
    assert_eq!(ntpd.requests(), 2);
}

#[test]
fn initntp_example_resolves_its_server_and_ntpstop_stops_polling() {
    let ntpd = Responder::start(|_| ntp(T));
    // The docs' example, with the name pinned to the loopback responder.
    let script = format!(
        r#"time.initntp("pool.ntp.org")
tmr.create():alarm(2000, tmr.ALARM_SINGLE, function()
  print((time.get()) - {T}, time.ntpenabled())
  time.ntpstop()
  print(time.ntpenabled())
  time.set(5)
end)
tmr.create():alarm(5000000, tmr.ALARM_SINGLE, function()
  print((time.get()) < 1000000)
end)
"#
    );
    let out = esp32(
        &script,
        &[
            "--ntp-port",
            &ntpd.port_arg(),
            "--resolve",
            "pool.ntp.org=127.0.0.1",
        ],
    );
    // Stopped: no poll came an hour later to set the clock back to the server's time.
    assert_eq!(out, "1\ttrue\nfalse\ntrue\n");
    assert_eq!(ntpd.requests(), 1);
}

#[test]
fn initntp_without_a_server_asks_pool_ntp_org() {
    let ntpd = Responder::start(|_| ntp(T));
    let script = format!(
        "time.initntp()\n\
         tmr.create():alarm(2000, tmr.ALARM_SINGLE, function() \
         print((time.get()) - {T}) time.ntpstop() end)"
    );
    let out = esp32(
        &script,
        &[
            "--ntp-port",
            &ntpd.port_arg(),
            "--resolve",
            "pool.ntp.org=127.0.0.1",
        ],
    );
    assert_eq!(out, "1\n");
    assert_eq!(ntpd.requests(), 1);
}

#[test]
fn bad_arguments_raise_the_firmwares_errors() {
    let script = r#"local function try(f) print(pcall(f)) end
try(function() time.set() end)
try(function() time.set("soon") end)
try(function() time.epoch2cal() end)
try(function() time.epoch2cal(-1) end)
try(function() time.cal2epoch() end)
try(function() time.cal2epoch(5) end)
try(function() time.cal2epoch({year = "x"}) end)
try(function() time.cal2epoch({year = 2000, sec = {}}) end)
try(function() time.settimezone() end)
try(function() time.settimezone({}) end)
try(function() time.initntp(true) end)
try(function() return time.epoch2cal(86400.5).day end)
"#;
    let fraction = if cfg!(feature = "lua53") {
        "false\tinit.lua:13: bad argument #1 to 'epoch2cal' (number has no integer representation)\n"
    } else {
        "true\t2\n"
    };
    assert_eq!(
        esp32(script, &[]),
        format!(
            "false\tinit.lua:2: bad argument #1 to 'set' (number expected, got no value)\n\
             false\tinit.lua:3: bad argument #1 to 'set' (number expected, got string)\n\
             false\tinit.lua:4: bad argument #1 to 'epoch2cal' (number expected, got no value)\n\
             false\tinit.lua:5: bad argument #1 to 'epoch2cal' (wrong arg range)\n\
             false\tinit.lua:6: bad argument #1 to 'cal2epoch' (table expected, got no value)\n\
             false\tinit.lua:7: bad argument #1 to 'cal2epoch' (table expected, got number)\n\
             false\tinit.lua:8: bad argument #-1 to 'cal2epoch' (number expected, got string)\n\
             false\tinit.lua:9: bad argument #-1 to 'cal2epoch' (number expected, got table)\n\
             false\tinit.lua:10: bad argument #1 to 'settimezone' (string expected, got no value)\n\
             false\tinit.lua:11: bad argument #1 to 'settimezone' (string expected, got table)\n\
             false\tinit.lua:12: bad argument #1 to 'initntp' (string expected, got boolean)\n\
             {fraction}"
        )
    );
}

/// A responder that answers its `n`th request (from 0) with stratum `stratum(n)`, time `T`.
fn kod_then_answer(stratum: fn(usize) -> u8) -> (u16, Arc<AtomicUsize>) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    let asked = Arc::new(AtomicUsize::new(0));
    let n = asked.clone();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(50)))
        .expect("timeout");
    // The thread stops once the test lets go of its counter.
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while Arc::strong_count(&n) > 1 {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if len < 48 || buf[0] & 7 != 3 {
                continue;
            }
            let i = n.fetch_add(1, Ordering::SeqCst);
            let mut p = [0u8; 48];
            p[0] = (4 << 3) | 4;
            p[1] = stratum(i);
            p[40..48].copy_from_slice(&ntp(T).to_be_bytes());
            let _ = sock.send_to(&p, from);
        }
    });
    (port, asked)
}

#[test]
fn a_kiss_of_death_means_a_retry_15_seconds_later() {
    let (port, asked) = kod_then_answer(|n| if n == 0 { 0 } else { 2 });
    let script = format!(
        r#"time.initntp("127.0.0.1")
tmr.create():alarm(10000, tmr.ALARM_SINGLE, function() print((time.get()) < 1000) end)
tmr.create():alarm(20000, tmr.ALARM_SINGLE, function()
  print((time.get()) - {T})
  time.ntpstop()
end)
"#
    );
    let out = esp32(&script, &["--ntp-port", &port.to_string()]);
    // Stratum 0 set nothing; the retry at 15 s did, 5 s before the second alarm.
    assert_eq!(out, "true\n4\n");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[test]
fn the_clock_survives_a_restart_but_not_the_zone() {
    // The flag file stops a device that lost its time from restarting for ever.
    let script = r#"local s = time.get()
if s < 1000000 and not file.exists("restarted") then
  file.putcontents("restarted", "1")
  time.set(1700000000)
  time.settimezone("EST+5")
  print("boot", s, time.getlocal().hour)
  node.restart()
else
  print("boot", s >= 1700000000 and s - 1700000000 < 5, time.getlocal().hour)
end
"#;
    let r = run_lua(
        script,
        &[
            "--target",
            "esp32",
            "--virtual-time",
            "--on-reset",
            "restart",
        ],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 1700000000 is 22:13:20 UTC; the first boot's zone is gone after the reset.
    let boots: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("boot")).collect();
    assert_eq!(boots, ["boot\t0\t17", "boot\ttrue\t22"]);
}
