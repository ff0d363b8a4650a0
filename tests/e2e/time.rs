//! Time on the device: `rtctime` on device time, `rtcmem` across resets, `cron` through a virtual
//! day, and `sntp` against a real NTP responder on loopback.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support::run_lua;

const VT: &str = "--virtual-time";
/// 2026-01-01 00:00:00 UTC, a Thursday.
const T: u32 = 1_767_225_600;

fn ok(script: &str, args: &[&str]) -> String {
    let r = run_lua(script, args);
    assert_eq!(r.status, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r.stdout
}

/// The script's own lines: what a restarted device prints, without its boot banners.
fn lines_with(out: &str, prefix: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with(prefix))
        .map(String::from)
        .collect()
}

#[test]
fn rtctime_reads_zero_until_set_then_moves_with_device_time() {
    let out = ok(
        &format!(
            r#"
print(rtctime.get())
rtctime.set({T}, 250000)
tmr.create():alarm(90000, tmr.ALARM_SINGLE, function()
  local s, u, r = rtctime.get()
  local t = rtctime.epoch2cal(s)
  print(s - {T}, math.floor(u / 1000), r, t.year, t.mon, t.day, t.hour, t.min, t.sec, t.yday, t.wday)
end)
"#
        ),
        &[VT],
    );
    assert_eq!(out, "0\t0\t0\n90\t250\t0\t2026\t1\t1\t0\t1\t30\t1\t5\n");
}

#[test]
fn rtctime_documentation_examples() {
    // The docs' set/get/epoch2cal/adjust_delta examples (the adjust_delta one names a variable
    // `end`, which Lua does not take: `stop` here). The set example's comment says 18:29:49;
    // the timestamp is 08:29:49 UTC, which is what the firmware prints.
    let out = ok(
        r#"
-- Set time to 2015 July 9, 18:29:49
rtctime.set(1436430589, 0)
tm = rtctime.epoch2cal(rtctime.get())
print(string.format("%04d/%02d/%02d %02d:%02d:%02d", tm["year"], tm["mon"], tm["day"], tm["hour"], tm["min"], tm["sec"]))
sec, usec, rate = rtctime.get()
print(sec, usec < 1000, rate)
local start = tmr.now()
tmr.delay(1000)
local stop = tmr.now()
local d = rtctime.adjust_delta(stop - start)
print ('Duration', d >= 1000 and d < 1100)
"#,
        &[VT],
    );
    assert_eq!(
        out,
        "2015/07/09 08:29:49\n1436430589\ttrue\t0\nDuration\ttrue\n"
    );
}

#[test]
fn rtctime_argument_checks_and_rate_are_the_firmwares() {
    let out = ok(
        r#"
print(pcall(rtctime.epoch2cal, -1))
print(pcall(rtctime.dsleep_aligned, 1000000, 0))
print(pcall(rtctime.dsleep, 1000, 5))
rtctime.set(nil, nil, 4295)
print(rtctime.get())
print(rtctime.adjust_delta(1000000))
local t = rtctime.epoch2cal(951782400)
print(t.year, t.mon, t.day, t.yday, t.wday)
"#,
        &[VT],
    );
    assert_eq!(
        out,
        "false\tbad argument #1 to '?' (wrong arg range)\n\
         false\ttime not available, unable to align\n\
         false\tunknown sleep option\n\
         0\t0\t4295\n\
         1000001\n\
         2000\t2\t29\t60\t3\n"
    );
}

#[test]
fn each_generation_has_its_own_time_modules() {
    let probe = "print(type(rtctime), type(rtcmem), type(sntp), type(cron), \
                 type(rtctime.adjust_delta), type(sntp.setoffset), select('#', rtctime.get()))";
    let generation = |extra: &[&str]| {
        let mut args = vec![VT];
        args.extend_from_slice(extra);
        ok(probe, &args)
    };
    assert_eq!(
        generation(&["--firmware", "1.5"]),
        "table\ttable\ttable\tnil\tnil\tnil\t2\n"
    );
    assert_eq!(
        generation(&["--firmware", "2.2"]),
        "table\ttable\ttable\ttable\tfunction\tfunction\t3\n"
    );
    assert_eq!(
        generation(&[]),
        "table\ttable\ttable\ttable\tfunction\tfunction\t3\n"
    );
    let esp32 = ok(
        "print(type(rtctime), type(rtcmem), type(sntp), type(cron))",
        &[VT, "--target", "esp32"],
    );
    assert_eq!(esp32, "nil\ttable\tnil\tnil\n");
}

