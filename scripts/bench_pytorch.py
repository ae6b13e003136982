#!/usr/bin/env python3
"""CPU inference throughput: torchvision in PyTorch against `resnetc bench`, in one run.

For each model (default resnet18, resnet50) and batch size (default 1 and 8), on the CPU
with the same number of threads (default 2), in turns (round after round, every variant
once per round, so that the noise of a shared machine hits all of them alike):

- eager:     torchvision's model in eval mode under torch.no_grad();
- ofi:       torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x)))
             (folds BN, fuses ReLU, runs oneDNN's blocked layout: PyTorch's best CPU path);
- compile:   torch.compile(m) (inductor), compile time reported separately;
- resnetc:   the release binary's `resnetc bench specs/<model>.yaml --format json`
             (a fresh process each round; its one-time cost is reported separately).

Each variant's figure for a round is the median of --iters timed passes after warm-up;
the table shows the median over rounds, in images/s, and resnetc / ofi.

Usage (resnetc's venv python; build first with `cargo build --release -j2 --features torch`):
    python scripts/bench_pytorch.py [--rounds 3] [--iters 10] [--threads 2] [--no-compile]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    name = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def time_fn(fn, iters, warmup=2):
    """Median seconds per call after `warmup` calls."""
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def resnetc_bench(binary, model, batch, iters, threads):
    spec = os.path.join(ROOT, "specs", f"{model}.yaml")
    cmd = [binary, "bench", spec, "--batch", str(batch), "--iters", str(iters), "--warmup", "2",
           "--device", "cpu", "--threads", str(threads), "--format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (about 30 s of compiling per case)")
    ap.add_argument("--resnetc", default=os.path.join(ROOT, "target", "release", "resnetc"))
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()
    if not os.path.exists(args.resnetc):
        sys.exit(f"{args.resnetc} not found: cargo build --release -j2 --features torch")
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; torch {torch.__version__}, {args.threads} threads, "
          f"{args.rounds} rounds x {args.iters} iters, medians", flush=True)

    rows = []
    for model_name in args.models:
        for batch in args.batches:
            torch.manual_seed(0)
            m = getattr(torchvision.models, model_name)().eval()
            x = torch.randn(batch, 3, 224, 224)
            variants = {"eager": lambda: m(x)}
            one_time = {}
            with torch.no_grad():
                t = time.perf_counter()
                ofi = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x)))
                ofi(x)
                one_time["ofi"] = time.perf_counter() - t
            variants["ofi"] = lambda: ofi(x)
            if not args.no_compile:
                compiled = torch.compile(m)
                with torch.no_grad():
                    t = time.perf_counter()
                    compiled(x)
                    one_time["compile"] = time.perf_counter() - t
                variants["compile"] = lambda: compiled(x)
            figures = {k: [] for k in list(variants) + ["resnetc"]}
            resnetc_first = []
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    figures[name].append(batch / time_fn(fn, args.iters))
                r = resnetc_bench(args.resnetc, model_name, batch, args.iters, args.threads)
                figures["resnetc"].append(r["images_per_sec"])
                resnetc_first.append(r["first_call_ms"] / 1e3)
                one_time["resnetc_layout"] = r["one_time"]["layout"]
            one_time["resnetc"] = statistics.median(resnetc_first)
            row = {"model": model_name, "batch": batch,
                   **{k: statistics.median(v) for k, v in figures.items()},
                   "runs": figures, "one_time_s": one_time}
            rows.append(row)
            print(f"{model_name} batch {batch}: " + ", ".join(
                f"{k} {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for k, v in figures.items()), flush=True)

    cols = ["eager", "ofi"] + ([] if args.no_compile else ["compile"]) + ["resnetc"]
    header = "| model | batch | " + " | ".join(f"{c} img/s" for c in cols) + " | resnetc / ofi |"
    print()
    print(header)
    print("|" + "---|" * (len(cols) + 3))
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | " + " | ".join(f"{r[c]:.2f}" for c in cols)
              + f" | {r['resnetc'] / r['ofi']:.2f}x |")
    print()
    for r in rows:
        ot = r["one_time_s"]
        parts = [f"ofi trace+freeze+optimize {ot['ofi']:.1f} s"]
        if "compile" in ot:
            parts.append(f"torch.compile {ot['compile']:.1f} s")
        parts.append(f"resnetc first call {ot['resnetc']:.2f} s (layout {ot.get('resnetc_layout')})")
        print(f"one-time, {r['model']} batch {r['batch']}: " + ", ".join(parts))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "torch": torch.__version__, "threads": args.threads, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
