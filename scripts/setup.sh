#!/usr/bin/env bash
# Installs what resnetc's libtorch runtime and its tests need, skipping what is present:
#  - a Python venv with PyTorch 2.11.0 (the libtorch tch 0.24 links against), torchvision
#    0.26 (parity tests) and safetensors, in $RESNETC_HOME (default ~/.cache/resnetc), kept
#    outside the checkout so every clone on the machine shares it; timm 1.0.31 and Keras
#    3.15.1 beside them (the zoo's golden numbers, tests/zoo.rs); onnx 1.23.2 and onnxruntime
#    1.32.0 (tests/onnx.rs);
#  - the `.libtorch` link that .cargo/config.toml points torch-sys at;
#  - Debian's `chromium`, in which tests/browser.rs opens the HTML page of
#    `resnetc graph --format html` (driven over the DevTools protocol on a pipe, so no
#    chromedriver and no Python package is needed).
set -euo pipefail
cd "$(dirname "$0")/.."

home="${RESNETC_HOME:-$HOME/.cache/resnetc}"
venv="$home/venv"
mkdir -p "$home"

if ! "$venv/bin/python" -c 'import torch, torchvision, safetensors; assert torch.__version__.startswith("2.11.0")' 2>/dev/null; then
    echo "== installing PyTorch 2.11.0 into $venv (about 4.8 GB, a few minutes)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        torch==2.11.0 torchvision==0.26.0 safetensors==0.8.0 numpy
fi

# The CUDA runtime's compiler headers (`crt/`, 134 kB), which libtorch's CUDA headers include
# and the torch wheel does not pull in: build.rs compiles the CUDA graph shim
# (csrc/cuda_graph.cpp) against them. Without them that one speed-up is left out.
if "$venv/bin/python" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null \
    && ! "$venv/bin/python" -c 'import nvidia, os, sys; sys.exit(0 if any(os.path.exists(os.path.join(p, "cu13/include/crt/host_config.h")) for p in nvidia.__path__) else 1)' 2>/dev/null; then
    echo "== installing the CUDA 13.0 crt headers into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps nvidia-cuda-crt==13.0.88
fi

# timm and Keras 3, the peers the zoo's golden numbers come from (scripts/zoo_reference.py,
# tests/zoo.rs), beside torch without a second one: --no-deps, their small dependencies pinned
# (filelock, fsspec and typing_extensions come with torch).
if ! KERAS_BACKEND=torch "$venv/bin/python" -c 'import timm, keras; assert timm.__version__ == "1.0.31" and keras.__version__ == "3.15.1"' >/dev/null 2>&1; then
    echo "== installing timm 1.0.31 and Keras 3.15.1 into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        timm==1.0.31 keras==3.15.1 huggingface_hub==2.4.0 PyYAML==6.0.4 namex==0.1.0 optree==0.20.0 \
        rich==15.0.0 h5py==3.16.0 ml_dtypes==0.6.0 packaging==26.4 absl-py==2.5.1 markdown-it-py==4.3.0 \
        mdurl==0.1.2 Pygments==2.21.0 tqdm==4.70.1 requests==2.34.2 charset-normalizer==3.5.3 idna==3.20 \
        urllib3==2.8.0 certifi==2026.10.19.post1
fi

# onnx and ONNX Runtime, the oracle of `resnetc export --format onnx` (tests/onnx.rs,
# scripts/onnx_check.py), beside torch and numpy without pulling others: --no-deps, their
# dependencies pinned (numpy, packaging, sympy, ml_dtypes, typing_extensions are there already).
if ! "$venv/bin/python" -c 'import onnx, onnxruntime; assert onnx.__version__ == "1.23.2" and onnxruntime.__version__ == "1.32.0"' >/dev/null 2>&1; then
    echo "== installing onnx 1.23.2 and onnxruntime 1.32.0 into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        onnx==1.23.2 onnxruntime==1.32.0 protobuf==7.36.2 flatbuffers==25.12.19
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Debian's chromium (tests/browser.rs)"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

torch_dir="$("$venv/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
ln -sfn "$torch_dir" .libtorch
echo "== libtorch: $torch_dir"

./scripts/fetch-data.sh
