#!/usr/bin/env python3
"""Inference throughput: torchvision or timm in PyTorch against `resnetc bench`, in one run.

For each model (default resnet18, resnet50) and batch size (default 1 and 8), on the CPU
with the same number of threads (default 2), in turns (round after round, every variant
once per round, so that the noise of a shared machine hits all of them alike):

- eager:     the PyTorch model in eval mode under torch.no_grad();
- ofi:       torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x)))
             (folds BN, fuses ReLU, runs oneDNN's blocked layout: PyTorch's best CPU path);
- compile:   torch.compile(m) (inductor), compile time reported separately;
- ort:       ONNX Runtime (the venv's onnxruntime, CPUExecutionProvider) on the model that
             the release binary's `resnetc export specs/<model>.yaml --format onnx` writes
             (the spec's own random initialization, as `resnetc bench` uses), with
             intra_op_num_threads = --threads, inter_op_num_threads = 1 and graph
             optimization level ALL; export + session creation + first run reported
             separately (CPU and f32 only; --no-ort skips it);
- resnetc:   the release binary's `resnetc bench specs/<model>.yaml --format json`
             (a fresh process each round; its one-time cost is reported separately).

Models: a plain name is torchvision's (`torchvision.models.<name>()`) against
specs/<name>.yaml; `timm:<name>` is timm's (`timm.create_model(name, pretrained=False)`,
timm 1.0.31, imported only when asked for) against specs/timm/<name>.yaml, e.g.
`--models resnet50 timm:resnet50d timm:seresnet50`. Both sides use random weights
(torchvision's and timm's default initialization; resnetc's spec initialization, no
--weights) and the same random input shape, 3x224x224.

Each variant's figure for a round is the median of --iters timed passes after warm-up;
the table shows the median over rounds, in images/s, resnetc / ofi and resnetc / ort.

With --device cuda (a GPU machine; the binary built here runs there with
LD_LIBRARY_PATH pointing at that python's torch/lib): eager, torch.compile and resnetc
for each --dtype (f32; bf16 = torch.autocast for PyTorch, `--dtype bf16` for resnetc),
default batches 64 and 256; ofi is CPU-only and skipped.

Usage (resnetc's venv python; build first with `cargo build --release -j2 --features torch`):
    python scripts/bench_pytorch.py [--rounds 3] [--iters 10] [--threads 2] [--no-compile] [--no-ort]
    python scripts/bench_pytorch.py --models resnet50 timm:resnet50d timm:seresnet50
    python scripts/bench_pytorch.py --device cuda --dtypes f32 bf16 --batches 64 256
"""

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_fn(fn, iters, device, warmup=2):
    """Median seconds per call after `warmup` calls."""
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        sync(device)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


TIMM = "timm:"


def spec_path(model):
    """specs/<name>.yaml for torchvision's models, specs/timm/<name>.yaml for `timm:<name>`."""
    if model.startswith(TIMM):
        return os.path.join(ROOT, "specs", "timm", f"{model[len(TIMM):]}.yaml")
    return os.path.join(ROOT, "specs", f"{model}.yaml")


def pytorch_model(model):
    """torchvision's model, or timm's for `timm:<name>` (random weights, both)."""
    if model.startswith(TIMM):
        # Imported late (only timm models need it), with huggingface_hub's import-time
        # "Error importing huggingface_hub.hf_api" line (timm sits in the venv with
        # --no-deps; nothing here downloads) swallowed.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import timm

            m = timm.create_model(model[len(TIMM):], pretrained=False)
        return m
    return getattr(torchvision.models, model)()


