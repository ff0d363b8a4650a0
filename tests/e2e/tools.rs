//! The upload tools people use with their boards, run for real against `serial --pty`:
//! nodemcu-uploader and nodemcuload (PyPI) and NodeMCU-Tool (npm). `.ci/run` installs them; a
//! missing tool fails the test with the command that installs it.

#![cfg(unix)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{BIN, Flash};

/// A device serving `serial --pty` at a path inside its flash directory's parent.
struct PtyDevice {
    child: Child,
    link: std::path::PathBuf,
    flash: Flash,
    _dir: tempfile::TempDir,
}

impl PtyDevice {
    fn start(args: &[&str]) -> PtyDevice {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ttyUSB0");
        let flash = Flash::new(&[]);
        let child = Command::new(BIN)
            .arg("serial")
            .arg("--flash")
            .arg(flash.path())
            .arg("--pty")
            .arg(&link)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !link.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "no {link:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        PtyDevice {
            child,
            link,
            flash,
            _dir: dir,
        }
    }
}

impl Drop for PtyDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs nodemcu-uploader (PyPI) in `cwd` against the device, with the documented shim that lets
/// pyserial accept a port without modem lines. Fails, never skips, when the tool is missing.
fn uploader(dev: &PtyDevice, cwd: &std::path::Path, args: &[&str]) -> String {
    let shim =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pty-modem-lines");
    let out = Command::new("python3")
        .args(["-m", "nodemcu_uploader", "--port"])
        .arg(&dev.link)
        .args(args)
        .current_dir(cwd)
        .env("PYTHONPATH", shim)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed to run nodemcu-uploader (pip install nodemcu-uploader): {e}")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("No module named nodemcu_uploader"),
        "this test needs nodemcu-uploader: pip install nodemcu-uploader"
    );
    assert!(out.status.success(), "nodemcu-uploader {args:?}: {text}");
    text
}

#[test]
fn nodemcu_uploader_uploads_downloads_lists_runs_removes_and_formats() {
    let dev = PtyDevice::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let small = "print('hello from ' .. 'upload')\n".to_string();
    let big: String = (0..400)
        .map(|i| format!("-- line {i} {}\n", "x".repeat(10 + i * 7 % 50)))
        .collect();
    assert!(big.len() > 10_000);
    std::fs::write(work.path().join("small.lua"), &small).unwrap();
    std::fs::write(work.path().join("big.lua"), &big).unwrap();

    uploader(&dev, work.path(), &["upload", "small.lua", "big.lua"]);
    assert_eq!(
        std::fs::read_to_string(dev.flash.file("small.lua")).unwrap(),
        small
    );
    assert_eq!(
        std::fs::read_to_string(dev.flash.file("big.lua")).unwrap(),
        big
    );

    let list = uploader(&dev, work.path(), &["file", "list"]);
    assert!(
        list.contains(&format!("big.lua{}{}", " ".repeat(31 - 7), big.len())),
        "{list}"
    );
    assert!(list.contains("small.lua"), "{list}");

    let down = tempfile::tempdir().unwrap();
    uploader(&dev, down.path(), &["download", "big.lua"]);
    assert_eq!(
        std::fs::read(down.path().join("big.lua")).unwrap(),
        big.as_bytes()
    );

    let ran = uploader(&dev, work.path(), &["file", "do", "small.lua"]);
    assert!(ran.contains("hello from upload"), "{ran}");

    uploader(&dev, work.path(), &["file", "remove", "big.lua"]);
    assert!(!dev.flash.file("big.lua").exists());

    uploader(&dev, work.path(), &["node", "restart"]);
    let list = uploader(&dev, work.path(), &["file", "list"]);
    assert!(
        list.contains("small.lua"),
        "the flash survives a restart: {list}"
    );

    uploader(&dev, work.path(), &["file", "format"]);
    assert!(!dev.flash.file("small.lua").exists());
}

/// A Lua file of `lines` lines with tabs, quotes and backslashes, as device scripts have.
fn script(lines: usize) -> String {
    (0..lines)
        .map(|i| {
            format!(
                "\tlocal s{i} = \"line {i}\\t'{}'\" -- {}\n",
                "x".repeat(i * 7 % 50),
                i
            )
        })
        .collect()
}

