//! The firmware's own files, copied unchanged into `fixtures/firmware-tests/`: NTest's self-test and
//! the LFS `_init.lua` example. They pass here as they pass on a board.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/firmware-tests")
        .join(name)
}

/// NTest's self-test, apart from `firmware-tests/`: its meta tests fail on purpose, so
/// `nodemcu-sim test` must not pick it up with the others.
fn selftest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ntest-selftest/NTest_NTest.lua")
}

fn sim(args: &[&std::ffi::OsStr]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("SOURCE_DATE_EPOCH", "1700000000");
    run_cmd(cmd, Duration::from_secs(60))
}

/// NTest_NTest.lua runs 51 meta tests; the last one prints the tally of the 50 before it.
fn assert_selftest_passed(r: &Ran) {
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    let passes = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("+++ Pass "))
        .count();
    let others: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("+++ Pass "))
        .collect();
    assert_eq!(others, ["failed: 0\tpassed: 50"], "{}", r.stdout);
    assert_eq!(passes, 51, "{}", r.stdout);
}

#[test]
fn the_firmwares_ntest_self_test_passes_on_each_target() {
    for target in ["esp8266", "esp32", "host"] {
        let r = sim(&[
            "run".as_ref(),
            "--target".as_ref(),
            target.as_ref(),
            selftest().as_os_str(),
        ]);
        assert_selftest_passed(&r);
    }
}

#[test]
fn the_firmwares_ntest_self_test_passes_under_virtual_time() {
    let r = sim(&[
        "run".as_ref(),
        "--virtual-time".as_ref(),
        selftest().as_os_str(),
    ]);
    assert_selftest_passed(&r);
}

const JEAN: &str =
    "local M = {}\nfunction M.hi(who) return 'hi ' .. who .. ' from lfs' end\nreturn M\n";

const INIT: &str = r#"local get = node.LFS and node.LFS.get or node.flashindex
get("_init")()
print(type(LFS), LFS.jean ~= nil, LFS.nothing)
print(require("jean").hi("require"))
print(loadfile("jean.lua")().hi("loadfile"))
print(dofile("jean.lc").hi("dofile"))
print(pcall(loadfile, "missing.lua"))
print(LFS._time, LFS._list and table.concat(LFS._list, ","), LFS._config and LFS._config.lfs_size)
"#;

/// Boots a flash holding only init.lua with `_init.lua` (the firmware's) and `jean.lua` in LFS.
fn boot_with_init(firmware: &str) -> Ran {
    let f = Flash::new(&[("init.lua", INIT)]);
    std::fs::create_dir(f.file("src")).unwrap();
    std::fs::copy(fixture("lfs/_init.lua"), f.file("src/_init.lua")).unwrap();
    std::fs::write(f.file("src/jean.lua"), JEAN).unwrap();
    sim(&[
        "run".as_ref(),
        "--firmware".as_ref(),
        firmware.as_ref(),
        "--lfs".as_ref(),
        f.file("src").as_os_str(),
        f.file("init.lua").as_os_str(),
    ])
}

const REACHED: &str =
    "table\ttrue\tnil\nhi require from lfs\nhi loadfile from lfs\nhi dofile from lfs\n";

#[test]
fn the_lfs_init_example_adds_lfs_to_require_loadfile_and_dofile() {
    let r = boot_with_init("3.0");
    assert_eq!(r.status, 0, "{}", r.stderr);
    // 3.0's node.LFS.get answers with the function alone, so the example's `_time`, `_list`
    // and `_config` (written for 2.x's flashindex) are nil there, as on a board.
    assert_eq!(
        r.stdout,
        format!(
            "{REACHED}false\t_init:92: Cannot find 'missing.lua' in FS or LFS\nnil\tnil\tnil\n"
        )
    );
}

// Firmware 2.2 had Lua 5.1 only; the example's 5.3 branch takes `node.LFS`, which 2.2 lacks.
#[cfg(not(feature = "lua53"))]
#[test]
fn under_2_2_the_lfs_init_example_reads_time_list_and_config_from_flashindex() {
    let r = boot_with_init("2.2");
    assert_eq!(r.status, 0, "{}", r.stderr);
    // flashindex answers a miss with the image's time, which the example's loadfile takes for a
    // function: `loadfile` of a missing file returns that number, as it does on a 2.x board.
    assert_eq!(
        r.stdout,
        format!("{REACHED}true\t1700000000\n1700000000\t_init,jean\t131072\n")
    );
}
