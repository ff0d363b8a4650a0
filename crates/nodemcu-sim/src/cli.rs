//! Every subcommand and flag, defined once, with its help text beside it.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "nodemcu-sim",
    version,
    about = "Run NodeMCU (ESP8266/ESP32) Lua scripts on the desktop, with the firmware's behaviour",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand: the console, with `nodemcu-sim console`'s options.
    #[command(flatten)]
    pub console: ConsoleArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot a device and run a script (or a project directory's init.lua) until nothing is left to run.
    Run(RunArgs),
    /// Run test files (NTest_*.lua, *_test.lua) each on a fresh simulated device, in parallel.
    Test(TestArgs),
    /// Boot a device and open its serial console (also what `nodemcu-sim` alone does).
    Console(ConsoleArgs),
    /// Boot a device whose UART is a byte stream (stdin/stdout, or a pseudo-terminal with
    /// --pty), as upload tools and serial terminals expect of a board.
    Serial(SerialArgs),
    /// Lua Flash Store images.
    #[command(subcommand)]
    Lfs(LfsCommand),
    /// Write a commented starter project file, nodemcu-sim.toml, into DIR (default: here).
    Init(InitArgs),
}

#[derive(Subcommand, Debug)]
pub enum LfsCommand {
    /// Build an LFS image from Lua sources (files, or directories of *.lua), for --lfs or
    /// node.LFS.reload.
    Build {
        /// Lua sources, or directories holding them; each file's name is its module's.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// The image to write.
        #[arg(short, long, value_name = "IMAGE")]
        output: PathBuf,
    },
}

