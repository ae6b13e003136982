//! A bounded fuzz run on stable Rust: every seed of `tests/fuzz-corpus` (and of its
//! `regressions/` folder) once, then mutants of them, then generated specs (well-formed,
//! every option and hostile names drawn at random), each through every command's code
//! path ([`resnetc::fuzz::exercise`]).
//!
//! - `RESNETC_FUZZ_ITERS`: number of mutants (default [`DEFAULT_ITERS`]);
//! - `RESNETC_FUZZ_GENERATED`: number of generated specs (default [`DEFAULT_GENERATED`]);
//! - `RESNETC_FUZZ_SEED`: changes the mutants (default 0: the same run every time);
//! - `RESNETC_FUZZ_TIMEOUT_SECS`: one input running longer than this aborts the run with
//!   the input printed (default [`DEFAULT_TIMEOUT_SECS`]).
//!
//! A failing input (a panic or a broken property) is written to
//! `target/fuzz-failures/` and printed with its bytes escaped. The longer run with
//! libFuzzer is `scripts/fuzz.sh [SECONDS]`.

use resnetc::fuzz::{exercise_named, input_name, Outcome, Property, Report};
use resnetc::span::Syntax;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Mutants per run by default: with the generated specs, about 25 s in a debug build.
const DEFAULT_ITERS: u64 = 7000;
/// Generated specs per run by default.
const DEFAULT_GENERATED: u64 = 1500;
/// One input taking longer than this is a hang (the slowest seed, 4,096 blocks, takes
/// about 1.2 s in a debug build, 4 s on two busy cores).
const DEFAULT_TIMEOUT_SECS: u64 = 20;
/// Tolerated failures listed in the summary.
const KNOWN_SHOWN: usize = 400;
/// Mutants never grow past this many bytes.
const MAX_MUTANT_LEN: usize = 64 * 1024;

/// Regression seeds (in `tests/fuzz-corpus/regressions/`), hostile paths and struct names
/// that still fail, with why: their failure is tolerated and reported; one that passes is
/// reported as ready to come off this list. Each fix removes its entries.
const KNOWN_FAILING: &[(&str, &str)] = &[];

/// Seeds left out of the mutation pool while diagnostics grow quadratically with a line's
/// length: their mutants (a 20 KB line of 1,800 duplicated options) take 13 s and print
/// 70 MB in a debug build, near the hang limit.
const NOT_MUTATED: &[&str] = &[];

/// Violations that mutants may show, for the known bugs behind them (the property, and a
/// substring of its detail): counted and shown, not failed. Each fix removes its entries.
const KNOWN_MUTANT_VIOLATIONS: &[(Property, &str)] = &[];

/// Panic messages (substrings) that mutants may hit, for known bugs.
const KNOWN_MUTANT_PANICS: &[&str] = &[];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn failures_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("fuzz-failures")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// One seed file: its name, bytes and the syntax its extension names (both if none).
struct Seed {
    name: String,
    bytes: Vec<u8>,
    syntaxes: Vec<Syntax>,
}

fn read_seeds(dir: &Path) -> Vec<Seed> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let syntaxes = match Syntax::from_path(&name) {
                Some(s) => vec![s],
                None => vec![Syntax::Yaml, Syntax::Dsl],
            };
            Seed {
                bytes: std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                name,
                syntaxes,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Panics and hangs.

thread_local! {
    /// The message of the last panic on this thread while an input runs.
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
    static CAPTURING: RefCell<bool> = const { RefCell::new(false) };
}

/// Panics while an input runs are recorded, not printed (the harness prints the input);
/// any other panic goes to the default hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| *c.borrow()) {
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                CAPTURED.with(|c| *c.borrow_mut() = Some(format!("{payload}{location}")));
            } else {
                default(info);
            }
        }));
    });
}

/// The input now running, for the watchdog.
type Current = Arc<Mutex<Option<(Instant, String, Vec<u8>)>>>;

/// A thread that aborts the process, printing and saving the input, when one input runs
/// longer than `limit` (a hang cannot be caught any other way).
fn start_watchdog(limit: Duration) -> (Current, Arc<AtomicBool>) {
    let current: Current = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let (c, d) = (current.clone(), done.clone());
    std::thread::spawn(move || {
        while !d.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let guard = c.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((start, label, bytes)) = guard.as_ref() {
                if start.elapsed() > limit {
                    let path = save_failure("hang", label, bytes);
                    eprintln!(
                        "\nfuzz: `{label}` ran for more than {}s (a hang); saved as {}\ninput: {}",
                        limit.as_secs(),
                        path.display(),
                        escaped(bytes)
                    );
                    std::process::abort();
                }
            }
        }
    });
    (current, done)
}

/// The slowest input so far, for the summary.
static SLOWEST: Mutex<Option<(Duration, String)>> = Mutex::new(None);

