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
    net_api::banner()
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

#[cfg(unix)]
mod tty {
    //! Through a pseudo-terminal: the editor's prompt, editing keys, Ctrl-C, completion, output
    //! above the prompt and history across runs.

    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::PATIENCE;
    use crate::support::{BIN, Flash, wait};

    struct Pty {
        master: File,
        child: Child,
        screen: Arc<Mutex<Vec<u8>>>,
        /// Where the next `expect` starts looking.
        seen: usize,
    }

    impl Pty {
        fn start(args: &[&str], cwd: &Path, data_home: &Path) -> Pty {
            let (mut m, mut s) = (-1, -1);
            let size = libc::winsize {
                ws_row: 40,
                ws_col: 120,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: openpty writes two descriptors we then own.
            let rc = unsafe {
                libc::openpty(
                    &mut m,
                    &mut s,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    &size,
                )
            };
            assert_eq!(rc, 0, "openpty");
            // SAFETY: fresh descriptors from openpty.
            let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
            let mut cmd = Command::new(BIN);
            cmd.args(args)
                .current_dir(cwd)
                .env("TERM", "xterm")
                .env("XDG_DATA_HOME", data_home)
                .env("HOME", data_home)
                .stdin(Stdio::from(slave.try_clone().unwrap()))
                .stdout(Stdio::from(slave.try_clone().unwrap()))
                .stderr(Stdio::from(slave));
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY as _, 0);
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("spawn nodemcu-sim on a pty");
            drop(cmd);
            let master = File::from(master);
            let screen = Arc::new(Mutex::new(Vec::new()));
            let (mut reader, sc) = (master.try_clone().unwrap(), screen.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // EIO once the child is gone and the slave is closed.
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sc.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            Pty {
                master,
                child,
                screen,
                seen: 0,
            }
        }

        fn send(&mut self, keys: &str) {
            self.master.write_all(keys.as_bytes()).unwrap();
            self.master.flush().unwrap();
        }

        fn screen(&self) -> String {
            String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
        }

        /// Waits for `needle` to appear after what earlier expectations matched.
        fn expect(&mut self, needle: &str) {
            let start = Instant::now();
            loop {
                let screen = self.screen.lock().unwrap().clone();
                if let Some(i) = find(&screen[self.seen.min(screen.len())..], needle.as_bytes()) {
                    self.seen += i + needle.len();
                    return;
                }
                assert!(
                    start.elapsed() < PATIENCE,
                    "no {needle:?} on the terminal after byte {}: {:?}",
                    self.seen,
                    self.screen()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn exit_status(&mut self) -> i32 {
            wait(&mut self.child, Duration::from_secs(30))
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn prompt_line_editing_and_ctrl_c() {
        let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
        let mut t = Pty::start(&[], flash.path(), home.path());
        t.expect("powered by Lua");
        t.expect("> ");
        // Ctrl-A, then Right twice, then insert: "prnt" becomes "print".
        t.send("prnt(6*7, 'edited')\x01\x1b[C\x1b[Ci\r");
        t.expect("42\tedited");
        t.expect("> ");
        // Ctrl-C drops the line being typed; nothing of it runs. (The editor drops keys typed
        // ahead of a Ctrl-C, so wait for the fresh prompt.)
        t.send("this is not lua\x03");
        t.expect("this is not lua");
        t.expect("> ");
        t.send("=1+2\r");
        t.expect("\r\n3\r\n");
        // At a continuation prompt Ctrl-C drops the whole chunk.
        t.send("function half()\r");
        t.expect(">> ");
        t.send("\x03");
        t.expect("> ");
        t.send("=half\r");
        t.expect("\r\nnil\r\n");
        assert!(!t.screen().contains("Lua error"), "{}", t.screen());
        // Ctrl-D leaves, even with a timer that would keep the device running.
        t.send("tmr.create():alarm(1000, tmr.ALARM_AUTO, function() end)\r");
        t.expect("> ");
        t.send("\x04");
        assert_eq!(t.exit_status(), 0);
    }

    #[test]
    fn timer_output_prints_above_the_line_being_typed() {
        let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
        let mut t = Pty::start(&[], flash.path(), home.path());
        t.expect("> ");
        t.send(
            "tmr.create():alarm(300, tmr.ALARM_SINGLE, function() print('tick from timer') end)\r",
        );
        t.expect("> ");
        // Half a line typed when the timer fires: the tick prints above it, the line survives.
        t.send("answer = 4");
        t.expect("tick from timer");
        t.send("2\r");
        t.expect("> ");
        t.send("=answer\r");
        t.expect("\r\n42\r\n");
        t.send("\x04");
        assert_eq!(t.exit_status(), 0);
    }

    #[test]
    fn tab_completes_module_members_and_methods() {
        let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
        let mut t = Pty::start(&[], flash.path(), home.path());
        t.expect("> ");
        t.send("tm = tmr.cre\t");
        t.expect("tmr.create");
        t.send("()\r");
        t.expect("> ");
        t.send("=tm:stat\t");
        t.expect("tm:state");
        t.send("()\r");
        t.expect("\r\nnil\r\n");
        t.send("\x04");
        assert_eq!(t.exit_status(), 0);
    }

    #[test]
    fn history_is_recalled_across_runs() {
        let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
        let mut t = Pty::start(&[], flash.path(), home.path());
        t.expect("> ");
        t.send("print('remembered ' .. 20 + 1)\r");
        t.expect("remembered 21");
        t.send("\x04");
        assert_eq!(t.exit_status(), 0);
        let file = home.path().join("nodemcu-sim").join("history");
        let saved = std::fs::read_to_string(&file).expect("history file");
        assert!(saved.contains("print('remembered ' .. 20 + 1)"), "{saved}");

        let mut t = Pty::start(&[], flash.path(), home.path());
        t.expect("> ");
        t.send("\x1b[A\r");
        t.expect("remembered 21");
        t.send("\x04");
        assert_eq!(t.exit_status(), 0);
    }

    #[test]
    fn a_reset_while_the_prompt_is_up_ends_the_run_and_gives_the_terminal_back() {
        let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
        let mut t = Pty::start(&[], flash.path(), home.path());
        t.expect("> ");
        t.send("tmr.create():alarm(200, tmr.ALARM_SINGLE, function() node.restart() end)\r");
        t.expect("> ");
        t.expect("device reset: node.restart()");
        assert_eq!(t.exit_status(), 6);
        // Bracketed paste was switched off again on the way out.
        assert!(t.screen().contains("\x1b[?2004l"), "{:?}", t.screen());
    }
}
