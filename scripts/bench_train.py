#!/usr/bin/env python3
"""Training throughput: `resnetc train` against PyTorch eager and torch.compile, in turns.

For each case the PyTorch network is the one `resnetc build SPEC --target pytorch` writes,
so both sides train the very same network (layers, shapes, initialization rule). Both use
SGD with momentum 0.9, weight decay 5e-4 and lr 0.1 (PyTorch: `torch.optim.SGD` with its
defaults otherwise), cross-entropy, the same batch size and threads, and Fashion-MNIST
images (normalized as resnetc does; for 3-channel or larger inputs, resized bilinearly and
repeated over the channels, as resnetc's loader does).

Cases (--cases, comma-separated):
  fmnist-resnet20   specs/fmnist-resnet20.yaml, 1x28x28, batch 128
  cifar-resnet20    specs/cifar-resnet20.yaml, 3x32x32, batch 128
  article-96        specs/article-pytorch.yaml at 1x96x96 (`--resize 96`), batch 64
  article-224       specs/article-pytorch.yaml at 1x224x224 (the article's run), batch 128

--device cuda runs both sides on the GPU (PyTorch's batches wait there, already resized;
resnetc's loader resizes on the device as it trains). Each PyTorch step reads its loss
(`loss.item()`, one synchronization), so the timings cover the GPU's work.

PyTorch variants (--variants): `eager` (the module as written, NCHW), `compile`
(`torch.compile(model)`, default mode; its one-time cost, the first step, is reported
apart), and for reference `eager-cl` (the module and inputs in channels-last) and
`eager-bf16` (the forward pass under `torch.autocast(dtype=torch.bfloat16)`, as resnetc's
`--precision bf16`; `-cl` may follow, as in `eager-bf16-cl`).

torch.compile's cache starts empty (a fresh TORCHINDUCTOR_CACHE_DIR, removed at the end)
unless --warm-cache, so its first step shows the whole compile cost.

Each round times --batches steps of every PyTorch variant after --warmup steps (the
models keep training across rounds), then runs `resnetc train` for 2 epochs of
--batches batches and takes epoch 2's examples/s from metrics.csv (epoch 1 is resnetc's
warm-up, as --warmup is PyTorch's). With --config NAME=ARGS (repeatable) several resnetc
configurations run in turns too, e.g. each speed-up switched off once. Medians over
--rounds rounds; ratios are of medians.

    cargo build --release -j2 --features torch
    ~/.cache/resnetc/venv/bin/python scripts/bench_train.py --rounds 3
    # each CUDA lever (scripts/cuda-check.sh runs this as its `levers` stage):
    python3 scripts/bench_train.py --device cuda --cases article-224 --variants eager \
        --config "none=--speedups none" --config "all=--speedups all" ...
"""
import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

if "--warm-cache" not in sys.argv:
    # Before torch is imported: inductor reads it once.
    _CACHE = tempfile.TemporaryDirectory(prefix="bench-train-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _CACHE.name

import numpy as np
import torch
import torch.nn.functional as F

from train_pytorch import find, read_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "fmnist-resnet20": {"spec": "specs/fmnist-resnet20.yaml", "input": (1, 28, 28), "batch": 128, "train_args": []},
    "cifar-resnet20": {"spec": "specs/cifar-resnet20.yaml", "input": (3, 32, 32), "batch": 128, "train_args": []},
    "article-96": {"spec": "specs/article-pytorch.yaml", "input": (1, 96, 96), "batch": 64, "train_args": ["--resize", "96"]},
    "article-224": {"spec": "specs/article-pytorch.yaml", "input": (1, 224, 224), "batch": 128, "train_args": ["--resize", "224"]},
}

# resnetc's normalization of Fashion-MNIST (src/train/data.rs).
MEAN, STD = 0.2860406, 0.3530242


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_module(resnetc, spec, shape, tmp):
    """The PyTorch module resnetc generates for `spec` at input `shape`."""
    path = os.path.join(tmp, f"model_{abs(hash((spec, shape)))}.py")
    c, h, w = shape
    cmd = [resnetc, "build", os.path.join(ROOT, spec), "--target", "pytorch", "--input", f"{c}x{h}x{w}", "-o", path]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{r.stderr}")
    mod_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    # The network is the module's last class (block classes come first).
    model_cls = [v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                 and v.__module__ == mod.__name__][-1]
    return model_cls


