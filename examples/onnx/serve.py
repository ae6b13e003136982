#!/usr/bin/env python3
"""Top-5 classes of an image with a model written by `resnetc export --format onnx`.

Usage: python serve.py model.onnx image.jpg   (needs onnxruntime, numpy, pillow)

Preprocessing as `resnetc train/eval --data DIR` prepares image folders: resize to the model's
input (here PIL's bilinear; resnetc uses stb's filter, so pixels can differ slightly), scale
to [0, 1], normalize with ImageNet's mean/std for 3 channels, 0.5/0.5 for grey models.
"""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def main(model_path, image_path):
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]  # `input`, [batch, C, H, W] (batch symbolic)
    _, c, h, w = inp.shape
    image = Image.open(image_path).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32).reshape(h, w, c) / 255.0
    if c == 3:
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    else:
        mean, std = np.array([0.5]), np.array([0.5])
    x = ((x - mean) / std).astype(np.float32).transpose(2, 0, 1)[None]  # 1 x C x H x W
    (logits,) = session.run(["logits"], {inp.name: x})
    z = logits[0] - logits[0].max()
    p = np.exp(z) / np.exp(z).sum()
    for k in np.argsort(-p)[:5]:
        print(f"{k:5d}  {p[k]:.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
