#!/usr/bin/env bash
# The whole test suite of resnetc, from a fresh clone on Debian 12 with Rust installed.
# Installs whatever is missing first (idempotent, quick when everything is present):
# PyTorch 2.11.0's libtorch in a venv, the Fashion-MNIST/MNIST files and Chromium for the
# HTML page's browser test (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${CARGO_BUILD_JOBS:-2}"

echo "== 1/4 compiler, diagnostics, code generator, macro (no libtorch needed)"
cargo test --locked -j"$jobs"

echo "== 2/4 set-up: libtorch venv, data sets, chromium"
./scripts/setup.sh

echo "== 3/4 runtime parity with torchvision, property tests, training (libtorch)"
# Set-up has installed chromium: from here the HTML page's browser test may not skip.
RESNETC_REQUIRE_BROWSER=1 cargo test --locked -j"$jobs" --features torch

echo "== 4/4 generated modules and #[resnet] on libtorch (examples/macro-demo)"
cargo test --locked -j"$jobs" -p macro-demo