#[test]
fn rtcmem_reads_and_writes_words_within_its_128_slots() {
    let out = ok(
        r#"
rtcmem.write32(10, 1, 0xFFFFFFFF, -2)
print(rtcmem.read32(10, 3))
print(select('#', rtcmem.read32(126, 5)), select('#', rtcmem.read32(128)), select('#', rtcmem.read32(-1)))
print(select('#', rtcmem.read32(0, nil)), select('#', rtcmem.read32(0, 0)))
print(pcall(rtcmem.write32, 127, 1, 2))
rtcmem.write32(127, 7)
print(rtcmem.read32(127))
"#,
        &[VT],
    );
    assert_eq!(
        out,
        "1\t-1\t-2\n2\t0\t0\n0\t0\nfalse\tbad argument #1 to '?' (RTC mem would overrun)\n7\n"
    );
}

#[test]
fn rtcmem_keeps_a_counter_across_restarts_while_rtctime_is_lost() {
    let script = r#"
local magic, n = rtcmem.read32(0, 2)
if magic ~= 0x4E4F4445 then rtcmem.write32(0, 0x4E4F4445, 0) n = 0 end
n = n + 1
rtcmem.write32(1, n)
print("boot", n, (rtctime.get()))
rtctime.set(1767225600)
if n < 4 then node.restart() end
"#;
    let r = run_lua(script, &[VT, "--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        lines_with(&r.stdout, "boot"),
        ["boot\t1\t0", "boot\t2\t0", "boot\t3\t0", "boot\t4\t0"]
    );
}

#[test]
fn rtctime_dsleep_keeps_the_time_and_wakes_after_the_sleep() {
    let script = format!(
        r#"
local n = rtcmem.read32(5) == 77 and rtcmem.read32(6) or 0
rtcmem.write32(5, 77, n + 1)
local s = rtctime.get()
print("boot", n, s == 0 and 0 or s - {T}, (node.bootreason()), select(2, node.bootreason()))
if n == 0 then rtctime.set({T}) pcall(rtctime.dsleep, 30000000) print("boot not reached")
elseif n == 1 then tmr.create():alarm(5, 0, function()
  rtctime.dsleep_aligned(60000000, 10000000) print("boot not reached either") end)
elseif n == 2 then node.dsleep(1000000) end
"#
    );
    let r = run_lua(&script, &[VT, "--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        lines_with(&r.stdout, "boot"),
        [
            "boot\t0\t0\t1\t0",
            "boot\t1\t30\t2\t5",
            "boot\t2\t60\t2\t5",
            // node.dsleep does not keep rtctime's time.
            "boot\t3\t0\t2\t5",
        ]
    );
}

#[test]
fn cron_runs_a_virtual_day_at_the_minutes_its_masks_name() {
    let script = format!(
        r#"
rtctime.set({T})
local function at(tag)
  return function()
    local t = rtctime.epoch2cal((rtctime.get()))
    print(string.format("%d %02d:%02d:%02d %s", t.day, t.hour, t.min, t.sec, tag))
  end
end
cron.schedule("*/15 * * * *", at("quarter"))
cron.schedule("0 12 * * *", at("noon"))
cron.schedule("0 0 2 * *", function() cron.reset() end)
"#
    );
    let r = run_lua(&script, &[VT]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(30), "{:?}", r.elapsed);
    let mut want = Vec::new();
    for q in 0..=96 {
        let (day, h, m) = (1 + q / 96, (q / 4) % 24, (q % 4) * 15);
        // The firmware's timer first looks at the clock one second after boot.
        let s = if q == 0 { 1 } else { 0 };
        want.push(format!("{day} {h:02}:{m:02}:{s:02} quarter"));
        if (h, m) == (12, 0) {
            want.push(format!("{day} 12:00:00 noon"));
        }
    }
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), want);
}

