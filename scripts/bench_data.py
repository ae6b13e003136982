#!/usr/bin/env python3
"""The image-folder input pipeline: `resnetc bench-data` against torchvision's ImageFolder +
DataLoader, with the same workers, the same transforms and the same batches, in turns.

Both read the training part of DIR, shuffle it, and make batches of --batch-size images at
--size x --size with torchvision's ImageNet training recipe: RandomResizedCrop(size,
scale=(0.08, 1), ratio=(3/4, 4/3)), RandomHorizontalFlip, ToTensor, Normalize(ImageNet's
mean and std). torchvision decodes with PIL (Pillow's libjpeg-turbo) in DataLoader worker
processes; resnetc decodes with zune-jpeg in worker threads. Each round runs each side once
for --batches batches (a fresh process or DataLoader each time, start-up included); the
table shows the median images/s over rounds and resnetc / torchvision.

--make DIR generates an ImageNet-like folder first when DIR does not exist: --images JPEGs
of 500x375 (quality 90, smooth colour fields with noise, like photographs in size), in 10
classes. Needs Pillow (resnetc's venv has it).

Usage (resnetc's venv python; build first with `cargo build --release -j2 --features torch`):
    python scripts/bench_data.py DIR --make --images 3000 --workers 2 --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def make_folder(root, images, classes=10, size=(500, 375), seed=0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(images):
        c = i % classes
        d = os.path.join(root, f"class{c:02d}")
        os.makedirs(d, exist_ok=True)
        fx, fy, ph = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.3)]
        base = np.stack([
            128 + 100 * np.sin(fx * xx + ph + k) * np.cos(fy * yy + k) for k in range(3)
        ], axis=-1)
        noise = rng.normal(0, 12, (h, w, 3))
        px = np.clip(base + noise, 0, 255).astype(np.uint8)
        Image.fromarray(px).save(os.path.join(d, f"{i:06d}.jpg"), quality=90)


def torchvision_rate(root, workers, size, batch, batches, seed):
    import torch
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.RandomResizedCrop(size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    train = os.path.join(root, "train")
    ds = datasets.ImageFolder(train if os.path.isdir(train) else root, transform=tf)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                         generator=g, persistent_workers=False)
    n = 0
    checksum = 0.0
    for k, (x, y) in enumerate(loader):
        n += x.shape[0]
        checksum += float(x.sum())
        if k + 1 >= batches:
            break
    seconds = time.perf_counter() - start
    del loader
    return n / seconds, n, seconds


def resnetc_rate(binary, root, workers, size, batch, batches, seed):
    out = subprocess.run(
        [binary, "bench-data", root, "--workers", str(workers), "--size", str(size),
         "--batch-size", str(batch), "--batches", str(batches), "--seed", str(seed),
         "--format", "json"],
        check=True, capture_output=True, text=True)
    j = json.loads(out.stdout)
    return j["images_per_sec"], j["images"], j["seconds"], j


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--make", action="store_true", help="generate DIR first if it does not exist")
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--binary", default="target/release/resnetc")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args()
    if a.make and not os.path.exists(a.dir):
        t = time.perf_counter()
        make_folder(a.dir, a.images)
        print(f"made {a.images} JPEGs in {a.dir} in {time.perf_counter() - t:.0f} s", flush=True)
    import torch
    import torchvision
    import PIL

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {PIL.__version__}; "
          f"{a.workers} workers, batch {a.batch_size} at {a.size}x{a.size}, {a.batches} batches per run")
    rows = {"torchvision": [], "resnetc": []}
    details = []
    for r in range(a.rounds):
        tv = torchvision_rate(a.dir, a.workers, a.size, a.batch_size, a.batches, r)
        rc = resnetc_rate(a.binary, a.dir, a.workers, a.size, a.batch_size, a.batches, r)
        rows["torchvision"].append(tv[0])
        rows["resnetc"].append(rc[0])
        details.append({"round": r + 1, "torchvision": tv[0], "resnetc": rc[0],
                        "resnetc_peak_rss_mib": rc[3].get("peak_rss_mib")})
        print(f"round {r + 1}: torchvision {tv[0]:.1f} images/s ({tv[1]} in {tv[2]:.2f} s), "
              f"resnetc {rc[0]:.1f} images/s ({rc[1]} in {rc[2]:.2f} s)", flush=True)
    tv, rc = statistics.median(rows["torchvision"]), statistics.median(rows["resnetc"])
    print()
    print("| pipeline | workers | images/s (median) |")
    print("|---|---|---|")
    print(f"| torchvision ImageFolder + DataLoader | {a.workers} | {tv:.1f} |")
    print(f"| resnetc bench-data | {a.workers} | {rc:.1f} |")
    print(f"\nresnetc / torchvision: {rc / tv:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rounds": details, "torchvision": tv, "resnetc": rc,
                       "ratio": rc / tv}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
