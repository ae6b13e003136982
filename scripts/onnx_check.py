#!/usr/bin/env python3
"""Checks ONNX files written by `resnetc export` and runs them on ONNX Runtime (CPU).

Usage: onnx_check.py JOBS.json REPORT.json

JOBS.json is a list of jobs:
  {"model": "m.onnx", "input": "x.safetensors" (one tensor, [N, C, H, W]) or null,
   "batches": [1, 8], "output": "y.safetensors"}
For each job: onnx.checker.check_model(full_check=True); onnx.shape_inference.infer_shapes
(strict mode), whose shapes of every named value go into REPORT.json under the model's
path ({"shapes": {value: [dims]}, "opset": N, "ir_version": N}); then, if an input is
given, ONNX Runtime on its first B samples for each B in `batches`, every graph output
written to `output` as `<name>@<B>` (f32). Run by tests/onnx.rs with resnetc's venv.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file


def dims(value_info):
    shape = value_info.type.tensor_type.shape
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in shape.dim]


def main(jobs_path, report_path):
    with open(jobs_path) as f:
        jobs = json.load(f)
    report = {}
    for job in jobs:
        path = job["model"]
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        shapes = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
            shapes[vi.name] = dims(vi)
        report[path] = {
            "shapes": shapes,
            "opset": model.opset_import[0].version,
            "ir_version": model.ir_version,
        }
        if job.get("input"):
            (x,) = load_file(job["input"]).values()
            elem = model.graph.input[0].type.tensor_type.elem_type
            x = x.astype(np.float16 if elem == onnx.TensorProto.FLOAT16 else np.float32)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 2
            session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            out = {}
            for b in job["batches"]:
                for name, y in zip(names, session.run(None, {"input": x[:b]})):
                    out[f"{name}@{b}"] = np.ascontiguousarray(y.astype(np.float32))
            save_file(out, job["output"])
    with open(report_path, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