#[test]
fn cron_waits_for_rtctime_and_entries_can_be_rescheduled() {
    let script = format!(
        r#"
local e = cron.schedule("* * * * *", function(e) print("early", (rtctime.get()) - {T}) end)
tmr.create():alarm(150500, tmr.ALARM_SINGLE, function()
  rtctime.set({T} + 30)
  e:handler(function(e) print("minute", (rtctime.get()) - {T}) end)
end)
tmr.create():alarm(300000, tmr.ALARM_SINGLE, function()
  e:schedule("*/2 * * * *")
  print(pcall(e.schedule, e, "* * *"))
  print(pcall(e.handler, e, 1))
end)
tmr.create():alarm(600000, tmr.ALARM_SINGLE, function() e:unschedule() end)
local ok, err = pcall(function() cron.schedule("1-5 * * * *", print) end)
print(err)
print(pcall(cron.schedule, "*/0 * * * *", print))
print(pcall(cron.schedule, "* * * * * *", print))
print(pcall(cron.schedule, "60 * * * *", print))
print(pcall(cron.schedule, "* * * * *"))
"#
    );
    let out = ok(&script, &[VT]);
    assert_eq!(
        out,
        "init.lua:13: invalid spec (separator @1)\n\
         false\tinvalid spec (each 0)\n\
         false\tinvalid spec (trailing @10)\n\
         false\tinvalid spec (val 60 out of range 0..59)\n\
         false\tbad argument #2 to '?' (function expected, got no value)\n\
         minute\t30\n\
         minute\t60\n\
         minute\t120\n\
         false\tinvalid spec (separator @5)\n\
         false\tbad argument #2 to '?' (function expected, got number)\n\
         minute\t240\n\
         minute\t360\n"
    );
}

// ---- sntp against a responder on loopback ----

/// An NTP server on 127.0.0.1 that answers every request with `reply(request's transmit time)`.
pub(crate) struct Responder {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Answers with the time `at(client's transmit seconds)`, stratum 2, root delay 1/32 s,
    /// root dispersion 1/64 s.
    pub(crate) fn start(at: impl Fn(u64) -> u64 + Send + 'static) -> Responder {
        Responder::answering(0, *b"TEST", at)
    }

