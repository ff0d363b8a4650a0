//! The project file, `nodemcu-sim.toml`: the device options a project always needs, so that
//! `nodemcu-sim run .` and `nodemcu-sim test` need no flags in that project.
//!
//! It is looked for in the flash root, then in the directories above it up to the current one
//! (so tests in a subdirectory share their project's file), unless `--config FILE` names it.
//! Values apply first; command-line flags given explicitly override them. Every key is typed,
//! and an unknown key or a bad value is an error naming the file, the line and the key (the
//! `toml` crate's deserializer reports both), never a silent default.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file's name, in a project's flash root (where the device's flash does not show it).
pub const FILE_NAME: &str = net_api::PROJECT_FILE;

/// What a project file may say. Each key has the meaning of the flag of the same name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Project {
    /// `--firmware`: "1.5", "2.2" or "3.0".
    pub firmware: Option<FirmwareName>,
    /// `--target`: "esp8266", "esp32" or "host".
    pub target: Option<TargetName>,
    /// `--flash-size`: bytes, or a string with a K or M suffix.
    pub flash_size: Option<FlashSize>,
    /// `--virtual-time`.
    pub virtual_time: Option<bool>,
    /// `--on-reset`: "exit" or "restart".
    pub on_reset: Option<OnResetName>,
    /// `--expose`.
    pub expose: Option<bool>,
    /// `--port-map`: device port = host port, e.g. `port-map = { 80 = 8080 }`.
    pub port_map: Option<BTreeMap<u16, u16>>,
    /// `--port-offset`.
    pub port_offset: Option<u16>,
    /// `--dns`.
    pub dns: Option<IpAddr>,
    /// `--dns-port`.
    pub dns_port: Option<u16>,
    /// `--ntp-port`.
    pub ntp_port: Option<u16>,
    /// `--resolve`: name = address, e.g. `resolve = { "api.example.com" = "127.0.0.1" }`.
    pub resolve: Option<BTreeMap<String, IpAddr>>,
    /// `--tls-roots`: "webpki".
    pub tls_roots: Option<TlsRootsName>,
    /// `--lfs`: Lua sources, directories of them, or an image, relative to the file's directory.
    pub lfs: Option<Vec<PathBuf>>,
    /// The virtual board: a ready board's name, or `[[board.part]]` tables.
    pub board: Option<board::BoardSpec>,
    /// The simulated Wi-Fi: the saved network, the access points in range, what happens when
    /// (see the README's "The Wi-Fi model").
    pub wifi: Option<net_api::config::WifiSetup>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum FirmwareName {
    #[serde(rename = "1.5")]
    V1_5,
    #[serde(rename = "2.2")]
    V2_2,
    #[serde(rename = "3.0")]
    V3_0,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetName {
    Esp8266,
    Esp32,
    Host,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnResetName {
    Exit,
    Restart,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsRootsName {
    Webpki,
}

/// A flash size as a number of bytes or a string such as "512K".
#[derive(Debug, Clone, Copy)]
pub struct FlashSize(pub u64);

impl<'de> Deserialize<'de> for FlashSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Bytes(n) => n.to_string(),
            Raw::Text(s) => s,
        };
        crate::cli::parse_flash_size(&text)
            .map(FlashSize)
            .map_err(serde::de::Error::custom)
    }
}

/// Finds the project file for a flash root: `explicit` if given (it must exist), else the first
/// `nodemcu-sim.toml` in `root` or a directory above it, up to the current directory.
pub fn find(root: &Path, explicit: Option<&Path>) -> Result<Option<PathBuf>, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(Some(p.to_path_buf()))
        } else {
            Err(format!("--config {}: no such file", p.display()))
        };
    }
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    let mut dir = Some(root.as_path());
    while let Some(d) = dir {
        let candidate = d.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(Some(candidate));
        }
        // Above the flash root only while still inside the current directory: a stray file in
        // a parent the user never pointed at must not change a run.
        match &cwd {
            Some(c) if d.starts_with(c) && d != c => dir = d.parent(),
            _ => dir = None,
        }
    }
    Ok(None)
}

