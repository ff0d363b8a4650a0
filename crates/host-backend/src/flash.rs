//! The flash file system: a host directory presented with SPIFFS's flat names.
//!
//! Every name a script gives (`file.open`, `require`, `dofile`, ...) goes through [`Flash::resolve`],
//! which is the one place that keeps a device inside its root: no `..`, no absolute paths, no
//! symbolic link that leads outside. A board has no such thing as a path outside its flash, so a name
//! that would reach one simply does not exist for the script.
//!
//! The flash's files are the regular files directly in the root (and links to files inside it):
//! that is what [`Flash::list`] shows, what [`Flash::format`] erases and what [`Flash::usage`]
//! counts against the device-sized capacity. SPIFFS names are flat: `/` is an ordinary character
//! there (`require("lib.x")` opens the file named `lib/x.lua`). Each flash name is one host file
//! name, with `%` written `%25` and `/` written `%2F` ([`host_name`], [`flash_name`]), so every name
//! a board can hold round-trips, none can name a path outside the root, and the root's
//! subdirectories are never part of the flash.

use std::fs::OpenOptions;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::flash_file::{FlashFile, OpenMode, geometry};

/// SPIFFS object names are at most 31 characters (`FS_OBJ_NAME_LEN`).
pub const MAX_NAME_LEN: usize = 31;

/// The firmware's name for the internal flash volume: `/FLASH/x` is the same file as `x`.
const VOLUME: &str = "/FLASH";
/// The simulator's project file, which usually sits in the flash directory: it is not on the
/// device, so no script lists, reads, replaces or formats it away.
pub const PROJECT_FILE: &str = "nodemcu-sim.toml";

#[derive(Debug, Clone)]
pub struct Flash {
    root: PathBuf,
    capacity: u64,
}

/// Space on the flash, in the bytes `file.fsinfo()` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub total: u64,
    pub used: u64,
}

impl Usage {
    pub fn remaining(&self) -> u64 {
        self.total - self.used
    }
}