def batches(images, shape, batch, count, seed):
    """`count` batches of `batch` images at `shape`, drawn in a shuffled order."""
    c, h, w = shape
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)[: batch * count]
    x = torch.from_numpy(images[order.numpy()].copy()).float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    if (h, w) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    if c != 1:
        x = x.expand(-1, c, -1, -1).contiguous()
    y = torch.randint(0, 10, (len(x),), generator=g)
    return [(x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(count)]


class TorchRunner:
    def __init__(self, model_cls, variant, data, device):
        model = model_cls().to(device)
        model.train()
        self.data = [(x.to(device), y.to(device)) for x, y in data]
        self.channels_last = variant.endswith("-cl")
        self.bf16 = "-bf16" in variant
        self.device = device
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
            self.data = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in self.data]
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        self.forward = torch.compile(model) if variant.startswith("compile") else model
        self.logits = getattr(model, "logits", None)
        self.i = 0
        self.first_step = None

    def step(self):
        x, y = self.data[self.i % len(self.data)]
        self.i += 1
        with torch.autocast(device_type=self.device, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.forward(x)
        loss = F.cross_entropy(out.float(), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()

    def warm(self, n):
        t = time.perf_counter()
        self.step()
        self.first_step = time.perf_counter() - t
        for _ in range(n - 1):
            self.step()

    def time(self, n, batch):
        t = time.perf_counter()
        for _ in range(n):
            self.step()
        return n * batch / (time.perf_counter() - t)


def resnetc_round(args, case, extra, tmp):
    out = os.path.join(tmp, "run")
    cmd = [args.resnetc, "train", os.path.join(ROOT, case["spec"]), "--data", "fashion-mnist", "--out", out,
           "--epochs", "2", "--limit-train", str(args.batches * case["batch"]), "--limit-test", str(case["batch"]),
           "--batch-size", str(case["batch"]), "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "5e-4",
           "--device", args.device, "--seed", "0", "--threads", str(args.threads), *case["train_args"], *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{r.stderr}")
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = f.read().strip().splitlines()
    subprocess.run(["rm", "-rf", out], check=True)
    return float(rows[2].split(",")[4])


def main():
    home = os.environ.get("RESNETC_HOME", os.path.expanduser("~/.cache/resnetc"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--variants", default="eager,compile",
                    help="PyTorch variants: eager, compile, eager-cl, compile-cl, eager-bf16, eager-bf16-cl")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=ARGS",
                    help="a resnetc configuration: extra `resnetc train` arguments (default: one, `resnetc`, with none)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=40, help="timed steps per round and variant")
    ap.add_argument("--warmup", type=int, default=5, help="PyTorch steps before timing (the first is reported apart)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--data", default=os.path.join(home, "data", "fashion-mnist"))
    ap.add_argument("--resnetc", default=os.path.join(ROOT, "target", "release", "resnetc"))
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--warm-cache", action="store_true", help="keep torch.compile's usual cache (first step then shows less)")
    args = ap.parse_args()
    if not os.path.exists(args.resnetc):
        raise SystemExit(f"{args.resnetc} not found: cargo build --release -j2 --features torch")
    configs = [c.split("=", 1) for c in args.config] or [["resnetc", ""]]
    for c in configs:
        if len(c) != 2:
            raise SystemExit(f"--config {c[0]!r}: expected NAME=ARGS")
    variants = args.variants.split(",")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = read_idx(find(args.data, "train-images-idx3-ubyte"))
    machine = cpu_name()
    if args.device == "cuda":
        machine = f"{torch.cuda.get_device_name(0)} with {machine}"
    header = f"{machine}, {args.threads} threads, torch {torch.__version__}, {args.rounds} rounds of {args.batches} steps"
    print(header, flush=True)
    report = {"machine": machine, "device": args.device, "threads": args.threads, "torch": torch.__version__,
              "rounds": args.rounds, "batches": args.batches, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            case = CASES[name]
            model_cls = load_module(args.resnetc, case["spec"], case["input"], tmp)
            data = batches(images, case["input"], case["batch"], 16, seed=0)
            runners = {}
            for v in variants:
                runners[v] = TorchRunner(model_cls, v, data, args.device)
                runners[v].warm(args.warmup)
            figures = {v: [] for v in variants} | {c[0]: [] for c in configs}
            for r in range(args.rounds):
                for v in variants:
                    figures[v].append(runners[v].time(args.batches, case["batch"]))
                for cname, extra in configs:
                    figures[cname].append(resnetc_round(args, case, shlex.split(extra), tmp))
                print(f"  {name} round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in figures.items()), flush=True)
            med = {k: statistics.median(v) for k, v in figures.items()}
            line = f"{name} (batch {case['batch']}, {'x'.join(map(str, case['input']))}): " + ", ".join(
                f"{k} {v:.1f}" for k, v in med.items())
            ratios = {}
            for cname, _ in configs:
                for v in variants:
                    ratios[f"{cname}/{v}"] = med[cname] / med[v]
            line += "; " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
            if "compile" in runners:
                line += f"; torch.compile first step {runners['compile'].first_step:.1f} s"
            print(line, flush=True)
            report["cases"][name] = {
                "batch": case["batch"], "input": case["input"], "rounds": figures, "median": med, "ratios": ratios,
                "first_step_s": {v: runners[v].first_step for v in variants},
                "configs": dict(configs),
            }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
