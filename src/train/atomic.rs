//! Atomic file replacement for training's outputs (weights, checkpoints, metrics, plots),
//! through [`crate::output`]: an exclusive temporary file beside the target, flushed to
//! disk and renamed over it. A process killed at any moment leaves either the old file or
//! the new one, never a mix, and a target that is a link, a directory or a device is
//! refused before anything is written.

use crate::output::{self, OutputError, ReplaceError};
use std::io;
use std::path::Path;

/// Replaces `path` with what `write` puts into the temporary file whose path it is given
/// (same folder, same extension: some writers choose the format by extension).
/// `write`'s own error is returned as is; refusals and I/O errors of the replacement as
/// `Err(Ok(e))`.
pub fn replace_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), Result<io::Error, E>> {
    output::replace_with(path, &[], |_, tmp| write(tmp)).map_err(|e| match e {
        ReplaceError::Output(e) => Ok(to_io(e)),
        ReplaceError::Write(e) => Err(e),
    })
}

/// Replaces `path` with `bytes`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    output::write_bytes(path, &[], bytes).map_err(to_io)
}

fn to_io(e: OutputError) -> io::Error {
    match e {
        OutputError::Io { source, .. } => source,
        refused @ OutputError::Refused { .. } => {
            io::Error::new(io::ErrorKind::InvalidInput, refused.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        write_bytes(&p, b"one").unwrap();
        write_bytes(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let failed: Result<(), Result<io::Error, &str>> = replace_with(&p, |tmp| {
            assert_eq!(tmp.extension().unwrap(), "csv");
            std::fs::write(tmp, b"half").unwrap();
            Err("stopped")
        });
        assert!(matches!(failed, Err(Err("stopped"))));
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"two",
            "the old file survives a failed write"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
        #[cfg(unix)]
        {
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&p, &link).unwrap();
            let e = write_bytes(&link, b"three").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(std::fs::read(&p).unwrap(), b"two");
        }
    }
}
