#!/usr/bin/env python3
"""Top-5 classes of an image with a model written by `resnetc export --format onnx`.

Usage: python serve.py model.onnx image.jpg   (needs onnxruntime, numpy, pillow)

Preprocessing as `resnetc eval --data DIR` prepares image folders (torchvision's ImageNet
evaluation recipe): the shorter side resized to input * 256 / 224 with PIL's antialiased
bilinear filter, the center crop of the model's input size, scaled to [0, 1], normalized with
ImageNet's mean/std for 3 channels, 0.5/0.5 for grey models.
"""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def main(model_path, image_path):
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]  # `input`, [batch, C, H, W] (batch symbolic)
    _, c, h, w = inp.shape
    image = Image.open(image_path).convert("L" if c == 1 else "RGB")
    short = round(min(h, w) * 256 / 224)
    iw, ih = image.size
    size = (short, int(short * ih / iw)) if iw <= ih else (int(short * iw / ih), short)
    image = image.resize(size, Image.BILINEAR)
    left, top = round((size[0] - w) / 2), round((size[1] - h) / 2)
    image = image.crop((left, top, left + w, top + h))
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
