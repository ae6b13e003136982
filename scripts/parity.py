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

The same two files come for 13 timm models (timm 1.0.31), entered as `timm-<name>`:
resnet10t, resnet18d, resnet26d, resnet34d, resnet50c, resnet50d, resnet50s, seresnet50,
resnetrs50, resnet50_gn, ecaresnet50d, resnetblur50, resnetaa50, each built by
`timm.create_model(name, pretrained=False)` (timm's defaults: drop_rate and
drop_path_rate 0, 1000 classes) and run on a 2x3x128x128 input. For them

- BN layers are randomized as above, and GroupNorm layers (resnet50_gn) get random
  weights and biases the same way; the last norm of each block (`bn3` of a Bottleneck,
  `bn2` of a BasicBlock) is scaled by 0.3, as for torchvision;
- squeeze-excitation (`se.fc1`, `se.fc2`) and ECA (`se.conv`, a Conv1d) keep timm's
  initialization, checked to leave the sigmoid gates unsaturated: on the calibration batch,
  in eval and in train mode, at least 90% of each gate's outputs lie in (0.05, 0.95)
  (otherwise the layer feeding the gate is halved until they do; timm 1.0.31 needs none);
- the weights file is the state_dict as is, with timm's own key names (`conv1.0.weight`
  of the deep stems, `maxpool.0.weight` of resnetrs50's conv "pool", `layer1.0.se.fc1.bias`,
  ...); BlurPool2d's fixed `filt` is a non-persistent buffer and is not in it;
- the io file also holds `meta_max_abs_logit`, float32 of shape [2]: max |logits_eval|
  and max |logits_train| (the scale for a tolerance relative to the largest logit).

`--check-f64` also prints, per model written, the max abs difference between the f32
logits and those of an f64 copy of the same model and input, relative to the largest
|logit| (all timm entries: <= 2.1e-6, eval <= 8.8e-7, far below 1e-4).

Usage: python scripts/parity.py OUT_DIR [--only NAME ...] [--check-f64]
Files that already exist are kept (delete them to regenerate). Run with resnetc's venv
python (torch 2.11.0, torchvision 0.26.0, safetensors; timm 1.0.31 for the timm entries,
imported only when one of them is generated).
"""

import argparse
import contextlib
import copy
import functools
import io as _io
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

# timm models (timm 1.0.31, `timm.create_model(name, pretrained=False)`, defaults kept:
# drop_rate = drop_path_rate = 0), entered as `timm-<name>`. One small input for all: every
# one of them downsamples by 32 (resnet10t's and resnetrs50's stems included), so 128x128
# ends in a 4x4 map, and all 13 together take a few seconds.
TIMM_MODELS = [
    "resnet10t", "resnet18d", "resnet26d", "resnet34d", "resnet50c", "resnet50d", "resnet50s",
    "seresnet50", "resnetrs50", "resnet50_gn", "ecaresnet50d", "resnetblur50", "resnetaa50",
]
TIMM_INPUT = (3, 128, 128)
# Squeeze-excitation / ECA gates: on the calibration batch (eval and train mode) at least
# this share of each gate's sigmoid outputs must lie in (GATE_LOW, GATE_HIGH).
GATE_LOW, GATE_HIGH, GATE_SHARE = 0.05, 0.95, 0.9


def timm_model(name):
    """`timm.create_model(name)`, imported late (only the timm entries need timm) and with
    huggingface_hub's import-time chatter on stdout swallowed."""
    with contextlib.redirect_stdout(_io.StringIO()):
        import timm

        model = timm.create_model(name, pretrained=False)
    assert model.drop_rate == 0, (name, model.drop_rate)
    return model


MODELS.update({f"timm-{n}": (functools.partial(timm_model, n), TIMM_INPUT) for n in TIMM_MODELS})


def resnet50_os8():
    """torchvision's resnet50 with `replace_stride_with_dilation=[False, True, True]` as
    DeepLab reads it: `IntermediateLayerGetter` returning layer3 and layer4 (no avgpool, no
    fc in its state_dict). Its io file has `layer3_eval`, `layer4_eval`, `layer3_train` and
    `layer4_train` instead of logits."""
    from torchvision.models._utils import IntermediateLayerGetter

    net = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
    return IntermediateLayerGetter(net, return_layers={"layer3": "layer3", "layer4": "layer4"})


MODELS["resnet50_os8"] = (resnet50_os8, (3, 96, 96))


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