/// How one input went.
enum Run {
    Finished(Report),
    Panicked(String),
}

fn run_one(current: &Current, label: &str, path: &str, bytes: &[u8], syntax: Syntax) -> Run {
    *current.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((Instant::now(), label.to_string(), bytes.to_vec()));
    CAPTURING.with(|c| *c.borrow_mut() = true);
    let result = catch_unwind(AssertUnwindSafe(|| exercise_named(path, bytes, syntax)));
    CAPTURING.with(|c| *c.borrow_mut() = false);
    if let Some((start, label, _)) = current.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let took = start.elapsed();
        let mut slowest = SLOWEST.lock().unwrap_or_else(|p| p.into_inner());
        if slowest.as_ref().is_none_or(|(t, _)| took > *t) {
            *slowest = Some((took, label));
        }
    }
    match result {
        Ok(report) => Run::Finished(report),
        Err(_) => Run::Panicked(
            CAPTURED
                .with(|c| c.borrow_mut().take())
                .unwrap_or_else(|| "(no message)".into()),
        ),
    }
}

/// The bytes as a Rust byte-string body: printable ASCII as is, the rest escaped.
fn escaped(bytes: &[u8]) -> String {
    const SHOWN: usize = 4096;
    let shown = &bytes[..bytes.len().min(SHOWN)];
    let mut s = String::from("b\"");
    s.extend(shown.escape_ascii().map(char::from));
    s.push('"');
    if bytes.len() > SHOWN {
        s.push_str(&format!(" ... ({} bytes in all)", bytes.len()));
    }
    s
}

/// FNV-1a, to name a saved input by its content.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn save_failure(kind: &str, label: &str, bytes: &[u8]) -> PathBuf {
    let dir = failures_dir();
    let ext = if label.ends_with(".resnet") {
        "resnet"
    } else {
        "yaml"
    };
    let path = dir.join(format!("{kind}-{:016x}.{ext}", fnv(bytes)));
    if std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, bytes))
        .is_err()
    {
        eprintln!("fuzz: cannot save {}", path.display());
    }
    path
}

/// A failure worth reporting: what broke, on which input.
struct Failure {
    label: String,
    what: String,
    saved: PathBuf,
    bytes: Vec<u8>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut what = self.what.clone();
        if let Some((i, _)) = what.char_indices().nth(2000) {
            what.truncate(i);
            what.push_str(" ...");
        }
        write!(
            f,
            "{}: {}\n  saved as {}\n  input: {}",
            self.label,
            what,
            self.saved.display(),
            escaped(&self.bytes)
        )
    }
}

