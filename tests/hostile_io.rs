//! The `resnetc` binary against hostile paths, files and output streams: FIFOs, devices,
//! directories, symbolic links, oversized and non-UTF-8 specs, closed and full pipes, and
//! specs made to produce a flood of diagnostics.
//!
//! Everything a test creates lives in its own temporary folder; `/dev/null`, `/dev/zero`
//! and `/dev/full` are only ever opened or pointed at, never replaced.

mod common;

use resnetc::ir::Limits;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TINY_DSL: &str = "model tiny\ninput 3x32x32\nbasic [16, 16] x3\n";
const TINY_YAML: &str =
    "name: tiny\ninput: [3, 32, 32]\nstages:\n  - {block: basic, filters: [16, 16], repeat: 3}\n";

fn resnetc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resnetc"));
    cmd.current_dir(common::root());
    cmd
}

/// Runs a command to the end, reading its output as it comes; a run that has not ended
/// after a minute (a blocked open or read) is killed and fails the test rather than
/// hanging the suite.
fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn resnetc");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = pipe.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("resnetc was still running after a minute: it blocked");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn no_panic(o: &Output) {
    assert_ne!(o.status.code(), Some(101), "{}", stderr(o));
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

fn write(path: &Path, text: impl AsRef<[u8]>) -> PathBuf {
    std::fs::write(path, text).expect("write fixture");
    path.to_path_buf()
}

fn check(path: &Path) -> Output {
    run(resnetc().arg("check").arg(path))
}

// ---- 7. what a SPEC may be --------------------------------------------------------------

#[test]
fn a_fifo_as_spec_is_refused_without_opening_it() {
    let dir = tmp();
    for name in ["spec.yaml", "spec.resnet"] {
        let fifo = dir.path().join(name);
        mkfifo(&fifo);
        let o = check(&fifo);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("is a FIFO, not a regular file"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_directory_as_spec_is_refused() {
    let dir = tmp();
    let d = dir.path().join("specs.yaml");
    std::fs::create_dir(&d).unwrap();
    let o = check(&d);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a directory, not a regular file"),
        "{}",
        stderr(&o)
    );
}

#[cfg(unix)]
#[test]
fn an_endless_device_as_spec_is_refused() {
    let dir = tmp();
    let link = dir.path().join("x.yaml");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let o = check(&link);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a device, not a regular file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn both_syntaxes_share_one_size_limit() {
    let dir = tmp();
    let limit = Limits::MAX_SPEC_BYTES;
    let message = format!("is larger than {limit} bytes (the limit for a spec)");
    for (name, spec) in [("tiny.yaml", TINY_YAML), ("tiny.resnet", TINY_DSL)] {
        // A valid spec padded with a comment to exactly the limit is read.
        let mut text = format!("{spec}#");
        text.push_str(&"x".repeat(limit - text.len()));
        let at_limit = write(&dir.path().join(name), &text);
        let o = check(&at_limit);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name} at the limit: {}",
            stderr(&o)
        );
        // One byte more is not.
        text.push('x');
        let over = write(&dir.path().join(name), &text);
        let o = check(&over);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{name} over the limit: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(&message), "{}", stderr(&o));
    }
}