/// Reads and checks a project file; an error names the file. Paths in it are made relative
/// to its directory.
pub fn load(path: &Path) -> Result<Project, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut p = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let (Some(dir), Some(lfs)) = (path.parent(), p.lfs.as_mut()) {
        for l in lfs {
            *l = dir.join(&*l);
        }
    }
    Ok(p)
}

/// Parses a project file's text; the error names the line and the key.
pub fn parse(text: &str) -> Result<Project, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

/// The commented starter file `nodemcu-sim init` writes.
pub const STARTER: &str = r#"# nodemcu-sim project file: the options this project always runs with.
# Command-line flags override what is set here. Every key is optional.

# Which firmware release's API the device has: "1.5" (2016 builds), "2.2" (2018, the last with
# static timers) or "3.0" (the current release).
firmware = "3.0"

# The chip: "esp8266", "esp32", or "host" (no device limits).
target = "esp8266"

# The flash file system's capacity, in bytes or with a K or M suffix.
# flash-size = "3M"

# Jump the clock to the next timer whenever the device is idle (always on under `nodemcu-sim test`).
# virtual-time = true

# What a device reset does to `nodemcu-sim run`: "exit" (with its status) or "restart" (boot again).
# on-reset = "exit"

# Listen on a host port other than the one the script asks for: device port = host port.
# port-map = { 80 = 8080 }
# port-offset = 0

# Let servers bound to 0.0.0.0 listen on every host interface (default: 127.0.0.1 only).
# expose = false

# Names pinned to addresses, without asking any DNS server.
# resolve = { "api.example.com" = "127.0.0.1" }

# A DNS server from boot, and the port it is asked on.
# dns = "127.0.0.1"
# dns-port = 5353

# The port sntp asks its servers on (default 123), for a test NTP server.
# ntp-port = 12300

# CA roots stored at boot, so tls.cert.verify(true) works against real servers: "webpki".
# tls-roots = "webpki"

# Modules in the Lua Flash Store at boot: Lua sources, directories of them, or an image.
# lfs = ["lfs/"]

# A ready board (see the README): board = "nodemcu-devkit" has the dev kit's pull-ups, FLASH
# button and LEDs; or [board] with ready = "nodemcu-devkit" and parts or presses added:
# [[board.press]]
# part = "flash"
# at = 5000
# for = 200

# Parts on the virtual board, one table each (times in ms of device time; see the README).
# [[board.part]]
# kind = "button"
# pin = 3
# presses = [ { at = 5000, for = 200 } ]
# [[board.part]]
# kind = "led"
# pin = 4

# The Wi-Fi the device sees. By default a network is saved in flash and in range, taking any
# SSID and password, and the station joins it 2 s after boot (STA_CONNECTED at 1.5 s).
# [wifi]
# saved = { ssid = "home", pwd = "secret" }   # or saved = false: a board never configured
# mode = "station"                             # the saved mode: station, softap, stationap, null
# [[wifi.ap]]                                  # the access points in range (default: any)
# ssid = "home"
# pwd = "secret"
# rssi = -60
# channel = 6
# [[wifi.event]]                               # at a device time (ms): drop, down, up, join, leave
# at = 60000
# kind = "drop"
# reason = 8
"#;

