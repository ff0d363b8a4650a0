//! `nodemcu-sim serial`: the device's UART as a byte stream, as upload tools and terminal
//! programs see a board's serial port.
//!
//! Bytes go to the device as they arrive, with no line editor (a terminal is put in raw mode);
//! the device echoes, ends lines on CR, LF or CRLF, and writes `\r\n` for each `\n` of console
//! output (`console/input.rs` and `Runtime::uart` in net-api). The port is standard input and
//! output, or with `--pty PATH` a pseudo-terminal the simulator opens and links at PATH, so a
//! tool can be pointed at PATH as at `/dev/ttyUSB0`. A reset reboots the device (banner and
//! all) unless `--on-reset` says otherwise, as a board does.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use net_api::{ConsoleBoot, ConsoleHandle, OnReset};

use crate::cli::SerialArgs;
use crate::status;

/// At a terminal, Ctrl-] leaves the serial session (as telnet's escape does): every other byte,
/// Ctrl-C included, goes to the device.
const QUIT: u8 = 0x1d;

pub fn run(args: SerialArgs) -> i32 {
    let root = args
        .device
        .flash
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cfg = match status::config(&args.device, root, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodemcu-sim: {e}");
            return status::EXIT_USAGE;
        }
    };
    cfg.serial = true;
    if args.device.on_reset.is_none() {
        cfg.on_reset = OnReset::Restart;
    }
    let boot = ConsoleBoot::Boot {
        run_init: !args.no_init,
    };
    let (console, handle) = net_api::console::channel(boot, false);
    match &args.pty {
        Some(path) => match pty::Port::open(path) {
            Ok(port) => {
                let port = Arc::new(port);
                let (out, reader) = (port.clone(), port.clone());
                cfg.sinks.uart = Arc::new(move |b| out.write(b));
                std::thread::spawn(move || reader.read_into(&handle));
                eprintln!("nodemcu-sim: serial port at {}", path.display());
                let outcome = net_api::run_console(cfg, console);
                // The reader thread keeps its share of the port to the end of the process,
                // which runs no destructors: the link goes now, or it would outlive the
                // terminal it names and later lead a tool to whoever gets that pts next.
                port.unlink();
                status::report(&outcome)
            }
            Err(e) => {
                eprintln!("nodemcu-sim: --pty {}: {e}", path.display());
                status::EXIT_USAGE
            }
        },
        None => {
            let raw = std::io::stdin()
                .is_terminal()
                .then(pty::RawMode::enter)
                .flatten();
            let at_terminal = raw.is_some();
            std::thread::spawn(move || read_stdin(handle, at_terminal));
            let outcome = net_api::run_console(cfg, console);
            drop(raw);
            status::report(&outcome)
        }
    }
}

/// Sends standard input to the device as it arrives; its end closes the port (the run then
/// ends once nothing is left to run, as `console` does).
fn read_stdin(handle: ConsoleHandle, at_terminal: bool) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let bytes = &buf[..n];
                if at_terminal && let Some(i) = bytes.iter().position(|&b| b == QUIT) {
                    handle.send_bytes(bytes[..i].to_vec());
                    handle.close(true);
                    return;
                }
                if !handle.send_bytes(bytes.to_vec()) {
                    return;
                }
            }
        }
    }
    handle.close(false);
}

#[cfg(unix)]
mod pty {
    //! A pseudo-terminal standing in for a board's USB serial adapter, and raw mode for a
    //! terminal on standard input.

    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use net_api::ConsoleHandle;

    /// How long output may wait for a slow reader before it is dropped, as a UART's bytes are
    /// lost when nobody listens.
    const WRITE_PATIENCE_MS: i32 = 200;

    /// The master side of the pseudo-terminal; tools open the other side at the link. The
    /// simulator does not keep that side open itself, so it can tell when nobody listens.
    pub struct Port {
        master: File,
        link: PathBuf,
        /// The terminal the link points at.
        name: PathBuf,
    }

    impl Port {
        pub fn open(path: &Path) -> std::io::Result<Port> {
            let (mut master, mut slave) = (-1, -1);
            // SAFETY: openpty writes two descriptors into the locals; the name, termios and
            // window size arguments may be null.
            let rc = unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: both descriptors were just opened by openpty and are owned here alone.
            let (master, slave) =
                unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
            // Raw stays set for the tools that open it later: the settings belong to the
            // terminal, which lives as long as the master.
            make_raw(slave.as_raw_fd());
            set_nonblocking(master.as_raw_fd());
            let name = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
            drop(slave);
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                std::fs::remove_file(path)?;
            }
            std::os::unix::fs::symlink(&name, path)?;
            Ok(Port {
                master,
                link: path.to_path_buf(),
                name,
            })
        }

        /// The device's output, written to the port. As on a board whose serial adapter is not
        /// open, bytes are lost while no tool has the port open (they would otherwise wait in
        /// the terminal and greet the next tool as stale output), or when one stops reading.
        pub fn write(&self, mut bytes: &[u8]) {
            if self.nobody_listens() {
                return;
            }
            while !bytes.is_empty() {
                match (&self.master).write(bytes) {
                    Ok(n) => bytes = &bytes[n..],
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if !wait(self.master.as_raw_fd(), libc::POLLOUT, WRITE_PATIENCE_MS) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        }

        /// The other side is closed: the master reports a hang-up.
        fn nobody_listens(&self) -> bool {
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut p, 1, 0) };
            n > 0 && p.revents & libc::POLLHUP != 0
        }

