//! How a device is set up: which chip it pretends to be, where its flash is, how time runs, and what
//! the host lets its network do. The command line builds one [`Config`]; everything else reads it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The chip profile (decisions.md §2). The default is the device, because the point is to catch on
/// the desktop what would fail on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Esp8266,
    Esp32,
    Host,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "esp8266" => Some(Target::Esp8266),
            "esp32" => Some(Target::Esp32),
            "host" => Some(Target::Host),
            _ => None,
        }
    }

    /// True for the two chip profiles, which get the firmware's library set and limits.
    pub fn is_device(self) -> bool {
        self != Target::Host
    }

    /// Free heap a script sees at boot, in device bytes (`None`: the host's memory, no limit).
    pub fn heap(self) -> Option<usize> {
        match self {
            Target::Esp8266 => Some(44_000),
            Target::Esp32 => Some(250_000),
            Target::Host => None,
        }
    }

    /// Net and tls callbacks run unprotected on the ESP8266: an error in one is a PANIC and a reset.
    pub fn net_errors_panic(self) -> bool {
        self == Target::Esp8266
    }

    /// Largest TCP "receive" chunk (one lwIP pbuf of one MSS on a board).
    pub fn rx_chunk(self) -> Option<usize> {
        self.is_device().then_some(1460)
    }

    /// The firmware's task queues hold 8 entries per priority.
    pub fn task_queue_len(self) -> Option<usize> {
        self.is_device().then_some(8)
    }

    /// Files open at once on the flash (`SPIFFS_MAX_OPEN_FILES`); `None`: the host's limit.
    pub fn max_open_files(self) -> Option<usize> {
        (self == Target::Esp8266).then_some(4)
    }
}

/// The firmware generation whose API surface the device has. Scripts in the wild were written
/// for all three; each generation is what that release's `app/modules/*.c` had, and a module or
/// function that a generation lacked is absent (nil) there, as on that board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Firmware {
    /// The 2016 builds (1.5.4.1): static timers, positional `wifi.sta.config`, `eventMonReg`, `cjson`.
    V1_5,
    /// 2.2.1 (2018-12-07): the last build with static timers; the table-only `wifi.sta.config`.
    V2_2,
    /// The current release (3.0): timer objects only, `sjson`, `node.LFS`.
    #[default]
    V3_0,
}

impl Firmware {
    pub fn parse(s: &str) -> Option<Firmware> {
        match s {
            "1.5" => Some(Firmware::V1_5),
            "2.2" => Some(Firmware::V2_2),
            "3.0" => Some(Firmware::V3_0),
            _ => None,
        }
    }

    /// The name `--firmware` takes.
    pub fn name(self) -> &'static str {
        match self {
            Firmware::V1_5 => "1.5",
            Firmware::V2_2 => "2.2",
            Firmware::V3_0 => "3.0",
        }
    }

    /// The release's version as the banner and `node.info()` give it (major, minor, dev).
    pub fn version(self) -> (u8, u8, u8) {
        match self {
            Firmware::V1_5 => (1, 5, 4),
            Firmware::V2_2 => (2, 2, 1),
            Firmware::V3_0 => (3, 0, 0),
        }
    }
}

/// The file system's capacity on a 4 MB ESP8266 module, as `file.fsinfo()` reports it.
pub const DEFAULT_FLASH_SIZE: u64 = host_backend::flash_file::geometry::DEFAULT_TOTAL;

/// What a device reset does to a `run` (decisions.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnReset {
    #[default]
    Exit,
    Restart,
}

/// A byte sink for device output.
pub type ByteSink = Arc<dyn Fn(&[u8]) + Send + Sync>;
/// A line sink for the simulator's messages.
pub type TextSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the device's serial output and the simulator's own messages go.
#[derive(Clone)]
pub struct Sinks {
    /// The UART: `print`, `uart.write`, the banner.
    pub uart: ByteSink,
    /// The simulator's own voice: warnings, PANIC, resets. Always prefixed, never script output.
    pub diag: TextSink,
}

impl Default for Sinks {
    fn default() -> Self {
        use std::io::Write;
        Sinks {
            uart: Arc::new(|b| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(b);
                let _ = out.flush();
            }),
            diag: Arc::new(|m| {
                let _ = writeln!(std::io::stderr().lock(), "nodemcu-sim: {m}");
            }),
        }
    }
}

/// Host-side network options (decisions.md §5).
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Let servers bound to 0.0.0.0 really listen on every interface.
    pub expose: bool,
    /// `--port-map DEVICE=HOST`, applied to listening ports.
    pub port_map: Vec<(u16, u16)>,
    /// `--port-offset N`, added to listening ports that are not mapped.
    pub port_offset: u16,
    /// `--dns IP`: DNS server 0 at boot.
    pub dns: Option<IpAddr>,
    /// `--resolve NAME=IP`: names pinned to addresses.
    pub resolve: Vec<(String, IpAddr)>,
    /// `--dns-port PORT`: the port the servers of `--dns` and `net.dns.setdnsserver` are asked on
    /// (`None`: 53).
    pub dns_port: Option<u16>,
    /// `--tls-roots webpki`: boot with the public roots stored as trusted CAs.
    pub tls_webpki_roots: bool,
}

impl NetOptions {
    /// The host port a device port listens on.
    pub fn host_port(&self, device_port: u16) -> u16 {
        match self.port_map.iter().find(|(d, _)| *d == device_port) {
            Some((_, h)) => *h,
            None if device_port == 0 => 0,
            None => device_port.saturating_add(self.port_offset),
        }
    }
}

/// Everything needed to boot a device.
#[derive(Clone)]
pub struct Config {
    pub target: Target,
    /// Which firmware release's API the device has (`--firmware`).
    pub firmware: Firmware,
    /// The flash root: the directory the script sees as its file system.
    pub flash: PathBuf,
    /// True when the user named the root (`--flash`): only then may `file.format()` erase it.
    pub flash_explicit: bool,
    /// The file system's capacity in bytes, as `file.fsinfo()` reports it in `total`.
    pub flash_size: u64,
    /// The flash name of the script to run at boot (`None`: `init.lua` if the flash has one).
    pub script: Option<String>,
    /// Jump the clock to the next timer whenever the device is quiescent.
    pub virtual_time: bool,
    /// Keep running when nothing is left that could run a callback, like a powered board.
    pub forever: bool,
    pub on_reset: OnReset,
    pub net: NetOptions,
    pub sinks: Sinks,
    /// Stop the run (outcome `TimedOut`) when the device clock passes this many milliseconds.
    pub time_limit_ms: Option<u64>,
    /// The LFS image the next boot loads (`--lfs`, or what `node.LFS.reload` stored): shared by
    /// every boot of the run, as the flash partition outlives a restart.
    pub lfs: crate::modules::lfs::LfsSlot,
    /// The UART is a byte stream, as on a board (`nodemcu-sim serial`): console output writes
    /// `\r\n` for each `\n` (and drops `\r`), as the firmware's `uart0_putc` does, while
    /// `uart.write` stays raw.
    pub serial: bool,
}

impl Config {
    pub fn new(flash: PathBuf) -> Self {
        Config {
            target: Target::default(),
            firmware: Firmware::default(),
            flash,
            flash_explicit: false,
            flash_size: DEFAULT_FLASH_SIZE,
            script: None,
            virtual_time: false,
            forever: false,
            on_reset: OnReset::default(),
            net: NetOptions::default(),
            sinks: Sinks::default(),
            time_limit_ms: None,
            serial: false,
            lfs: Default::default(),
        }
    }
}