def resnetc_bench(binary, model, batch, iters, threads, device, dtype):
    spec = spec_path(model)
    cmd = [binary, "bench", spec, "--batch", str(batch), "--iters", str(iters), "--warmup", "2",
           "--device", device, "--dtype", dtype, "--threads", str(threads), "--format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ort_session(binary, model, threads, x):
    """Exports `model`'s spec to ONNX with `binary` (spec initialization, seed 0) into a
    temporary folder and opens it on ONNX Runtime's CPU provider; returns (run, one-time
    seconds: export, session creation + first run)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="bench-ort-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        cmd = [binary, "export", spec_path(model), "--format", "onnx", "-o", path]
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        export_s = time.perf_counter() - t
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        t = time.perf_counter()
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        if list(inp.shape[1:]) != list(x.shape[1:]):
            raise RuntimeError(f"{path}: input {inp.shape}, the benchmark's is {list(x.shape)}")
        feed = {inp.name: x.cpu().numpy()}
        sess.run(None, feed)
        session_s = time.perf_counter() - t
    # The session holds the weights in memory: the file is no longer needed.
    return (lambda: sess.run(None, feed)), {"ort_export": export_s, "ort_session": session_s}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    ap.add_argument("--batches", nargs="+", type=int, help="default: 1 8 on the CPU, 64 256 on CUDA")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtypes", nargs="+", default=["f32"], choices=["f32", "bf16"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (about 30 s of compiling per case)")
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime (CPU only)")
    ap.add_argument("--compile-batches", nargs="+", type=int, help="run torch.compile only at these batch sizes")
    ap.add_argument("--resnetc", default=os.path.join(ROOT, "target", "release", "resnetc"))
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()
    if not os.path.exists(args.resnetc):
        sys.exit(f"{args.resnetc} not found: cargo build --release -j2 --features torch")
    for model in args.models:
        if not os.path.exists(spec_path(model)):
            sys.exit(f"{model}: no spec {spec_path(model)}")
    dev = args.device
    cpu = dev == "cpu"
    batches = args.batches or ([1, 8] if cpu else [64, 256])
    torch.set_num_threads(args.threads)
    where = machine() if cpu else f"{torch.cuda.get_device_name(0)} (host: {machine()})"
    use_ort = cpu and not args.no_ort and "f32" in args.dtypes
    ort_version = None
    if use_ort:
        import onnxruntime

        ort_version = onnxruntime.__version__
    print(f"machine: {where}; torch {torch.__version__}"
          + (f", onnxruntime {ort_version}" if ort_version else "")
          + f", {args.threads} threads, {args.rounds} rounds x {args.iters} iters, medians", flush=True)

    rows = []
    for model_name in args.models:
        for batch in batches:
            for dtype in args.dtypes:
                rows.append(bench_case(args, model_name, batch, dtype))

    cols = (["eager"] + (["ofi"] if cpu else []) + ([] if args.no_compile else ["compile"])
            + (["ort"] if use_ort else []) + ["resnetc"])
    bases = ["ofi" if cpu else "eager"] + (["ort"] if use_ort else [])
    for r in rows:
        r["ratios"] = {f"resnetc/{b}": r["resnetc"] / r[b] for b in bases if b in r}

    def ratio(r, b):
        v = r["ratios"].get(f"resnetc/{b}")
        return "-" if v is None else f"{v:.2f}x"

    print()
    print("| model | batch | dtype | " + " | ".join(f"{c} img/s" for c in cols)
          + "".join(f" | resnetc / {b}" for b in bases) + " |")
    print("|" + "---|" * (len(cols) + 3 + len(bases)))
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['dtype']} | " + " | ".join(f"{r[c]:.2f}" if c in r else "-" for c in cols)
              + "".join(f" | {ratio(r, b)}" for b in bases) + " |")
    print()
    for r in rows:
        ot = r["one_time_s"]
        parts = [f"ofi trace+freeze+optimize {ot['ofi']:.1f} s"] if "ofi" in ot else []
        if "compile" in ot:
            parts.append(f"torch.compile {ot['compile']:.1f} s")
        if "ort" in ot:
            parts.append(f"ort {ot['ort']:.2f} s (export {ot['ort_export']:.2f} s, "
                         f"session creation + first run {ot['ort_session']:.2f} s)")
        parts.append(f"resnetc first call {ot['resnetc']:.2f} s (layout {ot.get('resnetc_layout')})")
        print(f"one-time, {r['model']} batch {r['batch']} {r['dtype']}: " + ", ".join(parts))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": where, "torch": torch.__version__, "onnxruntime": ort_version,
                       "threads": args.threads, "rounds": args.rounds, "iters": args.iters,
                       "argv": sys.argv, "rows": rows}, f, indent=1)
    return 0


def bench_case(args, model_name, batch, dtype):
    dev = args.device
    torch.manual_seed(0)
    m = pytorch_model(model_name).eval().to(dev)
    x = torch.randn(batch, 3, 224, 224, device=dev)
    bf16 = dtype == "bf16"

    def under_autocast(fn):
        if not bf16:
            return fn
        return lambda: torch.autocast(dev, dtype=torch.bfloat16)(fn)()

    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
    variants = {"eager": under_autocast(lambda: m(x))}
    one_time = {}
    if dev == "cpu" and not bf16:
        with torch.no_grad():
            t = time.perf_counter()
            ofi = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x)))
            ofi(x)
            one_time["ofi"] = time.perf_counter() - t
        variants["ofi"] = lambda: ofi(x)
    if not args.no_compile and (args.compile_batches is None or batch in args.compile_batches):
        # A fresh cache per case: otherwise dynamo reuses the previous case's graphs and
        # recompiles with dynamic shapes when the batch changes.
        torch._dynamo.reset()
        compiled = torch.compile(m, dynamic=False)
        run_compiled = under_autocast(lambda: compiled(x))
        with torch.no_grad():
            t = time.perf_counter()
            run_compiled()
            sync(dev)
            one_time["compile"] = time.perf_counter() - t
        variants["compile"] = run_compiled
    if dev == "cpu" and not bf16 and not args.no_ort:
        run_ort, costs = ort_session(args.resnetc, model_name, args.threads, x)
        one_time.update(costs, ort=costs["ort_export"] + costs["ort_session"])
        variants["ort"] = run_ort
    figures = {k: [] for k in list(variants) + ["resnetc"]}
    resnetc_first = []
    for _ in range(args.rounds):
        for name, fn in variants.items():
            figures[name].append(batch / time_fn(fn, args.iters, dev))
        r = resnetc_bench(args.resnetc, model_name, batch, args.iters, args.threads, dev, dtype)
        figures["resnetc"].append(r["images_per_sec"])
        resnetc_first.append(r["first_call_ms"] / 1e3)
        one_time["resnetc_layout"] = r["one_time"]["layout"] + ("+fused" if r["one_time"].get("fused") else "")
    one_time["resnetc"] = statistics.median(resnetc_first)
    print(f"{model_name} batch {batch} {dtype}: " + ", ".join(
        f"{k} {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for k, v in figures.items()), flush=True)
    return {"model": model_name, "batch": batch, "dtype": dtype,
            **{k: statistics.median(v) for k, v in figures.items()},
            "runs": figures, "one_time_s": one_time}


if __name__ == "__main__":
    sys.exit(main())