/// `nodemcu-sim init [DIR]`: writes the starter file, never over an existing one.
pub fn init(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join(FILE_NAME);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} already exists; not overwritten", path.display())
            }
            _ => format!("{}: {e}", path.display()),
        })?;
    std::io::Write::write_all(&mut f, STARTER.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_file_parses() {
        let p = parse(STARTER).unwrap();
        assert!(matches!(p.firmware, Some(FirmwareName::V3_0)));
        assert!(matches!(p.target, Some(TargetName::Esp8266)));
    }

    #[test]
    fn every_key_is_read() {
        let p = parse(
            r#"
firmware = "2.2"
target = "host"
flash-size = "512K"
virtual-time = true
on-reset = "restart"
expose = true
port-map = { 80 = 8080, 23 = 2323 }
port-offset = 1000
dns = "127.0.0.53"
dns-port = 5353
resolve = { "a.example" = "127.0.0.2" }
tls-roots = "webpki"
"#,
        )
        .unwrap();
        assert!(matches!(p.firmware, Some(FirmwareName::V2_2)));
        assert_eq!(p.flash_size.unwrap().0, 512 * 1024);
        assert_eq!(p.port_map.unwrap().get(&80), Some(&8080));
        assert_eq!(p.resolve.unwrap()["a.example"].to_string(), "127.0.0.2");
    }

    #[test]
    fn an_unknown_key_names_its_line_and_key() {
        let e = parse("firmware = \"3.0\"\nfirmwre = \"2.2\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("firmwre"), "{e}");
    }

    #[test]
    fn a_board_is_a_name_or_parts_and_bad_parts_name_line_and_key() {
        let p = parse("board = \"test-harness\"\n").unwrap();
        assert_eq!(
            p.board,
            Some(board::BoardSpec::Named("test-harness".into()))
        );
        let p = parse(
            "[[board.part]]\nkind = \"potentiometer\"\npin = 0\n\
             values = [ { at = 0, value = 512 }, { at = 2000, value = 1000 } ]\n",
        )
        .unwrap();
        let Some(board::BoardSpec::Parts(parts)) = p.board else {
            panic!("parts expected")
        };
        assert_eq!(parts.part.len(), 1);
        let e =
            parse("firmware = \"3.0\"\n\n[[board.part]]\nkind = \"led\"\npin = 4\nblink = true\n")
                .unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("unknown field `blink`"), "{e}");
        let e = parse("[[board.part]]\nkind = \"lamp\"\npin = 4\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("unknown variant `lamp`"),
            "{e}"
        );
        let e = parse("[[board.part]]\nkind = \"button\"\npin = 3\npresses = [ { at = 5 } ]\n")
            .unwrap_err();
        assert!(e.contains("missing field `for`"), "{e}");
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let e = parse("\ntarget = \"esp8285\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("esp8285"), "{e}");
        let e = parse("flash-size = \"lots\"\n").unwrap_err();
        assert!(e.contains("not a size in bytes"), "{e}");
    }

    #[test]
    fn the_wifi_section_is_read() {
        let p = parse(
            r#"
[wifi]
saved = { ssid = "home", pwd = "secret" }
mode = "stationap"
[[wifi.ap]]
ssid = "home"
pwd = "secret"
rssi = -71
channel = 11
bssid = "aa:bb:cc:dd:ee:01"
[[wifi.event]]
at = 60000
kind = "drop"
reason = 8
"#,
        )
        .unwrap();
        let w = p.wifi.unwrap();
        let saved = w.saved.unwrap().0.unwrap();
        assert_eq!(saved.ssid.0, "home");
        assert_eq!(w.mode.unwrap().number(), 3);
        assert_eq!(w.ap[0].bssid.unwrap().0, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 1]);
        assert_eq!((w.ap[0].rssi.0, w.ap[0].channel.0), (-71, 11));
        assert_eq!((w.event[0].at, w.event[0].reason), (60000, Some(8)));
        assert!(
            parse("[wifi]\nsaved = false\n")
                .unwrap()
                .wifi
                .unwrap()
                .saved
                .unwrap()
                .0
                .is_none()
        );
    }

    #[test]
    fn wifi_errors_name_their_line_and_key() {
        let e = parse("[wifi]\n[[wifi.ap]]\nssid = \"a\"\nchanel = 3\n").unwrap_err();
        assert!(e.contains("line 4") && e.contains("chanel"), "{e}");
        let e = parse("[[wifi.ap]]\nssid = \"a\"\nbssid = \"aa:bb\"\n").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("not a MAC address"),
            "{e}"
        );
        let e = parse("[[wifi.ap]]\nssid = \"a\"\nchannel = 14\n").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("channel is 1 to 13"),
            "{e}"
        );
        let e = parse("[wifi]\nsaved = true\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("saved = true names no network"),
            "{e}"
        );
        let e = parse("[[wifi.event]]\nat = 5\nkind = \"explode\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("explode"), "{e}");
    }
}
