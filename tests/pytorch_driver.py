"""The Python half of tests/pytorch.rs: checks files written by `resnetc build --target pytorch`.

One process serves every network: it reads one JSON job per line on stdin and answers one
JSON line on stdout. A job names a generated module, resnetc's weights (random, with
randomized BN statistics) and an io file (the input and resnetc's runtime outputs in eval and
train mode). For each job it imports the module, builds the model class with its defaults,
loads the weights strictly (then deletes the file), counts the trainable parameters and BN
statistics, runs eval and train mode (train after seeding as the Rust side did, so dropout and
drop path draw the same masks), compares with resnetc's outputs, writes the state_dict after
the training step (for resnetc to load strictly and compare), and checks that
torch.jit.script accepts the model and computes the same eval output. A job with
"compile": true also runs torch.compile (inductor) once.

Usage: python pytorch_driver.py < jobs (answers on stdout).
"""

import importlib.util
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file, save_file

torch.set_num_threads(2)


def rel_diff(a, b):
    a = a.double()
    b = b.double()
    if a.shape != b.shape:
        return float("inf"), 0.0
    scale = b.abs().max().item()
    d = (a - b).abs().max().item()
    return d / scale if scale > 0 else d, scale


def outputs(y):
    if isinstance(y, dict):
        return {k: v for k, v in y.items()}
    return {"logits": y}


def init_problems(cls, scheme):
    """The spec's initialization, on a fresh model: convolutions Kaiming-normal fan-out (std
    sqrt(2 / fan_out)) or Xavier uniform (bound sqrt(6 / (fan_in + fan_out)), zero biases), norm
    weight 1 and bias 0; with zero_init_residual=True every residual block's last norm weight
    is 0."""
    problems = []
    model = cls(zero_init_residual=True)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    big = max(convs, key=lambda m: m.weight.numel())
    w = big.weight.detach()
    fan_in = w[0].numel()
    fan_out = w.shape[0] * w[0, 0].numel()
    if scheme == "kaiming_normal":
        std = w.std().item()
        if abs(std / (2.0 / fan_out) ** 0.5 - 1) > 0.05:
            problems.append(f"conv std {std} vs {(2.0 / fan_out) ** 0.5}")
    else:
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        if not (0.9 * bound < w.abs().max().item() <= bound + 1e-7):
            problems.append(f"conv bound {w.abs().max().item()} vs {bound}")
        for m in convs + [model.fc]:
            if m.bias is not None and m.bias.abs().max().item() != 0:
                problems.append("a bias is not 0")
                break
    zeroed = 0
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
            if m.bias.abs().max().item() != 0:
                problems.append(f"{name}.bias is not 0")
            if m.weight.abs().max().item() == 0:
                zeroed += 1
            elif m.weight.min().item() != 1:
                problems.append(f"{name}.weight is not 1")
    if zeroed == 0:
        problems.append("zero_init_residual=True zeroed no norm")
    return problems


def run(job):
    t0 = time.time()
    spec = importlib.util.spec_from_file_location(job["module"], job["py"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, job["class"])
    model = cls()
    result = {"label": job["label"]}
    if job.get("init_check"):
        result["init_problems"] = init_problems(cls, job["init_check"])
    state = load_file(job["weights"])
    model.load_state_dict(state, strict=True)
    del state
    os.remove(job["weights"])
    result["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result["statistics"] = sum(
        b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    io = load_file(job["io"])
    x = io["input"]
    diffs = {}
    model.eval()
    with torch.no_grad():
        y_eval = outputs(model(x))
    torch.manual_seed(job["seed"])
    model.train()
    with torch.no_grad():
        y_train = outputs(model(x))
    names = sorted(y_eval)
    result["outputs"] = names
    for mode, ys in (("eval", y_eval), ("train", y_train)):
        for n in names:
            d, scale = rel_diff(ys[n], io[f"{mode}.{n}"])
            diffs[f"{mode}.{n}"] = d
            result.setdefault("scale", {})[f"{mode}.{n}"] = scale
    result["diffs"] = diffs
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, job["after"])
    # The training step changed the running statistics: compare with eager eval after it.
    model.eval()
    with torch.no_grad():
        y_now = outputs(model(x))
    scripted = torch.jit.script(model)
    with torch.no_grad():
        ys = outputs(scripted(x))
    result["script_diff"] = max(rel_diff(ys[n], y_now[n])[0] for n in names)
    if job.get("compile"):
        compiled = torch.compile(model)
        with torch.no_grad():
            yc = outputs(compiled(x))
        result["compile_diff"] = max(rel_diff(yc[n], y_now[n])[0] for n in names)
    result["seconds"] = round(time.time() - t0, 2)
    return result


def main():
    for line in sys.stdin:
        job = json.loads(line)
        try:
            result = run(job)
        except Exception as e:  # reported to the Rust side, which fails the test
            result = {"label": job.get("label"), "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
