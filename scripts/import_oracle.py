#!/usr/bin/env python3
"""Reference files for `resnetc import` and `--weights FILE.pth|.h5|.keras` (tests/import_parity.rs).

Models (random weights; BN layers randomized as scripts/parity.py does it, so that eval mode
really uses the running statistics):

- `resnet18`, `resnet50` (torchvision 0.26) and `timm-resnet18d` (timm 1.0.31):
  `<name>.pth` = `torch.save(model.state_dict())`; `<name>.ref.safetensors` = the same
  state_dict through safetensors (the bit-exact reference); `<name>.io.safetensors` =
  `input` [2, 3, 96, 96] and `logits` (eval mode).
  For resnet18 and timm-resnet18d also `<name>.wrapped.pth` = `{"state_dict": {"module." + key:
  ...}, "epoch": 3, "optimizer": SGD-with-momentum state_dict after one step}` (a DataParallel
  training script's checkpoint); for resnet18 `<name>.model.pth` = `torch.save(model)`.
- `keras-ResNet50` (Keras 3.15.1, KERAS_BACKEND=torch): `keras.applications.ResNet50(weights=None,
  input_shape=(96, 96, 3), classifier_activation=None)` with randomized BN (gamma, beta; moving
  statistics measured on a calibration batch, then perturbed; each block's last BN scaled by
  0.3): `<name>.weights.h5` (`save_weights`), `<name>.keras` (`save`), `<name>.io.safetensors` =
  `input` in NCHW and `logits` = `model.predict` of the same input in NHWC.

`--hostile DIR MARKER` instead writes small files into DIR: `evil.pth`, a
`torch.save` of a dict whose value's `__reduce__` returns `(os.system, ("touch MARKER",))`
(saving does not call it; loading it with Python's pickle would), and `wrong-dtype.weights.h5`,
a Keras-style weights file whose `conv1_conv` kernel is int32, and `seed.weights.h5`, a small
valid one for the test's mutations.

Usage: python scripts/import_oracle.py OUT_DIR [--only NAME ...]
       python scripts/import_oracle.py --hostile DIR MARKER
Files that exist are kept. Run with resnetc's venv python (scripts/setup.sh).
"""

import argparse
import contextlib
import io as _io
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
from safetensors.torch import save_file

SEED = 20241129
INPUT = (3, 96, 96)
TORCH_MODELS = ["resnet18", "resnet50", "timm-resnet18d"]
WRAPPED = {"resnet18", "timm-resnet18d"}
KERAS_MODELS = ["keras-ResNet50"]


def atomic(write, path):
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def torch_model(name):
    if name.startswith("timm-"):
        with contextlib.redirect_stdout(_io.StringIO()):
            import timm

            return timm.create_model(name[len("timm-"):], pretrained=False)
    import torchvision

    return getattr(torchvision.models, name)()


def generate_torch(name, out):
    paths = {k: os.path.join(out, f"{name}.{k}") for k in ["pth", "ref.safetensors", "io.safetensors"]}
    if all(os.path.exists(p) for p in paths.values()):
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from parity import randomize_norms

    torch.manual_seed(SEED)
    model = torch_model(name)
    gen = torch.Generator().manual_seed(SEED + 1)
    randomize_norms(model, gen, INPUT)
    x = torch.randn(2, *INPUT, generator=gen)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    state = model.state_dict()
    atomic(lambda p: torch.save(state, p), paths["pth"])
    atomic(lambda p: save_file({k: v.contiguous() for k, v in state.items()}, p), paths["ref.safetensors"])
    if name in WRAPPED:
        # The state_dict's tensors are the model's own: copy them before a training step.
        frozen = {k: v.detach().clone() for k, v in state.items()}
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        model(x).sum().backward()
        opt.step()
        checkpoint = {
            "state_dict": {"module." + k: v for k, v in frozen.items()},
            "epoch": 3,
            "optimizer": opt.state_dict(),
        }
        atomic(lambda p: torch.save(checkpoint, p), os.path.join(out, f"{name}.wrapped.pth"))
    if name == "resnet18":
        atomic(lambda p: torch.save(model, p), os.path.join(out, f"{name}.model.pth"))
    atomic(lambda p: save_file({"input": x, "logits": logits}, p), paths["io.safetensors"])
    print(f"{name}: {len(state)} keys, max |logit| {logits.abs().max():.3f}")


