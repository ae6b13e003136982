//! Output files replaced safely: every file resnetc writes (a generated module, trained
//! weights, checkpoints, metrics, plots) goes through [`replace_with`].
//!
//! - The new content is written to a temporary file created exclusively, with a random
//!   name, in the target's folder (so nothing planted under a predictable name can
//!   redirect the write), flushed to disk, then renamed over the target: a reader, or a
//!   process killed at any moment, sees the old file or the new one, never a mix.
//! - The target must be a regular file or not exist yet. A directory, FIFO, device or
//!   socket is refused, and so is a symbolic link (the rename would replace the link, not
//!   the file it names), before anything is written.
//! - Files named as protected (the spec being compiled) are never replaced, whatever name
//!   they are reached by.
//! - A replaced file keeps its permissions, and its owner where this process may set it.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

/// Why an output file was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target is not something resnetc may replace; `reason` says what it is.
    #[error("`{path}` {reason}")]
    Refused { path: String, reason: String },
    /// Writing, flushing or renaming failed.
    #[error("cannot write `{path}`")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// What [`replace_with`] returns when it fails: the target was refused or could not be
/// replaced, or the caller's writer failed (its error returned as it is).
#[derive(Debug)]
pub enum ReplaceError<E> {
    Output(OutputError),
    Write(E),
}

/// Replaces `path` with what `write` puts into the temporary file it is given (open for
/// writing, and by its path for writers that open files themselves; the temporary name
/// keeps `path`'s extension, since some writers choose the format by it). `protect` lists
/// files that must never be replaced (compared by device and inode).
pub fn replace_with<E>(
    path: &Path,
    protect: &[&Path],
    write: impl FnOnce(&mut File, &Path) -> Result<(), E>,
) -> Result<(), ReplaceError<E>> {
    let shown = || crate::diag::escape(&path.display().to_string()).into_owned();
    let io_error = |source| {
        ReplaceError::Output(OutputError::Io {
            path: shown(),
            source,
        })
    };
    let refuse = |reason: String| {
        ReplaceError::Output(OutputError::Refused {
            path: shown(),
            reason,
        })
    };

    let existing = match std::fs::symlink_metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(e)),
    };
    if let Some(meta) = &existing {
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path)
                .map(|t| format!(" (to `{}`)", crate::diag::escape(&t.display().to_string())))
                .unwrap_or_default();
            return Err(refuse(format!(
                "is a symbolic link{target}; give the path of the file itself to replace it"
            )));
        }
        if let Some(kind) = crate::files::not_regular(meta) {
            return Err(refuse(format!(
                "is {kind}; resnetc writes only regular files"
            )));
        }
        if protect
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| same_file(&m, meta)))
        {
            return Err(refuse(
                "is the spec being compiled; write to another file".into(),
            ));
        }
    }

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, suffix) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".tmp.{e}")),
        _ => (name.clone(), ".tmp".to_string()),
    };
    let prefix = format!(".{stem}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A new file gets the mode a plain create would give it (0666 less the umask).
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Dropping the temporary file on any error below removes it.
    let mut tmp = builder.tempfile_in(dir).map_err(io_error)?;
    let tmp_path = tmp.path().to_path_buf();
    write(tmp.as_file_mut(), &tmp_path).map_err(ReplaceError::Write)?;
    if let Some(meta) = &existing {
        keep_owner_and_mode(tmp.as_file(), meta).map_err(io_error)?;
    }
    // A writer that opened the path itself wrote to the same inode; sync through ours.
    tmp.as_file().sync_all().map_err(io_error)?;
    tmp.persist(path).map_err(|e| io_error(e.error))?;
    // Make the rename itself durable; a folder that cannot be synced (some file systems)
    // still holds the new file.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Replaces `path` with `bytes` (see [`replace_with`]).
pub fn write_bytes(path: &Path, protect: &[&Path], bytes: &[u8]) -> Result<(), OutputError> {
    use std::io::Write as _;
    let shown = || crate::diag::escape(&path.display().to_string()).into_owned();
    replace_with(path, protect, |file, _| file.write_all(bytes)).map_err(|e| match e {
        ReplaceError::Output(e) => e,
        ReplaceError::Write(source) => OutputError::Io {
            path: shown(),
            source,
        },
    })
}

/// True when both are the same file (the same inode on Unix, even through another name).
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        // Without inode numbers, the same length and modification time is the best guess.
        a.len() == b.len() && a.modified().ok() == b.modified().ok()
    }
}

/// Gives the new file the replaced file's permissions, and its owner where this process may
/// (a file rewritten by root stays its user's).
fn keep_owner_and_mode(file: &File, old: &Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Changing the owner is a courtesy: an ordinary user may not, and that is fine.
        let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
    }
    // After the owner: changing it may clear set-user-ID bits.
    file.set_permissions(old.permissions())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_keeps_the_mode_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        write_bytes(&p, &[], b"one").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        write_bytes(&p, &[], b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        let mut seen_ext = None;
        let failed: Result<(), ReplaceError<&str>> = replace_with(&p, &[], |_, tmp| {
            seen_ext = tmp.extension().map(|e| e.to_string_lossy().into_owned());
            std::fs::write(tmp, b"half").unwrap();
            Err("stopped")
        });
        assert!(matches!(failed, Err(ReplaceError::Write("stopped"))));
        assert_eq!(
            seen_ext.as_deref(),
            Some("csv"),
            "the temporary file keeps the extension"
        );
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
    }

    #[test]
    fn refuses_links_directories_fifos_and_protected_files() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"keep").unwrap();
        let refused = |p: &Path, protect: &[&Path]| match write_bytes(p, protect, b"x") {
            Err(OutputError::Refused { reason, .. }) => reason,
            other => panic!("{}: expected a refusal, got {other:?}", p.display()),
        };
        #[cfg(unix)]
        {
            let link = dir.path().join("link.txt");
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            assert!(refused(&link, &[]).starts_with("is a symbolic link"));
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(made.success());
            assert_eq!(
                refused(&fifo, &[]),
                "is a FIFO; resnetc writes only regular files"
            );
            // The same file by another name (a hard link) is still protected.
            let other = dir.path().join("other-name.txt");
            std::fs::hard_link(&victim, &other).unwrap();
            assert!(refused(&other, &[&victim]).starts_with("is the spec being compiled"));
        }
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(
            refused(&sub, &[]),
            "is a directory; resnetc writes only regular files"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