/// What broke in one run, if anything: the panic, or each violated property.
fn problems(run: &Run) -> Vec<(Option<Property>, String)> {
    match run {
        Run::Panicked(msg) => vec![(None, format!("panicked: {msg}"))],
        Run::Finished(r) => r
            .violations
            .iter()
            .map(|v| (Some(v.property), v.to_string()))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// The mutator: small, deterministic, aimed at both syntaxes.

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Words of both syntaxes, and text that has broken compilers before.
const DICTIONARY: &[&str] = &[
    "model ",
    "input ",
    "stem ",
    "defaults ",
    "head ",
    "init ",
    "zero_init_residual",
    "batch_norm ",
    "conv ",
    "pad ",
    "bias",
    "no bias",
    "bn",
    "no bn",
    "relu",
    "maxpool 3x3/2 pad 1",
    "avgpool",
    "no pool",
    "ceil",
    "norm",
    "flatten",
    "dropout 0.5",
    "in 512",
    "fc 10",
    "fc 512 -> 10",
    "softmax",
    "block ",
    "stride_on conv1",
    "stride_on v1.5",
    "shortcut A",
    "shortcut B",
    "shortcut C",
    "shortcut identity",
    "projection bn bias",
    "groups 32",
    "width_per_group 4",
    "basic",
    "bottleneck",
    "preact",
    "plain",
    "x3 /2",
    "[64, 64]",
    "[64, 64, 256]",
    " -> ",
    "×",
    "→",
    ": ",
    "\"",
    "\\",
    "#",
    "\n",
    "\r\n",
    "\t",
    ",",
    "[",
    "]",
    "{",
    "}",
    "x",
    "/",
    "name: ",
    "input: [3, 32, 32]",
    "stem:\n",
    "stages:\n",
    "  - stage: s\n",
    "    repeat: ",
    "    filters: ",
    "    stride: ",
    "    block: ",
    "head: {pool: avg, classes: 10}",
    "pool: ~",
    "pool: ",
    "kind: max",
    "ceil_mode: true",
    "classes: ",
    "eps: ",
    "momentum: ",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!!int ",
    "!!binary ",
    "---\n",
    "...\n",
    "? ",
    "| ",
    "> ",
    "'",
    "- ",
    "null",
    "~",
    "true",
    "false",
    "yes",
    ".inf",
    ".nan",
    "0x10",
    "0o7",
    "1_000",
    "\u{feff}",
    "\u{202e}",
    "\u{2066}",
    "\u{1b}[31m",
    "\0",
    "\u{85}",
    "\u{2028}",
    "```",
    "\n```\nfn main() {}\n```\n",
    "~~~",
    "\n\n    code\n",
    "Vec",
    "Option",
    "Box",
    "Self",
    "r#type",
    "é",
    "日本",
    "🙂",
];

/// Numbers at the edges of every limit and integer type.
const BOUNDARIES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "63",
    "64",
    "65",
    "1023",
    "1024",
    "1025",
    "4095",
    "4096",
    "4097",
    "16384",
    "16385",
    "65536",
    "65537",
    "1048576",
    "1048577",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e400",
    "1e-320",
    "-0",
    "0.0",
    "0.5",
    "1.0",
    "1e-5",
    "NaN",
    "inf",
    "-inf",
];

/// Bytes worth writing over another.
const INTERESTING_BYTES: &[u8] = b"\0\xff\x7f\x1b\r\n\t \"'\\:[]{},#-x/`~&*!|>?%@0123456789";

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[&Seed]) -> Vec<u8> {
    let mut data = input.to_vec();
    // One mutation half the time, so that many mutants still compile.
    let rounds = if rng.below(2) == 0 {
        1
    } else {
        2 + rng.below(3)
    };
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(INTERESTING_BYTES);
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                data.drain(start..end);
            }
            3 if len > 0 => {
                // Duplicate a chunk, sometimes many times (long lines, repeated options).
                let start = rng.below(len);
                let end = (start + 1 + rng.below(128)).min(len);
                let chunk = data[start..end].to_vec();
                let times = if rng.below(8) == 0 {
                    1 + rng.below(64)
                } else {
                    1
                };
                let at = rng.below(len + 1);
                let insert: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * times)
                    .collect();
                data.splice(at..at, insert);
            }
            4 => {
                // Splice: a prefix of this input and a suffix of another seed.
                let other = &rng.pick(seeds).bytes;
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            5 | 6 => {
                let word = rng.pick(DICTIONARY).as_bytes();
                let at = if rng.below(2) == 0 {
                    line_start(&data, rng.below(len + 1))
                } else {
                    rng.below(len + 1)
                };
                data.splice(at..at, word.iter().copied());
            }
            7 => {
                // Replace a run of digits with a boundary value.
                let digits: Vec<usize> = (0..len)
                    .filter(|&i| {
                        data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit())
                    })
                    .collect();
                if digits.is_empty() {
                    continue;
                }
                let start = *rng.pick(&digits);
                let end = (start..len)
                    .find(|&i| !data[i].is_ascii_digit())
                    .unwrap_or(len);
                data.splice(start..end, rng.pick(BOUNDARIES).bytes());
            }
            8 if len > 0 => {
                // Duplicate a whole line (stages, statements, keys).
                let at = line_start(&data, rng.below(len));
                let end = data[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |p| at + p + 1);
                let line = data[at..end].to_vec();
                let most = if rng.below(4) == 0 { 64 } else { 2 };
                let times = 1 + rng.below(most);
                for _ in 0..times {
                    data.splice(end..end, line.iter().copied());
                }
            }
            _ => {
                // Swap two lines.
                let a = line_start(&data, rng.below(len + 1));
                let b = line_start(&data, rng.below(len + 1));
                let (a, b) = (a.min(b), a.max(b));
                if a == b {
                    continue;
                }
                let a_end = data[a..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(len, |p| a + p + 1)
                    .min(b);
                let first = data[a..a_end].to_vec();
                data.drain(a..a_end);
                let b = b - first.len();
                data.splice(b..b, first);
            }
        }
        data.truncate(MAX_MUTANT_LEN);
    }
    data
}

