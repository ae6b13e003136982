//! Atomic file replacement: write a temporary file beside the target, flush it to disk,
//! rename it over the target, flush the folder. A process killed at any moment leaves
//! either the old file or the new one, never a mix.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is written: same folder, same extension (some
/// writers choose the format by extension), a leading dot and the process id.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (name.clone(), String::new()),
    };
    path.with_file_name(format!(".{stem}.tmp-{}{ext}", std::process::id()))
}

/// Replaces `path` with what `write` puts into the temporary file it is given.
/// `write`'s own error is returned as is; I/O errors of the replacement as `Err(Ok(e))`.
pub fn replace_with<E>(path: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), Result<io::Error, E>> {
    let tmp = temp_path(path);
    let result = write(&tmp).map_err(Err).and_then(|()| commit(&tmp, path).map_err(Ok));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` with `bytes`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_with(path, |tmp| std::fs::write(tmp, bytes)).map_err(|e| match e {
        Ok(e) | Err(e) => e,
    })
}

/// fsync `tmp`, rename it to `path`, fsync the folder.
fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Directories cannot be opened for syncing on every platform; the rename is done.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("resnetc-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.csv");
        write_bytes(&p, b"one").unwrap();
        write_bytes(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let failed: Result<(), Result<io::Error, &str>> = replace_with(&p, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err("stopped")
        });
        assert!(matches!(failed, Err(Err("stopped"))));
        assert_eq!(std::fs::read(&p).unwrap(), b"two", "the old file survives a failed write");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");
        assert_eq!(temp_path(&p).extension().unwrap(), "csv");
    }
}
