#!/usr/bin/env python3
"""The reference article's Fashion-MNIST run in PyTorch eager, to compare with
`resnetc train specs/article-pytorch.yaml --data fashion-mnist` on the same machine.

The network is scripts/parity.py's `ArticleResNet` (the article's d2l-style ResNet with
torchvision's names, Xavier-uniform init, 21,290,250 parameters). The run follows the
article and resnetc's defaults for that spec: SGD without momentum or weight decay,
lr 0.05, batch 128, 10 epochs, images normalized as resnetc does (mean 0.2860406, std
0.3530242) and resized on the device to 224x224 (bilinear), a fresh shuffle every epoch,
cuDNN benchmark mode on CUDA (as `resnetc train` sets it).

Like resnetc, examples/s counts the training steps only (forward, loss, backward, update
and reading the loss), and test accuracy is measured in eval mode after every epoch. It
writes the same columns as resnetc's metrics.csv to --csv, after every epoch.

    python scripts/train_article_pytorch.py --device cuda --csv pytorch-metrics.csv
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity import ArticleResNet  # noqa: E402
from train_pytorch import find, normalize, read_idx  # noqa: E402


def load(root, split, device):
    prefix = "train" if split == "train" else "t10k"
    xs = normalize(read_idx(find(root, f"{prefix}-images-idx3-ubyte"))).to(device)
    ys = torch.from_numpy(read_idx(find(root, f"{prefix}-labels-idx1-ubyte")).astype("int64")).to(device)
    return xs, ys


def resize(x, size):
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def main():
    home = os.environ.get("RESNETC_HOME", os.path.expanduser("~/.cache/resnetc"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(home, "data", "fashion-mnist"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--resize", type=int, default=224)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv", help="write epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds here")
    args = ap.parse_args()

    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    train_x, train_y = load(args.data, "train", dev)
    test_x, test_y = load(args.data, "test", dev)
    model = ArticleResNet().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    bs = args.batch_size
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"pytorch eager {torch.__version__} on {where}: article network, {len(train_x)} training / "
          f"{len(test_x)} test images at 1x{args.resize}x{args.resize}, SGD lr {args.lr}, batch {bs}, "
          f"{args.epochs} epochs", flush=True)
    rows = []
    for epoch in range(args.epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), device=dev)
        loss_sum, correct, seen, step_time = 0.0, 0, 0, 0.0
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            x, y = resize(train_x[idx], args.resize), train_y[idx]
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = len(y)
            loss_sum += loss.item() * n
            correct += int((logits.argmax(1) == y).sum())
            seen += n
            step_time += time.perf_counter() - t
        model.eval()
        test_correct = 0
        with torch.no_grad():
            for i in range(0, len(test_x), bs):
                x = resize(test_x[i : i + bs], args.resize)
                test_correct += int((model(x).argmax(1) == test_y[i : i + bs]).sum())
        row = (epoch + 1, loss_sum / seen, correct / seen, test_correct / len(test_x), seen / step_time,
               time.perf_counter() - started)
        rows.append(row)
        print("epoch {}/{}: loss {:.4f}, train acc {:.4f}, test acc {:.4f}, {:.1f} examples/s, {:.1f} s".format(
            row[0], args.epochs, *row[1:]), flush=True)
        if args.csv:
            with open(args.csv, "w") as f:
                f.write("epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds\n")
                for r in rows:
                    f.write("{},{:.6f},{:.6f},{:.6f},{:.1f},{:.2f}\n".format(*r))


if __name__ == "__main__":
    main()
