//! `node` per firmware generation and chip, and the loader and traceback details real projects
//! trip over: `#!` first lines, `collectgarbage("count")` against `node.heap()`, and tracebacks
//! that show the firmware's frames.

use crate::support::{Flash, run_lua};

/// The names in `node`, sorted, one line.
const NAMES: &str = "local ks = {} for k in pairs(node) do ks[#ks + 1] = k end\n\
                     table.sort(ks) print(table.concat(ks, ' '))\n";

fn run_fw(script: &str, args: &[&str]) -> String {
    let r = run_lua(script, args);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    r.stdout
}

#[test]
fn each_generation_has_its_own_functions_and_nothing_else() {
    let egc = if cfg!(feature = "lua53") { "" } else { "egc " };
    assert_eq!(
        run_fw(NAMES, &["--firmware", "1.5"]),
        "CPU160MHZ CPU80MHZ bootreason chipid compile dsleep egc flashid flashsize heap info \
         input output restart restore setcpufreq stripdebug task\n"
    );
    assert_eq!(
        run_fw(NAMES, &["--firmware", "2.2"]),
        "CPU160MHZ CPU80MHZ bootreason chipid compile dsleep dsleepMax egc flashid flashindex \
         flashreload flashsize getcpufreq heap info input output random restart restore setcpufreq \
         sleep stripdebug task\n"
    );
    assert_eq!(
        run_fw(NAMES, &["--firmware", "3.0"]),
        format!(
            "CPU160MHZ CPU80MHZ LFS bootreason chipid compile dsleep dsleepMax {egc}flashid \
             flashindex flashreload flashsize getcpufreq getpartitiontable heap info input output \
             random restart restore setcpufreq setonerror setpartitiontable sleep startup \
             startupcommand stripdebug task\n"
        )
    );
    assert_eq!(
        run_fw(NAMES, &["--target", "esp32"]),
        format!(
            "LFS bootreason chipid chipmodel compile dsleep {egc}flashindex flashreload heap info \
             input osprint output restart setonerror sleep stripdebug task uptime wakeup\n"
        )
    );
}

#[test]
fn info_gives_each_generations_version_and_3_0_warns_about_the_legacy_form() {
    let s = "print(node.info())\n";
    assert_eq!(
        run_fw(s, &["--firmware", "1.5"]),
        "1\t5\t4\t12648430\t1458415\t4096\t0\t40000000\n"
    );
    assert_eq!(
        run_fw(s, &["--firmware", "2.2"]),
        "2\t2\t1\t12648430\t1458415\t4096\t0\t40000000\n"
    );
    assert_eq!(
        run_fw(s, &[]),
        "Warning, deprecated API! node.info() without parameter. It will be removed in the next \
         version. See documentation for details.\n3\t0\t0\t12648430\t1458415\t4096\t0\t40000000\n"
    );
}

#[test]
fn info_groups_are_tables_and_a_bad_group_is_the_option_error() {
    let s = "local function show(t) local ks = {} for k, v in pairs(t) do ks[#ks + 1] = k .. '=' .. tostring(v) end\n\
             table.sort(ks) print(table.concat(ks, ' ')) end\n\
             show(node.info('hw')) show(node.info('lfs'))\n\
             local sw = node.info('sw_version')\n\
             print(sw.node_version_major, sw.node_version_minor, sw.node_version_revision, sw.git_release, sw.git_branch)\n\
             local bc = node.info('build_config')\n\
             print(bc.ssl, bc.lfs_size, bc.number_type, bc.modules:find('node', 1, true) ~= nil, bc.modules:find('string', 1, true))\n\
             print(pcall(function() return node.info('nope') end))\n";
    assert_eq!(
        run_fw(s, &[]),
        "chip_id=12648430 flash_id=1458415 flash_mode=0 flash_size=4096 flash_speed=40000000\n\
         lfs_base=393216 lfs_mapped=1076232192 lfs_size=131072 lfs_used=0\n\
         3\t0\t0\t3.0.0-release_20240225\trelease\n\
         true\t131072\tfloat\ttrue\tnil\n\
         false\tinit.lua:8: bad argument #1 to 'info' (invalid option 'nope')\n"
    );
}