/// `nodemcu-sim serial`: the board's serial port.
#[derive(Args, Debug)]
pub struct SerialArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Open a pseudo-terminal and link it at PATH, for tools that want a serial device
    /// (e.g. `nodemcu-tool --port PATH`); without it the port is stdin and stdout.
    #[arg(long, value_name = "PATH")]
    pub pty: Option<PathBuf>,
    /// Boot without running init.lua.
    #[arg(long)]
    pub no_init: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The project directory (its flash root).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetArg {
    Esp8266,
    Esp32,
    Host,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareArg {
    /// The 2016 builds (1.5.4.1): static tmr API, wifi.sta.config(ssid, pwd), eventMonReg, cjson.
    #[value(name = "1.5")]
    V1_5,
    /// 2.2.1 (2018): static tmr API beside timer objects, wifi.sta.config{table}, wifi.eventmon.
    #[value(name = "2.2")]
    V2_2,
    /// The current release: timer objects only, sjson, node.LFS.
    #[value(name = "3.0")]
    V3_0,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnResetArg {
    /// End the run with the reset's exit status.
    Exit,
    /// Boot again, print the banner and run the script again, as a board does.
    Restart,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRootsArg {
    /// The public web PKI roots (webpki-roots).
    Webpki,
}

/// What every way of booting a device shares.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// The project file (default: nodemcu-sim.toml in the flash root or a directory above it, up
    /// to the current one). Flags given here override its settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Chip profile: its limits, libraries and error behaviour [default: esp8266].
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// Firmware generation: which release's API the device has (modules, functions, argument
    /// forms) [default: 3.0].
    #[arg(long, value_enum)]
    pub firmware: Option<FirmwareArg>,
    /// The flash root: the directory the script sees as its file system (default: the script's directory; for the console, the current directory).
    #[arg(long, value_name = "DIR")]
    pub flash: Option<PathBuf>,
    /// The flash file system's capacity in bytes, as file.fsinfo() reports it (K and M suffixes
    /// allowed); writes that would not fit fail as on a full board. Default: a 4 MB ESP8266 module.
    #[arg(long, value_name = "BYTES", value_parser = parse_flash_size)]
    pub flash_size: Option<u64>,
    /// Jump the clock to the next timer whenever no callback and no socket could run first.
    #[arg(long)]
    pub virtual_time: bool,
    /// What a device reset does to the run [default: exit].
    #[arg(long, value_enum)]
    pub on_reset: Option<OnResetArg>,
    /// Let servers that listen on 0.0.0.0 really listen on every interface (default: 127.0.0.1 only).
    #[arg(long)]
    pub expose: bool,
    /// Listen on HOST port when the script listens on DEVICE port (repeatable), e.g. 80=8080.
    #[arg(long, value_name = "DEVICE=HOST", value_parser = parse_port_map)]
    pub port_map: Vec<(u16, u16)>,
    /// Add N to every listening port that --port-map does not name.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port_offset: u16,
    /// Use this DNS server (server 0) from boot instead of the host's resolver configuration.
    #[arg(long, value_name = "IP")]
    pub dns: Option<IpAddr>,
    /// Ask the DNS servers of --dns and net.dns.setdnsserver on this port instead of 53 (a test server).
    #[arg(long, value_name = "PORT")]
    pub dns_port: Option<u16>,
    /// Ask sntp's (ESP32: time.initntp's) servers on this port instead of 123 (a test server).
    #[arg(long, value_name = "PORT")]
    pub ntp_port: Option<u16>,
    /// Resolve NAME to IP without asking any server (repeatable), like curl's --resolve.
    #[arg(long, value_name = "NAME=IP", value_parser = parse_resolve)]
    pub resolve: Vec<(String, IpAddr)>,
    /// Boot with these modules in the Lua Flash Store: Lua sources, directories of them, or an
    /// image made by `nodemcu-sim lfs build` (repeatable).
    #[arg(long, value_name = "PATH")]
    pub lfs: Vec<PathBuf>,
    /// Boot with these CA roots stored, so tls.cert.verify(true) works against real servers.
    #[arg(long, value_enum)]
    pub tls_roots: Option<TlsRootsArg>,
    /// Write every change on the virtual board (pin levels, modes, PWM, parts, conflicts) to
    /// FILE, one JSON object per line with the device time in µs; `-` for stderr. The format is
    /// in the README ("The virtual board").
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The script to run, or a project directory (its init.lua runs, as on a board).
    pub script: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Keep running when nothing is left that could run a callback, like a powered board.
    #[arg(long)]
    pub forever: bool,
    /// Stop the run after MS of device (simulated) time: status 124, or, with --expect-output or
    /// --expect-text, the expectations decide.
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Fail (status 7) unless the device's output is exactly the contents of FILE.
    #[arg(long, value_name = "FILE")]
    pub expect_output: Option<PathBuf>,
    /// Fail (status 7) unless the device's output contains TEXT (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub expect_text: Vec<String>,
    /// Fail (status 7) if the device's output contains TEXT (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub fail_text: Vec<String>,
    /// After the script, open the console on the same device (like `lua -i`).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// With -i: when input ends, end the run once the typed lines have run (see `console --help`).
    #[arg(long, requires = "interactive")]
    pub exit_on_eof: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// Each file and test, failures with file:line, totals.
    Human,
    /// TAP version 13.
    Tap,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Test files, or directories searched for NTest_*.lua and *_test.lua (default: the current directory).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: FormatArg,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Per-file budget of device (simulated) time in ms; a file still running then fails as timed out.
    #[arg(long, value_name = "MS", default_value_t = 86_400_000)]
    pub timeout: u64,
    /// Per-file budget of wall-clock time in seconds; a file still running then is stopped and fails as timed out.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub wall_timeout: f64,
    /// How many files run at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Run on the real clock (default under test: virtual time).
    #[arg(long, conflicts_with = "virtual_time")]
    pub real_time: bool,
    /// Print every file's device output, not only the output of files that failed.
    #[arg(long)]
    pub show_output: bool,
}

/// The serial console: `nodemcu-sim`, `nodemcu-sim console`.
#[derive(Args, Debug, Clone)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Boot without running init.lua.
    #[arg(long)]
    pub no_init: bool,
    /// When input ends (end of piped input), end the run as soon as the typed lines have run, instead of once nothing is left that could run a callback. Ctrl-D at a terminal always does.
    #[arg(long)]
    pub exit_on_eof: bool,
}

fn parse_port_map(s: &str) -> Result<(u16, u16), String> {
    let (d, h) = s
        .split_once('=')
        .ok_or("expected DEVICE=HOST, e.g. 80=8080")?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("'{p}' is not a port number"))
    };
    Ok((port(d)?, port(h)?))
}

fn parse_resolve(s: &str) -> Result<(String, IpAddr), String> {
    let (n, ip) = s
        .split_once('=')
        .ok_or("expected NAME=IP, e.g. example.com=127.0.0.1")?;
    let ip = ip
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| format!("'{ip}' is not an IP address"))?;
    Ok((n.trim().to_ascii_lowercase(), ip))
}

/// A byte count with an optional binary K or M suffix, 1 byte to 2 GB - 1 (SPIFFS's limit).
pub(crate) fn parse_flash_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1024),
        None => match t.strip_suffix(['m', 'M']) {
            Some(d) => (d, 1024 * 1024),
            None => (t, 1),
        },
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("'{s}' is not a size in bytes, e.g. 3455015, 512K or 2M"))?;
    if n == 0 || n > 0x7FFF_FFFF {
        return Err(format!("'{s}' is out of range: 1 byte to 2147483647 bytes"));
    }
    Ok(n)
}