def generate_keras(name, out):
    paths = {k: os.path.join(out, f"{name}.{k}") for k in ["weights.h5", "keras", "io.safetensors"]}
    if all(os.path.exists(p) for p in paths.values()):
        return
    import keras

    keras.utils.set_random_seed(SEED)
    c, h, w = INPUT
    ctor = getattr(keras.applications, name[len("keras-"):])
    model = ctor(weights=None, input_shape=(h, w, c), classifier_activation=None)
    rng = np.random.default_rng(SEED)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    for l in bns:
        n = l.gamma.shape[0]
        l.gamma.assign(rng.uniform(0.75, 1.25, n).astype("float32"))
        l.beta.assign(rng.normal(0, 0.1, n).astype("float32"))
        l.momentum = 0.0  # the next training-mode pass sets the moving statistics to its batch's
    calibration = rng.normal(0, 1, (4, h, w, c)).astype("float32")
    model(calibration, training=True)
    for l in bns:
        n = l.gamma.shape[0]
        l.momentum = 0.99
        if l.name.endswith("_3_bn"):
            l.gamma.assign(l.gamma.numpy() * 0.3)
        std = np.sqrt(l.moving_variance.numpy())
        l.moving_mean.assign(l.moving_mean.numpy() + (rng.normal(0, 1, n) * 0.05 * std).astype("float32"))
        l.moving_variance.assign(l.moving_variance.numpy() * rng.uniform(0.9, 1.1, n).astype("float32"))
    x = rng.normal(0, 1, (2, h, w, c)).astype("float32")
    logits = np.asarray(model.predict(x, verbose=0))
    # Keras wants its extensions on the files it writes: write beside, then rename.
    for key, write, ext in [("weights.h5", model.save_weights, ".weights.h5"), ("keras", model.save, ".keras")]:
        tmp = paths[key] + ".tmp" + ext
        write(tmp)
        os.replace(tmp, paths[key])
    tensors = {"input": torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), "logits": torch.from_numpy(logits)}
    atomic(lambda p: save_file(tensors, p), paths["io.safetensors"])
    print(f"{name}: {len(model.weights)} variables, max |logit| {np.abs(logits).max():.3f}")


class Evil:
    """Pickles as a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def hostile(out, marker):
    os.makedirs(out, exist_ok=True)
    torch.save({"conv1.weight": Evil(f"touch {marker}")}, os.path.join(out, "evil.pth"))
    import h5py

    with h5py.File(os.path.join(out, "wrong-dtype.weights.h5"), "w") as f:
        v = f.create_group("layers/conv2d/vars")
        v.attrs["name"] = "conv1_conv"
        v["0"] = np.zeros((7, 7, 3, 64), dtype="int32")
        v["1"] = np.zeros((64,), dtype="float32")
    # A small valid file, the seed of tests/import_parity.rs's mutants: conv1_conv's bias
    # and conv1_bn's four vectors fit the Keras ResNet50 spec, the 1x1x1x1 kernel does not.
    with h5py.File(os.path.join(out, "seed.weights.h5"), "w") as f:
        v = f.create_group("layers/conv2d/vars")
        v.attrs["name"] = "conv1_conv"
        v["0"] = np.ones((1, 1, 1, 1), dtype="float32")
        v["1"] = np.ones((64,), dtype="float32")
        b = f.create_group("layers/batch_normalization/vars")
        b.attrs["name"] = "conv1_bn"
        for i in range(4):
            b[str(i)] = np.ones((64,), dtype="float32")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--only", nargs="*", choices=TORCH_MODELS + KERAS_MODELS)
    ap.add_argument("--hostile", nargs=2, metavar=("DIR", "MARKER"))
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if args.hostile:
        hostile(*args.hostile)
        return 0
    if not args.out_dir:
        ap.error("OUT_DIR is required")
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.only or TORCH_MODELS + KERAS_MODELS:
        if name in KERAS_MODELS:
            generate_keras(name, args.out_dir)
        else:
            generate_torch(name, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
