//! The Lua Flash Store: `--lfs`, `nodemcu-sim lfs build`, `node.LFS` (3.0) and
//! `node.flashindex` / `node.flashreload` (2.2), reload from the flash, and no heap cost.

use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, run_cmd};

const GREET: &str = "local M = {}\nfunction M.hello() return 'hello from lfs' end\nreturn M\n";

/// A flash with `src/greet.lua` and `src/_init.lua`, and the given init.lua.
fn project(init: &str) -> Flash {
    let f = Flash::new(&[("init.lua", init)]);
    std::fs::create_dir(f.file("src")).unwrap();
    std::fs::write(f.file("src/greet.lua"), GREET).unwrap();
    std::fs::write(f.file("src/_init.lua"), "print('_init ran')\n").unwrap();
    f
}

fn sim(args: &[&std::ffi::OsStr]) -> crate::support::Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("SOURCE_DATE_EPOCH", "1700000000");
    run_cmd(cmd, Duration::from_secs(60))
}

#[test]
fn modules_booted_with_lfs_are_reached_through_node_lfs() {
    let f = project(
        r#"
print(table.concat(node.LFS.list(), ","), node.LFS.time, node.LFS.config.lfs_size)
print(node.LFS.get("greet")().hello(), node.LFS.greet ~= nil, node.LFS.nothing, node.LFS.get("nothing"))
node.LFS._init()
package.loaders[3] = function(name) return node.LFS.get(name) end
print(require("greet").hello())
print(node.flashindex("greet") == node.LFS.get("greet"))
"#,
    );
    let r = sim(&[
        "run".as_ref(),
        f.file("init.lua").as_os_str(),
        "--lfs".as_ref(),
        f.file("src").as_os_str(),
    ]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (
            0,
            "_init,greet\t1700000000\t131072\nhello from lfs\ttrue\tnil\tnil\n_init ran\nhello from lfs\ntrue\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn without_an_image_the_api_answers_nil() {
    let f = Flash::new(&[(
        "init.lua",
        "print(node.LFS.list(), node.LFS.get('x'), node.LFS.time, node.LFS.config.lfs_used)\n",
    )]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.stdout, "nil\tnil\tnil\t0\n", "{}", r.stderr);
}

#[test]
fn lfs_code_costs_no_heap() {
    // A module with a good deal of code and constants: in LFS the heap does not pay for it.
    let body: String = (0..80)
        .map(|i| format!("function M.f{i}(x) return x + {i}, 'constant string number {i}' end\n"))
        .collect();
    let big = format!("local M = {{}}\n{body}return M\n");
    // Measured after a full collection: whether a collection cycle of the boot's garbage ends
    // before or during the script depends on how much the installed modules allocated.
    let f = Flash::new(&[
        ("init.lua", "collectgarbage() print(node.heap())\n"),
        ("big.lua", &big),
    ]);
    let plain = f.run("init.lua", &[]);
    let with_lfs = f.run("init.lua", &["--lfs", f.file("big.lua").to_str().unwrap()]);
    let heap = |r: &crate::support::Ran| -> i64 {
        r.stdout.trim().parse().unwrap_or_else(|_| panic!("{r:?}"))
    };
    let (a, b) = (heap(&plain), heap(&with_lfs));
    // Lua 5.3 seeds its string hashes at random, so when a table grows (and leaves its old part
    // to the collector) varies a little from run to run: a few hundred bytes of slack.
    assert!((a - b).abs() < 512, "heap {a} without LFS, {b} with it");
    std::fs::write(
        f.file("init.lua"),
        "local h = node.heap() local m = dofile('big.lua') print(h - node.heap())\n",
    )
    .unwrap();
    let in_ram = heap(&f.run("init.lua", &[]));
    assert!(in_ram > 4000, "the same module in RAM costs {in_ram}");
}

#[test]
fn build_writes_an_image_that_boots_and_reloads_from_flash() {
    let f = project(
        r#"
local list = node.LFS.list()
if list then print("booted with", table.concat(list, ",")) return end
print(node.LFS.reload("missing.img"))
print(node.LFS.reload("gz.img"))
print(node.LFS.reload("lfs.img"))
"#,
    );
    let img = f.file("lfs.img");
    let r = sim(&[
        "lfs".as_ref(),
        "build".as_ref(),
        f.file("src").as_os_str(),
        "-o".as_ref(),
        img.as_os_str(),
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("wrote "), "{}", r.stdout);
    std::fs::write(f.file("gz.img"), [0x1f, 0x8b, 8, 0, 1, 2, 3, 4]).unwrap();
    let r = f.run("init.lua", &["--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "LFS image file not found");
    assert!(lines[1].contains("luac.cross"), "{}", lines[1]);
    assert!(lines[1].contains("nodemcu-sim lfs build"), "{}", lines[1]);
    assert_eq!(lines[2], "LFS region updated.  Restarting.");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("booted with\t_init,greet"),
        "{}",
        r.stdout
    );
    // The image given to --lfs boots the same.
    let r = f.run("init.lua", &["--lfs", img.to_str().unwrap()]);
    assert_eq!(r.stdout, "booted with\t_init,greet\n", "{}", r.stderr);
}

#[test]
fn build_refuses_sources_that_do_not_compile() {
    let f = Flash::new(&[("bad.lua", "local x = \n")]);
    let out = f.file("x.img");
    let r = sim(&[
        "lfs".as_ref(),
        "build".as_ref(),
        f.file("bad.lua").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("bad:2: unexpected symbol"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

#[test]
fn firmware_2_2_has_flashindex_and_flashreload() {
    let f = project(
        r#"
print(node.LFS, type(node.flashreload))
print(node.flashindex("greet")().hello())
local t, base, phys, size, list = node.flashindex("other")
print(t, base, phys, size, table.concat(list, ","))
"#,
    );
    let r = sim(&[
        "run".as_ref(),
        f.file("init.lua").as_os_str(),
        "--firmware".as_ref(),
        "2.2".as_ref(),
        "--lfs".as_ref(),
        f.file("src").as_os_str(),
    ]);
    assert_eq!(
        r.stdout,
        "nil\tfunction\nhello from lfs\n1700000000\t1076232192\t393216\t131072\t_init,greet\n",
        "{}",
        r.stderr
    );
    let r = Flash::new(&[("init.lua", "print(node.flashindex('x'))\n")])
        .run("init.lua", &["--firmware", "2.2"]);
    assert_eq!(r.stdout, "nil\t1076232192\t393216\n");
    let r = Flash::new(&[("init.lua", "print(node.flashindex, node.LFS)\n")])
        .run("init.lua", &["--firmware", "1.5"]);
    assert_eq!(r.stdout, "nil\tnil\n");
}

#[test]
fn the_project_file_can_name_the_lfs_sources() {
    let f = project("print(table.concat(node.LFS.list(), ','))\n");
    std::fs::write(f.file("nodemcu-sim.toml"), "lfs = [\"src\"]\n").unwrap();
    let r = f.run("init.lua", &[]);
    assert_eq!(r.stdout, "_init,greet\n", "{}", r.stderr);
}

#[test]
fn reload_refuses_a_damaged_image_and_keeps_the_running_lfs() {
    // A length field past the end of the file, and a module that does not compile: both are
    // the reload's error string, the device keeps running, and no boot ever sees them.
    let f = Flash::new(&[
        (
            "huge.img",
            "nodemcu-sim-lfs 1\ntime 1\nmodule m 18446744073709551615\nx\nend\n",
        ),
        (
            "bad.img",
            "nodemcu-sim-lfs 1\ntime 1\nmodule m 3\nx=(\nend\n",
        ),
        (
            "init.lua",
            "print(node.LFS.reload('huge.img'))\nprint(node.LFS.reload('bad.img'))\nprint(node.LFS.list())\n",
        ),
    ]);
    let r = f.run("init.lua", &["--on-reset", "restart"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // 5.1 quotes '<eof>', 5.3 does not.
    assert!(
        matches!(&lines[..], ["LFS length mismatch", compile, "nil"]
            if compile.starts_with("m:1: unexpected symbol near ") && compile.contains("<eof>")),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
}
