//! `resnetc build SPEC [-o FILE] [--name NAME] [--input CxHxW] [--classes N]`
use super::{compile_or_report, not_regular, write_stdout, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::rust::{is_type_name, module_source, RustOptions};
use crate::diag::escape;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Write the module to FILE (atomically: a temporary file, then a rename) instead of
    /// stdout. FILE must be a regular file or not exist; it keeps its permissions.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Name of the generated struct (default: from the model's name, `resnet50` -> `ResNet50`).
    #[arg(long, value_name = "NAME", value_parser = parse_type_name)]
    name: Option<String>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

fn parse_type_name(s: &str) -> Result<String, String> {
    if is_type_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a Rust identifier usable as a struct name"))
    }
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, compiled)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let opts = RustOptions { name: args.name, source: Some(args.spec.clone()) };
    let source = module_source(&compiled, &opts);
    match &args.output {
        Some(path) => write_module(path, Path::new(&args.spec), source.as_bytes())?,
        None => write_stdout(&source)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the module to `path` through a temporary file created exclusively (with a random
/// name) in the same directory, then renamed over `path`: a reader never sees half a
/// module, and nothing planted under a predictable name can redirect the write.
///
/// `path` must be a regular file or not exist yet: a directory, FIFO, device or socket is
/// refused, and so is a symbolic link (the rename would replace the link itself, not the
/// file it names), before anything is written. The spec being compiled is never
/// overwritten. An existing file keeps its permissions (and, where allowed, its owner).
fn write_module(path: &Path, spec: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let shown = || escape(&path.display().to_string()).into_owned();
    let write_error = |source| CliError::Write { path: shown(), source };
    let existing = match std::fs::symlink_metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(write_error(e)),
    };
    if let Some(meta) = &existing {
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map(|t| format!(" (to `{}`)", escape(&t.display().to_string()))).unwrap_or_default();
            return Err(CliError::msg(format!(
                "`{}` is a symbolic link{target}; give the path of the file itself to replace it",
                shown()
            )));
        }
        if let Some(kind) = not_regular(meta) {
            return Err(CliError::msg(format!("`{}` is {kind}; `build -o` writes a regular file", shown())));
        }
        if std::fs::metadata(spec).is_ok_and(|s| same_file(&s, meta)) {
            return Err(CliError::msg(format!(
                "`{}` is the spec being compiled; write the module to another file",
                shown()
            )));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(".{}.", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A new module gets the mode a plain create would give it (0666 less the umask).
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Dropping the temporary file on any error below removes it.
    let mut tmp = builder.tempfile_in(dir).map_err(write_error)?;
    tmp.write_all(bytes).map_err(write_error)?;
    if let Some(meta) = &existing {
        keep_owner_and_mode(tmp.as_file(), meta).map_err(write_error)?;
    }
    tmp.as_file().sync_all().map_err(write_error)?;
    tmp.persist(path).map_err(|e| write_error(e.error))?;
    // Make the rename itself durable; a folder that cannot be synced (some file systems)
    // still holds the new module.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// True when both are the same file (the same inode on Unix, even through another name).
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
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
/// (a module rebuilt by root stays its user's).
fn keep_owner_and_mode(file: &std::fs::File, old: &std::fs::Metadata) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Changing the owner is a courtesy: an ordinary user may not, and that is fine.
        let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
    }
    // After the owner: changing it may clear set-user-ID bits.
    file.set_permissions(old.permissions())
}
