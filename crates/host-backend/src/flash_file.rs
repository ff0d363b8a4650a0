//! One open flash file with SPIFFS's semantics, and the SPIFFS page arithmetic behind `fsinfo`.
//!
//! A [`FlashFile`] keeps its own position and reads and writes at it (`read_at`/`write_at`), so
//! the rules are SPIFFS's rather than the host's: every open starts at offset 0, append modes write
//! at the end whatever the position and leave the position after the written bytes, a seek past the
//! end fails without moving, and a write that would overflow the flash's capacity writes nothing.
//! [`Flash::open`](crate::flash::Flash::open) makes them; the Lua `file` module drives them.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::flash::Flash;

/// How a file is opened: the firmware's mode strings. SPIFFS reads any other string as `"r"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `"r"`: read only; the file must exist.
    Read,
    /// `"w"`: write only; created, truncated.
    Write,
    /// `"a"`: write only at the end; created.
    Append,
    /// `"r+"`: read and write; the file must exist.
    ReadPlus,
    /// `"w+"`: read and write; created, truncated.
    WritePlus,
    /// `"a+"`: read anywhere, write only at the end; created.
    AppendPlus,
}

impl OpenMode {
    /// The mode a firmware mode string selects (unknown strings open read-only, as on SPIFFS).
    pub fn parse(mode: &[u8]) -> OpenMode {
        match mode {
            b"w" => OpenMode::Write,
            b"a" => OpenMode::Append,
            b"r+" => OpenMode::ReadPlus,
            b"w+" => OpenMode::WritePlus,
            b"a+" => OpenMode::AppendPlus,
            _ => OpenMode::Read,
        }
    }

    pub fn readable(self) -> bool {
        !matches!(self, OpenMode::Write | OpenMode::Append)
    }

    pub fn writable(self) -> bool {
        self != OpenMode::Read
    }

    pub fn creates(self) -> bool {
        !matches!(self, OpenMode::Read | OpenMode::ReadPlus)
    }

    pub fn truncates(self) -> bool {
        matches!(self, OpenMode::Write | OpenMode::WritePlus)
    }

    pub fn appends(self) -> bool {
        matches!(self, OpenMode::Append | OpenMode::AppendPlus)
    }
}

/// Where a seek counts from (`"set"`, `"cur"`, `"end"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whence {
    Set,
    Cur,
    End,
}

/// An open file on the flash.
#[derive(Debug)]
pub struct FlashFile {
    file: File,
    mode: OpenMode,
    pos: u64,
    flash: Flash,
}

/// Bytes read per host call while looking for an end character.
const READ_STEP: usize = 512;