/// Runs NodeMCU-Tool (npm) in `cwd` against the device; its output without colours.
fn nodemcu_tool(dev: &PtyDevice, cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("nodemcu-tool")
        .arg("--port")
        .arg(&dev.link)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs NodeMCU-Tool: npm install -g nodemcu-tool ({e})")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let text = strip_colours(&text);
    assert!(out.status.success(), "nodemcu-tool {args:?}: {text}");
    assert!(
        !text.contains("Unable to establish connection"),
        "nodemcu-tool {args:?}: {text}"
    );
    text
}

fn strip_colours(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn nodemcu_tool_uploads_downloads_lists_runs_removes_resets_and_formats() {
    let dev = PtyDevice::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let small = "print('hello from ' .. 'nodemcu-tool')\n";
    let big = script(300);
    assert!(big.len() > 10_000);
    std::fs::write(work.path().join("small.lua"), small).unwrap();
    std::fs::write(work.path().join("big.lua"), &big).unwrap();

    let up = nodemcu_tool(&dev, work.path(), &["upload", "small.lua", "big.lua"]);
    assert!(up.contains("Arch: esp8266 | Version: 3.0.0"), "{up}");
    assert_eq!(
        std::fs::read_to_string(dev.flash.file("small.lua")).unwrap(),
        small
    );
    assert_eq!(
        std::fs::read_to_string(dev.flash.file("big.lua")).unwrap(),
        big
    );

    let info = nodemcu_tool(&dev, work.path(), &["fsinfo"]);
    assert!(info.contains("2 Files"), "{info}");
    assert!(
        info.contains(&format!("big.lua ({} Bytes)", big.len())),
        "{info}"
    );

    let ran = nodemcu_tool(&dev, work.path(), &["run", "small.lua"]);
    assert!(ran.contains("hello from nodemcu-tool"), "{ran}");

    // Download leaves an unfinished line on the console (the tool sends `undefined` to close
    // the file); the next tool to open the port must still find the interpreter ready.
    let down = tempfile::tempdir().unwrap();
    let got = nodemcu_tool(&dev, down.path(), &["download", "big.lua"]);
    assert!(got.contains("Data Transfer complete!"), "{got}");
    let name = std::fs::read_dir(down.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read(name).unwrap(), big.as_bytes());

    nodemcu_tool(&dev, work.path(), &["remove", "big.lua"]);
    assert!(!dev.flash.file("big.lua").exists());

    let reset = nodemcu_tool(&dev, work.path(), &["reset", "--softreset"]);
    assert!(reset.contains("Soft-Reset executed"), "{reset}");
    let info = nodemcu_tool(&dev, work.path(), &["fsinfo"]);
    assert!(
        info.contains("small.lua"),
        "the flash survives a restart: {info}"
    );

    nodemcu_tool(&dev, work.path(), &["mkfs", "--noninteractive"]);
    assert!(!dev.flash.file("small.lua").exists());
}

/// Runs nodemcuload (PyPI) against the device with `stdin` as its input; its standard output.
fn nodemcuload(dev: &PtyDevice, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pty-modem-lines");
    let mut child = Command::new("python3")
        .args(["-m", "nodemcuload", "--baudrate", "115200", "--port"])
        .arg(&dev.link)
        .args(args)
        .env("PYTHONPATH", shim)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed to run nodemcuload: {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named nodemcuload"),
        "this test needs nodemcuload: pip install nodemcuload"
    );
    assert!(out.status.success(), "nodemcuload {args:?}: {err}");
    out.stdout
}

#[test]
fn nodemcuload_writes_reads_lists_runs_renames_deletes_and_formats() {
    // nodemcuload talks only to firmware 1.4 to 1.x (it checks `node.info()`).
    let dev = PtyDevice::start(&["--firmware", "1.5"]);
    // nodemcuload escapes bytes outside printable ASCII as `\xNN`, which Lua 5.3 reads and Lua
    // 5.1 does not (it reads `\x` as `x`), on a board as here: a 5.1 firmware gets printable
    // one-line files intact, a 5.3 one everything.
    let lua53 = cfg!(feature = "lua53");
    let small = "print('hello from ' .. 'nodemcuload')";
    let big = if lua53 {
        script(300)
    } else {
        "-- ".to_string() + &"x".repeat(10_500)
    };
    nodemcuload(&dev, &["--write", "small.lua"], small.as_bytes());
    nodemcuload(&dev, &["--write", "big.lua"], big.as_bytes());
    assert_eq!(
        std::fs::read_to_string(dev.flash.file("small.lua")).unwrap(),
        small
    );
    assert_eq!(
        std::fs::read_to_string(dev.flash.file("big.lua")).unwrap(),
        big
    );

    assert_eq!(
        nodemcuload(&dev, &["--read", "big.lua"], b""),
        big.as_bytes()
    );
    let list = String::from_utf8(nodemcuload(&dev, &["--list"], b"")).unwrap();
    assert!(list.contains("big.lua"), "{list}");
    assert!(list.contains(&big.len().to_string()), "{list}");

    // `--dofile` is left out: nodemcuload 0.0.2 writes bytes to a text stream and fails under
    // Python 3 before it reads anything from the port.
    nodemcuload(&dev, &["--move", "small.lua", "init.lua"], b"");
    assert!(dev.flash.file("init.lua").exists());
    nodemcuload(&dev, &["--delete", "big.lua"], b"");
    assert!(!dev.flash.file("big.lua").exists());
    nodemcuload(&dev, &["--restart"], b"");
    nodemcuload(&dev, &["--format"], b"");
    assert!(!dev.flash.file("init.lua").exists());
}

/// One tool's session on the pty at `link`: opens it, sends `input`, reads until the output
/// holds `until`, then closes it, as a tool that exits does. The output seen.
fn session(
    child: &mut std::process::Child,
    link: &std::path::Path,
    input: &[u8],
    until: &str,
) -> String {
    session_then(child, link, input, until, || ())
}

/// [`session`], calling `before_close` once the output is seen and before the port closes.
fn session_then(
    child: &mut std::process::Child,
    link: &std::path::Path,
    input: &[u8],
    until: &str,
    before_close: impl FnOnce(),
) -> String {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(link)
        .unwrap();
    let mut reader = tty.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let want = until.to_string();
    let thread = std::thread::spawn(move || {
        let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
        while let Ok(n) = reader.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&seen).contains(&want) {
                break;
            }
        }
        (String::from_utf8_lossy(&seen).into_owned(), reader)
    });
    tty.write_all(input).unwrap();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(thread.join().unwrap());
    });
    let (seen, reader) = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| {
            let _ = child.kill(); // unblocks the reader
            panic!("no {until:?} on the port");
        });
    waiter.join().unwrap();
    before_close();
    drop((tty, reader));
    seen
}

