//! The project file, `nodemcu-sim.toml`: found in the flash root, honoured by `run`, `console` and
//! `test`, overridden by flags, and its mistakes reported with file, line and key.

use std::process::Command;
use std::time::Duration;

use crate::support::{BIN, Flash, Ran, run_cmd};

/// Prints which library set the device booted with: only the host profile has `io`.
const WHICH_TARGET: &str = "print(io ~= nil and 'host' or 'device')\n";

fn sim_in(dir: &std::path::Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir);
    run_cmd(cmd, Duration::from_secs(60))
}

#[test]
fn run_reads_the_project_file_in_the_flash_root() {
    let f = Flash::new(&[
        ("init.lua", WHICH_TARGET),
        ("nodemcu-sim.toml", "target = \"host\"\n"),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!((r.status, r.stdout.as_str()), (0, "host\n"), "{}", r.stderr);
    // `run DIR` boots the project's init.lua with the same settings.
    let r = sim_in(f.path(), &["run", "."]);
    assert_eq!((r.status, r.stdout.as_str()), (0, "host\n"), "{}", r.stderr);
}

#[test]
fn the_device_does_not_see_the_project_file_in_its_flash() {
    // Projects that list their files (a web IDE, a shell's `ls`) showed it; `file.format()`
    // would have erased it.
    let script = "for k, v in pairs(file.list()) do print(k, v) end\n\
         print(file.exists('nodemcu-sim.toml'), file.open('nodemcu-sim.toml'))\n\
         print(file.open('nodemcu-sim.toml', 'w'), file.remove('nodemcu-sim.toml'))\n\
         local _, used = file.fsinfo() print(used)\n\
         file.format() print(next(file.list()))\n";
    let f = Flash::new(&[
        ("main.lua", script),
        ("nodemcu-sim.toml", "target = \"esp8266\"\n"),
    ]);
    let root = f.path().to_str().unwrap().to_string();
    let r = f.run("main.lua", &["--flash", &root]);
    let size = script.len();
    assert_eq!(
        r.stdout,
        format!("main.lua\t{size}\nfalse\tnil\nnil\n753\nformat done.\nnil\n"),
        "{}",
        r.stderr
    );
    assert!(f.file("nodemcu-sim.toml").exists());
}

#[test]
fn flags_override_the_project_file() {
    let f = Flash::new(&[
        ("init.lua", WHICH_TARGET),
        ("nodemcu-sim.toml", "target = \"host\"\n"),
    ]);
    let r = f.run("init.lua", &["--target", "esp8266"]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "device\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn port_map_entries_merge_and_a_flag_wins_for_its_port() {
    // Each server greets with its device port; the test connects to the host ports the map
    // should have given them. A flag replaces the project's entry for 80 and leaves 81's.
    let script = r#"
for _, port in ipairs({80, 81}) do
  local s = net.createServer(net.TCP, 5)
  s:listen(port, function(c) c:send(tostring(port), function() c:close() end) end)
end
print("ready")
tmr.create():alarm(5000, tmr.ALARM_SINGLE, function() node.restart() end)
"#;
    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let toml = format!("port-map = {{ 80 = {pa}, 81 = {pb} }}\n");
    let f = Flash::new(&[("init.lua", script), ("nodemcu-sim.toml", &toml)]);
    assert_eq!(greetings(&f, &[], &[pa, pb]), ["80", "81"]);
    let flag = format!("80={pc}");
    assert_eq!(
        greetings(&f, &["--port-map", &flag], &[pc, pb]),
        ["80", "81"]
    );
}

/// Starts the device, waits for "ready", and reads what each host port says.
fn greetings(f: &Flash, args: &[&str], ports: &[u16]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(f.file("init.lua"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let got = ports
        .iter()
        .map(|p| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", *p)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    got
}

#[test]
fn an_unknown_key_is_an_error_naming_file_line_and_key() {
    let f = Flash::new(&[
        ("init.lua", "print('ran')\n"),
        ("nodemcu-sim.toml", "target = \"host\"\nfirmwre = \"2.2\"\n"),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert_eq!(r.stdout, "", "the script must not run");
    assert!(r.stderr.contains("nodemcu-sim.toml"), "{}", r.stderr);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert!(r.stderr.contains("firmwre"), "{}", r.stderr);
}

#[test]
fn a_bad_value_is_an_error_naming_its_line() {
    let f = Flash::new(&[
        ("init.lua", "print('ran')\n"),
        ("nodemcu-sim.toml", "\n\nfirmware = \"2.0\"\n"),
    ]);
    let r = f.run("init.lua", &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert!(r.stderr.contains("2.0"), "{}", r.stderr);
}

#[test]
fn config_names_a_project_file_elsewhere_and_must_exist() {
    let f = Flash::new(&[
        ("init.lua", WHICH_TARGET),
        ("other.toml", "target = \"host\"\n"),
    ]);
    let other = f.file("other.toml");
    let r = f.run("init.lua", &["--config", other.to_str().unwrap()]);
    assert_eq!((r.status, r.stdout.as_str()), (0, "host\n"), "{}", r.stderr);
    let missing = f.file("missing.toml");
    let r = f.run("init.lua", &["--config", missing.to_str().unwrap()]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("--config"), "{}", r.stderr);
}

#[test]
fn init_writes_a_starter_file_once_and_run_accepts_it() {
    let f = Flash::new(&[("init.lua", WHICH_TARGET)]);
    let r = sim_in(f.path(), &["init"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(f.file("nodemcu-sim.toml")).unwrap();
    assert!(text.contains("firmware = \"3.0\""), "{text}");
    let r = sim_in(f.path(), &["init"]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(f.file("nodemcu-sim.toml")).unwrap(),
        text
    );
    let r = f.run("init.lua", &[]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (0, "device\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn test_uses_the_project_file_of_the_tested_directory() {
    let ntest = r#"
local N = require "NTest" ("project")
N.test("the project's target", function() ok(eq(io ~= nil, true)) end)
"#;
    let f = Flash::new(&[
        ("NTest_target.lua", ntest),
        ("nodemcu-sim.toml", "target = \"host\"\n"),
    ]);
    let r = sim_in(f.path(), &["test"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let r = sim_in(f.path(), &["test", "--target", "esp32"]);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
