//! The flash file system: the `file` module's results and error texts, its confinement to the
//! flash root, and booting a project directory like a board.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, run_cmd, run_lua};

#[test]
fn binary_data_with_nul_bytes_round_trips_both_ways() {
    let f = Flash::new(&[(
        "init.lua",
        r##"
        local all = {}
        for i = 0, 255 do all[#all + 1] = string.char(i) end
        local data = table.concat(all) .. "\0\0end\0"
        local w = file.open("lua.bin", "w")
        print("write", w:write(data), w:write("\0"), w:close())
        print("put", file.putcontents("put.bin", data))
        print("same", file.getcontents("lua.bin") == data .. "\0", file.getcontents("put.bin") == data)
        local host = file.getcontents("host.bin")
        print("host", #host, host:byte(1), host:byte(2), host:byte(#host))
        local r = file.open("host.bin")
        print("read", #r:read(3), r:read(1):byte(), r:seek())
        r:close()
        "##,
    )]);
    std::fs::write(f.file("host.bin"), b"\0\xff\0\n\0").unwrap();
    let r = f.run("init.lua", &[]);
    assert_eq!(
        r.stdout,
        "write\ttrue\ttrue\nput\ttrue\nsame\ttrue\ttrue\nhost\t5\t0\t255\t0\nread\t3\t10\t4\n",
        "{}",
        r.stderr
    );
    let mut want: Vec<u8> = (0..=255u8).collect();
    want.extend_from_slice(b"\0\0end\0");
    assert_eq!(std::fs::read(f.file("put.bin")).unwrap(), want);
    want.push(0);
    assert_eq!(std::fs::read(f.file("lua.bin")).unwrap(), want);
}

#[test]
fn read_gives_1024_byte_chunks_then_nil_and_honours_counts_and_end_chars() {
    let f = Flash::new(&[(
        "init.lua",
        r##"
        local f = file.open("big.txt")
        local a, b, c, d = f:read(), f:read(), f:read(), f:read()
        print(#a, #b, #c, d)
        f:seek("set")
        print(#f:read(2000), f:read(0), #f:read(5000), f:read(0) == "")
        f:seek("set", 2498)
        print(f:readline(), f:readline())
        f:seek("set")
        print(f:read("x"), #f:read("z"), #f:read("\n"))
        f:close()
        file.putcontents("lines", "one\ntwo\n\nlast")
        file.open("lines")
        print(file.readline(), file.readline(), file.readline(), file.readline(), file.readline())
        file.close()
        print(#file.getcontents("big.txt"), file.getcontents("empty"))
        "##,
    )]);
    let mut big = vec![b'x'; 2500];
    big[0] = b'a';
    big[2499] = b'\n';
    big[2498] = b'z';
    std::fs::write(f.file("big.txt"), &big).unwrap();
    std::fs::write(f.file("empty"), b"").unwrap();
    let r = f.run("init.lua", &[]);
    assert_eq!(
        r.stdout,
        // read("x") from the start: "ax"; read("z") and read("\n") give up after 1024 bytes.
        // An empty file's getcontents is nil, as on the board.
        "1024\t1024\t452\tnil\n2000\t\t500\ttrue\nz\n\tnil\nax\t1024\t1024\n\
         one\n\ttwo\n\t\n\tlast\tnil\n2500\tnil\n",
        "{}",
        r.stderr
    );
}

#[test]
fn list_filters_with_lua_patterns_and_shows_only_the_flash_files() {
    let f = Flash::new(&[
        ("init.lua", LIST_SCRIPT),
        ("testfile1&", "testfile1&"),
        ("testFILE2", "testFILE2"),
        ("a.lua", "x"),
    ]);
    std::fs::create_dir(f.file("lib")).unwrap();
    std::fs::write(f.file("lib/inner.lua"), "x").unwrap();
    std::fs::write(f.file(&"n".repeat(32)), "too long a name for SPIFFS").unwrap();
    let r = f.run("init.lua", &[]);
    assert_eq!(
        r.stdout,
        format!(
            "testfile1&=10\n--\ntestFILE2=9\n--\na.lua=1\ninit.lua={n}\n--\n\
             a.lua=1\ninit.lua={n}\ntestFILE2=9\ntestfile1&=10\n--\n\
             false\tmalformed pattern (ends with '%')\n\
             false\tinit.lua:11: bad argument #1 to 'list' (string expected, got table)\n",
            n = LIST_SCRIPT.len()
        ),
        "{}",
        r.stderr
    );
}

const LIST_SCRIPT: &str = "local function show(t)
  local names = {}
  for k, v in pairs(t) do names[#names + 1] = k .. '=' .. v end
  table.sort(names); print(table.concat(names, '\\n')); print('--')
end
show(file.list('testfile%.*'))
show(file.list('^%l*%u+%d%.-'))
show(file.list('%.lua$'))
show(file.list())
print(pcall(file.list, '%'))
print(pcall(function() file.list({}) end))
";

#[test]
fn rename_and_remove_report_like_spiffs() {
    let r = run_lua(
        r##"
        file.putcontents("testfile", "testfile")
        print(file.rename("testfile", "testfile2"), file.exists("testfile"), file.exists("testfile2"))
        print(file.rename("testfile", "testfile3"))
        file.putcontents("testfile", "again")
        print(file.rename("testfile", "testfile2"), file.getcontents("testfile2"))
        print(select("#", file.remove("testfile")), file.remove("testfile"), file.exists("testfile"))
        print(file.rename("testfile2", "/FLASH/moved"), file.getcontents("moved"))
        "##,
        &[],
    );
    assert_eq!(
        r.stdout, "true\tfalse\ttrue\nfalse\nfalse\ttestfile\n0\tnil\tfalse\ntrue\ttestfile\n",
        "{}",
        r.stderr
    );
}

#[test]
fn stat_has_the_firmware_fields_and_default_time() {
    let r = run_lua(
        r##"
        file.putcontents("testfile", "testfile")
        local s = file.stat("testfile")
        local keys = {}
        for k, v in pairs(s) do if k ~= "time" then keys[#keys + 1] = k .. "=" .. tostring(v) end end
        for k, v in pairs(s.time) do keys[#keys + 1] = "time." .. k .. "=" .. tostring(v) end
        table.sort(keys)
        print(table.concat(keys, " "))
        print(file.stat("/FLASH/testfile").name, file.stat("missing"), file.stat("/SD0/testfile"))
        "##,
        &[],
    );
    assert_eq!(
        r.stdout,
        "is_arch=false is_dir=false is_hidden=false is_rdonly=false is_sys=false name=testfile \
         size=8 time.day=1 time.hour=0 time.min=0 time.mon=1 time.sec=0 time.year=1970\n\
         testfile\tnil\tnil\n",
        "{}",
        r.stderr
    );
}

#[test]
fn open_modes_create_truncate_append_and_seek_like_spiffs() {
    let r = run_lua(
        r##"
        for _, m in ipairs({"r", "w", "a", "r+", "w+", "a+"}) do
          local f = file.open("new-" .. m, m)
          local kind = f and "file" or "nil"
          if f then f:close() end
          print("missing", m, kind, file.exists("new-" .. m))
        end
        for _, m in ipairs({"r", "w", "a", "r+", "w+", "a+", "x"}) do
          file.putcontents("t", "testcontent")
          local f = file.open("t", m)
          print("existing", m, f:write(""), f:seek(), f:read(4), f:seek("end"), file.stat("t").size)
          f:close()
        end
        file.putcontents("t", "testcontent")
        local f = file.open("t", "r+")
        print(f:seek("set", 4), f:write("CONTENT"), f:seek(), f:seek("set"), f:read())
        print(f:seek("end", 1), f:seek("cur", -100), f:seek(), f:seek("cur", -3), f:read())
        f:close()
        f = file.open("t", "a+")
        print(f:read(4), f:seek("set", 0), f:write("!"), f:seek(), f:flush())
        f:close()
        print(file.getcontents("t"))
        "##,
        &[],
    );
    assert_eq!(
        r.stdout,
        "missing\tr\tnil\tfalse\nmissing\tw\tfile\ttrue\nmissing\ta\tfile\ttrue\n\
         missing\tr+\tnil\tfalse\nmissing\tw+\tfile\ttrue\nmissing\ta+\tfile\ttrue\n\
         existing\tr\tnil\t0\ttest\t11\t11\n\
         existing\tw\ttrue\t0\tnil\t0\t0\n\
         existing\ta\ttrue\t11\tnil\t11\t11\n\
         existing\tr+\ttrue\t0\ttest\t11\t11\n\
         existing\tw+\ttrue\t0\tnil\t0\t0\n\
         existing\ta+\ttrue\t11\tnil\t11\t11\n\
         existing\tx\tnil\t0\ttest\t11\t11\n\
         4\ttrue\t11\t0\ttestCONTENT\n\
         nil\tnil\t11\t8\tENT\n\
         test\t0\ttrue\t12\ttrue\n\
         testCONTENT!\n",
        "{}",
        r.stderr
    );
}

#[test]
fn module_level_forms_act_on_the_last_opened_file() {
    let r = run_lua(
        r##"
        file.putcontents("a", "from a")
        file.putcontents("b", "from b")
        local a = file.open("a")
        local b = file.open("b")
        print(file.read(4), a:read(4), file.seek("set"), file.read())
        a:close()
        print(file.seek("set"), file.read(2))
        file.close()
        print(pcall(b.read, b), pcall(file.read))
        file.open("a")
        print(file.open("missing"), pcall(file.read))
        file.open("a")
        file.getcontents("b")
        print(pcall(file.read))
        file.open("a", "a+")
        print(file.writeline("!"), file.seek(), file.close(), file.close())
        print(file.getcontents("a"))
        "##,
        &[],
    );
    assert_eq!(
        r.stdout,
        "from\tfrom\t0\tfrom b\n0\tfr\n\
         false\tfalse\topen a file first\n\
         nil\tfalse\topen a file first\n\
         false\topen a file first\n\
         true\t8\tnil\nfrom a!\n\n",
        "{}",
        r.stderr
    );
}

#[test]
fn at_most_four_files_are_open_at_once_on_the_esp8266() {
    let script = r##"
        local t = {}
        for i = 1, 6 do t[i] = file.open("f" .. i, "w") end
        print(t[4] ~= nil, t[5], t[6], file.exists("f5"))
        t[1]:close()
        t[5] = file.open("f5", "w")
        print(t[5] ~= nil, file.open("f6", "w"), file.putcontents("p", "x"), file.getcontents("f2"))
        t[2]:close()
        print(file.putcontents("p", "x"), file.getcontents("p"))
        "##;
    let r = run_lua(script, &[]);
    assert_eq!(
        r.stdout, "true\tnil\tnil\tfalse\ntrue\tnil\tnil\ntrue\tx\n",
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("4 files are open already"),
        "{}",
        r.stderr
    );
    // The host profile has no such limit.
    let r = run_lua(script, &["--target", "host"]);
    // Lua 5.3's tostring names the type from the metatable's __name.
    assert!(
        r.stdout.starts_with("true\tuserdata: ") || r.stdout.starts_with("true\tfile.obj: "),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_arguments_raise_the_firmware_text_with_the_position() {
    let cases: &[(&str, &str)] = &[
        ("file.read()", "open a file first"),
        ("file.readline()", "open a file first"),
        ("file.write('x')", "open a file first"),
        ("file.writeline('x')", "open a file first"),
        ("file.seek('bogus')", "open a file first"),
        ("file.flush()", "open a file first"),
        (
            "file.open(('x'):rep(32))",
            "bad argument #1 to 'open' (filename invalid)",
        ),
        (
            "file.open('a\\0b', 'w')",
            "bad argument #1 to 'open' (filename invalid)",
        ),
        (
            "file.open()",
            "bad argument #1 to 'open' (string expected, got no value)",
        ),
        (
            "file.open('x', {})",
            "bad argument #2 to 'open' (string expected, got table)",
        ),
        (
            "file.exists(('x'):rep(32))",
            "bad argument #1 to 'exists' (filename invalid)",
        ),
        (
            "file.remove({})",
            "bad argument #1 to 'remove' (string expected, got table)",
        ),
        (
            "file.rename('a', ('b'):rep(32))",
            "bad argument #2 to 'rename' (filename invalid)",
        ),
        (
            "file.stat('/FLASH/' .. ('s'):rep(25))",
            "bad argument #1 to 'stat' (filename invalid)",
        ),
        (
            "file.getcontents()",
            "bad argument #1 to 'getcontents' (string expected, got no value)",
        ),
        (
            "file.putcontents('p')",
            "bad argument #2 to 'putcontents' (string expected, got no value)",
        ),
        (
            "file.on('clock')",
            "bad argument #1 to 'on' (invalid option 'clock')",
        ),
        (
            "file.write(tmr.create(), 'x')",
            "bad argument #1 to 'write' (file.obj expected, got userdata)",
        ),
        ("f:read('ab')", "wrong arg range"),
        (
            "f:seek('middle')",
            "bad argument #1 to 'seek' (invalid option 'middle')",
        ),
        (
            "f:seek('set', 'far')",
            "bad argument #2 to 'seek' (number expected, got string)",
        ),
        (
            "f:write()",
            "bad argument #1 to 'write' (string expected, got no value)",
        ),
        (
            "file.seek(1)",
            "bad argument #1 to 'seek' (invalid option '1')",
        ),
        ("g:read()", "open a file first"),
        ("g:write('x')", "open a file first"),
    ];
    let mut script = String::from(
        "local g = file.open('g', 'w') g:close()\nfile.close()\n\
         local f = file.open('f', 'w+')\nfile.open('missing')\n",
    );
    let first_line = 5;
    let mut want = String::new();
    for (i, (code, msg)) in cases.iter().enumerate() {
        script.push_str(&format!("print(pcall(function() {code} end))\n"));
        if i == 5 {
            // From here on a default file is open, so the next errors are about the arguments.
            script.push_str("file.open('f', 'r+')\n");
        }
        let line = first_line + i + usize::from(i > 5);
        want.push_str(&format!("false\tinit.lua:{line}: {msg}\n"));
    }
    script.push_str("print(file.getcontents('p'), file.exists('p'))\n");
    want.push_str("nil\ttrue\n");
    let r = run_lua(&script, &[]);
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

/// A flash directory beside another directory holding a secret, with links leading out of the
/// flash into it. Returns (base, flash, outside).
fn flash_beside_a_secret() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let base = tempfile::tempdir().unwrap();
    let (flash, out) = (base.path().join("flash"), base.path().join("out"));
    std::fs::create_dir(&flash).unwrap();
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("secret"), "secret").unwrap();
    std::os::unix::fs::symlink(out.join("secret"), flash.join("link")).unwrap();
    std::os::unix::fs::symlink(&out, flash.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(out.join("planted"), flash.join("dangling")).unwrap();
    (base, flash, out)
}

/// The directory beside the flash still holds its secret, unchanged, and nothing else.
fn assert_untouched(out: &Path) {
    assert_eq!(std::fs::read(out.join("secret")).unwrap(), b"secret");
    assert_eq!(listing(out), ["secret"]);
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn no_file_function_reaches_outside_the_flash() {
    let (_base, flash, out) = flash_beside_a_secret();
    let abs = out.join("secret").display().to_string();
    let script = format!(
        r##"
        local names = {{"{abs}", "{abs}2", "link", "dangling", "/SD0/x"}}
        for _, n in ipairs(names) do
          local got = {{}}
          for _, m in ipairs({{"r", "w", "a", "r+", "w+", "a+"}}) do
            got[#got + 1] = tostring(file.open(n, m))
          end
          got[#got + 1] = tostring(file.exists(n))
          got[#got + 1] = tostring(file.putcontents(n, "pwned"))
          got[#got + 1] = select("#", file.getcontents(n))
          got[#got + 1] = tostring(file.rename(n, "stolen"))
          got[#got + 1] = tostring(file.rename("init.lua", n))
          file.remove(n)
          got[#got + 1] = tostring(loadfile(n))
          print(n == names[1] and "first" or "next", table.concat(got, " "))
        end
        print(file.stat("link"), file.stat("linkdir/secret"), file.stat("../out/secret"))
        local l = {{}}
        for k in pairs(file.list()) do l[#l + 1] = k end
        print(table.concat(l, ","))
        "##
    );
    std::fs::write(flash.join("init.lua"), script).unwrap();
    let r = run_cmd(
        {
            let mut c = Command::new(BIN);
            c.arg("run").arg(flash.join("init.lua"));
            c
        },
        Duration::from_secs(30),
    );
    let refused = "nil nil nil nil nil nil false nil 0 false false nil";
    let want = format!(
        "first\t{refused}\n{}nil\tnil\tnil\ninit.lua\n",
        format!("next\t{refused}\n").repeat(4)
    );
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, want.as_str()),
        "{}",
        r.stderr
    );
    assert_untouched(&out);
    assert_eq!(
        listing(&flash),
        ["dangling", "init.lua", "link", "linkdir"],
        "links still there, nothing created"
    );
}

#[test]
fn format_needs_an_explicit_flash_and_erases_only_the_flash_files() {
    let script = "file.putcontents('data', 'x')\n\
                  print(pcall(file.format))\n\
                  local n = 0 for _ in pairs(file.list()) do n = n + 1 end\n\
                  print(n, file.exists('init.lua'))\n";
    // Not named with --flash: refused, nothing erased.
    let r = run_lua(script, &[]);
    assert_eq!(
        r.stdout, "false\tFailed to format file system\n2\ttrue\n",
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("file.format() refused"), "{}", r.stderr);

    let (_base, flash, out) = flash_beside_a_secret();
    std::fs::write(flash.join("init.lua"), script).unwrap();
    std::fs::create_dir(flash.join("keep")).unwrap();
    std::fs::write(flash.join("keep/inner"), "k").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(flash.join("init.lua"))
        .arg("--flash")
        .arg(&flash);
    let r = run_cmd(cmd, Duration::from_secs(30));
    assert_eq!(r.stdout, "format done.\ntrue\n0\tfalse\n", "{}", r.stderr);
    assert_eq!(listing(&flash), ["dangling", "keep", "link", "linkdir"]);
    assert_eq!(std::fs::read(flash.join("keep/inner")).unwrap(), b"k");
    assert_eq!(std::fs::read(out.join("secret")).unwrap(), b"secret");
}

#[test]
fn fsinfo_reports_a_4mb_module_and_flash_size_changes_it() {
    let script = "local rem, used, total = file.fsinfo()\n\
                  print(rem, used, total, rem + used == total)\n\
                  print(string.format('0x%x 0x%x', file.fscfg()))\n\
                  local f = file.open('log', 'w')\n\
                  print(f:write(('x'):rep(300)), f:write(('y'):rep(700)), f:seek())\n\
                  f:close()\n\
                  print(file.fsinfo())\n";
    // init.lua (7 pages with its 2 index and data pages) is all there is at first.
    let r = run_lua(script, &[]);
    let first = r.stdout.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_eq!(
        first,
        format!(
            "{}\t{}\t3455015\ttrue\n0x80000 0x37c000",
            3_455_015 - 3 * 251,
            3 * 251
        ),
        "{}",
        r.stderr
    );
    // 1800 bytes: the 300-byte write fits (3 pages), growing to 1000 bytes (5 pages) does not.
    let r = run_lua(script, &["--flash-size", "1800"]);
    assert_eq!(
        r.stdout,
        format!(
            "{}\t{}\t1800\ttrue\n0x80000 0x6000\ntrue\tnil\t300\n{}\t{}\t1800\n",
            1800 - 3 * 251,
            3 * 251,
            1800 - 6 * 251,
            6 * 251
        ),
        "{}",
        r.stderr
    );
    let r = run_lua("print(select(3, file.fsinfo()))", &["--flash-size", "64K"]);
    assert_eq!(r.stdout, "65536\n", "{}", r.stderr);
    for bad in ["0", "3G", "lots"] {
        let r = run_lua("", &["--flash-size", bad]);
        assert_eq!(r.status, 2, "--flash-size {bad}: {}", r.stderr);
    }
}

#[test]
fn a_project_directory_boots_init_lua_that_requires_a_compiled_module() {
    let f = Flash::new(&[
        (
            "setup.lua",
            "node.compile('greet.lua')\nfile.remove('greet.lua')\nfile.remove('setup.lua')\n",
        ),
        (
            "greet.lua",
            "local M = {}\nfunction M.hello(who) return 'hello ' .. who end\nreturn M\n",
        ),
        (
            "init.lua",
            "local names = {}\nfor k in pairs(file.list('%.l')) do names[#names + 1] = k end\n\
             table.sort(names)\nprint(table.concat(names, ' '))\n\
             print(require('greet').hello('board'), file.exists('greet.lua'))\n",
        ),
    ]);
    // First a setup script compiles the module and deletes the sources, as one would on a board.
    let mut setup = Command::new(BIN);
    setup
        .arg("run")
        .arg(f.file("setup.lua"))
        .arg("--flash")
        .arg(f.path());
    let r = run_cmd(setup, Duration::from_secs(30));
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(&std::fs::read(f.file("greet.lc")).unwrap()[..4], b"\x1bLua");
    // Then the directory boots like a board: its init.lua runs.
    let mut boot = Command::new(BIN);
    boot.arg("run").arg(f.path());
    let r = run_cmd(boot, Duration::from_secs(30));
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "greet.lc init.lua\nhello board\tfalse\n"),
        "{}",
        r.stderr
    );
}

/// SPIFFS names are flat: `/` is an ordinary character. Every `file` function, `dofile` and
/// `require` see `lib/util.lua` as one file, stored in the root as `lib%2Futil.lua`.
#[test]
fn names_with_slashes_are_ordinary_flat_files() {
    let script = r#"
print(file.open("lib/util.lua", "w") ~= nil)
file.writeline("return {n = 7}") file.close()
print(file.putcontents("data/100%.txt", "full"))
print(file.exists("lib/util.lua"), file.getcontents("data/100%.txt"), file.stat("lib/util.lua").name)
local names = {} for k, v in pairs(file.list("^lib/")) do names[#names + 1] = k .. "=" .. v end
print(table.concat(names, ","))
print(require("lib.util").n, dofile("lib/util.lua").n)
print(file.rename("lib/util.lua", "lib/moved.lua"), file.exists("lib/util.lua"), file.exists("lib/moved.lua"))
file.remove("lib/moved.lua")
print(file.exists("lib/moved.lua"), file.exists("lib"))
"#;
    let f = Flash::new(&[("init.lua", script)]);
    std::fs::create_dir(f.file("lib")).unwrap();
    std::fs::write(f.file("lib/hidden.lua"), "return 1").unwrap();
    let r = f.run("init.lua", &[]);
    assert_eq!(
        r.stdout,
        "true\ntrue\ntrue\tfull\tlib/util.lua\nlib/util.lua=15\n7\t7\ntrue\tfalse\ttrue\nfalse\tfalse\n",
        "{}",
        r.stderr
    );
    assert_eq!(listing(f.path()), ["data%2F100%25.txt", "init.lua", "lib"]);
    assert_eq!(std::fs::read(f.file("data%2F100%25.txt")).unwrap(), b"full");
}

/// `..` in a name is part of a flat name too: the file is made inside the flash, never beside it.
#[test]
fn dot_dot_names_stay_inside_the_flash() {
    let (_base, flash, out) = flash_beside_a_secret();
    let script = r#"
for _, n in ipairs({"a/../../x", "../out/secret", "linkdir/new", "./../out/new"}) do
  print(n, file.putcontents(n, "in"), file.getcontents(n), file.list()[n])
end
"#;
    std::fs::write(flash.join("init.lua"), script).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg(flash.join("init.lua"));
    let r = run_cmd(cmd, Duration::from_secs(30));
    assert_eq!(
        r.stdout,
        "a/../../x\ttrue\tin\t2\n../out/secret\ttrue\tin\t2\nlinkdir/new\ttrue\tin\t2\n./../out/new\ttrue\tin\t2\n",
        "{}",
        r.stderr
    );
    assert_untouched(&out);
    assert_eq!(
        listing(&flash),
        [
            ".%2F..%2Fout%2Fnew",
            "..%2Fout%2Fsecret",
            "a%2F..%2F..%2Fx",
            "dangling",
            "init.lua",
            "link",
            "linkdir",
            "linkdir%2Fnew"
        ]
    );
}