        /// Sends what the tools write to the device, for as long as the device runs. While no
        /// tool has the port open, reads fail (EIO) and the thread waits for one.
        pub fn read_into(&self, handle: &ConsoleHandle) {
            let mut buf = [0u8; 4096];
            // The first bytes from a tool that has just opened the port: a pseudo-terminal has
            // no DTR/RTS lines to reset the device with, so the new tool is at least spared
            // what the last one left unfinished. The kernel's account of opens tells that
            // without a race; where there is none, a failed read (nobody has it open) is the
            // sign, which a tool that reopens at once can slip past.
            let mut opens = Opens::watch(&self.name);
            let mut closed = false;
            loop {
                match (&self.master).read(&mut buf) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                    Ok(n) => {
                        let fresh = match opens.as_mut() {
                            Some(o) => o.fresh_tool(),
                            None => std::mem::take(&mut closed),
                        };
                        if fresh && !handle.opened() {
                            return;
                        }
                        if !handle.send_bytes(buf[..n].to_vec()) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait(self.master.as_raw_fd(), libc::POLLIN, 1000);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        closed = true;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
    }

    impl Port {
        /// Removes the link, if it is still the one this port made.
        pub fn unlink(&self) {
            let ours = std::fs::read_link(&self.link).is_ok_and(|t| t == self.name);
            if ours {
                let _ = std::fs::remove_file(&self.link);
            }
        }
    }

    impl Drop for Port {
        fn drop(&mut self) {
            self.unlink();
        }
    }

    fn wait(fd: i32, events: libc::c_short, ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }

    fn set_nonblocking(fd: i32) {
        // SAFETY: fcntl on a descriptor this process owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }

    /// Opens of the terminal by the tools, as inotify reports them. The kernel queues a tool's
    /// open before its first write returns, so the events read when bytes arrive say whether
    /// those bytes come from a tool that has just opened the port. Every open counts as a new
    /// tool: whether the last one had closed it by then cannot be told (a process that forks
    /// holds its copy of the port until it execs), and a tool opens the port once.
    #[cfg(target_os = "linux")]
    struct Opens {
        events: File,
    }

    #[cfg(target_os = "linux")]
    impl Opens {
        fn watch(name: &Path) -> Option<Opens> {
            use std::os::unix::ffi::OsStrExt;
            let path = std::ffi::CString::new(name.as_os_str().as_bytes()).ok()?;
            // SAFETY: inotify_init1 returns a new descriptor or -1; the watch takes a valid
            // C string.
            unsafe {
                let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
                if fd < 0 {
                    return None;
                }
                let events = File::from_raw_fd(fd);
                (libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN) >= 0)
                    .then_some(Opens { events })
            }
        }

        /// Takes the events queued so far: true if a tool opened the terminal since the last call.
        fn fresh_tool(&mut self) -> bool {
            let mut opened = false;
            let mut buf = [0u8; 4096];
            while let Ok(n) = (&self.events).read(&mut buf) {
                if n == 0 {
                    break;
                }
                // Only opens are watched: any event is one.
                opened = true;
            }
            opened
        }
    }

    /// Elsewhere a failed read is the only sign of a closed port.
    #[cfg(not(target_os = "linux"))]
    struct Opens;

    #[cfg(not(target_os = "linux"))]
    impl Opens {
        fn watch(_: &Path) -> Option<Opens> {
            None
        }
        fn fresh_tool(&mut self) -> bool {
            false
        }
    }

    /// No echo, no line editing, no CR/LF translation: bytes pass as they are.
    fn make_raw(fd: i32) -> Option<libc::termios> {
        // SAFETY: tcgetattr fills the zeroed struct or fails; cfmakeraw and tcsetattr take it.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            Some(saved)
        }
    }

    /// Standard input in raw mode until dropped.
    pub struct RawMode(libc::termios);

    impl RawMode {
        pub fn enter() -> Option<RawMode> {
            make_raw(libc::STDIN_FILENO).map(RawMode)
        }
    }

    impl Drop for RawMode {
        fn drop(&mut self) {
            // SAFETY: a termios obtained from tcgetattr on the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.0);
            }
        }
    }
}

#[cfg(not(unix))]
mod pty {
    //! Pseudo-terminals and raw mode are unix facilities; elsewhere the serial mode works on
    //! standard input and output only.
    use std::path::Path;

    use net_api::ConsoleHandle;

    pub struct Port;

    impl Port {
        pub fn open(_: &Path) -> std::io::Result<Port> {
            Err(std::io::Error::other("pseudo-terminals need a unix system"))
        }
        pub fn write(&self, _: &[u8]) {}
        pub fn read_into(&self, _: &ConsoleHandle) {}
        pub fn unlink(&self) {}
    }

    pub struct RawMode;

    impl RawMode {
        pub fn enter() -> Option<RawMode> {
            None
        }
    }
}