#[test]
fn non_utf8_spec_names_the_first_bad_byte() {
    let dir = tmp();
    let path = write(
        &dir.path().join("bad.resnet"),
        b"model tiny\ninput 3x32x32\n# caf\xc3\xa9 \xff\n",
    );
    let o = check(&path);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not UTF-8 text: byte 0xff at offset 33 (line 3, column 8)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_byte_order_mark_is_accepted_in_both_syntaxes() {
    let dir = tmp();
    for (name, spec) in [("bom.yaml", TINY_YAML), ("bom.resnet", TINY_DSL)] {
        let path = write(&dir.path().join(name), format!("\u{feff}{spec}"));
        let o = check(&path);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
}

// ---- 6. closed and failing output streams -------------------------------------------------

const PRINTING: &[&[&str]] = &[
    &["check", "specs/resnet50.yaml"],
    &["table", "specs/resnet50.yaml"],
    &["table", "specs/resnet50.yaml", "--format", "json"],
    &["graph", "specs/resnet50.yaml"],
    &["fmt", "specs/resnet50.yaml", "--to", "dsl"],
    &["build", "specs/resnet50.yaml"],
];

#[test]
fn a_closed_stdout_ends_quietly() {
    for args in PRINTING {
        let mut child = resnetc()
            .args(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before resnetc writes: every write then fails with EPIPE.
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait");
        no_panic(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_full_stdout_is_an_io_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full on this system
    };
    for args in PRINTING {
        let o = resnetc()
            .args(*args)
            .stdout(full.try_clone().unwrap())
            .output()
            .expect("run");
        no_panic(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("error: cannot write `<stdout>`"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // clap's own output too: help and version into a full disk are I/O errors.
    for args in [&["--help"][..], &["--version"], &["table", "--help"]] {
        let o = resnetc()
            .args(args)
            .stdout(full.try_clone().unwrap())
            .output()
            .expect("run");
        no_panic(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
    }
    let o = resnetc().arg("--help").output().expect("run");
    assert_eq!(o.status.code(), Some(0));
    let o = resnetc().arg("--no-such-flag").output().expect("run");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_failing_stderr_changes_nothing_but_the_message() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let cases: &[(&[&str], i32)] = &[
        (
            &[
                "check",
                "tests/specs/invalid/several-independent-errors.yaml",
            ],
            1,
        ),
        (
            &[
                "table",
                "tests/specs/invalid/several-independent-errors.yaml",
            ],
            1,
        ),
        (&["table", "specs/nope.yaml"], 3),
        (&["check", "specs/resnet18.yaml"], 0),
    ];
    for (args, code) in cases {
        let o = resnetc()
            .args(*args)
            .stdout(Stdio::null())
            .stderr(full.try_clone().unwrap())
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(*code), "{args:?}");
    }
}

// ---- 4. build -o --------------------------------------------------------------------------

fn build_to(spec: &Path, out: &Path) -> Output {
    run(resnetc().arg("build").arg(spec).arg("-o").arg(out))
}

fn spec_in(dir: &Path) -> PathBuf {
    write(&dir.join("tiny.yaml"), TINY_YAML)
}

#[test]
fn build_output_replaces_a_file_and_keeps_its_mode() {
    let dir = tmp();
    let spec = spec_in(dir.path());
    let out = write(&dir.path().join("model.rs"), "old");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let o = build_to(&spec, &out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let module = std::fs::read_to_string(&out).unwrap();
    assert!(module.contains("pub struct Tiny"), "{module}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
    }
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["model.rs", "tiny.yaml"]);
}

#[test]
fn build_output_refuses_a_directory() {
    let dir = tmp();
    let spec = spec_in(dir.path());
    let out = dir.path().join("model.rs");
    std::fs::create_dir(&out).unwrap();
    let o = build_to(&spec, &out);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a directory; resnetc writes only regular files"),
        "{}",
        stderr(&o)
    );
    assert!(out.is_dir());
}

#[test]
fn build_output_refuses_a_fifo_without_blocking() {
    let dir = tmp();
    let spec = spec_in(dir.path());
    let out = dir.path().join("model.rs");
    mkfifo(&out);
    let o = build_to(&spec, &out);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a FIFO; resnetc writes only regular files"),
        "{}",
        stderr(&o)
    );
}

#[cfg(unix)]
#[test]
fn build_output_refuses_symbolic_links() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tmp();
    let spec = spec_in(dir.path());
    // To a device: refused before anything is renamed, the device stays a device.
    let to_device = dir.path().join("null.rs");
    std::os::unix::fs::symlink("/dev/null", &to_device).unwrap();
    let o = build_to(&spec, &to_device);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a symbolic link (to `/dev/null`)"),
        "{}",
        stderr(&o)
    );
    assert!(std::fs::symlink_metadata(&to_device)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // To a regular file: neither the link nor the file it names changes.
    let victim = write(&dir.path().join("victim.txt"), "precious");
    let link = dir.path().join("model.rs");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let o = build_to(&spec, &link);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn build_output_never_overwrites_the_spec() {
    let dir = tmp();
    let spec = spec_in(dir.path());
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let hard_link = dir.path().join("same.yaml");
    std::fs::hard_link(&spec, &hard_link).unwrap();
    for out in [spec.clone(), sub.join("../tiny.yaml"), hard_link] {
        let o = build_to(&spec, &out);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{}: {}",
            out.display(),
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("is the spec being compiled"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read_to_string(&spec).unwrap(), TINY_YAML);
    }
}

#[test]
fn build_output_into_a_missing_folder_is_an_io_error() {
    let dir = tmp();
    let spec = spec_in(dir.path());
    let o = build_to(&spec, &dir.path().join("no/such/folder/model.rs"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
}

// ---- 8. floods of diagnostics -------------------------------------------------------------

#[test]
fn a_long_line_of_duplicates_prints_a_bounded_report() {
    let dir = tmp();
    // 1,000 duplicated options on one 9 KB line: 999 errors, each on that line.
    let text = format!(
        "model m\ninput 3x32x32\ndefaults basic{}\nconv2_x: basic [16, 16] x2\n",
        ", no bias".repeat(1000)
    );
    let path = write(&dir.path().join("dup.resnet"), text);
    let o = check(&path);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("... and 949 more errors (only the first 50 are shown)"),
        "{err}"
    );
    assert!(
        err.contains("error: `") && err.contains("` has 999 errors"),
        "{err}"
    );
    assert_eq!(err.matches("error[E-duplicate]").count(), 50);
    // 50 short excerpts: about 26 KB, where the whole line each time was 9 MB.
    assert!(o.stderr.len() < 64 * 1024, "{} bytes", o.stderr.len());
}

#[test]
fn a_long_yaml_line_prints_a_window_of_it() {
    let dir = tmp();
    // 0.9 MB on one line: 60 stages with 15,000-character names, each misspelling its block
    // kind. Each of the 60 errors used to print the whole line.
    let stages: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "{{stage: s{i}{}, block: basik, filters: [16, 16], repeat: 1}}",
                "x".repeat(15_000)
            )
        })
        .collect();
    let text = format!(
        "name: m\ninput: [3, 32, 32]\nstages: [{}]\n",
        stages.join(", ")
    );
    assert!(text.len() > 900_000 && text.len() < Limits::MAX_SPEC_BYTES);
    let path = write(&dir.path().join("long.yaml"), text);
    let o = check(&path);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("error[E-keyword]: unknown block kind `basik`")
            .count(),
        50,
        "{err}"
    );
    assert!(
        err.contains("... and 10 more errors (only the first 50 are shown)"),
        "{err}"
    );
    assert!(o.stderr.len() < 64 * 1024, "{} bytes", o.stderr.len());
    for line in err.lines() {
        assert!(
            line.chars().count() < 400,
            "a line of {} characters",
            line.chars().count()
        );
    }
}

// ---- 12. what a spec may put on a terminal -------------------------------------------------

#[test]
fn control_characters_from_a_spec_are_escaped_in_messages() {
    for fixture in [
        "tests/specs/invalid/dsl-control-characters.resnet",
        "tests/specs/invalid/yaml-control-characters.yaml",
    ] {
        let o = check(Path::new(fixture));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("\\u{1b}"), "{err}");
        assert!(
            !err.chars()
                .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
            "{err:?}"
        );
    }
    // A path and a model name with controls in them, in `check`'s own lines.
    let dir = tmp();
    let path = write(
        &dir.path().join("a\u{1b}[2Jb.resnet"),
        "model \"n\\t\u{1b}]0;x\u{7}\"\ninput 3x32x32\nbasic [16, 16] x3\n",
    );
    let o = check(&path);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("a\\u{1b}[2Jb.resnet: n\\u{9}\\u{1b}]0;x\\u{7} (3 blocks)"),
        "{out}"
    );
    let o = check(&dir.path().join("gone\u{1b}[31m.yaml"));
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("gone\\u{1b}[31m.yaml"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
}

#[test]
fn control_characters_from_names_are_escaped_in_every_output() {
    let dir = tmp();
    let path = write(
        &dir.path().join("red.resnet"),
        "model \"a\u{1b}[31mred\u{202e}\"\ninput 3x32x32\nbasic [16, 16] x3\n",
    );
    // Into a pipe: tables and graphs show names escaped; `fmt` writes escapes both syntaxes read.
    for args in [
        &["table"][..],
        &["table", "--stages"],
        &["graph"],
        &["fmt", "--to", "yaml"],
        &["fmt", "--to", "dsl"],
    ] {
        let o = run(resnetc().args(args).arg(&path));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{args:?}: {out:?}"
        );
    }
    let o = run(resnetc().arg("table").arg(&path));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("a\\u{1b}[31mred\\u{202e}: input"));
    // On a terminal (util-linux `script`, part of Debian's essential bsdutils, gives resnetc
    // one) whatever is written goes through the same escaping.
    let command = format!(
        "{} table '{}'",
        env!("CARGO_BIN_EXE_resnetc"),
        path.display()
    );
    let o = run(Command::new("script").args(["-qec", &command, "/dev/null"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("a\\u{1b}[31mred\\u{202e}: input"),
        "{out:?}"
    );
    assert!(!out.contains('\u{1b}'), "{out:?}");
}
