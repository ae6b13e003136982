#!/usr/bin/env bash
# The CUDA checks of resnetc, for a GPU machine that has python3 with torch 2.11.0 and
# torchvision 0.26.0 but no Rust toolchain. Build here first (`cargo build --release -j2
# --features torch`), then run there from the checkout with the binary in
# target/release/ and Fashion-MNIST in $RESNETC_HOME/data/fashion-mnist:
#
#   scripts/cuda-check.sh OUT_DIR SECONDS [STAGE...]
#
# From a machine that lends a GPU for a few minutes, with only ignored paths carried: put
# the data set beside the binary under runs/ (ignored; about 30 MB, the binary 20 MB), e.g.
#   mkdir -p runs/gpu-home/data && cp -rL ~/.cache/resnetc/data/fashion-mnist runs/gpu-home/data/
#   (carry target/release/resnetc and runs/gpu-home, then run there)
#   RESNETC_HOME=$PWD/runs/gpu-home scripts/cuda-check.sh "$OUT" 560 sanity graphs levers best folder
# is issue 12's GPU measurement in one call (about 9 minutes; a stage that would overrun is
# cut at what is left). The float32 accuracy to compare `best` with is the `train` stage's
# (0.9149 after 10 epochs on 2026-11-28, docs/measurements/2026-11-28-h200/).
#
# Stages, in this order by default, each given what is left of SECONDS:
#   sanity   the binary finds libtorch's CUDA and runs a forward pass
#   graphs   2 epochs of fmnist-resnet20 (6,400 examples, cosine schedule) with the default
#            speed-ups and again with cuda-graphs: both metrics.csv side by side (float32
#            on cuDNN is not bit-reproducible, so they should agree closely, not exactly)
#   parity   scripts/parity_cuda.py (exact f32 within 1e-4, TF32 and bf16 against PyTorch)
#   train    `resnetc train specs/article-pytorch.yaml` at the article's settings on CUDA
#   bench    scripts/bench_pytorch.py on CUDA: eager and resnetc, f32 and bf16, batch 64, 256
#   torch    scripts/train_article_pytorch.py: the same run in PyTorch eager
#   compile  torch.compile beside eager and resnetc for resnet50 at batch 256
#   levers   scripts/bench_train.py --device cuda on the article's run (1x224x224, batch
#            128): PyTorch eager (and, for reference, eager with bf16 autocast and
#            channels-last) against resnetc with no speed-up, the defaults, and each CUDA
#            lever added alone (channels-last, bf16, cuda-graphs), then all of them
#   best     the `train` stage's run with every lever ($RESNETC_BEST, default
#            `--speedups all,channels-last,cuda-graphs --precision bf16`)
#   folder   an image folder of 3,000 500x375 JPEGs (scripts/bench_data.py --make):
#            `resnetc bench-data` with one worker per core (the loader alone), then one
#            epoch of resnet50 on it on CUDA with the same workers, bf16 and cuda-graphs
#   torchrun the `build --target torchrun` entry point on CUDA: one process on NCCL, then
#            two processes sharing the GPU over gloo with nn.SyncBatchNorm; resnetc eval
#            of the weights (needs safetensors in that python)
# Logs and results go to OUT_DIR (at most a handful of files).
set -u
out=${1:?usage: scripts/cuda-check.sh OUT_DIR SECONDS [STAGE...]}
budget=${2:?usage: scripts/cuda-check.sh OUT_DIR SECONDS [STAGE...]}
shift 2
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(sanity graphs parity train bench torch compile torchrun levers best folder)
best_flags=${RESNETC_BEST:---speedups all,channels-last,cuda-graphs --precision bf16}
mkdir -p "$out"
bin=target/release/resnetc
torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || exit 1
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
log() { echo "== [$(($(date +%s) - start)) s] $*"; }
# within SECONDS CMD...: runs CMD with at most SECONDS (and what is left of the budget).
within() {
    local limit=$1 rest
    shift
    rest=$(left)
    [ "$rest" -lt "$limit" ] && limit=$rest
    if [ "$limit" -lt 20 ]; then
        log "skipped (no time left): $*"
        return 0
    fi
    timeout "$limit" "$@"
    local rc=$?
    [ $rc -eq 124 ] && log "stopped after $limit s: $*"
    return $rc
}