impl Flash {
    /// A flash rooted at `root`, which must exist, with a 4 MB module's capacity.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref().canonicalize()?;
        Ok(Flash {
            root,
            capacity: geometry::DEFAULT_TOTAL,
        })
    }

    /// The same flash with `total` bytes of capacity (what `fsinfo` reports as total).
    pub fn with_capacity(mut self, total: u64) -> Self {
        self.capacity = total;
        self
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The name as the flash stores it: without the firmware's `/FLASH` volume prefix. `None` for
    /// any other absolute name, which names no file on the internal flash.
    pub fn device_name(name: &str) -> Option<&str> {
        match name.strip_prefix(VOLUME) {
            Some(rest) => Some(rest.strip_prefix('/').unwrap_or(rest)),
            None if name.starts_with('/') => None,
            None => Some(name),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path for a flash name, or `None` when the name could not exist on the device or would
    /// lead outside the root. The file need not exist; if it does, its real location is checked.
    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        let name = Self::device_name(name)?;
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
            return None;
        }
        let host = host_name(name);
        if host == PROJECT_FILE {
            return None;
        }
        let rel = Path::new(&host);
        // One plain component: `.` and `..` are the only names that could still mean a directory.
        if !matches!(
            rel.components().collect::<Vec<_>>()[..],
            [Component::Normal(_)]
        ) {
            return None;
        }
        let path = self.root.join(rel);
        self.confined(&path).then_some(path)
    }

    /// True when `path` (or, for a file still to be created, its parent) really lies under the root.
    fn confined(&self, path: &Path) -> bool {
        match path.canonicalize() {
            Ok(real) => real.starts_with(&self.root),
            Err(_) if path.symlink_metadata().is_ok() => false, // a dangling link: refuse
            Err(_) => path
                .parent()
                .is_some_and(|p| p.canonicalize().is_ok_and(|r| r.starts_with(&self.root))),
        }
    }

    /// Reads a whole file by flash name.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        let p = self.resolve(name)?;
        if !p.is_file() {
            return None;
        }
        std::fs::read(p).ok()
    }

    /// Opens a file as `file.open` does: `None` when the name is not on the flash or names
    /// something other than a file, when the file is missing in a mode that does not create it,
    /// when a new file would not fit, or when the host refuses.
    pub fn open(&self, name: &str, mode: OpenMode) -> Option<FlashFile> {
        let path = self.resolve(name)?;
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => return None,
            Err(_) if !mode.creates() || !self.fits(0, geometry::used(0)) => return None,
            _ => {}
        }
        let file = OpenOptions::new()
            .read(mode.readable())
            .write(mode.writable())
            .create(mode.creates())
            .truncate(mode.truncates())
            .open(&path)
            .ok()?;
        Some(FlashFile::new(file, mode, self.clone()))
    }

    /// The flash's files, with their sizes: each regular file directly in the root, and each link
    /// there that leads to a file inside the root. Names a board could not hold (over 31 bytes, or
    /// not UTF-8) are left out, and no link is followed outside.
    pub fn list(&self) -> Vec<(String, u64)> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let e = e.ok()?;
            let host = e.file_name().into_string().ok()?;
            if host == PROJECT_FILE {
                return None;
            }
            let name = flash_name(&host)?;
            if name.len() > MAX_NAME_LEN {
                return None;
            }
            let size = if e.file_type().ok()?.is_file() {
                e.metadata().ok()?.len()
            } else {
                self.file_size(&e.path())?
            };
            Some((name, size))
        })
        .collect()
    }

    /// The size of file `name`, or `None` if there is no such file (what `file.stat` and
    /// `file.exists` see).
    pub fn size_of(&self, name: &str) -> Option<u64> {
        self.file_size(&self.resolve(name)?)
    }

    /// The size of what `path` leads to, if that is a file really inside the root.
    fn file_size(&self, path: &Path) -> Option<u64> {
        let real = path.canonicalize().ok()?;
        if !real.starts_with(&self.root) {
            return None;
        }
        let m = std::fs::metadata(&real).ok()?;
        m.is_file().then_some(m.len())
    }

    /// Removes file `name` (a link is removed, not what it leads to); false if there was none.
    pub fn remove(&self, name: &str) -> bool {
        match self.resolve(name) {
            Some(path) if self.file_size(&path).is_some() => std::fs::remove_file(&path).is_ok(),
            _ => false,
        }
    }

    /// Renames file `from` to `to`; false when `from` is not a file or `to` exists already.
    pub fn rename(&self, from: &str, to: &str) -> bool {
        let (Some(src), Some(dst)) = (self.resolve(from), self.resolve(to)) else {
            return false;
        };
        if self.file_size(&src).is_none() || dst.symlink_metadata().is_ok() {
            return false;
        }
        std::fs::rename(&src, &dst).is_ok()
    }

    /// Erases every file [`Flash::list`] shows; subdirectories and what links lead to are left
    /// alone. Returns how many files went.
    pub fn format(&self) -> io::Result<usize> {
        let files = self.list();
        for (name, _) in &files {
            std::fs::remove_file(self.root.join(host_name(name)))?;
        }
        Ok(files.len())
    }

    /// Used and total bytes, counted in SPIFFS pages; `used` never exceeds `total` even when the
    /// directory holds more than the device could.
    pub fn usage(&self) -> Usage {
        Usage {
            total: self.capacity,
            used: self.raw_used().min(self.capacity),
        }
    }

    fn raw_used(&self) -> u64 {
        self.list()
            .iter()
            .map(|(_, size)| geometry::used(*size))
            .sum()
    }

    /// Whether the flash has room once `freed` bytes are released and `needed` taken.
    fn fits(&self, freed: u64, needed: u64) -> bool {
        self.raw_used().saturating_sub(freed) + needed <= self.capacity
    }

    /// Whether a file may grow from `old` to `new` bytes.
    pub(crate) fn has_room(&self, old: u64, new: u64) -> bool {
        let (had, needs) = (geometry::used(old), geometry::used(new));
        needs <= had || self.fits(had, needs)
    }
}

