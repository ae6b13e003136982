#!/usr/bin/env bash
# Installs what resnetc's libtorch runtime and its tests need, skipping what is present:
#  - a Python venv with PyTorch 2.11.0 (the libtorch tch 0.24 links against), torchvision
#    0.26 (parity tests) and safetensors, in $RESNETC_HOME (default ~/.cache/resnetc), kept
#    outside the checkout so every clone on the machine shares it;
#  - the `.libtorch` link that .cargo/config.toml points torch-sys at.
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

torch_dir="$("$venv/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
ln -sfn "$torch_dir" .libtorch
echo "== libtorch: $torch_dir"

./scripts/fetch-data.sh