for stage in "${stages[@]}"; do
    log "stage $stage ($(left) s left)"
    case $stage in
    sanity)
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
        python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
        within 60 "$bin" bench specs/resnet18.yaml --device cuda --batch 8 --iters 3 || { log "sanity failed"; exit 1; }
        ;;
    graphs)
        for speedups in all all,cuda-graphs; do
            rm -rf "/tmp/graphs-$speedups"
            within 120 "$bin" train specs/fmnist-resnet20.yaml --data fashion-mnist --out "/tmp/graphs-$speedups" \
                --device cuda --epochs 2 --limit-train 6400 --limit-test 2000 --lr 0.1 --momentum 0.9 \
                --weight-decay 5e-4 --schedule cosine --speedups "$speedups" 2>&1 | tee -a "$out/graphs.log"
        done
        ;;
    parity)
        within 120 python3 scripts/parity_cuda.py /tmp/resnetc-parity | tee "$out/parity-cuda.md"
        ;;
    train)
        rm -rf /tmp/article
        within 330 "$bin" train specs/article-pytorch.yaml --data fashion-mnist --out /tmp/article --device cuda
        cp /tmp/article/metrics.csv "$out/resnetc-metrics.csv"
        cp /tmp/article/curves.png "$out/resnetc-curves.png"
        ;;
    bench)
        within 120 python3 scripts/bench_pytorch.py --device cuda --dtypes f32 bf16 --batches 64 256 \
            --rounds 2 --iters 10 --no-compile --json "$out/bench-cuda.json"
        ;;
    torch)
        within 330 python3 scripts/train_article_pytorch.py --device cuda --csv "$out/pytorch-metrics.csv"
        ;;
    compile)
        within 200 python3 scripts/bench_pytorch.py --device cuda --models resnet50 --dtypes f32 bf16 \
            --batches 256 --rounds 2 --iters 10 --json "$out/bench-cuda-compile.json"
        ;;
    torchrun)
        rm -rf /tmp/ddp-1 /tmp/ddp-2
        "$bin" build specs/fmnist-resnet20.yaml --target torchrun -o /tmp/train_ddp.py
        within 120 python3 -m torch.distributed.run --standalone --nproc_per_node=1 /tmp/train_ddp.py \
            --data fashion-mnist --out /tmp/ddp-1 --device cuda --backend nccl --epochs 2 \
            --limit-train 10000 2>&1 | tee "$out/torchrun-nccl.log"
        within 120 python3 -m torch.distributed.run --standalone --nproc_per_node=2 /tmp/train_ddp.py \
            --data fashion-mnist --out /tmp/ddp-2 --device cuda --backend gloo --sync-bn --epochs 2 \
            --limit-train 10000 2>&1 | tee "$out/torchrun-gloo-syncbn.log"
        within 60 "$bin" eval specs/fmnist-resnet20.yaml --weights /tmp/ddp-2/weights.safetensors \
            --data fashion-mnist --device cuda | head -1 | tee -a "$out/torchrun-gloo-syncbn.log"
        ;;
    levers)
        within 300 python3 scripts/bench_train.py --device cuda --cases article-224 --variants eager,eager-bf16-cl \
            --rounds 2 --batches 30 --warmup 5 \
            --config "none=--speedups none" --config "all=--speedups all" \
            --config "channels-last=--speedups all,channels-last" \
            --config "bf16=--speedups all --precision bf16" \
            --config "cuda-graphs=--speedups all,cuda-graphs" \
            --config "every=--speedups all,channels-last,cuda-graphs --precision bf16" \
            --json "$out/levers-cuda.json" 2>&1 | tee "$out/levers-cuda.log"
        ;;
    best)
        rm -rf /tmp/article-best
        # shellcheck disable=SC2086 # the flags are words
        within 330 "$bin" train specs/article-pytorch.yaml --data fashion-mnist --out /tmp/article-best \
            --device cuda $best_flags 2>&1 | tee "$out/resnetc-best.log"
        cp /tmp/article-best/metrics.csv "$out/resnetc-best-metrics.csv"
        ;;
    folder)
        workers=$(nproc)
        within 180 python3 scripts/bench_data.py /tmp/folder --make --images 3000 \
            --workers "$workers" --rounds 2 --batches 10 2>&1 | tee "$out/bench-data-cuda-host.log"
        within 60 "$bin" bench-data /tmp/folder --workers "$workers" --batches 20 --format json \
            | tee "$out/bench-data-resnetc.json"
        rm -rf /tmp/folder-run
        within 200 "$bin" train specs/resnet50.yaml --data /tmp/folder --out /tmp/folder-run --device cuda \
            --epochs 1 --batch-size 128 --augment rrc,flip --workers "$workers" --lr 0.1 --momentum 0.9 \
            --speedups all,cuda-graphs --precision bf16 2>&1 | tee "$out/folder-train.log"
        ;;
    *)
        log "unknown stage $stage"
        exit 2
        ;;
    esac
done
log "done"
