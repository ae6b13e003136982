//! Opening the files resnetc reads (specs, weights, inputs, images, data sets, class
//! names) without trusting them: only regular files are opened, so a FIFO cannot block a
//! command and a device such as `/dev/zero` cannot feed it without end, and reads are
//! bounded before any memory is set aside for them. [`crate::output`] uses
//! [`not_regular`] for the files it replaces.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (after following symbolic links);
/// returns the file and its length in bytes. A directory, FIFO, socket or device is an
/// error of kind `InvalidInput` saying what the path is.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let refuse = |kind| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        )
    };
    if let Some(kind) = not_regular(&std::fs::metadata(path)?) {
        return Err(refuse(kind));
    }
    let file = open_without_blocking(path)?;
    // The path may have been replaced between the two calls: check what was opened.
    let meta = file.metadata()?;
    if let Some(kind) = not_regular(&meta) {
        return Err(refuse(kind));
    }
    Ok((file, meta.len()))
}

/// Reads a whole regular file of at most `max` bytes. A longer file is an error of kind
/// `InvalidData` naming both sizes; nothing beyond `max + 1` bytes is ever read, even if
/// the file grows while it is read.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    if len > max {
        return Err(too_large(len, max));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64, max));
    }
    Ok(bytes)
}

fn too_large(len: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "it holds {len} bytes, more than the {} this command reads",
            human(max)
        ),
    )
}

/// `256 MiB`, `4 GiB`, or the plain number of bytes.
pub fn human(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes % GIB == 0 {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a file is when it is not a regular file ("a directory", "a FIFO", ...).
pub fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    if t.is_symlink() {
        return Some("a symbolic link");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a FIFO");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("something other than a file")
}

/// Opens a file for reading; on Unix with `O_NONBLOCK`, so that a FIFO put in place of the
/// spec after its type was checked cannot make the open wait for a writer.
pub fn open_without_blocking(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// For unit tests: a temporary file whose name ends in `name` holding `bytes`, removed
/// when the returned path is dropped.
#[cfg(test)]
pub(crate) fn temp_file(name: &str, bytes: &[u8]) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .prefix("resnetc-test-")
        .suffix(name)
        .tempfile()
        .expect("a temporary file");
    std::io::Write::write_all(&mut f, bytes).expect("writing a temporary file");
    f.into_temp_path()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_directories_and_devices_and_bounds_reads() {
        let e = open_regular(Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        #[cfg(unix)]
        {
            let e = read_bounded(Path::new("/dev/zero"), 10).unwrap_err();
            assert!(e.to_string().contains("a device"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ten");
        std::fs::write(&p, [7u8; 10]).unwrap();
        assert_eq!(read_bounded(&p, 10).unwrap().len(), 10);
        let e = read_bounded(&p, 9).unwrap_err();
        assert!(e.to_string().contains("10 bytes"), "{e}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(256 << 20), "256 MiB");
        assert_eq!(human(4 << 30), "4 GiB");
        assert_eq!(human(1000), "1000 bytes");
    }
}
