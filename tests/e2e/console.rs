//! The device console (issue 6): `nodemcu-sim` / `console` / `run -i`, driven through a pipe (lines
//! in, the device's prompts and output out) and through a pseudo-terminal (the line editor:
//! prompt, editing, Ctrl-C, completion, history across runs, output above the prompt).

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{BIN, Flash, wait};

/// How long any one expected output may take to show up (generous: CI machines are slow).
const PATIENCE: Duration = Duration::from_secs(20);

fn banner() -> String {
    net_api::banner(net_api::Firmware::V3_0)
}

/// A console run whose stdin is a pipe.
struct Piped {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

fn collect(mut r: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Piped {
    fn start(args: &[&str], cwd: &Path) -> Piped {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nodemcu-sim");
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Piped {
            stdin: child.stdin.take(),
            child,
            out,
            err,
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `needle`, while stdin stays open.
    fn wait_for(&self, needle: &str) {
        let start = Instant::now();
        while !self.stdout().contains(needle) {
            assert!(
                start.elapsed() < PATIENCE,
                "no {needle:?} in stdout: {:?}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes stdin and waits for the run to end: (status, stdout, stderr).
    fn finish(mut self) -> (i32, String, String) {
        drop(self.stdin.take());
        let status = wait(&mut self.child, Duration::from_secs(60));
        // The readers see EOF once the process is gone.
        std::thread::sleep(Duration::from_millis(50));
        let err = String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned();
        (status, self.stdout(), err)
    }
}

/// Runs a console with all of `input` piped in at once.
fn console(input: &str, args: &[&str], flash: &Flash) -> (i32, String, String) {
    let mut s = Piped::start(args, flash.path());
    s.send(input);
    s.finish()
}

/// What the console prints for `error("boom")` typed at the prompt. (The frame below the chunk is
/// the interpreter's caller; 5.3 names it after the global that holds it.)
fn boom_traceback() -> &'static str {
    if cfg!(feature = "lua53") {
        "Lua error: \tstdin:1: boom\nstack traceback:\n\t[C]: in function 'error'\n\tstdin:1: in main chunk\n\t[C]: in function 'xpcall'\n"
    } else {
        "Lua error: \tstdin:1: boom\nstack traceback:\n\t[C]: in function 'error'\n\tstdin:1: in main chunk\n\t[C]: ?\n"
    }
}

#[test]
fn piped_lines_run_with_prompts_multiline_expr_and_errors_without_reset() {
    let flash = Flash::new(&[]);
    let (status, out, err) = console(
        "function add(a, b)\n  return a + b\nend\n=add(2, 3)\n=1+1\nerror('boom')\nprint('still here')\n=1, 'two', nil\n\nx = 1 +\n  41\n=x\n",
        &[],
        &flash,
    );
    assert_eq!(status, 0, "stderr: {err}");
    let expected = format!(
        "{}> >> >> > 5\n> 2\n> {}> still here\n> 1\ttwo\tnil\n> > >> > 42\n> ",
        banner(),
        boom_traceback()
    );
    assert_eq!(out, expected);
    assert_eq!(err, "");
}

#[test]
fn timer_prints_while_the_prompt_waits_and_input_goes_on_after() {
    let flash = Flash::new(&[]);
    let mut s = Piped::start(&[], flash.path());
    s.send("t = tmr.create() t:alarm(200, tmr.ALARM_SINGLE, function() print('tick', tmr.time() >= 0) end)\n");
    // stdin is still open: the device prints the tick while it waits for the next line.
    s.wait_for("tick\ttrue\n");
    s.send("print('after')\n");
    let (status, out, _) = s.finish();
    assert_eq!(status, 0);
    assert_eq!(out, format!("{}> > tick\ttrue\nafter\n> ", banner()));
}

#[test]
fn node_output_captures_print_and_prompts_into_a_pipe_and_node_input_feeds_the_interpreter() {
    let flash = Flash::new(&[]);
    let (status, out, err) = console(
        "captured = {}\n\
         node.output(function(p) captured[#captured + 1] = p:read(1400) return false end, 0)\n\
         print('hidden', 1)\n\
         node.output()\n\
         =#captured, captured[1], captured[2]\n\
         node.input('=6*') node.input('7\\n')\n",
        &[],
        &flash,
    );
    assert_eq!(status, 0, "stderr: {err}");
    // While redirected, neither `print` nor the prompt reached the UART; the reader got them in
    // the order the device wrote them. node.input's text ran once its line was complete, after
    // the line that fed it.
    assert_eq!(
        out,
        format!("{}> > > 2\t> \thidden\t1\n> \n> > 42\n> ", banner())
    );
}

#[test]
fn node_output_with_serial_debug_copies_to_the_uart_and_a_reader_can_repost() {
    let flash = Flash::new(&[]);
    let (status, out, _) = console(
        "n = 0\n\
         node.output(function(p) local s = p:read(4) if s then n = n + 1 end return true end)\n\
         print('abcdefghij')\n\
         node.output()\n\
         =n\n",
        &[],
        &flash,
    );
    assert_eq!(status, 0);
    // The copies went to the UART too (prompts included); the reader ran until the pipe was
    // empty: "> " (2 bytes: one read), then "abcdefghij\n> " (13 bytes: four reads).
    assert_eq!(out, format!("{}> > > abcdefghij\n> > 5\n> ", banner()));
}

#[test]
fn pipe_module_reads_records_and_reports_firmware_errors() {
    let flash = Flash::new(&[]);
    let (status, out, _) = console(
        "p = pipe.create()\n\
         p:write('ab\\ncd\\nef')\n\
         =p:read(), p:read('\\n+'), p:read(), p:read(), p:nrec(), #p\n\
         p:write(string.rep('x', 600))\n\
         =p:nrec(), #p:read(300), p:nrec()\n\
         p:unread('head')\n\
         =p:read(6)\n\
         r = p:reader(100)\n\
         k = 0 for rec in r do k = k + 1 end\n\
         =k, p:read()\n\
         =pcall(function() local r = p:read(0) return r end)\n\
         =pcall(function() local r = p:read('ab') return r end)\n\
         =pcall(function() local r = pipe.create(1) return r end)\n\
         =pcall(function() local r = pipe.create(print, 5) return r end)\n\
         =type(p), tostring(p):match('^Pipe: ') ~= nil\n",
        &[],
        &flash,
    );
    assert_eq!(status, 0);
    let expected = [
        "> ",
        "> ",
        "ab\tcd\n\tef\tnil\t0\t1\n> ",
        "> ",
        "3\t300\t2\n> ",
        "> ",
        "headxx\n> ",
        "> ",
        "> ",
        "3\tnil\n> ",
        "false\tstdin:1: bad argument #1 to 'read' (invalid chunk size)\n> ",
        "false\tstdin:1: bad argument #1 to 'read' (invalid delimiter)\n> ",
        "false\tstdin:1: bad argument #1 to 'create' (function expected, got number)\n> ",
        "false\tstdin:1: bad argument #2 to 'create' (invalid priority)\n> ",
        "userdata\ttrue\n> ",
    ]
    .concat();
    assert_eq!(out, format!("{}> {expected}", banner()));
}

#[test]
fn init_lua_runs_first_unless_no_init_and_its_error_does_not_stop_the_console() {
    let flash = Flash::new(&[("init.lua", "print('init ran') greeting = 'hello'\n")]);
    let (status, out, _) = console("=greeting\n", &[], &flash);
    assert_eq!(status, 0);
    assert_eq!(out, format!("{}init ran\n> hello\n> ", banner()));

    let (status, out, _) = console("=greeting\n", &["console", "--no-init"], &flash);
    assert_eq!(status, 0);
    assert_eq!(out, format!("{}> nil\n> ", banner()));

    let broken = Flash::new(&[("init.lua", "error('bad init')\n")]);
    let (status, out, _) = console("=1\n", &["console"], &broken);
    assert_eq!(status, 0);
    let rest = out.strip_prefix(&banner()).expect("banner first");
    assert!(
        rest.starts_with("init.lua:1: bad init\nstack traceback:\n"),
        "{rest:?}"
    );
    assert!(rest.ends_with("\n> 1\n> "), "{rest:?}");
}

#[test]
fn flash_and_device_flags_apply_to_the_console() {
    let flash = Flash::new(&[("lib.lua", "return { answer = 42 }\n")]);
    let elsewhere = Flash::new(&[]);
    let dir = flash.path().to_str().unwrap();
    let (status, out, _) = console(
        "=require('lib').answer\n=io ~= nil\n",
        &["--flash", dir, "--target", "host"],
        &elsewhere,
    );
    assert_eq!(status, 0);
    assert_eq!(out, format!("{}> 42\n> true\n> ", banner()));
}

#[test]
fn run_interactive_runs_the_script_then_opens_the_console_on_the_same_device() {
    let flash = Flash::new(&[(
        "app.lua",
        "print('app ran') function greet(n) return 'hi ' .. n end\n",
    )]);
    let mut s = Piped::start(&["run", "-i", "app.lua"], flash.path());
    s.send("=greet('board')\n");
    let (status, out, err) = s.finish();
    assert_eq!(status, 0, "stderr: {err}");
    assert_eq!(out, "app ran\n> hi board\n> ");
}

#[test]
fn end_of_input_waits_for_pending_work_unless_exit_on_eof() {
    let flash = Flash::new(&[]);
    let (status, out, _) = console(
        "tmr.create():alarm(300, tmr.ALARM_SINGLE, function() print('later') end)\n",
        &[],
        &flash,
    );
    assert_eq!(status, 0);
    assert_eq!(out, format!("{}> > later\n", banner()));

    let start = Instant::now();
    let (status, out, _) = console(
        "tmr.create():alarm(60000, tmr.ALARM_AUTO, function() print('never') end)\n=1\n",
        &["--exit-on-eof"],
        &flash,
    );
    assert_eq!(status, 0);
    assert_eq!(out, format!("{}> > 1\n> ", banner()));
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_reset_at_the_console_ends_the_run_with_its_status_or_reboots_with_the_banner() {
    let flash = Flash::new(&[("init.lua", "print('booted')\n")]);
    // As on the board, the restart waits for the line to finish, so its prompt is printed.
    let (status, out, err) = console("node.restart()\nprint('gone')\n", &[], &flash);
    assert_eq!(status, 6, "{err}");
    assert_eq!(out, format!("{}booted\n> > ", banner()));

    let mut s = Piped::start(&["--on-reset", "restart"], flash.path());
    s.send("node.restart()\n");
    s.wait_for(&format!("{b}booted\n> > {b}booted\n> ", b = banner()));
    s.send("=node.bootreason()\n");
    let (status, out, _) = s.finish();
    assert_eq!(status, 0);
    assert_eq!(
        out,
        format!("{b}booted\n> > {b}booted\n> 2\t4\n> ", b = banner())
    );
}

#[test]
fn virtual_time_does_not_jump_while_the_console_is_open_and_jumps_after_end_of_input() {
    let flash = Flash::new(&[]);
    let start = Instant::now();
    let mut s = Piped::start(&["--virtual-time"], flash.path());
    s.send(
        "tmr.create():alarm(3600000, tmr.ALARM_SINGLE, function() print('an hour later') end)\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    s.send("print('still waiting')\n");
    s.wait_for("still waiting\n> ");
    // Typed input could come at any moment, so the hour has not been skipped...
    assert!(!s.stdout().contains("an hour later"));
    // ...until the input ends: then the clock jumps and the run ends.
    let (status, out, _) = s.finish();
    assert_eq!(status, 0);
    assert!(out.ends_with("still waiting\n> an hour later\n"), "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn node_input_runs_lines_under_plain_run_too() {
    let flash = Flash::new(&[(
        "init.lua",
        "node.input('print(40 + 2)\\n') node.input('=') node.input('\"ok\"\\n') print('main done')\n",
    )]);
    let r = flash.run("init.lua", &[]);
    assert_eq!(r.status, 0, "{r:?}");
    // No console is open, so no first prompt; the interpreter's prompts still go to the UART.
    assert_eq!(r.stdout, "main done\n42\n> ok\n> ");
}

/// Through a pseudo-terminal (`console/tty.rs`).
#[cfg(unix)]
mod tty;