    /// Answers with leap indicator `li` and reference id `refid` (a kiss of death is 3, "DENY").
    fn answering(li: u8, refid: [u8; 4], at: impl Fn(u64) -> u64 + Send + 'static) -> Responder {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the NTP responder");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !halt.load(Ordering::Relaxed) {
                let Ok((len, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if len < 48 || buf[0] & 7 != 3 {
                    continue;
                }
                n.fetch_add(1, Ordering::SeqCst);
                let origin = u64::from_be_bytes(buf[40..48].try_into().unwrap());
                let now = at(origin);
                let mut p = [0u8; 48];
                p[0] = (li << 6) | (4 << 3) | 4; // version 4, server
                p[1] = 2;
                p[4..8].copy_from_slice(&0x0000_0800u32.to_be_bytes());
                p[8..12].copy_from_slice(&0x0000_0400u32.to_be_bytes());
                p[12..16].copy_from_slice(&refid);
                p[16..24].copy_from_slice(&now.to_be_bytes());
                p[24..32].copy_from_slice(&origin.to_be_bytes());
                p[32..40].copy_from_slice(&now.to_be_bytes());
                p[40..48].copy_from_slice(&now.to_be_bytes());
                let _ = sock.send_to(&p, from);
            }
        });
        Responder {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// A server whose clock reads `T` (as NTP time) whatever it is asked.
    fn fixed() -> Responder {
        Responder::start(|_| ntp(T))
    }

    pub(crate) fn port_arg(&self) -> String {
        self.port.to_string()
    }

    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Unix seconds as an NTP timestamp.
pub(crate) fn ntp(unix: u32) -> u64 {
    u64::from(unix + 2_208_988_800) << 32
}

/// A loopback UDP port with nobody listening.
fn dead_port() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port().to_string()
}

#[test]
fn sntp_sync_sets_rtctime_and_reports_the_best_answer() {
    let ntpd = Responder::fixed();
    let script = format!(
        r#"
sntp.sync("127.0.0.1", function(sec, usec, server, info)
  print("synced", sec - {T}, usec < 1000000, server)
  print(info.stratum, info.leap, info.pending_leap, info.root_delay_us, info.root_dispersion_us,
    type(info.offset_s), info.offset_us, info.root_maxerr_us >= 31250)
  print("rtctime", (rtctime.get()) - {T})
end, function(code, text) print("error", code, text) end)
print(pcall(sntp.sync))
"#
    );
    let out = ok(&script, &[VT, "--ntp-port", &ntpd.port_arg()]);
    assert_eq!(
        out,
        "false\tsync in progress\n\
         synced\t0\ttrue\t127.0.0.1\n\
         2\t0\t0\t31250\t15625\tnumber\tnil\ttrue\n\
         rtctime\t0\n"
    );
    // One server: five rounds of one request each, as the firmware asks.
    assert_eq!(ntpd.requests(), 5);
}

#[test]
fn sntp_resolves_names_and_takes_a_list() {
    let ntpd = Responder::fixed();
    let script = format!(
        r#"
sntp.sync({{"ntp.test", "127.0.0.1"}}, function(sec, usec, server)
  print("synced", sec - {T}, server)
end, function(code, text) print("error", code, text) end)
"#
    );
    let out = ok(
        &script,
        &[
            VT,
            "--ntp-port",
            &ntpd.port_arg(),
            "--resolve",
            "ntp.test=127.0.0.1",
        ],
    );
    assert_eq!(out, "synced\t0\t127.0.0.1\n");
    // Two servers: at most 8 requests, so four rounds.
    assert_eq!(ntpd.requests(), 8);
}

#[test]
fn sntp_reports_timeouts_and_bad_names_to_the_error_callback() {
    let script = r#"
print(pcall(sntp.sync, string.rep("x", 129)))
print(pcall(sntp.sync, {}))
print(pcall(sntp.sync, {"127.0.0.1", true}))
sntp.sync("", print, function(code, text) print("error", code, "[" .. text .. "]") end)
sntp.sync("127.0.0.1", print, function(code, text)
  print("error", code, text, tmr.now() >= 5000000, (rtctime.get()))
end)
"#;
    let r = run_lua(script, &[VT, "--ntp-port", &dead_port()]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "false\tneed <128 hostname\n\
         false\tbad argument #-1 to 'sync' (string expected, got nil)\n\
         false\tbad argument #-1 to 'sync' (string expected, got boolean)\n\
         error\t1\t[]\nerror\t4\tnil\ttrue\t0\n"
    );
}

#[test]
fn sntp_autorepeat_syncs_again_every_1000_seconds() {
    // The first answer sets the clock; later ones agree with the device, as a good server would.
    let ntpd = Responder::start(|origin| origin.max(ntp(T)));
    let script = format!(
        r#"
local n = 0
sntp.sync("127.0.0.1", function(sec)
  n = n + 1
  print("sync", n, math.floor((sec - {T} + 500) / 1000), math.floor(tmr.now() / 1000000000))
end, nil, 1)
"#
    );
    let r = run_lua(
        &script,
        &[VT, "--ntp-port", &ntpd.port_arg(), "--timeout", "2500000"],
    );
    assert_eq!(r.status, 124, "{}", r.stderr);
    assert_eq!(r.stdout, "sync\t1\t0\t0\nsync\t2\t1\t1\nsync\t3\t2\t2\n");
    assert_eq!(ntpd.requests(), 15);
}

#[test]
fn sntp_setoffset_and_getoffset() {
    let out = ok(
        "sntp.setoffset(2) print(sntp.getoffset()) sntp.setoffset(-1) print(sntp.getoffset()) \
         print(pcall(sntp.setoffset))",
        &[VT],
    );
    assert_eq!(
        out,
        "2\n255\nfalse\tbad argument #1 to '?' (number expected, got no value)\n"
    );
}

#[test]
fn sntp_of_firmware_1_5_takes_the_first_answer() {
    let ntpd = Responder::fixed();
    let script = format!(
        r#"
sntp.sync("127.0.0.1", function(...)
  local sec, usec, server = ...
  print("synced", select('#', ...), sec - {T}, server)
end)
print(pcall(sntp.sync, {{"127.0.0.1"}}))
"#
    );
    let out = ok(
        &script,
        &[VT, "--firmware", "1.5", "--ntp-port", &ntpd.port_arg()],
    );
    assert_eq!(out, "false\tsync in progress\nsynced\t3\t0\t127.0.0.1\n");
    assert_eq!(ntpd.requests(), 1);
}

#[test]
fn sntp_stops_asking_a_server_that_sends_a_kiss_of_death() {
    let ntpd = Responder::answering(3, *b"DENY", |_| ntp(T));
    let script = r#"
sntp.sync("127.0.0.1", print, function(code, text)
  print("error", code, text, math.floor(tmr.now() / 1000000), (rtctime.get()))
end)
"#;
    let out = ok(script, &[VT, "--ntp-port", &ntpd.port_arg()]);
    // Asked once; the rest of the sync skips it, and no answer means the timeout error.
    assert_eq!(out, "error\t4\tnil\t1\t0\n");
    assert_eq!(ntpd.requests(), 1);
}

#[test]
fn sntp_a_second_sync_reports_a_small_offset_in_microseconds() {
    let ntpd = Responder::start(|origin| origin.max(ntp(T)));
    let script = format!(
        r#"
local function again(sec, usec, server, info)
  print("second", sec - {T}, type(info.offset_us), info.offset_s, math.abs(info.offset_us) < 100000)
end
sntp.sync("127.0.0.1", function(sec, usec, server, info)
  print("first", sec - {T}, type(info.offset_s), info.offset_us)
  sntp.sync(nil, again)
end)
"#
    );
    let out = ok(&script, &[VT, "--ntp-port", &ntpd.port_arg()]);
    assert_eq!(out, "first\t0\tnumber\tnil\nsecond\t0\tnumber\tnil\ttrue\n");
    assert_eq!(ntpd.requests(), 10);
}

#[test]
fn cron_callback_errors_go_to_node_setonerror() {
    let script = format!(
        r#"
node.setonerror(function(msg) print("onerror", (msg:match("^[^\n]*"))) cron.reset() end)
rtctime.set({T})
cron.schedule("* * * * *", function(e) error("boom") end)
"#
    );
    let out = ok(&script, &[VT]);
    assert_eq!(out, "onerror\tinit.lua:4: boom\n");
}

#[test]
fn cron_keeps_time_past_2038_and_odd_numbers_raise_no_crash() {
    let script = r#"
rtctime.set(4000000000)
cron.schedule("* * * * *", function()
  local t = rtctime.epoch2cal(2147483647)
  print("tick", t.year, t.mon, t.day)
  cron.reset()
end)
print(pcall(rtctime.epoch2cal, 1e300))
print(select('#', rtcmem.read32(1e300)), pcall(rtcmem.write32, 2^31, 1))
rtcmem.write32(-2^31, 1, 2)
"#;
    let out = ok(script, &[VT]);
    assert_eq!(
        out,
        "false\tbad argument #1 to '?' (wrong arg range)\n\
         0\ttrue\n\
         tick\t2038\t1\t19\n"
    );
}

#[test]
fn a_cron_with_no_entries_left_lets_the_run_end_at_once() {
    // Real time: the run must not wait for the next minute boundary once the entry is gone.
    let r = run_lua(
        "rtctime.set(1767225630) local e = cron.schedule('* * * * *', print) \
         tmr.create():alarm(1500, tmr.ALARM_SINGLE, function() e:unschedule() print('done') end)",
        &[],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.ends_with("done\n"), "{}", r.stdout);
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}

#[test]
fn sntp_without_servers_asks_the_nodemcu_pool() {
    let ntpd = Responder::fixed();
    let port = ntpd.port_arg();
    let mut args = vec![VT, "--ntp-port", &port];
    let pins: Vec<String> = (0..4)
        .map(|i| format!("{i}.nodemcu.pool.ntp.org=127.0.0.1"))
        .collect();
    for p in &pins {
        args.extend(["--resolve", p.as_str()]);
    }
    let script = format!(
        r#"sntp.sync(nil, function(sec, usec, server) print("synced", sec - {T}, server) end,
  function(code, text) print("error", code, text) end)"#
    );
    assert_eq!(ok(&script, &args), "synced\t0\t127.0.0.1\n");
    // Four servers: two rounds make the firmware's cap of 8 requests.
    assert_eq!(ntpd.requests(), 8);
}

