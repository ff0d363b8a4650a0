//! `nodemcu-sim serial`: the UART as a byte stream (echo, CR/LF/CRLF, `\r\n` output, raw
//! `uart.write`), `uart.on("data")` in its forms, and the pseudo-terminal of `--pty`.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{BIN, Flash};

/// A device in serial mode, its output collected as it comes.
struct Port {
    child: Child,
    input: Box<dyn Write + Send>,
    output: Arc<Mutex<Vec<u8>>>,
    /// How much of the output earlier expectations consumed.
    seen: usize,
    _flash: Flash,
}

impl Port {
    fn start(flash: Flash, args: &[&str]) -> Port {
        let mut child = Command::new(BIN)
            .arg("serial")
            .arg("--flash")
            .arg(flash.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nodemcu-sim serial");
        let input = Box::new(child.stdin.take().unwrap());
        let output = collect(child.stdout.take().unwrap());
        Port {
            child,
            input,
            output,
            seen: 0,
            _flash: flash,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.input.write_all(bytes).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits until the output after what was already seen ends with `tail`, and returns it.
    fn until(&mut self, tail: &[u8]) -> Vec<u8> {
        let start = Instant::now();
        loop {
            {
                let out = self.output.lock().unwrap();
                if out[self.seen..].ends_with(tail) {
                    let got = out[self.seen..].to_vec();
                    self.seen = out.len();
                    return got;
                }
            }
            if start.elapsed() > Duration::from_secs(10) {
                let out = self.output.lock().unwrap();
                panic!(
                    "no {:?} in {:?}",
                    String::from_utf8_lossy(tail),
                    String::from_utf8_lossy(&out[self.seen..])
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a line and returns everything up to the next prompt.
    fn run(&mut self, line: &[u8]) -> String {
        self.send(line);
        String::from_utf8_lossy(&self.until(b"> ")).into_owned()
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            o.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    out
}

fn booted(files: &[(&str, &str)], args: &[&str]) -> Port {
    let mut port = Port::start(Flash::new(files), args);
    let boot = String::from_utf8_lossy(&port.until(b"> ")).into_owned();
    assert!(boot.starts_with("\r\nNodeMCU "), "{boot:?}");
    assert!(boot.ends_with("\r\n> "), "{boot:?}");
    port
}

#[test]
fn each_byte_is_echoed_and_output_lines_end_in_crlf() {
    let mut p = booted(&[], &[]);
    assert_eq!(p.run(b"print(1+1)\r\n"), "print(1+1)\r\n2\r\n> ");
    assert_eq!(p.run(b"print('a\\nb')\n"), "print('a\\nb')\r\na\r\nb\r\n> ");
}

#[test]
fn cr_lf_and_crlf_each_end_one_line() {
    let mut p = booted(&[], &[]);
    assert_eq!(p.run(b"print(1)\r"), "print(1)\r\n1\r\n> ");
    assert_eq!(p.run(b"print(2)\n"), "print(2)\r\n2\r\n> ");
    assert_eq!(p.run(b"print(3)\r\n"), "print(3)\r\n3\r\n> ");
    // An empty line only gets the prompt again; a CRLF pair is one line end, not two.
    assert_eq!(p.run(b"\r\n"), "\r\n> ");
}

#[test]
fn a_line_runs_and_prompts_before_the_next_is_echoed() {
    // On a board a line has run long before the serial port brings the next byte, so a tool
    // that sends the next command as soon as it sees the echo finds that command's echo after
    // the prompt (nodemcuload reads `> ` as part of the echo line). Lines that arrive together
    // behave the same, a multi-line chunk too.
    let mut p = booted(&[], &[]);
    p.send(b"print(1)\r\nfor i = 2, 3 do\r\nprint(i) end\r\n=4\r\n");
    assert_eq!(
        String::from_utf8_lossy(&p.until(b"4\r\n> ")),
        "print(1)\r\n1\r\n> for i = 2, 3 do\r\n>> print(i) end\r\n2\r\n3\r\n> =4\r\n4\r\n> "
    );
}

#[test]
fn backspace_takes_back_a_byte() {
    let mut p = booted(&[], &[]);
    assert_eq!(
        p.run(b"print(12\x7f3)\r"),
        "print(12\x08 \x083)\r\n13\r\n> "
    );
}

#[test]
fn uart_write_stays_raw_while_print_translates() {
    let mut p = booted(&[], &[]);
    assert_eq!(
        p.run(b"uart.write(0, 'x\\ny\\r\\n', 65) print('z')\r"),
        "uart.write(0, 'x\\ny\\r\\n', 65) print('z')\r\nx\ny\r\nAz\r\n> "
    );
}

#[test]
fn setup_can_turn_the_echo_off() {
    let mut p = booted(&[], &[]);
    assert_eq!(
        p.run(b"print(uart.setup(0, 9600, 8, uart.PARITY_NONE, uart.STOPBITS_1, 0))\r"),
        "print(uart.setup(0, 9600, 8, uart.PARITY_NONE, uart.STOPBITS_1, 0))\r\n9600\r\n> "
    );
    assert_eq!(p.run(b"print(uart.getconfig(0))\r"), "9600\t8\t0\t1\r\n> ");
}

#[test]
fn on_data_with_a_count_takes_the_input_from_the_interpreter() {
    let mut p = booted(&[], &[]);
    p.run(b"uart.on('data', 4, function(d) print('got[' .. d .. ']') if d == 'quit' then uart.on('data') end end, 0)\r");
    p.send(b"abcdefg");
    assert_eq!(p.until(b"got[abcd]\r\n"), b"got[abcd]\r\n");
    p.send(b"hquit");
    assert_eq!(p.until(b"got[quit]\r\n"), b"got[efgh]\r\ngot[quit]\r\n");
    // Unregistered: the interpreter has the input again.
    assert_eq!(p.run(b"print(5)\r"), "print(5)\r\n5\r\n> ");
}

#[test]
fn on_data_with_an_end_char_and_each_byte() {
    let mut p = booted(&[], &[]);
    p.run(b"uart.on('data', ';', function(d) print('[' .. d .. ']') \
        if d == 'z;' then uart.on('data', 0, function(b) uart.write(0, b:byte(), 46) end, 0) end end, 0)\r");
    p.send(b"ab;c\r\n;");
    // Line ends are data here: they are neither echoed nor run.
    let want = b"[ab;]\r\n[c\r\n;]\r\n";
    assert_eq!(p.until(want), want);
    p.send(b"z;AB");
    assert_eq!(p.until(b"[z;]\r\nA.B."), b"[z;]\r\nA.B.");
}

#[test]
fn on_data_with_run_input_sees_each_line_before_it_runs() {
    let mut p = booted(&[], &[]);
    p.run(b"uart.on('data', function(d) uart.write(0, '<' .. d .. '>') end)\r");
    assert_eq!(p.run(b"print(7)\r"), "print(7)\r\n<print(7)>7\r\n> ");
}

#[test]
fn on_data_argument_errors_are_the_firmwares() {
    let mut p = booted(&[], &[]);
    assert_eq!(
        p.run(b"print(pcall(uart.on, 'receive', print))\r"),
        "print(pcall(uart.on, 'receive', print))\r\nfalse\tbad argument #1 to '?' (method not supported)\r\n> "
    );
    assert_eq!(
        p.run(b"print(pcall(uart.on, 'data', 256, print))\r"),
        "print(pcall(uart.on, 'data', 256, print))\r\nfalse\tbad argument #2 to '?' (wrong arg range)\r\n> "
    );
    assert_eq!(
        p.run(b"print(pcall(uart.on, 'data', 'ab', print))\r"),
        "print(pcall(uart.on, 'data', 'ab', print))\r\nfalse\twrong arg range\r\n> "
    );
    assert_eq!(
        p.run(b"print(pcall(uart.write, 2, 'x'))\r"),
        "print(pcall(uart.write, 2, 'x'))\r\nfalse\tuart 2 does not exist\r\n> "
    );
}

#[test]
fn a_reset_boots_again_with_the_banner() {
    let mut p = booted(&[("init.lua", "print('init ran')\n")], &[]);
    p.send(b"node.restart()\r");
    let out = String::from_utf8_lossy(&p.until(b"init ran\r\n> ")).into_owned();
    assert!(out.contains("\r\nNodeMCU "), "{out:?}");
}

#[cfg(unix)]
#[test]
fn pty_links_a_serial_device_at_the_path() {
    let flash = Flash::new(&[]);
    let link = flash.file("ttyNODEMCU");
    let mut child = Command::new(BIN)
        .arg("serial")
        .arg("--flash")
        .arg(flash.path())
        .arg("--pty")
        .arg(&link)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !link.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no link at {link:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&link)
        .unwrap();
    tty.write_all(b"print('via ' .. 'pty')\r").unwrap();
    let output = collect(tty.try_clone().unwrap());
    let start = Instant::now();
    loop {
        let out = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
        if out.contains("via pty\r\n> ") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{out:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `nodemcu-sim run` with `input` on standard input (then closed).
fn run_with_stdin(script: &str, input: &[u8]) -> (i32, String) {
    let flash = Flash::new(&[("init.lua", script)]);
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(flash.file("init.lua"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    // Read to the end of the output (the device's exit closes it), however slow the machine.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let status = crate::support::wait(&mut child, Duration::from_secs(20));
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (status, out)
}

#[test]
fn under_run_standard_input_reaches_uart_on_and_nothing_else() {
    // Pieces of three bytes, no echo, and no interpreter: "print(9)" is data here.
    let (status, out) = run_with_stdin(
        "uart.on('data', 3, function(d) print('got', d) end, 0)\n",
        b"abcprint(9)\n",
    );
    assert_eq!(
        (status, out.as_str()),
        (0, "got\tabc\ngot\tpri\ngot\tnt(\ngot\t9)\n\n")
    );
    // With run_input the receiver sees each line; without a receiver the input is dropped.
    let (status, out) = run_with_stdin(
        "uart.on('data', function(d) print('line', d) end)\n",
        b"one\r\ntwo\n",
    );
    assert_eq!((status, out.as_str()), (0, "line\tone\nline\ttwo\n"));
    let (status, out) = run_with_stdin("print('no receiver')\n", b"print(1)\n");
    assert_eq!((status, out.as_str()), (0, "no receiver\n"));
}

#[cfg(unix)]
#[test]
fn the_pty_link_is_gone_when_the_device_stops() {
    // The run ends (a restart under --on-reset exit) while the port's reader still waits for a
    // tool: the link must not be left pointing at a terminal that another process gets next.
    let flash = Flash::new(&[(
        "init.lua",
        "tmr.create():alarm(50, tmr.ALARM_SINGLE, function() node.restart() end)\n",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyUSB0");
    let mut child = Command::new(BIN)
        .arg("serial")
        .arg("--flash")
        .arg(flash.path())
        .arg("--pty")
        .arg(&link)
        .args(["--on-reset", "exit"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = crate::support::wait(&mut child, Duration::from_secs(20));
    assert_eq!(status, 6);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "left behind: {link:?} -> {:?}",
        std::fs::read_link(&link)
    );
}
