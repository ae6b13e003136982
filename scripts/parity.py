#!/usr/bin/env python3
"""Reference outputs for resnetc's runtime parity test (tests/parity.rs).

For torchvision's resnet18/34/50/101/152, resnext50_32x4d and wide_resnet50_2, and for a
PyTorch re-implementation of the article's network (d2l-style ResNet-34 layout with conv
biases and bias-only 1x1 projections, 1x224x224 input, 10 classes), this script

- builds the model with a fixed seed and randomizes every BN layer (weight, bias;
  running mean and variance measured on a random batch, then perturbed) so that eval
  mode really uses the running stats;
- writes `<name>.weights.safetensors`: the state_dict (num_batches_tracked included);
- writes `<name>.io.safetensors`: `input` (a fixed random batch), `logits_eval` and
  `logits_train` (train mode: batch statistics; computed after eval).

Usage: python scripts/parity.py OUT_DIR [--only NAME ...]
Files that already exist are kept (delete them to regenerate). Run with resnetc's venv
python (torch 2.11.0, torchvision 0.26.0, safetensors).
"""

import argparse
import os
import sys

import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

# name -> (constructor, input shape (C, H, W)); the big models run on smaller inputs so
# that the test stays fast on two cores (every model here takes any size >= 32).
MODELS = {
    "resnet18": (torchvision.models.resnet18, (3, 224, 224)),
    "resnet34": (torchvision.models.resnet34, (3, 224, 224)),
    "resnet50": (torchvision.models.resnet50, (3, 160, 160)),
    "resnet101": (torchvision.models.resnet101, (3, 128, 128)),
    "resnet152": (torchvision.models.resnet152, (3, 128, 128)),
    "resnext50_32x4d": (torchvision.models.resnext50_32x4d, (3, 160, 160)),
    "wide_resnet50_2": (torchvision.models.wide_resnet50_2, (3, 128, 128)),
    "article_pytorch": (lambda: ArticleResNet(), (1, 224, 224)),
}
BATCH = 2
SEED = 20240607


class ArticleBlock(nn.Module):
    """d2l's `Residual`, with torchvision's attribute names (so state_dict keys match)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            # d2l's `conv3`: a 1x1 projection with bias and no BN.
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=True))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(y + x)


class ArticleResNet(nn.Module):
    """The article's PyTorch network (REFERENCE.md section 4): 21,290,250 parameters."""

    def __init__(self, in_channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, c = [], 64
        for i, (n, out) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512])):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(ArticleBlock(c, out, stride))
                c = out
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize_batch_norms(model, gen, shape):
    """Random BN weights and biases; running statistics measured on a random batch, then
    perturbed. Measured statistics keep eval-mode activations at a realistic scale
    (purely random ones blow resnet152's logits up to 1e8, where a 1e-4 tolerance means
    nothing); the perturbation keeps them from equalling any batch's statistics."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            c = m.num_features
            m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
        model.train()
        model(torch.randn(4, *shape, generator=gen))
        # The last BN of each residual block gets a small weight, as in trained networks
        # (and torchvision's zero_init_residual): with weights near 1 the random deep
        # networks are chaotic, and f32 itself (PyTorch's own eval pass against f64) is off
        # by 1e-3 on resnet152, so no f32 implementation could be held to 1e-4.
        for block in model.modules():
            last = getattr(block, "bn3", None) or (getattr(block, "bn2", None) if hasattr(block, "conv2") and not hasattr(block, "conv3") else None)
            if isinstance(last, nn.BatchNorm2d):
                last.weight.mul_(0.3)
        for m in bns:
            c = m.num_features
            std = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(c, generator=gen) * 0.05 * std)
            m.running_var.mul_(torch.rand(c, generator=gen) * 0.2 + 0.9)
            m.momentum = 0.1
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))


def write_atomically(tensors, path):
    tmp = path + ".tmp"
    save_file(tensors, tmp)
    os.replace(tmp, path)


def generate(name, out_dir):
    weights = os.path.join(out_dir, f"{name}.weights.safetensors")
    io = os.path.join(out_dir, f"{name}.io.safetensors")
    if os.path.exists(weights) and os.path.exists(io):
        print(f"{name}: exists, skipped")
        return
    ctor, (c, h, w) = MODELS[name]
    torch.manual_seed(SEED)
    model = ctor()
    gen = torch.Generator().manual_seed(SEED + 1)
    randomize_batch_norms(model, gen, (c, h, w))
    params = sum(p.numel() for p in model.parameters())
    if name == "article_pytorch":
        assert params == 21_290_250, params
    x = torch.randn(BATCH, c, h, w, generator=gen)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    with torch.no_grad():
        logits_train = model(x)
    write_atomically(state, weights)
    write_atomically({"input": x, "logits_eval": logits_eval, "logits_train": logits_train}, io)
    print(
        f"{name}: {params:,} params, {len(state)} keys, input {list(x.shape)}, "
        f"max |logit| eval {logits_eval.abs().max():.3f} train {logits_train.abs().max():.3f}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), help="generate only these models")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for name in args.only or MODELS:
        generate(name, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