impl FlashFile {
    pub(crate) fn new(file: File, mode: OpenMode, flash: Flash) -> FlashFile {
        FlashFile {
            file,
            mode,
            pos: 0,
            flash,
        }
    }

    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// The current position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The file's current size.
    pub fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// Reads up to `max` bytes, stopping after `end` if it comes first. `None` (the firmware's nil)
    /// when nothing could be read: end of file, or a file not opened for reading. Asking for no
    /// bytes gives an empty string, as on the board.
    pub fn read(&mut self, max: usize, end: Option<u8>) -> Option<Vec<u8>> {
        if max == 0 {
            return Some(Vec::new());
        }
        if !self.mode.readable() {
            return None;
        }
        let mut out = Vec::new();
        let mut buf = [0u8; READ_STEP];
        while out.len() < max {
            let want = (max - out.len()).min(READ_STEP);
            let n = match self.file.read_at(&mut buf[..want], self.pos) {
                Ok(n) => n,
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let take = match end.and_then(|e| chunk.iter().position(|&b| b == e)) {
                Some(i) => i + 1,
                None => n,
            };
            out.extend_from_slice(&chunk[..take]);
            self.pos += take as u64;
            if take < n || n < want {
                break;
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Writes `data` at the position (at the end in append modes). False, with nothing written,
    /// when the file is read-only, the flash has no room, or the host refuses.
    pub fn write(&mut self, data: &[u8]) -> bool {
        if !self.mode.writable() {
            return false;
        }
        let size = self.size();
        let at = if self.mode.appends() { size } else { self.pos };
        let end = at + data.len() as u64;
        if !self.flash.has_room(size, size.max(end)) {
            return false;
        }
        if self.file.write_all_at(data, at).is_err() {
            return false;
        }
        self.pos = end;
        true
    }

    /// Moves the position to `offset` from `whence`; `None`, without moving, for a position
    /// before the start or past the end (SPIFFS cannot seek past the end of an object).
    pub fn seek(&mut self, whence: Whence, offset: i64) -> Option<u64> {
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => self.pos,
            Whence::End => self.size(),
        };
        let target = i128::from(base) + i128::from(offset);
        if target < 0 || target > i128::from(self.size()) {
            return None;
        }
        self.pos = target as u64;
        Some(self.pos)
    }

    /// Writes go straight to the host file, so there is nothing buffered to flush.
    pub fn flush(&mut self) -> bool {
        true
    }
}

/// SPIFFS's layout as the firmware configures it: 256-byte logical pages, each carrying a 5-byte
/// header, in 8 KB logical blocks whose first page is the lookup table; two blocks stay spare.
pub mod geometry {
    /// Data bytes per page.
    pub const DATA_PAGE: u64 = 251;
    const PAGES_PER_BLOCK: u64 = 32;
    const BLOCK: u64 = 8192;
    /// Page references in a file's index header page, and in each further index page.
    const IX_HEADER_ENTRIES: u64 = 107;
    const IX_ENTRIES: u64 = 125;
    /// Where the file system starts in the 4 MB module's flash.
    pub const PHYS_ADDR: u64 = 0x8_0000;

    /// What `fsinfo` reports as `total` on a 4 MB ESP8266 module: the file system from 0x80000
    /// up to the SDK's parameter sectors (446 blocks).
    pub const DEFAULT_TOTAL: u64 = total_for_blocks(446);

    const fn total_for_blocks(blocks: u64) -> u64 {
        ((blocks - 2) * (PAGES_PER_BLOCK - 1) + 1) * DATA_PAGE
    }

    /// Pages a file of `size` bytes occupies: its data pages and its index pages.
    pub fn pages(size: u64) -> u64 {
        let data = size.div_ceil(DATA_PAGE);
        1 + data.saturating_sub(IX_HEADER_ENTRIES).div_ceil(IX_ENTRIES) + data
    }

    /// Bytes `fsinfo` counts as used for a file of `size` bytes.
    pub fn used(size: u64) -> u64 {
        pages(size) * DATA_PAGE
    }

    /// The partition (`fscfg`: address, size) that gives a file system of `total` bytes.
    pub fn partition(total: u64) -> (u64, u64) {
        let data_pages = (total / DATA_PAGE).saturating_sub(1);
        let blocks = data_pages.div_ceil(PAGES_PER_BLOCK - 1) + 2;
        (PHYS_ADDR, blocks * BLOCK)
    }
}

#[cfg(test)]
mod tests {
    use super::geometry::*;
    use super::*;

    #[test]
    fn modes_follow_spiffs() {
        assert_eq!(OpenMode::parse(b"w+"), OpenMode::WritePlus);
        assert_eq!(OpenMode::parse(b"x"), OpenMode::Read);
        assert_eq!(OpenMode::parse(b"rw"), OpenMode::Read);
        assert!(!OpenMode::Append.readable() && OpenMode::AppendPlus.readable());
        assert!(OpenMode::Append.creates() && !OpenMode::ReadPlus.creates());
    }

    fn flash() -> (tempfile::TempDir, Flash) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), "testcontent").unwrap();
        let f = Flash::new(dir.path()).unwrap();
        (dir, f)
    }

    #[test]
    fn binary_round_trip_with_nul_bytes() {
        let (_d, f) = flash();
        let bytes: Vec<u8> = (0..=255u8).chain([0, 0, b'\n', 0]).collect();
        let mut w = f.open("bin", OpenMode::Write).unwrap();
        assert!(w.write(&bytes));
        drop(w);
        let mut r = f.open("bin", OpenMode::Read).unwrap();
        assert_eq!(r.read(4096, None).unwrap(), bytes);
        assert_eq!(r.read(4096, None), None, "nil at the end");
        assert_eq!(r.read(0, None), Some(Vec::new()));
    }

