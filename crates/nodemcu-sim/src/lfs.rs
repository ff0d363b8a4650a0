//! LFS images on the host: `nodemcu-sim lfs build SRC... -o IMAGE` and the `--lfs` option,
//! which boots a device with modules in its Lua Flash Store. A path is a Lua source (its file
//! name without `.lua` names the module), a directory (every `*.lua` in it), or, alone, an image.

use std::path::{Path, PathBuf};

use net_api::modules::lfs::{self, Image};

/// The image the paths describe.
pub fn image(paths: &[PathBuf]) -> Result<Image, String> {
    if let [one] = paths
        && one.is_file()
        && one.extension().is_none_or(|e| e != "lua")
    {
        let bytes = std::fs::read(one).map_err(|e| format!("{}: {e}", one.display()))?;
        return Image::parse(&bytes).map_err(|e| format!("{}: {e}", one.display()));
    }
    let mut sources = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|e| e == "lua"))
                .collect();
            files.sort();
            for f in files {
                sources.push(source(&f)?);
            }
        } else {
            sources.push(source(p)?);
        }
    }
    lfs::build(build_time(), sources)
}

fn source(path: &Path) -> Result<(String, Vec<u8>), String> {
    if path.extension().is_none_or(|e| e != "lua") {
        return Err(format!(
            "{}: not a Lua source (.lua); an image must be given alone",
            path.display()
        ));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((name, bytes))
}

/// The image's time stamp: `SOURCE_DATE_EPOCH` for reproducible builds, else now.
fn build_time() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
}

/// `nodemcu-sim lfs build SRC... -o IMAGE`.
pub fn build(sources: &[PathBuf], out: &Path) -> Result<usize, String> {
    let img = image(sources)?;
    let bytes = img.to_bytes();
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(img.modules.len())
}
