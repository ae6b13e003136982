//! `resnetc build --target torchrun`: the training entry point under torchrun, on this
//! machine's CPU with the gloo backend, against one process (resnetc's venv).
//!
//! - `two_processes_train_the_one_process_network`: with `--sync-bn`, two processes of
//!   batch 64 reach the weights, BN statistics and momentum buffers of one process of
//!   batch 128 after the same 8 steps, within 1e-5 (in float64, where rounding cannot hide
//!   a difference of method; the float32 figures are printed); without `--sync-bn` they
//!   do not (each process normalizes its own 64 examples).
//! - `killed_rank_then_resume`: a rank killed mid-run stops the job with a message naming
//!   the last checkpoint, which is intact; `--resume` continues from it to the very weights
//!   of an uninterrupted run; `resnetc eval` of those weights counts the same correct test
//!   images as the entry point's own test pass; the curves are drawn by `resnetc curves`.
//!
//! Run: `cargo test -j2 --features torch --test torchrun -- --nocapture` (about a minute).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One test at a time: each runs two processes on this 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

const RESNETC: &str = env!("CARGO_BIN_EXE_resnetc");

fn venv_bin(name: &str) -> PathBuf {
    common::venv_python().with_file_name(name)
}

/// `train.py` for the Fashion-MNIST ResNet-20, written by the CLI into `dir`.
fn entry_point(dir: &Path) -> PathBuf {
    let script = dir.join("train.py");
    let spec = common::root().join("specs/fmnist-resnet20.yaml");
    let out = common::resnetc(&[
        "build",
        spec.to_str().unwrap(),
        "--target",
        "torchrun",
        "-o",
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    script
}

/// The command for `processes` processes: plain python for 1, torchrun otherwise.
fn launcher(processes: usize, script: &Path) -> Command {
    let mut cmd = if processes == 1 {
        Command::new(venv_bin("python"))
    } else {
        let mut c = Command::new(venv_bin("torchrun"));
        c.args(["--standalone", &format!("--nproc_per_node={processes}")]);
        c
    };
    cmd.arg(script)
        .env("RESNETC", RESNETC)
        .env("OMP_NUM_THREADS", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

fn run(processes: usize, script: &Path, out: &Path, flags: &[&str]) -> Output {
    let output = launcher(processes, script)
        .args(["--data", "fashion-mnist", "--out"])
        .arg(out)
        .args(["--threads", "1"])
        .args(flags)
        .output()
        .expect("the entry point runs");
    assert!(
        output.status.success(),
        "{processes} process(es) {flags:?}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Largest |a - b| over the tensors of two safetensors files whose names start with one
/// of `prefixes`, with the name; the two files must hold the same such names.
fn max_diff(a: &Path, b: &Path, prefixes: &str) -> (f64, String) {
    let code = r#"
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
keys = [k for k in a if k.startswith(tuple(sys.argv[3].split(",")))]
assert keys and sorted(keys) == sorted(k for k in b if k.startswith(tuple(sys.argv[3].split(",")))), "different names"
d, k = max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in keys)
rel = max((a[k].double() - b[k].double()).abs().max().item() / max(a[k].double().abs().max().item(), 1e-30) for k in keys)
print(d, k, len(keys), rel)
"#;
    let out = Command::new(venv_bin("python"))
        .args(["-c", code])
        .args([a, b])
        .arg(prefixes)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace();
    let d: f64 = it.next().unwrap().parse().unwrap();
    let (name, count, rel) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    (d, format!("{name} ({count} tensors; largest difference relative to its tensor's largest |value|: {rel})"))
}

const SUBSET: [&str; 4] = ["--limit-train", "512", "--limit-test", "200"];

#[test]
fn two_processes_train_the_one_process_network() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let script = entry_point(dir.path());
    // 512 examples, global batch 128, 2 epochs: 8 steps, with momentum buffers.
    let mut flags = SUBSET.to_vec();
    flags.extend([
        "--epochs",
        "2",
        "--momentum",
        "0.9",
        "--weight-decay",
        "1e-4",
        "--sync-bn",
    ]);
    let ckpt = |name: &str| dir.path().join(name).join("checkpoint.safetensors");
    let f64_flags = [flags.as_slice(), &["--float64"]].concat();
    run(1, &script, &dir.path().join("one"), &f64_flags);
    run(2, &script, &dir.path().join("two"), &f64_flags);
    let (d, at) = max_diff(&ckpt("one"), &ckpt("two"), "model.,momentum.");
    println!("float64, --sync-bn: 2 x 64 against 1 x 128 after 8 steps: max |diff| {d:e} at {at}");
    assert!(d <= 1e-5, "{d} at {at}");

    // The same in float32: rounding differs with the reduction order.
    run(1, &script, &dir.path().join("one32"), &flags);
    run(2, &script, &dir.path().join("two32"), &flags);
    let (d32, at32) = max_diff(&ckpt("one32"), &ckpt("two32"), "model.");
    println!("float32, --sync-bn: max |diff| {d32:e} at {at32}");
    // For scale: one process against itself with 2 threads instead of 1.
    let two_threads: Vec<&str> = flags.iter().copied().chain(["--threads", "2"]).collect();
    run(1, &script, &dir.path().join("one32-2threads"), &two_threads);
    let (dt, att) = max_diff(&ckpt("one32"), &ckpt("one32-2threads"), "model.");
    println!("float32, one process, 1 thread against 2 threads: max |diff| {dt:e} at {att}");

    // Without synchronized statistics each process normalizes its own half batch.
    let unsynced: Vec<&str> = f64_flags
        .iter()
        .copied()
        .filter(|f| *f != "--sync-bn")
        .collect();
    run(2, &script, &dir.path().join("two-unsynced"), &unsynced);
    let (du, atu) = max_diff(&ckpt("one"), &ckpt("two-unsynced"), "model.");
    println!("float64, no --sync-bn: max |diff| {du:e} at {atu}");
    assert!(du > 1e-3, "unsynchronized BN should differ: {du} at {atu}");

    // Every run folder holds what `resnetc train` writes.
    for name in ["one", "two"] {
        let csv = std::fs::read_to_string(dir.path().join(name).join("metrics.csv")).unwrap();
        assert_eq!(
            csv.lines().next(),
            Some("epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds")
        );
        assert_eq!(csv.lines().count(), 3, "{csv}");
        for f in ["weights.safetensors", "curves.png", "curves.svg"] {
            assert!(dir.path().join(name).join(f).is_file(), "{name}/{f}");
        }
    }
}

/// Processes of this machine whose environment holds `key=value` pairs `all`.
fn processes_with(all: &[&str]) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if all.iter().all(|want| vars.contains(&want.as_bytes())) {
            pids.push(pid);
        }
    }
    pids
}

fn epochs_done(run_dir: &Path) -> usize {
    std::fs::read_to_string(run_dir.join("metrics.csv"))
        .map_or(0, |t| t.lines().count().saturating_sub(1))
}

/// `test accuracy 0.xxxx (C of N ...`: C.
fn correct_count(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("test accuracy "))
        .unwrap_or_else(|| panic!("{text}"));
    let open = line.find('(').unwrap();
    line[open + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn killed_rank_then_resume() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let script = entry_point(dir.path());
    let mut flags = SUBSET.to_vec();
    flags[1] = "1024";
    flags.extend([
        "--epochs",
        "3",
        "--momentum",
        "0.9",
        "--sync-bn",
        "--schedule",
        "cosine",
    ]);

    let whole = dir.path().join("whole");
    run(2, &script, &whole, &flags);

    // The same run, with rank 1 killed once the first epoch is checkpointed.
    let cut = dir.path().join("cut");
    let tag = format!("RESNETC_TORCHRUN_TEST={}", std::process::id());
    let mut child = launcher(2, &script)
        .args(["--data", "fashion-mnist", "--out"])
        .arg(&cut)
        .args(["--threads", "1"])
        .args(&flags)
        .env("RESNETC_TORCHRUN_TEST", std::process::id().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("torchrun starts");
    let started = Instant::now();
    while epochs_done(&cut) < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no epoch after 5 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let victims = processes_with(&[&tag, "RANK=1"]);
    assert_eq!(victims.len(), 1, "rank 1: {victims:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &victims[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "torchrun succeeded after a rank was killed"
    );
    assert!(
        stderr.contains("rerun with --resume to continue")
            && stderr.contains("checkpoint.safetensors"),
        "{stderr}"
    );
    let done = epochs_done(&cut);
    assert!((1..3).contains(&done), "killed after {done} epochs");
    assert!(
        stderr.contains(&format!("checkpoint.safetensors` (epoch {done})")),
        "{stderr}"
    );
    println!(
        "rank 1 killed in epoch {}; torchrun exit {:?}",
        done + 1,
        output.status.code()
    );
    for line in stderr.lines().filter(|l| l.contains("rerun with --resume")) {
        println!("  {line}");
    }

    // The checkpoint is whole: resnetc reads its weights, and --resume continues to the
    // uninterrupted run's weights.
    let resumed = run(
        2,
        &script,
        &cut,
        &[flags.as_slice(), &["--resume"]].concat(),
    );
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        stdout.contains(&format!("resuming {} at epoch {}", cut.display(), done + 1)),
        "{stdout}"
    );
    let (d, at) = max_diff(
        &whole.join("weights.safetensors"),
        &cut.join("weights.safetensors"),
        "",
    );
    println!("resumed against uninterrupted: max |diff| {d:e} at {at}");
    assert_eq!(d, 0.0, "{at}");
    assert_eq!(
        std::fs::read_to_string(whole.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplitn(3, ',').nth(2).unwrap().to_string())
            .collect::<Vec<_>>(),
        std::fs::read_to_string(cut.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplitn(3, ',').nth(2).unwrap().to_string())
            .collect::<Vec<_>>(),
        "metrics other than speed differ"
    );

    // resnetc evaluates the weights as they are, with the entry point's count.
    let spec = common::root().join("specs/fmnist-resnet20.yaml");
    let eval = Command::new(RESNETC)
        .args([
            "eval",
            spec.to_str().unwrap(),
            "--data",
            "fashion-mnist",
            "--limit-test",
            "200",
            "--weights",
        ])
        .arg(cut.join("weights.safetensors"))
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let eval_out = String::from_utf8_lossy(&eval.stdout);
    println!(
        "entry point: {}",
        stdout
            .lines()
            .find(|l| l.starts_with("test accuracy"))
            .unwrap()
    );
    println!("resnetc eval: {}", eval_out.lines().next().unwrap());
    assert_eq!(correct_count(&eval_out), correct_count(&stdout));
}

#[test]
fn curves_redraws_from_metrics_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds\n1,0.9,0.7,0.75,100.0,1.00\n2,0.5,0.82,0.84,100.0,1.00\n";
    std::fs::write(dir.path().join("metrics.csv"), csv).unwrap();
    let out = Command::new(RESNETC)
        .arg("curves")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.path().join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("test acc"));

    for (bad, expected) in [
        ("epoch,x\n", "line 1: expected the header"),
        (
            &csv.replace("\n2,", "\n2.5,")[..],
            "line 3: the epoch `2.5` is not a whole number",
        ),
        (
            &csv.replace("0.84", "high")[..],
            "line 3: `high` is not a number",
        ),
        (
            "epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds\n",
            "has no epochs yet",
        ),
    ] {
        std::fs::write(dir.path().join("metrics.csv"), bad).unwrap();
        let out = Command::new(RESNETC)
            .arg("curves")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(expected) && stderr.contains("metrics.csv"),
            "{expected}: {stderr}"
        );
    }
    // A folder without metrics.csv, and a FIFO in its place, are refused without waiting.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(RESNETC)
        .arg("curves")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    std::fs::remove_file(dir.path().join("metrics.csv")).unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("metrics.csv"))
        .status()
        .unwrap();
    assert!(made.success());
    let out = Command::new(RESNETC)
        .arg("curves")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