    #[test]
    fn missing_files_open_only_in_creating_modes() {
        let (_d, f) = flash();
        assert!(f.open("nope", OpenMode::Read).is_none());
        assert!(f.open("nope", OpenMode::ReadPlus).is_none());
        for (i, m) in [
            OpenMode::Write,
            OpenMode::Append,
            OpenMode::WritePlus,
            OpenMode::AppendPlus,
        ]
        .into_iter()
        .enumerate()
        {
            assert!(f.open(&format!("new{i}"), m).is_some(), "{m:?}");
        }
    }

    #[test]
    fn positions_after_open_and_an_empty_write() {
        let (d, f) = flash();
        for (mode, pos) in [
            (OpenMode::Read, 0),
            (OpenMode::Write, 0),
            (OpenMode::Append, 11),
            (OpenMode::ReadPlus, 0),
            (OpenMode::WritePlus, 0),
            (OpenMode::AppendPlus, 11),
        ] {
            std::fs::write(d.path().join("data"), "testcontent").unwrap();
            let mut h = f.open("data", mode).unwrap();
            assert_eq!(h.write(b""), mode.writable());
            assert_eq!(h.position(), pos, "{mode:?}");
        }
    }

    #[test]
    fn append_writes_at_the_end_and_reads_anywhere() {
        let (d, f) = flash();
        let mut h = f.open("data", OpenMode::AppendPlus).unwrap();
        assert_eq!(h.read(4, None).unwrap(), b"test");
        assert_eq!(h.seek(Whence::Set, 0), Some(0));
        assert!(h.write(b"!"));
        assert_eq!(h.position(), 12);
        assert_eq!(
            std::fs::read(d.path().join("data")).unwrap(),
            b"testcontent!"
        );
        let mut w = f.open("data", OpenMode::Append).unwrap();
        assert_eq!(w.read(4, None), None, "write-only");
    }

    #[test]
    fn read_plus_overwrites_in_place() {
        let (d, f) = flash();
        let mut h = f.open("data", OpenMode::ReadPlus).unwrap();
        assert_eq!(h.seek(Whence::Set, 4), Some(4));
        assert!(h.write(b"CONTENT-AND-MORE"));
        assert_eq!(
            std::fs::read(d.path().join("data")).unwrap(),
            b"testCONTENT-AND-MORE"
        );
        let mut r = f.open("data", OpenMode::Read).unwrap();
        assert!(!r.write(b"x"), "read-only");
    }

    #[test]
    fn end_char_reads_stop_after_it_and_seeks_stay_inside() {
        let (_d, f) = flash();
        let mut h = f.open("data", OpenMode::Read).unwrap();
        assert_eq!(h.read(1024, Some(b't')).unwrap(), b"t");
        assert_eq!(h.read(1024, Some(b't')).unwrap(), b"est");
        assert_eq!(h.read(3, Some(b'x')).unwrap(), b"con");
        assert_eq!(h.seek(Whence::Cur, 0), Some(7));
        assert_eq!(h.seek(Whence::End, 1), None);
        assert_eq!(h.seek(Whence::Cur, -8), None);
        assert_eq!(h.position(), 7, "a failed seek does not move");
        assert_eq!(h.seek(Whence::End, -2), Some(9));
        assert_eq!(h.read(1024, None).unwrap(), b"nt");
    }

    #[test]
    fn the_default_flash_is_a_4mb_module() {
        assert_eq!(DEFAULT_TOTAL, 3_455_015);
        assert_eq!(partition(DEFAULT_TOTAL), (0x80000, 0x37C000));
        assert_eq!(pages(0), 1);
        assert_eq!(pages(251), 2);
        assert_eq!(pages(252), 3);
        assert_eq!(pages(251 * 107), 108);
        assert_eq!(pages(251 * 108), 110);
    }
}