#[test]
fn a_tool_opening_the_port_finds_the_interpreter_ready() {
    // The first tool leaves an unfinished chunk (`undefined` waits for its `=`) and half a line;
    // the next one to open the port starts at a clean interpreter.
    let mut dev = PtyDevice::start(&[]);
    let link = dev.link.clone();
    for round in 0..10 {
        let first = session(
            &mut dev.child,
            &link,
            b"undefined\r\nprint('ha",
            ">> print('ha",
        );
        // (The boot banner may come first, in the first round.)
        assert!(
            first.ends_with("undefined\r\n>> print('ha"),
            "round {round}: {first:?}"
        );
        let next = session(&mut dev.child, &link, b"print('fresh')\r\n", "> ");
        assert_eq!(next, "print('fresh')\r\nfresh\r\n> ", "round {round}");
    }
}

#[test]
fn a_tool_reopening_the_port_at_once_finds_the_interpreter_ready() {
    // The simulator is stopped while one tool closes the port and the next opens it, so no
    // failed read shows the port closed in between: the kernel's count of opens tells them apart.
    let mut dev = PtyDevice::start(&[]);
    let link = dev.link.clone();
    let pid = dev.child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig}");
    };
    let input = b"undefined\r\nprint('ha";
    let first = session_then(&mut dev.child, &link, input, ">> print('ha", || {
        signal("-STOP")
    });
    assert!(first.ends_with("undefined\r\n>> print('ha"), "{first:?}");
    let resume = {
        let pid = pid.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            Command::new("kill").args(["-CONT", &pid]).status().unwrap()
        })
    };
    let next = session(&mut dev.child, &link, b"print('fresh')\r\n", "> ");
    assert!(resume.join().unwrap().success());
    assert_eq!(next, "print('fresh')\r\nfresh\r\n> ");
}
