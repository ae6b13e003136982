#!/usr/bin/env python3
"""Parity with torchvision on CUDA: tests/parity.rs's check, run through the release
binary on a GPU machine (which has PyTorch but no Rust toolchain).

For each model of scripts/parity.py (reference weights and logits computed on the CPU
in f32, written to OUT_DIR):

- f32, eval and train mode, `resnetc run --device cuda --no-cudnn` (exact f32 on
  libtorch's own kernels) against the CPU reference: must be within --tol (1e-4), as on
  the CPU;
- f32 eval with cuDNN (TF32 convolutions, the default in PyTorch and libtorch) and bf16
  eval: resnetc against PyTorch on the same GPU under the same settings (cuDNN defaults;
  torch.autocast for bf16), reported with the size of the logits for scale.

Usage: python scripts/parity_cuda.py OUT_DIR [--resnetc target/release/resnetc]
Exit status 1 if an exact-f32 comparison is outside the tolerance.
"""
import argparse
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spec_of(name):
    return os.path.join(ROOT, "specs", name.replace("_", "-") + ".yaml")


def resnetc(binary, name, weights, x_path, out, *extra):
    cmd = [binary, "run", spec_of(name), "--weights", weights, "--input", x_path, "-o", out, "--device", "cuda", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}", flush=True)
        return None
    return load_file(out)["logits"].float()


def diff(a, b):
    return float("inf") if a is None else (a - b).abs().max().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--resnetc", default=os.path.join(ROOT, "target", "release", "resnetc"))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--only", nargs="*", choices=sorted(parity.MODELS))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; "
          f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}", flush=True)
    print("| model | f32 eval, no cuDNN vs CPU ref | f32 train, no cuDNN vs CPU ref | f32 eval cuDNN: resnetc vs PyTorch (PyTorch vs CPU ref) | bf16 eval: resnetc vs PyTorch autocast | max abs logit |")
    print("|---|---|---|---|---|---|")
    failures = []
    for name in args.only or parity.MODELS:
        parity.generate(name, args.out_dir)
        weights = os.path.join(args.out_dir, f"{name}.weights.safetensors")
        io = load_file(os.path.join(args.out_dir, f"{name}.io.safetensors"))
        x_path = os.path.join(args.out_dir, f"{name}.input.safetensors")
        save_file({"input": io["input"].contiguous()}, x_path)
        y_path = os.path.join(args.out_dir, f"{name}.out.safetensors")
        ref_eval, ref_train = io["logits_eval"], io["logits_train"]

        exact_eval = diff(resnetc(args.resnetc, name, weights, x_path, y_path, "--no-cudnn"), ref_eval)
        exact_train = diff(resnetc(args.resnetc, name, weights, x_path, y_path, "--no-cudnn", "--train-mode"), ref_train)
        for what, d in (("eval", exact_eval), ("train", exact_train)):
            if not d <= args.tol:
                failures.append(f"{name} {what}: {d:.2e} > {args.tol:.0e}")

        ctor, _ = parity.MODELS[name]
        torch.manual_seed(0)
        model = ctor()
        model.load_state_dict(load_file(weights), strict=True)
        model = model.cuda().eval()
        xc = io["input"].cuda()
        with torch.no_grad():
            torch_f32 = model(xc).float().cpu()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                torch_bf16 = model(xc).float().cpu()
        cudnn_f32 = diff(resnetc(args.resnetc, name, weights, x_path, y_path), torch_f32)
        torch_vs_ref = diff(torch_f32, ref_eval)
        bf16 = diff(resnetc(args.resnetc, name, weights, x_path, y_path, "--dtype", "bf16"), torch_bf16)
        print(f"| {name} | {exact_eval:.2e} | {exact_train:.2e} | {cudnn_f32:.2e} ({torch_vs_ref:.2e}) | {bf16:.2e} | "
              f"{ref_eval.abs().max().item():.2f} |", flush=True)
    if failures:
        print("outside the tolerance: " + "; ".join(failures))
        return 1
    print(f"all exact-f32 comparisons within {args.tol:.0e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
