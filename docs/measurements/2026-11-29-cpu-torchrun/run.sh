#!/usr/bin/env bash
# Training throughput on this CPU of fmnist-resnet20 (Fashion-MNIST, 10,000 training and
# 1,000 test examples, 1 epoch, batch 128): resnetc train (2 threads), the torchrun entry
# point as one process (2 threads) and under torchrun with 2 processes of 1 thread (gloo),
# with and without --sync-bn. In turns, ROUNDS rounds; prints each run's epoch line.
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-2}
bin=${RESNETC_BIN:-target/release/resnetc}
py=~/.cache/resnetc/venv/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" build specs/fmnist-resnet20.yaml --target torchrun -o "$work/train.py" 2>/dev/null \
    || target/debug/resnetc build specs/fmnist-resnet20.yaml --target torchrun -o "$work/train.py"
common=(--data fashion-mnist --limit-train 10000 --limit-test 1000 --epochs 1)
lscpu | grep -E "Model name|CPU family|^CPU\(s\)"
for r in $(seq "$rounds"); do
    echo "== round $r"
    echo -n "resnetc train (2 threads):       "; "$bin" train specs/fmnist-resnet20.yaml "${common[@]}" --out "$work/rt$r" --threads 2 | grep '^epoch'
    echo -n "entry point, 1 process x 2:      "; "$py/python" "$work/train.py" "${common[@]}" --out "$work/p1$r" --threads 2 | grep '^epoch'
    echo -n "torchrun 2 x 1 thread:           "; OMP_NUM_THREADS=1 "$py/torchrun" --standalone --nproc_per_node=2 "$work/train.py" "${common[@]}" --out "$work/p2$r" --threads 1 2>/dev/null | grep '^epoch'
    echo -n "torchrun 2 x 1 thread, sync-bn:  "; OMP_NUM_THREADS=1 "$py/torchrun" --standalone --nproc_per_node=2 "$work/train.py" "${common[@]}" --out "$work/p2s$r" --threads 1 --sync-bn 2>/dev/null | grep '^epoch'
done
