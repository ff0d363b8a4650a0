//! The console through a pseudo-terminal: the editor's prompt, editing keys, Ctrl-C, completion,
//! output above the prompt, history across runs, and the terminal given back after a reset. The
//! pty comes from `openpty` (libc); the expectations read the raw terminal stream.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

    /// Waits for the editor's next fresh prompt `p`: each `readline` starts by switching
    /// bracketed paste on, so a redraw of the line being edited can't be taken for it.
    fn expect_prompt(&mut self, p: &str) {
        self.expect("\x1b[?2004h");
        self.expect(p);
    }

    /// Whether the terminal is back in cooked mode (line editing and echo by the kernel).
    fn cooked(&self) -> bool {
        // SAFETY: tcgetattr on our own master fd; on Linux it reports the pair's settings.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self.master.as_raw_fd(), &mut t), 0);
            t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
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
    t.expect_prompt("> ");
    // Ctrl-A, then Right twice, then insert: "prnt" becomes "print".
    t.send("prnt(6*7, 'edited')\x01\x1b[C\x1b[Ci\r");
    t.expect("42\tedited");
    t.expect_prompt("> ");
    // Ctrl-C drops the line being typed; nothing of it runs. (The editor drops keys typed
    // ahead of a Ctrl-C, so wait for the fresh prompt.)
    t.send("this is not lua\x03");
    t.expect("this is not lua");
    t.expect_prompt("> ");
    t.send("=1+2\r");
    t.expect("\r\n3\r\n");
    // Keys are typed only at a fresh prompt: typed ahead, they may be dropped, and the next
    // `expect_prompt` would match the prompt that was already there.
    t.expect_prompt("> ");
    // At a continuation prompt Ctrl-C drops the whole chunk.
    t.send("function half()\r");
    t.expect_prompt(">> ");
    t.send("\x03");
    t.expect_prompt("> ");
    t.send("=half\r");
    t.expect("\r\nnil\r\n");
    t.expect_prompt("> ");
    assert!(!t.screen().contains("Lua error"), "{}", t.screen());
    // Ctrl-D leaves, even with a timer that would keep the device running.
    t.send("tmr.create():alarm(1000, tmr.ALARM_AUTO, function() end)\r");
    t.expect_prompt("> ");
    t.send("\x04");
    assert_eq!(t.exit_status(), 0);
}

#[test]
fn timer_output_prints_above_the_line_being_typed() {
    let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
    let mut t = Pty::start(&[], flash.path(), home.path());
    t.expect_prompt("> ");
    t.send("tmr.create():alarm(300, tmr.ALARM_SINGLE, function() print('tick from timer') end)\r");
    t.expect_prompt("> ");
    // Half a line typed when the timer fires: the tick prints above it, the line survives.
    t.send("answer = 4");
    t.expect("tick from timer");
    t.send("2\r");
    t.expect_prompt("> ");
    t.send("=answer\r");
    t.expect("\r\n42\r\n");
    t.expect_prompt("> ");
    t.send("\x04");
    assert_eq!(t.exit_status(), 0);
}

#[test]
fn tab_completes_module_members_and_methods() {
    let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
    let mut t = Pty::start(&[], flash.path(), home.path());
    t.expect_prompt("> ");
    t.send("tm = tmr.cre\t");
    t.expect("tmr.create");
    t.send("()\r");
    t.expect_prompt("> ");
    t.send("=tm:stat\t");
    t.expect("tm:state");
    t.send("()\r");
    t.expect("\r\nnil\r\n");
    t.expect_prompt("> ");
    t.send("\x04");
    assert_eq!(t.exit_status(), 0);
}

#[test]
fn history_is_recalled_across_runs() {
    let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
    let mut t = Pty::start(&[], flash.path(), home.path());
    t.expect_prompt("> ");
    t.send("print('remembered ' .. 20 + 1)\r");
    t.expect("remembered 21");
    t.expect_prompt("> ");
    t.send("\x04");
    assert_eq!(t.exit_status(), 0);
    let file = home.path().join("nodemcu-sim").join("history");
    let saved = std::fs::read_to_string(&file).expect("history file");
    assert!(saved.contains("print('remembered ' .. 20 + 1)"), "{saved}");

    let mut t = Pty::start(&[], flash.path(), home.path());
    t.expect_prompt("> ");
    t.send("\x1b[A\r");
    t.expect("remembered 21");
    t.expect_prompt("> ");
    t.send("\x04");
    assert_eq!(t.exit_status(), 0);
}

#[test]
fn a_reset_while_the_prompt_is_up_ends_the_run_and_gives_the_terminal_back() {
    let (flash, home) = (Flash::new(&[]), tempfile::tempdir().unwrap());
    let mut t = Pty::start(&[], flash.path(), home.path());
    t.expect_prompt("> ");
    t.send("tmr.create():alarm(200, tmr.ALARM_SINGLE, function() node.restart() end)\r");
    t.expect_prompt("> ");
    t.expect("device reset: node.restart()");
    assert_eq!(t.exit_status(), 6);
    // The terminal is given back as it was: cooked mode, bracketed paste off.
    assert!(t.cooked(), "the terminal was left in raw mode");
    let screen = t.screen();
    let (on, off) = (screen.rfind("\x1b[?2004h"), screen.rfind("\x1b[?2004l"));
    assert!(off > on, "bracketed paste left on: {screen:?}");
}