#[test]
fn rtctime_dsleep_on_a_real_clock_sleeps_before_booting_again() {
    let script = format!(
        r#"
local s = rtctime.get()
print("boot", s == 0 and "none" or s - {T})
if s == 0 then rtctime.set({T}) rtctime.dsleep(1500000) end
"#
    );
    let r = run_lua(&script, &["--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(lines_with(&r.stdout, "boot"), ["boot\tnone", "boot\t1"]);
    assert!(r.elapsed >= Duration::from_millis(1500), "{:?}", r.elapsed);
}

#[test]
fn the_clock_example_runs_a_day() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/examples/clock.lua"
    );
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.args(["run", example, VT]);
    let r = crate::support::run_cmd(cmd, Duration::from_secs(60));
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "boot number\t1\n\
         2026-01-01 00:00\tevery six hours\n\
         2026-01-01 06:00\tevery six hours\n\
         2026-01-01 12:00\tevery six hours\n\
         2026-01-01 12:30\tlunch\n\
         2026-01-01 18:00\tevery six hours\n\
         2026-01-02 00:00\tevery six hours\n\
         2026-01-02 00:00\ta day has passed\n"
    );
}

#[test]
fn the_project_file_names_the_ntp_port() {
    let ntpd = Responder::fixed();
    let flash = crate::support::Flash::new(&[
        (
            "init.lua",
            &format!("sntp.sync('127.0.0.1', function(sec) print('synced', sec - {T}) end, print)"),
        ),
        (
            "nodemcu-sim.toml",
            &format!("virtual-time = true\nntp-port = {}\n", ntpd.port),
        ),
    ]);
    let r = flash.run("init.lua", &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "synced\t0\n");
}
