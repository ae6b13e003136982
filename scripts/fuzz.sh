#!/usr/bin/env bash
# Fuzzes resnetc with libFuzzer (cargo-fuzz) for SECONDS (default 600): every input goes
# through both front ends and every command's code path (resnetc::fuzz::exercise), and
# the generated Rust of every spec that checks is audited.
#
#   scripts/fuzz.sh [SECONDS] [--keep-going] [-- LIBFUZZER_ARGS...]
#
# --keep-going   run libFuzzer in fork mode and go on past crashes, timeouts and
#                out-of-memory inputs (each is saved under fuzz/artifacts/spec/);
#                also fuzzes from the known-failing seeds in tests/fuzz-corpus/regressions.
#                RESNETC_FUZZ_JOBS (default 1) fuzzing processes.
# RESNETC_FUZZ_IGNORE=prop,prop   properties to ignore (names: resnetc::fuzz::Property).
#
# Seeds come from tests/fuzz-corpus; the corpus libFuzzer grows is kept in
# fuzz/corpus/spec (not committed). A failing input lands in fuzz/artifacts/spec/:
# replay it with `cargo +nightly fuzz run --fuzz-dir fuzz -s none spec FILE`, and copy it
# into tests/fuzz-corpus/regressions/ as `crash-<what>.yaml|.resnet` so that
# `cargo test --test fuzz` runs it from then on.
#
# Installs cargo-fuzz if missing. Uses the nightly toolchain when rustup has one, else
# the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs unstable compiler flags).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
keep_going=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --keep-going) keep_going=1 ;;
        --) shift; extra=("$@"); break ;;
        *[!0-9]*|'') echo "usage: scripts/fuzz.sh [SECONDS] [--keep-going] [-- LIBFUZZER_ARGS...]" >&2; exit 2 ;;
        *) seconds="$1" ;;
    esac
    shift
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

toolchain=()
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

corpus=fuzz/corpus/spec
mkdir -p "$corpus"
# libFuzzer writes new inputs into the first corpus folder: seed it with copies, so that
# tests/fuzz-corpus stays as committed.
cp -n tests/fuzz-corpus/*.yaml tests/fuzz-corpus/*.resnet "$corpus"/ 2>/dev/null || true

args=(
    -max_total_time="$seconds"
    -max_len=65536
    -timeout=10
    -rss_limit_mb=2048
    -dict=fuzz/spec.dict
    -print_final_stats=1
)
seeds=()
if [ "$keep_going" = 1 ]; then
    args+=(-fork="${RESNETC_FUZZ_JOBS:-1}" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    seeds+=(tests/fuzz-corpus/regressions)
fi

# Release build with debug assertions and overflow checks (cargo-fuzz's default), no
# sanitizer: the code is safe Rust, and an address sanitizer would only slow it down.
exec cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz -s none -a spec "$corpus" "${seeds[@]}" -- "${args[@]}" "${extra[@]}"