#[test]
fn the_esp32_has_its_own_info_ids_and_wakeup_causes() {
    let s = "local t = node.info() print(type(t), next(t))\n\
             local hw = node.info('hw') print(hw.chip_model, hw.cpu_cores, hw.flash_size, string.format('0x%x', hw.flash_id))\n\
             print(node.chipid(), node.chipmodel(), node.wakeup.TIMER, node.wakeup.GPIO, node.wakeup.UART)\n\
             print(node.info('build_config').esp_console, node.info('sw_version').node_version)\n\
             print(node.bootreason())\n\
             print(node.sleep({secs = 2}), tmr.time())\n\
             print(pcall(function() node.sleep() end))\n\
             print(pcall(function() node.dsleep('x') end))\n\
             print(node.setcpufreq, node.flashid, node.random)\n";
    assert_eq!(
        run_fw(s, &["--target", "esp32", "--virtual-time"]),
        "table\tnil\n\
         esp32\t2\t4096\t0xef4016\n\
         0x240ac4c0ffee\tesp32\t4\t7\t8\n\
         uart\tNodeMCU 3.0.0\n\
         1\t8\n\
         4\t2\n\
         false\tinit.lua:7: bad argument #1 to 'sleep' (table expected, got no value)\n\
         false\tinit.lua:8: bad argument #1 to 'dsleep' (Expected integer or table)\n\
         nil\tnil\tnil\n"
    );
}