fn line_start(data: &[u8], at: usize) -> usize {
    data[..at.min(data.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1)
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn every_seed_and_a_bounded_number_of_mutants_keep_every_property() {
    install_panic_hook();
    let timeout = Duration::from_secs(env_u64("RESNETC_FUZZ_TIMEOUT_SECS", DEFAULT_TIMEOUT_SECS));
    let (current, done) = start_watchdog(timeout);
    let started = Instant::now();

    let seeds = read_seeds(&corpus_dir());
    let regressions = read_seeds(&corpus_dir().join("regressions"));
    assert!(
        seeds.len() >= 100,
        "the seed corpus is missing ({} seeds)",
        seeds.len()
    );

    let mut failures: Vec<Failure> = Vec::new();
    let mut tolerated: Vec<String> = Vec::new();
    let mut outcomes = [0usize; 3];
    let mut count = |r: &Run| {
        if let Run::Finished(report) = r {
            outcomes[match report.outcome {
                Outcome::NotUtf8 => 0,
                Outcome::Rejected { .. } => 1,
                Outcome::Compiled => 2,
            }] += 1;
        }
    };

    // Every seed once, in its own syntax: none may fail.
    for seed in &seeds {
        for &syntax in &seed.syntaxes {
            let path = format!("tests/fuzz-corpus/{}", seed.name);
            let run = run_one(&current, &seed.name, &path, &seed.bytes, syntax);
            count(&run);
            for (_, what) in problems(&run) {
                let saved = save_failure("seed", &seed.name, &seed.bytes);
                failures.push(Failure {
                    label: seed.name.clone(),
                    what,
                    saved,
                    bytes: seed.bytes.clone(),
                });
            }
        }
    }

    // Regression seeds: only those listed in KNOWN_FAILING may still fail.
    for seed in &regressions {
        let known = KNOWN_FAILING.iter().find(|(n, _)| *n == seed.name);
        let mut failed = false;
        for &syntax in &seed.syntaxes {
            let path = format!("tests/fuzz-corpus/regressions/{}", seed.name);
            let run = run_one(&current, &seed.name, &path, &seed.bytes, syntax);
            count(&run);
            for (_, what) in problems(&run) {
                failed = true;
                if known.is_some() {
                    tolerated.push(format!("{}: {}", seed.name, first_line(&what)));
                } else {
                    let saved = save_failure("regression", &seed.name, &seed.bytes);
                    failures.push(Failure {
                        label: format!("regressions/{}", seed.name),
                        what,
                        saved,
                        bytes: seed.bytes.clone(),
                    });
                }
            }
        }
        if let (Some((name, _)), false) = (known, failed) {
            eprintln!("fuzz: regressions/{name} passes now: take it off KNOWN_FAILING");
        }
    }

    // Mutants of the seeds.
    let iters = env_u64("RESNETC_FUZZ_ITERS", DEFAULT_ITERS);
    let mut rng =
        Rng(0x5eed_5eed_5eed ^ env_u64("RESNETC_FUZZ_SEED", 0).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let pool: Vec<&Seed> = seeds
        .iter()
        .chain(&regressions)
        .filter(|s| !NOT_MUTATED.contains(&s.name.as_str()))
        .collect();
    for i in 0..iters {
        let seed = *rng.pick(&pool);
        let bytes = mutate(&mut rng, &seed.bytes, &pool);
        let mut syntax = *rng.pick(&seed.syntaxes);
        if rng.below(4) == 0 {
            syntax = if syntax == Syntax::Yaml {
                Syntax::Dsl
            } else {
                Syntax::Yaml
            };
        }
        let label = format!("mutant {i} of {} ({})", seed.name, input_name(syntax));
        let run = run_one(&current, &label, input_name(syntax), &bytes, syntax);
        count(&run);
        judge(&label, &run, &bytes, syntax, &mut failures, &mut tolerated);
    }

    // Generated specs, a third of them mutated once.
    let generated = env_u64("RESNETC_FUZZ_GENERATED", DEFAULT_GENERATED);
    for i in 0..generated {
        let spec = generate(&mut rng);
        let syntax = if rng.below(2) == 0 {
            Syntax::Yaml
        } else {
            Syntax::Dsl
        };
        let text = if syntax == Syntax::Yaml {
            spec.yaml()
        } else {
            spec.dsl()
        };
        let bytes = if rng.below(3) == 0 {
            mutate(&mut rng, text.as_bytes(), &pool)
        } else {
            text.into_bytes()
        };
        let label = format!("generated spec {i} ({})", input_name(syntax));
        let run = run_one(&current, &label, input_name(syntax), &bytes, syntax);
        count(&run);
        judge(&label, &run, &bytes, syntax, &mut failures, &mut tolerated);
    }
    done.store(true, Ordering::Relaxed);

    eprintln!(
        "fuzz: {} seeds, {} regression seeds, {iters} mutants, {generated} generated specs in {:.1?}: {} not UTF-8, {} rejected, {} compiled; {} known failures tolerated, {} new",
        seeds.len(),
        regressions.len(),
        started.elapsed(),
        outcomes[0],
        outcomes[1],
        outcomes[2],
        tolerated.len(),
        failures.len()
    );
    if let Some((took, label)) = SLOWEST.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        eprintln!("fuzz: slowest input: {label}, {took:.1?}");
    }
    for t in tolerated.iter().take(KNOWN_SHOWN) {
        eprintln!("  known: {t}");
    }
    if tolerated.len() > KNOWN_SHOWN {
        eprintln!("  known: ... and {} more", tolerated.len() - KNOWN_SHOWN);
    }
    if !failures.is_empty() {
        let shown: Vec<String> = failures
            .iter()
            .take(usize::MAX)
            .map(Failure::to_string)
            .collect();
        panic!(
            "{} fuzz failure(s); the first {}:\n\n{}",
            failures.len(),
            shown.len(),
            shown.join("\n\n")
        );
    }
}

/// Sorts one mutant's or generated spec's problems into known (tolerated) and new.
fn judge(
    label: &str,
    run: &Run,
    bytes: &[u8],
    syntax: Syntax,
    failures: &mut Vec<Failure>,
    tolerated: &mut Vec<String>,
) {
    for (property, what) in problems(run) {
        let known = match property {
            Some(p) => KNOWN_MUTANT_VIOLATIONS
                .iter()
                .any(|(k, detail)| *k == p && what.contains(detail)),
            None => KNOWN_MUTANT_PANICS.iter().any(|k| what.contains(k)),
        };
        let saved = save_failure(
            if property.is_some() {
                "violation"
            } else {
                "crash"
            },
            input_name(syntax),
            bytes,
        );
        if known {
            tolerated.push(format!(
                "{label}: {} (saved as {})",
                first_line(&what),
                saved.display()
            ));
        } else {
            failures.push(Failure {
                label: label.to_string(),
                what,
                saved,
                bytes: bytes.to_vec(),
            });
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[test]
fn the_mutator_is_deterministic_and_bounded() {
    let seeds = read_seeds(&corpus_dir());
    let pool: Vec<&Seed> = seeds.iter().collect();
    let run = |seed: u64| {
        let mut rng = Rng(seed);
        (0..200)
            .map(|_| {
                let input = &rng.pick(&pool).bytes;
                mutate(&mut rng, input, &pool)
            })
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    assert!(a.iter().all(|m| m.len() <= MAX_MUTANT_LEN));
}

/// Paths `resnetc build PATH` may be given: each reaches the module's header and docs.
const HOSTILE_PATHS: &[(&str, &str)] = &[
    ("path-newline", "specs/x.yaml\npub fn injected() {}\n//"),
    (
        "path-fence",
        "specs/x\n/// ```\n/// std::process::exit(1);\n/// ```\n.yaml",
    ),
    ("path-bidi", "specs/x\u{202e}lmay.yaml"),
    ("path-cr", "specs/x\r.yaml"),
    ("path-escape", "specs/x\u{1b}[2J.yaml"),
    ("path-comment", "specs/*/ /* `x` \\ \".yaml"),
];

/// `--name` values that name a prelude type the module uses.
const HOSTILE_STRUCT_NAMES: &[&str] = &["Vec", "Option", "Box", "String", "Result"];

#[test]
fn hostile_paths_and_struct_names_put_nothing_into_the_module() {
    use resnetc::back::rust::{module_source, RustOptions};
    use resnetc::fuzz::audit_generated_module;
    let mut failures = Vec::new();
    let mut check = |label: String, result: Result<(), Vec<String>>| match result {
        Ok(()) => {
            if KNOWN_FAILING.iter().any(|(n, _)| *n == label) {
                eprintln!("fuzz: {label} passes now: take it off KNOWN_FAILING");
            }
        }
        Err(problems) if KNOWN_FAILING.iter().any(|(n, _)| *n == label) => {
            eprintln!("fuzz: known: {label}: {}", problems[0])
        }
        Err(problems) => failures.push(format!("{label}: {}", problems.join("\n  "))),
    };
    let tiny = std::fs::read(corpus_dir().join("hostile-tiny.resnet")).expect("seed");
    for (label, path) in HOSTILE_PATHS {
        let report = exercise_named(path, &tiny, Syntax::Dsl);
        assert_eq!(report.outcome, Outcome::Compiled, "{label}");
        let result = match report
            .violations
            .iter()
            .find(|v| v.property == Property::GeneratedModule)
        {
            Some(v) => Err(vec![v.detail.clone()]),
            None => Ok(()),
        };
        check(label.to_string(), result);
    }
    // Option and Box appear in modules with mixed shortcuts and per-stage projection BN.
    let mixed =
        std::fs::read_to_string(corpus_dir().join("hostile-mixed-shortcuts.resnet")).expect("seed");
    let file = resnetc::span::SourceFile::new("mixed.resnet", mixed, Syntax::Dsl);
    let compiled = resnetc::compile(&file).expect("the seed compiles");
    for name in HOSTILE_STRUCT_NAMES {
        let opts = RustOptions {
            name: Some(name.to_string()),
            source: None,
        };
        check(
            format!("struct-name-{name}"),
            audit_generated_module(&module_source(&compiled, &opts), name),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Generated specs: well-formed in either syntax, with every option drawn at random and
// names from a hostile list, so that most reach the back ends (random mutants mostly stop
// at the parser).

/// Names that must survive every printer and stay inert in the generated module.
const NAMES: &[&str] = &[
    "net",
    "resnet50",
    "ResNet-50 v1.5",
    "a.b-c_d",
    "x",
    "résnet-日本",
    "Self",
    "self",
    "r#type",
    "Vec",
    "Option",
    "Box",
    "BasicBlock",
    "Downsample",
    "Shortcut",
    "conv2d",
    "tch",
    "std",
    "1st",
    "__",
    "a\"b",
    "a\\b",
    "a'b",
    "a: b",
    "- a",
    "#a",
    "[a]",
    "{a}",
    "a,b",
    "a\tb",
    "a\nb",
    "```",
    "a\n```\nfn main() {}\n```\nb",
    "~~~",
    "a\n\n    indented\n",
    "*/ /* // //!",
    "#![no_std]",
    "\u{202e}evil",
    "a\rb",
    "a\u{1b}[31mb",
    "a\0b",
    "\u{feff}a",
    "a\u{85}b",
    "   ",
];

/// A spec's settings, printed as YAML or DSL.
struct Generated {
    name: Option<&'static str>,
    input: Option<[u64; 3]>,
    stem: Option<(u64, u64, u64, u64, bool, bool, bool)>,
    /// `None`: not written; `Some(None)`: `no pool`.
    pool: Option<Option<GeneratedPool>>,
    defaults: Vec<(&'static str, String)>,
    stages: Vec<GeneratedStage>,
    head: Vec<(&'static str, String)>,
    init: Option<&'static str>,
    zero_init: Option<bool>,
    batch_norm: Option<(&'static str, &'static str)>,
}

/// Kind, kernel, stride, padding, ceil mode.
type GeneratedPool = (&'static str, u64, u64, u64, bool);

struct GeneratedStage {
    name: Option<&'static str>,
    kind: Option<&'static str>,
    filters: Vec<u64>,
    repeat: u64,
    stride: u64,
    options: Vec<(&'static str, String)>,
}

const KINDS: &[&str] = &[
    "basic",
    "bottleneck",
    "preact_basic",
    "preact_bottleneck",
    "plain",
    "plain_bottleneck",
];

fn option(rng: &mut Rng) -> (&'static str, String) {
    match rng.below(7) {
        0 => ("block", rng.pick(KINDS).to_string()),
        1 => (
            "stride_on",
            rng.pick(&["conv1", "conv2", "v1", "v1.5"]).to_string(),
        ),
        2 => (
            "shortcut",
            rng.pick(&["A", "B", "C", "identity"]).to_string(),
        ),
        3 => ("groups", rng.pick(&["1", "2", "4", "32"]).to_string()),
        4 => ("width_per_group", rng.pick(&["4", "8", "64"]).to_string()),
        5 => ("bias", rng.pick(&["true", "false"]).to_string()),
        _ => (
            "projection",
            format!(
                "{} {}",
                rng.pick(&["true", "false"]),
                rng.pick(&["true", "false"])
            ),
        ),
    }
}

/// `n` options with distinct keys, none of them `block`.
fn options(rng: &mut Rng, n: usize) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for _ in 0..n {
        let o = option(rng);
        if o.0 != "block" && !out.iter().any(|(k, _)| *k == o.0) {
            out.push(o);
        }
    }
    out
}

fn generate(rng: &mut Rng) -> Generated {
    let maybe = |rng: &mut Rng| rng.below(3) != 0;
    let side = *rng.pick(&[8, 16, 28, 32, 64, 224]);
    let default_kind = (rng.below(3) == 0).then(|| *rng.pick(KINDS));
    let n = rng.below(3);
    let mut defaults = options(rng, n);
    if let Some(k) = default_kind {
        defaults.push(("block", k.to_string()));
    }
    let mut stages = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let kind = (default_kind.is_none() || maybe(rng)).then(|| *rng.pick(KINDS));
        let bottleneck = kind
            .or(default_kind)
            .is_some_and(|k| k.contains("bottleneck"));
        let base = *rng.pick(&[4u64, 8, 16, 32, 64]);
        let filters = if bottleneck {
            vec![base, base, base * 4]
        } else {
            vec![base, base]
        };
        let n = rng.below(3);
        stages.push(GeneratedStage {
            name: maybe(rng).then(|| *rng.pick(NAMES)),
            kind,
            filters,
            repeat: 1 + rng.below(3) as u64,
            stride: 1 + rng.below(2) as u64,
            options: options(rng, n),
        });
    }
    let mut head = Vec::new();
    if maybe(rng) {
        head.push(("pool", rng.pick(&["avg", "max", "flatten"]).to_string()));
    }
    if rng.below(4) == 0 {
        head.push(("norm", rng.pick(&["true", "false"]).to_string()));
    }
    if rng.below(4) == 0 {
        head.push(("dropout", rng.pick(&["0", "0.2", "0.5"]).to_string()));
    }
    if rng.below(4) == 0 {
        head.push(("softmax", rng.pick(&["true", "false"]).to_string()));
    }
    head.push(("classes", rng.pick(&["1", "2", "10", "1000"]).to_string()));
    Generated {
        name: (rng.below(10) != 0).then(|| *rng.pick(NAMES)),
        input: maybe(rng).then(|| [*rng.pick(&[1, 3]), side, side]),
        stem: maybe(rng).then(|| {
            let k = *rng.pick(&[1u64, 3, 7]);
            (
                *rng.pick(&[8u64, 16, 64]),
                k,
                *rng.pick(&[1u64, 2]),
                k / 2,
                rng.below(2) == 0,
                rng.below(4) != 0,
                rng.below(4) != 0,
            )
        }),
        pool: maybe(rng).then(|| {
            (rng.below(3) != 0).then(|| {
                (
                    *rng.pick(&["max", "avg"]),
                    *rng.pick(&[2u64, 3]),
                    *rng.pick(&[1u64, 2]),
                    rng.below(2) as u64,
                    rng.below(3) == 0,
                )
            })
        }),
        defaults,
        stages,
        head,
        init: (rng.below(3) == 0).then(|| *rng.pick(&["kaiming_normal", "xavier_uniform"])),
        zero_init: (rng.below(3) == 0).then(|| rng.below(2) == 0),
        batch_norm: (rng.below(4) == 0).then(|| {
            (
                *rng.pick(&["1e-5", "0.001", "1e-3"]),
                *rng.pick(&["0.1", "0.01", "0.9"]),
            )
        }),
    }
}

/// A double-quoted string in both syntaxes (`\"`, `\\`, `\n`, `\t`, `\r` escapes; YAML
/// also reads `\0` and `\e`, the DSL keeps other characters as they are).
fn quoted(s: &str, yaml: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' if yaml => out.push_str("\\0"),
            '\u{1b}' if yaml => out.push_str("\\e"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dsl_option(k: &str, v: &str) -> String {
    match k {
        "bias" => {
            if v == "true" {
                "bias".into()
            } else {
                "no bias".into()
            }
        }
        "projection" => {
            let mut p = v.split(' ');
            let bn = if p.next() == Some("true") {
                "bn"
            } else {
                "no bn"
            };
            let bias = if p.next() == Some("true") {
                "bias"
            } else {
                "no bias"
            };
            format!("projection {bn} {bias}")
        }
        _ => format!("{k} {v}"),
    }
}

fn yaml_option(k: &str, v: &str) -> String {
    match k {
        "projection" => {
            let mut p = v.split(' ');
            format!(
                "projection: {{bn: {}, bias: {}}}",
                p.next().unwrap_or("true"),
                p.next().unwrap_or("false")
            )
        }
        "block" | "stride_on" | "shortcut" => format!("{k}: {}", quoted(v, true)),
        _ => format!("{k}: {v}"),
    }
}

impl Generated {
    fn dsl(&self) -> String {
        let mut s = String::new();
        if let Some(n) = self.name {
            s += &format!("model {}\n", quoted(n, false));
        }
        if let Some([c, h, w]) = self.input {
            s += &format!("input {c}x{h}x{w}\n");
        }
        let mut stem = Vec::new();
        if let Some((f, k, st, p, bias, bn, relu)) = self.stem {
            stem.push(format!(
                "conv {k}x{k}/{st} pad {p} -> {f}{}",
                if bias { ", bias" } else { "" }
            ));
            stem.push(if bn { "bn" } else { "no bn" }.to_string());
            stem.push(if relu { "relu" } else { "no relu" }.to_string());
        }
        match self.pool {
            Some(Some((kind, k, st, p, ceil))) => stem.push(format!(
                "{kind}pool {k}x{k}/{st} pad {p}{}",
                if ceil { " ceil" } else { "" }
            )),
            Some(None) => stem.push("no pool".into()),
            None => {}
        }
        if !stem.is_empty() {
            s += &format!("stem {}\n", stem.join(", "));
        }
        if !self.defaults.is_empty() {
            let d: Vec<String> = self
                .defaults
                .iter()
                .map(|(k, v)| dsl_option(k, v))
                .collect();
            s += &format!("defaults {}\n", d.join(", "));
        }
        for st in &self.stages {
            let name = st
                .name
                .map(|n| format!("{}: ", quoted(n, false)))
                .unwrap_or_default();
            let kind = st.kind.map(|k| format!("{k} ")).unwrap_or_default();
            let f: Vec<String> = st.filters.iter().map(u64::to_string).collect();
            let opts: String = st
                .options
                .iter()
                .map(|(k, v)| format!(", {}", dsl_option(k, v)))
                .collect();
            s += &format!(
                "{name}{kind}[{}] x{} /{}{opts}\n",
                f.join(", "),
                st.repeat,
                st.stride
            );
        }
        let head: Vec<String> = self
            .head
            .iter()
            .map(|(k, v)| match (*k, v.as_str()) {
                ("pool", "flatten") => "flatten".into(),
                ("pool", p) => format!("{p}pool"),
                ("norm", "true") => "norm".into(),
                ("norm", _) => "no norm".into(),
                ("softmax", "true") => "softmax".into(),
                ("softmax", _) => "no softmax".into(),
                ("classes", c) => format!("fc {c}"),
                (k, v) => format!("{k} {v}"),
            })
            .collect();
        s += &format!("head {}\n", head.join(", "));
        if let Some(i) = self.init {
            s += &format!("init {i}\n");
        }
        if let Some(z) = self.zero_init {
            s += &format!("zero_init_residual {z}\n");
        }
        if let Some((e, m)) = self.batch_norm {
            s += &format!("batch_norm eps {e} momentum {m}\n");
        }
        s
    }

    fn yaml(&self) -> String {
        let mut s = String::new();
        if let Some(n) = self.name {
            s += &format!("name: {}\n", quoted(n, true));
        }
        if let Some([c, h, w]) = self.input {
            s += &format!("input: [{c}, {h}, {w}]\n");
        }
        if self.stem.is_some() || self.pool.is_some() {
            s += "stem:\n";
            if let Some((f, k, st, p, bias, bn, relu)) = self.stem {
                s += &format!("  conv: {{filters: {f}, kernel: {k}, stride: {st}, padding: {p}, bias: {bias}}}\n  bn: {bn}\n  relu: {relu}\n");
            }
            match self.pool {
                Some(Some((kind, k, st, p, ceil))) => {
                    s += &format!("  pool: {{kind: {kind}, kernel: {k}, stride: {st}, padding: {p}, ceil_mode: {ceil}}}\n")
                }
                Some(None) => s += "  pool: none\n",
                None => {}
            }
        }
        if !self.defaults.is_empty() {
            s += "defaults:\n";
            for (k, v) in &self.defaults {
                s += &format!("  {}\n", yaml_option(k, v));
            }
        }
        s += "stages:\n";
        for st in &self.stages {
            s += &format!("  - repeat: {}\n    stride: {}\n", st.repeat, st.stride);
            let f: Vec<String> = st.filters.iter().map(u64::to_string).collect();
            s += &format!("    filters: [{}]\n", f.join(", "));
            if let Some(n) = st.name {
                s += &format!("    stage: {}\n", quoted(n, true));
            }
            if let Some(k) = st.kind {
                s += &format!("    block: {k}\n");
            }
            for (k, v) in &st.options {
                s += &format!("    {}\n", yaml_option(k, v));
            }
        }
        s += "head:\n";
        for (k, v) in &self.head {
            s += &format!("  {k}: {v}\n");
        }
        if let Some(i) = self.init {
            s += &format!("init: {i}\n");
        }
        if let Some(z) = self.zero_init {
            s += &format!("zero_init_residual: {z}\n");
        }
        if let Some((e, m)) = self.batch_norm {
            s += &format!("batch_norm: {{eps: {e}, momentum: {m}}}\n");
        }
        s
    }
}

/// `RESNETC_FUZZ_REPLAY=FILE|DIR cargo test --test fuzz replay -- --nocapture` runs saved
/// inputs (from `target/fuzz-failures/` or `fuzz/artifacts/`) through the harness and
/// prints what each does and how long it takes; without the variable it does nothing.
#[test]
fn replay() {
    let Ok(target) = std::env::var("RESNETC_FUZZ_REPLAY") else {
        return;
    };
    install_panic_hook();
    let (current, done) = start_watchdog(Duration::from_secs(env_u64(
        "RESNETC_FUZZ_TIMEOUT_SECS",
        DEFAULT_TIMEOUT_SECS,
    )));
    let target = PathBuf::from(target);
    let seeds = if target.is_dir() {
        read_seeds(&target)
    } else {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let syntaxes =
            Syntax::from_path(&name).map_or(vec![Syntax::Yaml, Syntax::Dsl], |s| vec![s]);
        vec![Seed {
            bytes: std::fs::read(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display())),
            name,
            syntaxes,
        }]
    };
    for seed in &seeds {
        for &syntax in &seed.syntaxes {
            let start = Instant::now();
            let run = run_one(
                &current,
                &seed.name,
                input_name(syntax),
                &seed.bytes,
                syntax,
            );
            let outcome = match &run {
                Run::Finished(r) => format!("{:?}", r.outcome),
                Run::Panicked(_) => "panic".into(),
            };
            eprintln!(
                "{} ({syntax:?}, {} bytes): {outcome} in {:.1?}",
                seed.name,
                seed.bytes.len(),
                start.elapsed()
            );
            for (_, what) in problems(&run) {
                eprintln!("  {}", first_line(&what));
            }
        }
    }
    done.store(true, Ordering::Relaxed);
}
