#!/usr/bin/env bash
# The whole test suite of resnetc, from a fresh clone on Debian 12 with Rust installed.
# Installs whatever is missing first (idempotent, quick when everything is present).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${CARGO_BUILD_JOBS:-2}"
echo "== cargo test (compiler, code generator, diagnostics)"
cargo test --workspace --locked -j"$jobs"