#[test]
fn bootreason_follows_the_reset_cause() {
    // Power-on, then each restart the script causes, in turn, under --on-reset=restart.
    let s = "local n = (file.getcontents('n') or '') .. 'x'\n\
             file.putcontents('n', n)\n\
             print(#n, node.bootreason())\n\
             if #n == 1 then node.restart()\n\
             elseif #n == 2 then node.dsleep(1000)\n\
             elseif #n == 3 then tmr.create():alarm(1, tmr.ALARM_SINGLE, function() error('e') end)\n\
             end\n";
    let f = Flash::new(&[("init.lua", s)]);
    let r = f.run("init.lua", &["--on-reset=restart", "--virtual-time"]);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .collect();
    assert_eq!(
        lines,
        ["1\t1\t0", "2\t2\t4", "3\t2\t5", "4\t2\t4"],
        "{}\n{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn cpu_clock_stripdebug_and_random_check_as_the_firmware_does() {
    let s = "print(node.setcpufreq(node.CPU160MHZ), node.getcpufreq(), node.setcpufreq(100), node.getcpufreq())\n\
             print(node.stripdebug(), node.stripdebug(3), node.stripdebug())\n\
             print(pcall(function() node.stripdebug(4) end))\n\
             print(pcall(function() node.stripdebug(2, 'x') end))\n\
             print(node.stripdebug(2, function() end))\n\
             print(node.random(1, 1), pcall(function() node.random(2, 1) end))\n\
             print(pcall(function() node.random(1, 2, 3) end))\n\
             print(node.dsleepMax(), pcall(function() node.sleep({}) end))\n\
             print(pcall(function() node.task.post(5, print) end))\n\
             print(pcall(function() node.task.post(1, 1) end))\n";
    // A float, as lua_pushnumber makes it: 5.3 prints it with `.0`.
    let max = if cfg!(feature = "lua53") {
        "13421772793.0"
    } else {
        "13421772793"
    };
    assert_eq!(
        run_fw(s, &[]),
        format!(
            "160\t160\t80\t80\n\
         2\t3\t3\n\
         false\tinit.lua:3: bad argument #1 to 'stripdebug' (Invalid strip level)\n\
         false\tinit.lua:4: bad argument #2 to 'stripdebug' (not a valid function)\n\
         0\n\
         1\tfalse\tinit.lua:6: bad argument #2 to 'random' (interval is empty)\n\
         false\tinit.lua:7: wrong number of arguments\n\
         {max}\tfalse\tinit.lua:8: node.sleep() is unavailable\n\
         false\tinit.lua:9: bad argument #1 to 'post' (invalid  priority)\n\
         false\tinit.lua:10: bad argument #2 to 'post' (function expected, got number)\n",
        )
    );
}

#[test]
fn older_generations_keep_their_own_argument_rules() {
    let s = "print(pcall(function() node.stripdebug(0) end))\n\
             print(node.stripdebug(), node.stripdebug(3), node.stripdebug())\n\
             print(pcall(function() node.dsleep(1, 7) end))\n\
             print(pcall(function() node.task.post(1, 1) end))\n\
             print(node.flashsize(), node.flashsize(1048576), node.flashsize())\n\
             print(node.egc.meminfo ~= nil)\n\
             print(pcall(function() node.egc.setmode(8) end))\n\
             print(pcall(function() node.egc.setmode(node.egc.ON_MEM_LIMIT) end))\n\
             print(node.egc.setmode(node.egc.ON_MEM_LIMIT, -4096), node.egc.NOT_ACTIVE, node.egc.ALWAYS)\n";
    assert_eq!(
        run_fw(s, &["--firmware", "2.2"]),
        "false\tinit.lua:1: bad argument #1 to 'stripdebug' (must in range 1-3)\n\
         2\tnil\t3\n\
         false\tinit.lua:3: wrong arg range\n\
         false\tinit.lua:4: bad argument #2 to 'post' (invalid function)\n\
         4194304\t1048576\t1048576\n\
         true\n\
         false\tinit.lua:7: bad argument #1 to 'setmode' (invalid mode)\n\
         false\tinit.lua:8: bad argument #1 to 'setmode' (limit must be non-zero)\n\
         nil\t0\t4\n"
    );
    assert_eq!(
        run_fw("print(node.egc.meminfo)\n", &["--firmware", "1.5"]),
        "nil\n"
    );
}

#[test]
fn partition_table_and_startup_options_of_3_0() {
    let s = "local p = node.getpartitiontable()\n\
             print(string.format('0x%x 0x%x 0x%x 0x%x', p.lfs_addr, p.lfs_size, p.spiffs_addr, p.spiffs_size))\n\
             print(pcall(function() node.setpartitiontable(1) end))\n\
             print(pcall(function() node.setpartitiontable({bogus = 1}) end))\n\
             print(pcall(function() node.setpartitiontable({lfs_addr = 0x1001, lfs_size = 0x1000}) end))\n\
             local s = node.startup() print(s.banner, s.delay_mount, s.frequency, s.command)\n\
             print(node.startupcommand('@app.lua'))\n\
             s = node.startup({banner = false, frequency = node.CPU160MHZ})\n\
             print(s.banner, s.frequency, s.command)\n\
             print(node.LFS.config.lfs_size == node.info('lfs').lfs_size)\n";
    assert_eq!(
        run_fw(s, &[]),
        "0x60000 0x20000 0x80000 0x37c000\n\
         false\tinit.lua:3: bad argument #1 to 'setpartitiontable' (must be table)\n\
         false\tinit.lua:4: bad argument #1 to 'setpartitiontable' (invalid partition setting)\n\
         false\tinit.lua:5: Partition value out of range\n\
         true\tfalse\t80\tnil\n\
         true\n\
         false\t160\t@app.lua\n\
         true\n"
    );
}

#[test]
fn a_hash_first_line_is_skipped_by_every_loader() {
    let lib = "#!/usr/bin/env lua\nreturn { line = debug.traceback and 2, n = 42 }\n";
    let bad = "#!/usr/bin/env lua\nlocal x = nil + 1\n";
    let init = "print(dofile('lib.lua').n, loadfile('lib.lua')().n, require('lib').n)\n\
                node.compile('lib.lua') package.loaded.lib = nil\n\
                print(dofile('lib.lc').n)\n\
                print(pcall(dofile, 'bad.lua'))\n";
    let f = Flash::new(&[("init.lua", init), ("lib.lua", lib), ("bad.lua", bad)]);
    let r = f.run("init.lua", &[]);
    assert_eq!(
        r.stdout,
        "42\t42\t42\n42\nfalse\tbad.lua:2: attempt to perform arithmetic on a nil value\n",
        "{}",
        r.stderr
    );
}

#[test]
fn collectgarbage_count_is_the_device_heap_node_heap_reports() {
    let s = "local keep = {} for i = 1, 200 do keep[i] = string.rep('x', 50) .. i end\n\
             local h = node.heap() local c = collectgarbage('count')\n\
             print(math.abs(c - (44000 - h) / 1024) < 0.1, c > 5, c < 43)\n\
             keep = nil collectgarbage()\n\
             print(collectgarbage('count') < c, pcall(collectgarbage, 'nope'))\n";
    // Lua 5.3 names a function called through no name by where `package.loaded` holds it.
    let name = if cfg!(feature = "lua53") {
        "collectgarbage"
    } else {
        "?"
    };
    assert_eq!(
        run_fw(s, &[]),
        format!(
            "true\ttrue\ttrue\ntrue\tfalse\tbad argument #1 to '{name}' (invalid option 'nope')\n"
        )
    );
    let esp32 = "local h = node.heap() local c = collectgarbage('count')\nprint(c == (250000 - h) / 1024)\n";
    assert_eq!(run_fw(esp32, &["--target", "esp32"]), "true\n");
}

/// Tracebacks end in the firmware's frames: `[C]: in function 'dofile'` below a dofile'd file's
/// main chunk, nothing of the simulator's below the script's own.
#[test]
fn tracebacks_show_the_firmwares_frames_only() {
    let lib = "function inner() error('boom') end\nfunction go() inner() end\ngo()\n";
    let init = "print(select(2, xpcall(function() dofile('lib.lua') end, debug.traceback)))\n\
                print(debug.traceback('here'))\n\
                node.setonerror(function(s) print(s) end)\n\
                tmr.create():alarm(1, tmr.ALARM_SINGLE, function() dofile('lib.lua') end)\n";
    let f = Flash::new(&[("init.lua", init), ("lib.lua", lib)]);
    let r = f.run("init.lua", &[]);
    let frames = "\t[C]: in function 'error'\n\tlib.lua:1: in function 'inner'\n\
                  \tlib.lua:2: in function 'go'\n\tlib.lua:3: in main chunk\n\
                  \t[C]: in function 'dofile'\n";
    assert!(!r.stdout.contains("[sim]"), "{}", r.stdout);
    assert!(!r.stdout.contains("tail call"), "{}", r.stdout);
    assert!(
        r.stdout.starts_with(&format!(
            "lib.lua:1: boom\nstack traceback:\n{frames}\tinit.lua:1: in function <init.lua:1>\n\t[C]: in function 'xpcall'\n\tinit.lua:1: in main chunk\n"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("here\nstack traceback:\n\tinit.lua:2: in main chunk\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with(&format!(
            "lib.lua:1: boom\nstack traceback:\n{frames}\tinit.lua:4: in function <init.lua:4>\n"
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn tmr_suspend_all_and_resume_all_say_they_were_removed_from_2_2_on() {
    let s = "print(pcall(function() tmr.suspend_all() end))\nprint(pcall(function() tmr.resume_all() end))\n";
    let msg =
        "This feature has been removed, we apologize for any inconvenience this may have caused.";
    for fw in ["2.2", "3.0"] {
        assert_eq!(
            run_fw(s, &["--firmware", fw]),
            format!("false\tinit.lua:1: {msg}\nfalse\tinit.lua:2: {msg}\n")
        );
    }
    assert_eq!(
        run_fw(
            "print(tmr.suspend_all, tmr.resume_all)\n",
            &["--firmware", "1.5"]
        ),
        "nil\tnil\n"
    );
}

#[test]
fn output_functions_get_what_each_generation_gives_them() {
    let s = "local got = {}\n\
             node.output(function(s)\n\
               if type(s) ~= 'string' then s = 'pipe:' .. (s:read(1000) or '') end\n\
               got[#got + 1] = s\n\
             end, 0)\n\
             print('a', 1)\n\
             node.task.post(node.task.LOW_PRIORITY, function()\n\
               node.output()\n\
               print(#got, table.concat(got, '|'))\n\
             end)\n";
    // 2.2 calls the function with each piece print writes, at once.
    assert_eq!(run_fw(s, &["--firmware", "2.2"]), "4\ta|\t|1|\n\n");
    // 3.0 hands it a pipe to read, at MEDIUM priority.
    assert_eq!(run_fw(s, &["--firmware", "3.0"]), "1\tpipe:a\t1\n\n");
    // The ESP32 queues the line as one chunk of at most 127 bytes.
    assert_eq!(run_fw(s, &["--target", "esp32"]), "1\ta\t1\n\n");
}

#[test]
fn before_3_0_a_timer_callback_error_is_a_panic() {
    let s = "tmr.create():alarm(1, tmr.ALARM_SINGLE, function() error('cb') end)\n";
    let r = run_lua(s, &["--firmware", "2.2"]);
    assert_eq!(r.status, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("PANIC: unprotected error in call to Lua API (init.lua:1: cb)"),
        "{}",
        r.stderr
    );
    // The reset names no kind of callback it was not.
    assert!(
        r.stderr
            .contains("device reset: PANIC: unprotected error in a callback\n"),
        "{}",
        r.stderr
    );
    let r = run_lua(s, &["--firmware", "3.0"]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("init.lua:1: cb\nstack traceback:\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn compile_checks_names_and_setonerror_falls_back_to_the_default_handler() {
    let s = "print(pcall(function() node.compile(('x'):rep(32) .. '.lua') end))\n\
             print(pcall(function() node.compile('x.txt') end))\n\
             print(pcall(function() node.compile('missing.lua') end))\n\
             node.setonerror(function(e) print('mine') end)\n\
             node.setonerror(42)\n\
             tmr.create():alarm(1, tmr.ALARM_SINGLE, function() error('cb') end)\n";
    let r = run_lua(s, &[]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "false\tinit.lua:1: bad argument #1 to 'compile' (filename invalid)\n\
         false\tinit.lua:2: not a .lua file\n\
         false\tinit.lua:3: cannot open missing.lua\n\
         init.lua:6: cb\nstack traceback:\n\t[C]: in function 'error'\n\tinit.lua:6: in function <init.lua:6>\n"
    );
}

#[test]
fn before_3_0_an_output_function_error_reaches_the_print_that_called_it() {
    // 2.2 calls the output function with lua_call from inside print: nested in running Lua, so
    // its error unwinds through print to the caller's pcall, as any error would. Not a PANIC.
    let s = "node.output(function(s) error('boom') end, 0)\n\
             local ok, e = pcall(print, 'x')\n\
             node.output(function(s) print(s) end, 0)\n\
             local deep = pcall(print, 'y')\n\
             node.output()\n\
             print(ok, e, deep)\n";
    let r = run_lua(s, &["--firmware", "2.2"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "false\tinit.lua:1: boom\tfalse\n"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("PANIC"), "{}", r.stderr);
}