/// The host file name of a flash name: `%` becomes `%25` and `/` becomes `%2F`, nothing else.
pub fn host_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

/// The flash name a host file name stands for, or `None` for a name [`host_name`] never makes
/// (a `%` that is not `%25` or `%2F`): such a file is not on the flash.
pub fn flash_name(host: &str) -> Option<String> {
    let mut out = String::with_capacity(host.len());
    let mut rest = host;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3)?;
        out.push(match esc {
            "%25" => '%',
            "%2F" => '/',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flash() -> (tempfile::TempDir, Flash) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("init.lua"), "print(1)").unwrap();
        let f = Flash::new(dir.path()).unwrap();
        (dir, f)
    }

    #[test]
    fn plain_names_resolve() {
        let (_d, f) = flash();
        assert_eq!(f.read("init.lua").unwrap(), b"print(1)");
        assert!(f.resolve("new.txt").is_some());
    }

    #[test]
    fn escapes_are_refused() {
        let (_d, f) = flash();
        for bad in ["/etc/passwd", "", "..", ".", "x".repeat(32).as_str()] {
            assert!(f.resolve(bad).is_none(), "{bad} resolved");
        }
    }

    #[test]
    fn slash_names_are_flat_files_in_the_root() {
        let (d, f) = flash();
        for (name, host) in [
            ("lib/x.lua", "lib%2Fx.lua"),
            ("a/../../x", "a%2F..%2F..%2Fx"),
            ("../etc/passwd", "..%2Fetc%2Fpasswd"),
            ("100%/b", "100%25%2Fb"),
            ("./x", ".%2Fx"),
        ] {
            assert_eq!(
                f.resolve(name),
                Some(d.path().canonicalize().unwrap().join(host))
            );
            assert_eq!(host_name(name), host);
            assert_eq!(flash_name(host).as_deref(), Some(name));
        }
        assert_eq!(flash_name("50%off"), None);
        assert_eq!(flash_name("a%2f"), None, "only the form host_name writes");
        let mut w = f.open("a/../../x", OpenMode::Write).unwrap();
        assert!(w.write(b"in"));
        drop(w);
        let mut names = f.list();
        names.sort();
        assert_eq!(
            names,
            vec![("a/../../x".to_string(), 2), ("init.lua".to_string(), 8)]
        );
        assert!(f.remove("a/../../x"));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn symlinks_out_are_refused() {
        let (d, f) = flash();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", d.path().join("dangling")).unwrap();
        assert!(f.resolve("link").is_none());
        assert!(f.read("link").is_none());
        assert!(f.resolve("dangling").is_none());
    }

    #[test]
    fn the_volume_prefix_names_the_same_file() {
        let (_d, f) = flash();
        assert_eq!(f.read("/FLASH/init.lua").unwrap(), b"print(1)");
        assert_eq!(f.size_of("/FLASHinit.lua"), Some(8));
        assert!(f.resolve("/SD0/init.lua").is_none());
        assert_eq!(Flash::device_name("/FLASH/a"), Some("a"));
    }

    /// A directory beside the root, holding a file the device must never see or touch.
    fn outside() -> tempfile::TempDir {
        let o = tempfile::tempdir().unwrap();
        std::fs::write(o.path().join("secret"), "s").unwrap();
        o
    }

    #[test]
    fn list_shows_root_files_and_links_inside_only() {
        let (d, f) = flash();
        let o = outside();
        let root = d.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/deep.lua"), "x").unwrap();
        std::fs::write(root.join("n".repeat(32)), "x").unwrap();
        std::fs::write(root.join("50%off"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("init.lua"), root.join("alias")).unwrap();
        std::os::unix::fs::symlink(o.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(o.path(), root.join("outdir")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("dangling")).unwrap();
        let mut names = f.list();
        names.sort();
        assert_eq!(
            names,
            vec![("alias".to_string(), 8), ("init.lua".to_string(), 8)]
        );
        assert_eq!(
            f.size_of("sub/deep.lua"),
            None,
            "subdirectories are not on the flash"
        );
        assert_eq!(f.size_of("out"), None);
        assert_eq!(f.size_of("sub"), None);
    }

    #[test]
    fn no_operation_reaches_outside() {
        let (d, f) = flash();
        let o = outside();
        let root = d.path();
        std::os::unix::fs::symlink(o.path().join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(o.path(), root.join("outdir")).unwrap();
        let escape = o.path().join("escape");
        let abs = escape.to_str().unwrap().to_string();
        let rel = format!(
            "../{}/escape",
            o.path().file_name().unwrap().to_str().unwrap()
        );
        // Names with `/` are flat files of the root, whatever their `..` parts or links say.
        for name in [rel.as_str(), "outdir/escape", "outdir/secret"] {
            let mut w = f.open(name, OpenMode::Write).expect("a flat name inside");
            assert!(w.write(b"x"));
            drop(w);
            assert!(root.join(host_name(name)).is_file(), "{name}");
            assert!(f.remove(name));
        }
        for name in [abs.as_str(), "out"] {
            for mode in [
                OpenMode::Write,
                OpenMode::Append,
                OpenMode::ReadPlus,
                OpenMode::Read,
            ] {
                assert!(f.open(name, mode).is_none(), "{name} opened in {mode:?}");
            }
            assert!(!f.remove(name), "{name} removed");
            assert!(!f.rename(name, "in"), "{name} renamed in");
            assert!(!f.rename("init.lua", name), "renamed out to {name}");
            assert_eq!(f.size_of(name), None);
        }
        assert!(!escape.exists());
        assert_eq!(std::fs::read(o.path().join("secret")).unwrap(), b"s");
        assert!(root.join("init.lua").exists() && root.join("out").exists());
    }

    #[test]
    fn rename_and_remove_results() {
        let (d, f) = flash();
        std::fs::write(d.path().join("b"), "b").unwrap();
        assert!(!f.rename("init.lua", "b"), "target exists");
        assert!(f.rename("init.lua", "c"));
        assert!(!f.rename("init.lua", "d"), "source gone");
        assert!(f.remove("c"));
        assert!(!f.remove("c"));
        assert_eq!(f.list(), vec![("b".to_string(), 1)]);
    }

    #[test]
    fn format_erases_the_listed_files_only() {
        let (d, f) = flash();
        let o = outside();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/keep"), "k").unwrap();
        std::os::unix::fs::symlink(o.path().join("secret"), d.path().join("out")).unwrap();
        assert_eq!(f.format().unwrap(), 1);
        assert!(f.list().is_empty());
        assert!(d.path().join("sub/keep").exists());
        assert_eq!(std::fs::read(o.path().join("secret")).unwrap(), b"s");
    }

    #[test]
    fn usage_counts_pages_against_the_capacity() {
        let (_d, f) = flash();
        let u = f.usage();
        assert_eq!(u.total, 3_455_015);
        assert_eq!(u.used, 2 * 251, "an index page and a data page");
        let small = f.clone().with_capacity(251 * 4);
        let mut w = small
            .open("big", OpenMode::Write)
            .expect("room for one more file");
        assert!(!w.write(&[7u8; 600]), "three data pages do not fit");
        assert_eq!(w.size(), 0);
        assert!(w.write(&[7u8; 251]));
        assert_eq!(small.usage().remaining(), 0);
        assert!(small.open("more", OpenMode::Write).is_none(), "full");
    }
}