def randomize_norms(model, gen, shape):
    """Random BN weights and biases; running statistics measured on a random batch, then
    perturbed. Measured statistics keep eval-mode activations at a realistic scale
    (purely random ones blow resnet152's logits up to 1e8, where a 1e-4 tolerance means
    nothing); the perturbation keeps them from equalling any batch's statistics.
    GroupNorm layers (timm's resnet50_gn) get random weights and biases the same way (they
    have no running statistics). Returns the calibration batch."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    bns = [m for m in norms if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            c = m.num_features if isinstance(m, nn.BatchNorm2d) else m.num_channels
            m.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batch
        model.train()
        calibration = torch.randn(4, *shape, generator=gen)
        model(calibration)
        # The last norm of each residual block gets a small weight, as in trained networks
        # (and torchvision's zero_init_residual): with weights near 1 the random deep
        # networks are chaotic, and f32 itself (PyTorch's own eval pass against f64) is off
        # by 1e-3 on resnet152, so no f32 implementation could be held to 1e-4.
        # (torchvision's and timm's blocks agree: `bn3` of a bottleneck, `bn2` of a basic block.)
        for block in model.modules():
            last = getattr(block, "bn3", None) or (getattr(block, "bn2", None) if hasattr(block, "conv2") and not hasattr(block, "conv3") else None)
            if isinstance(last, (nn.BatchNorm2d, nn.GroupNorm)):
                last.weight.mul_(0.3)
        for m in bns:
            c = m.num_features
            std = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(c, generator=gen) * 0.05 * std)
            m.running_var.mul_(torch.rand(c, generator=gen) * 0.2 + 0.9)
            m.momentum = 0.1
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
    return calibration


def gate_shares(model, x):
    """For each squeeze-excitation / ECA module (timm's SEModule and EcaModule: a `gate`
    sigmoid, fed by `fc2` or `conv`), the share of its gate outputs on `x` that lie in
    (GATE_LOW, GATE_HIGH), in module order: [(module, share)]. Runs under no_grad in the
    model's current mode; call it on a copy in train mode (running stats move)."""
    gated = [m for m in model.modules() if isinstance(getattr(m, "gate", None), nn.Module)]
    shares = {}
    hooks = [
        m.gate.register_forward_hook(
            lambda g, _args, y, m=m: shares.__setitem__(m, ((y > GATE_LOW) & (y < GATE_HIGH)).double().mean().item())
        )
        for m in gated
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return [(m, shares[m]) for m in gated]


def calibrate_gates(model, calibration):
    """Keeps the SE / ECA gates out of saturation: while some gate has fewer than GATE_SHARE
    of its outputs on the calibration batch in (GATE_LOW, GATE_HIGH) (eval mode, or train
    mode on a copy), halve the weights (and bias) of the layer feeding the first such gate.
    Returns (number of halvings, smallest share, overall share in eval mode)."""
    halvings = 0
    while True:
        model.eval()
        evals = gate_shares(model, calibration)
        probe = copy.deepcopy(model).train()
        trains = gate_shares(probe, calibration)
        low = [m for (m, a), (_, b) in zip(evals, trains) if min(a, b) < GATE_SHARE]
        if not low:
            break
        assert halvings < 100, "SE gates stay saturated"
        feed = getattr(low[0], "fc2", None) or low[0].conv
        with torch.no_grad():
            feed.weight.mul_(0.5)
            if feed.bias is not None:
                feed.bias.mul_(0.5)
        halvings += 1
    model.train()
    if not evals:
        return 0, None, None
    smallest = min(min(a for _, a in evals), min(b for _, b in trains))
    return halvings, smallest, sum(a for _, a in evals) / len(evals)


def write_atomically(tensors, path):
    tmp = path + ".tmp"
    save_file(tensors, tmp)
    os.replace(tmp, path)


def generate(name, out_dir, check_f64=False):
    weights = os.path.join(out_dir, f"{name}.weights.safetensors")
    io = os.path.join(out_dir, f"{name}.io.safetensors")
    if os.path.exists(weights) and os.path.exists(io):
        print(f"{name}: exists, skipped")
        return
    is_timm = name.startswith("timm-")
    ctor, (c, h, w) = MODELS[name]
    torch.manual_seed(SEED)
    model = ctor()
    gen = torch.Generator().manual_seed(SEED + 1)
    calibration = randomize_norms(model, gen, (c, h, w))
    gates = calibrate_gates(model, calibration) if is_timm else None
    params = sum(p.numel() for p in model.parameters())
    if name == "article_pytorch":
        assert params == 21_290_250, params
    x = torch.randn(BATCH, c, h, w, generator=gen)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if is_timm:
        # timm's own names; BlurPool2d's `filt` is a non-persistent buffer, not a weight.
        assert not any(k.endswith(".filt") for k in state), name
        bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        assert all(f"{n}.num_batches_tracked" in state for n in bns), name
    double = copy.deepcopy(model).double() if check_f64 else None
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    with torch.no_grad():
        logits_train = model(x)
    write_atomically(state, weights)
    if isinstance(logits_eval, dict):
        # A backbone: its feature maps, named by module.
        tensors = {"input": x}
        tensors.update({f"{k}_eval": v for k, v in logits_eval.items()})
        tensors.update({f"{k}_train": v for k, v in logits_train.items()})
        write_atomically(tensors, io)
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in logits_eval.items())
        print(f"{name}: {params:,} params, {len(state)} keys, input {list(x.shape)}, feature maps {shapes}")
        return
    tensors = {"input": x, "logits_eval": logits_eval, "logits_train": logits_train}
    if is_timm:
        tensors["meta_max_abs_logit"] = torch.stack([logits_eval.abs().max(), logits_train.abs().max()])
    write_atomically(tensors, io)
    line = (
        f"{name}: {params:,} params, {len(state)} keys, input {list(x.shape)}, "
        f"max |logit| eval {logits_eval.abs().max():.3f} train {logits_train.abs().max():.3f}"
    )
    if gates is not None and gates[1] is not None:
        line += f", SE gates in ({GATE_LOW}, {GATE_HIGH}): min {gates[1]:.3f} mean {gates[2]:.3f} ({gates[0]} halvings)"
    if double is not None:
        # How far f32 itself is from exact: PyTorch's f32 pass against its f64 pass, relative
        # to the largest |logit| (the parity test's tolerance is 1e-4 absolute).
        double.eval()
        with torch.no_grad():
            eval64 = double(x.double())
        double.train()
        with torch.no_grad():
            train64 = double(x.double())
        rel = lambda y, y64: ((y.double() - y64).abs().max() / y64.abs().max()).item()
        line += f", f32 vs f64 (relative) eval {rel(logits_eval, eval64):.1e} train {rel(logits_train, train64):.1e}"
    print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), help="generate only these models")
    ap.add_argument("--check-f64", action="store_true", help="also report how far f32 is from an f64 rerun")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for name in args.only or MODELS:
        generate(name, args.out_dir, args.check_f64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
