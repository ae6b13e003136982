#!/usr/bin/env python3
"""Training throughput of specs/fmnist-resnet20.yaml in PyTorch eager, to compare with
`resnetc train` on the same machine, data, batch size and input size.

The network is written out by hand exactly as resnetc builds it from the spec: a 3x3 stem
of 16 filters without bias, BN, ReLU; three stages of three basic blocks (16, 32, 64
filters; the first block of stages 2 and 3 strides on its first 3x3); option A shortcuts
(x[:, :, ::2, ::2] with zero channels appended); global average pooling; fc 64 -> 10;
torchvision's initialization. Fashion-MNIST comes from scripts/fetch-data.sh and is
normalized as resnetc does (mean 0.2860406, std 0.3530242).

With --check-weights W it instead loads resnetc's weights.safetensors into the module
(strict: every torchvision name must match) and prints the test accuracy, which should
equal `resnetc eval`'s.

It trains for --batches batches of shuffled training images (SGD, momentum and weight
decay as given) after --warmup batches, and prints images/s of the training steps
(forward, loss, backward, update), which is what resnetc reports as examples/s. In turns
with it (--rounds times, so that a shared machine's noise hits both alike), it runs
`resnetc train` for one epoch of the same number of examples (--limit-train) with the
same settings and reads examples/s from its metrics.csv; it prints the medians and the
ratio. --no-resnetc times PyTorch alone.

    cargo build --release -j2 --features torch
    ~/.cache/resnetc/venv/bin/python scripts/train_pytorch.py --batches 100 --rounds 5
"""
import argparse
import gzip
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.extra = cout - cin

    def shortcut(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """fmnist-resnet20: torchvision's names (conv1, bn1, layer1..3, fc)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for i, (cout, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(cin, cout, stride if b == 0 else 1))
                cin = cout
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(root, name):
    for candidate in (os.path.join(root, name), os.path.join(root, name + ".gz")):
        if os.path.exists(candidate):
            return candidate
    raise SystemExit(f"{name} not found in {root}: run scripts/fetch-data.sh")


def normalize(images):
    return (torch.from_numpy(images.copy()).float().div_(255).sub_(0.2860406).div_(0.3530242)).unsqueeze(1)


def check_weights(args):
    from safetensors.torch import load_file

    images = read_idx(find(args.data, "t10k-images-idx3-ubyte"))
    labels = torch.from_numpy(read_idx(find(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64))
    n = len(labels)
    keep = torch.arange(args.limit_test) * n // args.limit_test if 0 < args.limit_test < n else torch.arange(n)
    xs, ys = normalize(images)[keep], labels[keep]
    model = ResNet20()
    model.load_state_dict(load_file(args.check_weights), strict=True)
    model.eval()
    with torch.no_grad():
        correct = sum((model(xs[i : i + 256]).argmax(1) == ys[i : i + 256]).sum().item() for i in range(0, len(xs), 256))
    print(f"pytorch: {args.check_weights} loaded strictly; test accuracy {correct / len(xs):.4f} ({correct} of {len(xs)})")


def main():
    home = os.environ.get("RESNETC_HOME", os.path.expanduser("~/.cache/resnetc"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(home, "data", "fashion-mnist"))
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="PyTorch and resnetc in turns, this many times each")
    ap.add_argument("--resnetc", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "target", "release", "resnetc"))
    ap.add_argument("--no-resnetc", action="store_true", help="time PyTorch only")
    ap.add_argument("--check-weights", metavar="W", help="evaluate resnetc's weights.safetensors instead of training")
    ap.add_argument("--limit-test", type=int, default=0, help="with --check-weights: N evenly spaced test images")
    args = ap.parse_args()
    if args.check_weights:
        check_weights(args)
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = read_idx(find(args.data, "train-images-idx3-ubyte"))
    labels = read_idx(find(args.data, "train-labels-idx1-ubyte")).astype(np.int64)
    xs = normalize(images)
    ys = torch.from_numpy(labels)
    run_resnetc = not args.no_resnetc
    if run_resnetc and not os.path.exists(args.resnetc):
        raise SystemExit(f"{args.resnetc} not found: cargo build --release -j2 --features torch (or --no-resnetc)")

    figures = {"pytorch": [], "resnetc": []}
    for r in range(args.rounds):
        figures["pytorch"].append(pytorch_round(args, xs, ys))
        line = f"round {r + 1}/{args.rounds}: pytorch {figures['pytorch'][-1]:.1f} images/s"
        if run_resnetc:
            figures["resnetc"].append(resnetc_round(args))
            line += f", resnetc {figures['resnetc'][-1]:.1f} examples/s"
        print(line, flush=True)
    torch_med = statistics.median(figures["pytorch"])
    summary = (f"pytorch eager {torch.__version__}: fmnist-resnet20 training, batch {args.batch_size}, 1x28x28, "
               f"{torch.get_num_threads()} threads, {args.batches} batches per round: median {torch_med:.1f} images/s")
    if run_resnetc:
        ours = statistics.median(figures["resnetc"])
        summary += f"; resnetc median {ours:.1f} examples/s; resnetc / pytorch {ours / torch_med:.2f}x"
    print(summary)


def pytorch_round(args, xs, ys):
    """Images/s of --batches training steps after --warmup, on a fresh model."""
    model = ResNet20()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    order = torch.randperm(len(xs))
    bs = args.batch_size

    def batch(i):
        idx = order[(i * bs) % (len(xs) - bs) :][:bs]
        return xs[idx], ys[idx]

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for i in range(args.warmup):
        step(*batch(i))
    step_time = 0.0
    for i in range(args.warmup, args.warmup + args.batches):
        x, y = batch(i)
        t = time.perf_counter()
        loss = step(x, y)
        loss.item()
        step_time += time.perf_counter() - t
    return args.batches * bs / step_time


def resnetc_round(args):
    """examples/s of `resnetc train` for one epoch of --batches batches, same settings."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd = [args.resnetc, "train", os.path.join(root, "specs", "fmnist-resnet20.yaml"), "--data", "fashion-mnist",
               "--out", out, "--epochs", "1", "--limit-train", str(args.batches * args.batch_size), "--limit-test", "500",
               "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--momentum", str(args.momentum),
               "--weight-decay", str(args.weight_decay), "--device", "cpu", "--seed", str(args.seed)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr}")
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = f.read().strip().splitlines()
        return float(rows[-1].split(",")[4])

if __name__ == "__main__":
    main()
