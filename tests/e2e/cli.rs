//! Command-line mistakes are usage errors (status 2) that name the flag, before any device boots.

use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, run_cmd};

const USAGE: i32 = 2;

#[test]
fn a_missing_expect_output_file_is_a_usage_error() {
    let flash = Flash::new(&[("init.lua", "print('hi')")]);
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(flash.file("init.lua"))
        .arg("--expect-output")
        .arg(flash.file("missing.expected"));
    let r = run_cmd(cmd, Duration::from_secs(30));
    assert_eq!(r.status, USAGE, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with("nodemcu-sim: --expect-output ")
            && r.stderr.contains("missing.expected"),
        "{}",
        r.stderr
    );
}

#[test]
fn flash_must_name_a_directory() {
    let flash = Flash::new(&[("init.lua", "print('hi')")]);
    let cases = [
        (flash.file("init.lua"), "not a directory"),
        (flash.file("nowhere"), "no such directory"),
    ];
    for (dir, why) in cases {
        for sub in ["run", "console"] {
            let mut cmd = Command::new(BIN);
            cmd.arg(sub);
            if sub == "run" {
                cmd.arg(flash.file("init.lua"));
            }
            cmd.arg("--flash").arg(&dir);
            let r = run_cmd(cmd, Duration::from_secs(30));
            assert_eq!(r.status, USAGE, "{sub} {dir:?}: {r:?}");
            assert_eq!(
                r.stderr,
                format!("nodemcu-sim: --flash {}: {why}\n", dir.display()),
                "{sub}"
            );
        }
    }
}
