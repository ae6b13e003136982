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
(forward, loss, backward, update), which is what resnetc reports as examples/s.

    ~/.cache/resnetc/venv/bin/python scripts/train_pytorch.py --batches 200
"""
import argparse
import gzip
import os
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
    wall = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.batches):
        x, y = batch(i)
        t = time.perf_counter()
        loss = step(x, y)
        loss.item()
        step_time += time.perf_counter() - t
    wall = time.perf_counter() - wall
    n = args.batches * bs
    print(
        f"pytorch eager {torch.__version__}: fmnist-resnet20 training, batch {bs}, 1x28x28, "
        f"{torch.get_num_threads()} threads: {n / step_time:.1f} images/s over {args.batches} batches "
        f"({n / wall:.1f} images/s wall, loss {loss.item():.3f})"
    )


if __name__ == "__main__":
    main()
