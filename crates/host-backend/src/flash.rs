//! The flash file system: a host directory presented with SPIFFS's flat names.
//!
//! Every name a script gives (`file.open`, `require`, `dofile`, ...) goes through [`Flash::resolve`],
//! which is the one place that keeps a device inside its root: no `..`, no absolute paths, no
//! symbolic link that leads outside. A board has no such thing as a path outside its flash, so a name
//! that would reach one simply does not exist for the script.

use std::io;
use std::path::{Component, Path, PathBuf};

/// SPIFFS object names are at most 31 characters (`FS_OBJ_NAME_LEN`).
pub const MAX_NAME_LEN: usize = 31;

#[derive(Debug, Clone)]
pub struct Flash {
    root: PathBuf,
}

impl Flash {
    /// A flash rooted at `root`, which must exist.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref().canonicalize()?;
        Ok(Flash { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path for a flash name, or `None` when the name could not exist on the device or would
    /// lead outside the root. The file need not exist; if it does, its real location is checked.
    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        let name = name.strip_prefix("./").unwrap_or(name);
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
            return None;
        }
        let rel = Path::new(name);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
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
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../x",
            "",
            "x".repeat(32).as_str(),
        ] {
            assert!(f.resolve(bad).is_none(), "{bad} resolved");
        }
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
}
