#!/usr/bin/env python3
"""Golden numbers of the ResNet zoo, measured on the live models.

For timm's resnet10t, resnet18d, resnet26d, resnet34d, resnet50c, resnet50d, resnet50s,
seresnet50, resnetrs50, resnet50_gn, ecaresnet50d, resnetblur50 and resnetaa50
(`timm.create_model(name, pretrained=False)`), Keras Applications' ResNet50, ResNet101,
ResNet152, ResNet50V2, ResNet101V2 and ResNet152V2 (`keras.applications.X(weights=None)`,
KERAS_BACKEND=torch) and torchvision's resnet50 with
`replace_stride_with_dilation=[False, True, True]` as a feature extractor returning layer3
and layer4 (`IntermediateLayerGetter`, as DeepLab uses it; file `resnet50-os8`), this
script writes one JSON file per model, `OUT/<source>/<name>.json` (sorted keys, indent 1):

- `params.trainable`, `params.non_trainable`: for torch models the non-trainable count is
  the BN running statistics (running_mean + running_var; `num_batches_tracked` excluded;
  non-persistent buffers such as BlurPool2d's filter excluded); for Keras it is Keras's
  own non-trainable count (BN moving mean and variance).
- `inputs.<CxHxW>`: for the default input (`default_input`, with `default_input_from`
  saying where it comes from: timm's `pretrained_cfg["input_size"]`, Keras's default
  224x224, torchvision's 224x224) and for 3x160x160 (and 3x224x224 too when the default is
  something else): `macs` (Conv2d: output elements * in_ch/groups * kh * kw; Conv1d the
  same with k; Linear / Dense: in * out, per sample; biases, BN, pools and activations
  not counted), `macs_by_class`, `blur_macs` (BlurPool2d's fixed depthwise filter applied
  with F.conv2d, invisible to module hooks, computed analytically as C * Ho * Wo * k * k
  from the module's input shape) and `output_shape` (batch 1; a dict for the feature
  extractor). `flop_counter_macs` is torch.utils.flop_counter's total / 2 for the same
  forward pass; the script asserts it equals macs + blur_macs.
- `modules` (torch): every module with its own parameters, in `named_modules` order:
  `name` (the state_dict prefix), `class`, `params`, `non_trainable` (own BN statistics),
  `parameters` / `buffers` (name -> shape, persistent buffers only, without
  num_batches_tracked), `config` (kernel, stride, padding, dilation, groups, bias, eps,
  ...), and per input `output_shape` and `macs` (forward hooks, batch 1, NCHW).
  `pool_modules`: the same for parameterless modules whose class name contains "Pool"
  (MaxPool2d, AvgPool2d, BlurPool2d, the head's pool), with `blur_macs` for BlurPool2d.
- `layers` (Keras): every layer with weights: `name`, `class`, `trainable`,
  `non_trainable`, `weights` (path, shape, trainable), `config`, per input
  `output_shape` (NHWC, batch 1) and `macs`; `pool_layers` for pooling and padding layers.
- `versions`: torch, torchvision, timm, keras.

Everything is counted, nothing is random: the numbers do not depend on the weights (the
forward passes run on zeros, batch 1, eval mode, no_grad, one thread).

Usage:
    ~/.cache/resnetc/venv/bin/python scripts/zoo_reference.py --out tests/zoo/reference [NAME ...]
NAME is a model name as above (e.g. resnet50d, ResNet50V2, resnet50-os8); default: all.

Environment (torch 2.11.0, torchvision 0.26.0 come from scripts/setup.sh); timm and keras
were added to resnetc's venv without a second torch by:
    ~/.cache/resnetc/venv/bin/pip install --no-deps timm==1.0.31 keras==3.15.1 \\
        huggingface_hub pyyaml namex optree rich h5py ml-dtypes packaging absl-py \\
        markdown-it-py mdurl pygments tqdm requests charset-normalizer idna urllib3 certifi
(`pip check` then lists huggingface_hub's optional network deps, unused here; importing
timm prints a harmless "Error importing huggingface_hub.hf_api" line.)
"""

import argparse
import json
import math
import os
import sys

_backend = os.environ.setdefault("KERAS_BACKEND", "torch")
if _backend != "torch":
    sys.exit(f"zoo_reference.py: KERAS_BACKEND must be torch (is {_backend!r})")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

TIMM_MODELS = [
    "resnet10t", "resnet18d", "resnet26d", "resnet34d", "resnet50c", "resnet50d",
    "resnet50s", "seresnet50", "resnetrs50", "resnet50_gn", "ecaresnet50d",
    "resnetblur50", "resnetaa50",
]
KERAS_MODELS = ["ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2"]
TORCHVISION_MODELS = ["resnet50-os8"]
EXTRA_INPUT = (3, 160, 160)
STD_INPUT = (3, 224, 224)


def tag(chw):
    return "x".join(str(d) for d in chw)


def input_list(default):
    out = [tuple(default)]
    for s in (STD_INPUT, EXTRA_INPUT):
        if s not in out:
            out.append(s)
    return out


def versions():
    v = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    try:
        import timm
        v["timm"] = timm.__version__
    except ImportError:
        v["timm"] = None
    try:
        import keras
        v["keras"] = keras.__version__
    except ImportError:
        v["keras"] = None
    return v


# ---------------------------------------------------------------- torch models

def _pair(x):
    return list(x) if isinstance(x, (tuple, list)) else x


def torch_config(m):
    c = {}
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        c = dict(in_channels=m.in_channels, out_channels=m.out_channels,
                 kernel_size=_pair(m.kernel_size), stride=_pair(m.stride),
                 padding=_pair(m.padding), dilation=_pair(m.dilation), groups=m.groups,
                 bias=m.bias is not None, padding_mode=m.padding_mode)
    elif isinstance(m, nn.Linear):
        c = dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        c = dict(num_features=m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                 track_running_stats=m.track_running_stats)
    elif isinstance(m, nn.GroupNorm):
        c = dict(num_groups=m.num_groups, num_channels=m.num_channels, eps=m.eps, affine=m.affine)
    elif isinstance(m, nn.MaxPool2d):
        c = dict(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding),
                 dilation=_pair(m.dilation), ceil_mode=m.ceil_mode)
    elif isinstance(m, nn.AvgPool2d):
        c = dict(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding),
                 ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad)
    elif type(m).__name__ == "BlurPool2d":
        c = dict(channels=m.channels, filt_size=m.filt_size, stride=m.stride, pad_mode=m.pad_mode,
                 padding=list(m.padding))
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        c = dict(output_size=_pair(m.output_size))
    elif type(m).__name__ == "SelectAdaptivePool2d":
        c = dict(pool_type=m.pool_type, flatten=not isinstance(m.flatten, nn.Identity))
    return c


def own_counts(m):
    params = {n: list(p.shape) for n, p in m.named_parameters(recurse=False)}
    buffers = {n: list(b.shape) for n, b in m.named_buffers(recurse=False)
               if n not in m._non_persistent_buffers_set and n != "num_batches_tracked"}
    n_params = sum(p.numel() for p in m.parameters(recurse=False))
    n_buf = sum(math.prod(s) for s in buffers.values())
    return params, buffers, n_params, n_buf


def module_macs(m, inp, out):
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        per_out = (m.in_channels // m.groups) * math.prod(m.kernel_size)
        return out.numel() // out.shape[0] * per_out
    if isinstance(m, nn.Linear):
        return out.numel() // out.shape[0] * m.in_features
    return 0


def blur_macs(m, inp):
    """BlurPool2d: F.pad(reflect, p on each side) then a depthwise k x k conv, stride s."""
    _, c, h, w = inp.shape
    k, s = m.filt_size, m.stride
    pl, pr, pt, pb = m.padding
    ho = (h + pt + pb - k) // s + 1
    wo = (w + pl + pr - k) // s + 1
    return c * ho * wo * k * k, [1, c, ho, wo]


def shape_of(out):
    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, dict):
        return {k: shape_of(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return [shape_of(v) for v in out]
    raise TypeError(type(out))


def measure_torch(model, inputs):
    model.eval()
    records, pools = [], []
    rec_of = {}
    for name, m in model.named_modules():
        params, buffers, n_params, n_buf = own_counts(m)
        if n_params:
            r = dict(name=name, **{"class": type(m).__name__}, params=n_params,
                     non_trainable=n_buf, parameters=params, buffers=buffers,
                     config=torch_config(m), output_shape={}, macs={})
            records.append(r)
            rec_of[name] = (m, r, False)
        elif "Pool" in type(m).__name__:
            r = dict(name=name, **{"class": type(m).__name__}, config=torch_config(m),
                     output_shape={})
            if type(m).__name__ == "BlurPool2d":
                r["blur_macs"] = {}
            pools.append(r)
            rec_of[name] = (m, r, True)

    per_input = {}
    for chw in inputs:
        t = tag(chw)
        seen = set()
        totals = {"macs": 0, "blur_macs": 0, "by_class": {}}
        hooks = []

        def make_hook(name, r, is_pool):
            def hook(m, inp, out):
                assert name not in seen, f"{name} called twice"
                seen.add(name)
                r["output_shape"][t] = shape_of(out)
                if is_pool:
                    if "blur_macs" in r:
                        b, shp = blur_macs(m, inp[0])
                        assert shp == list(out.shape), (name, shp, list(out.shape))
                        r["blur_macs"][t] = b
                        totals["blur_macs"] += b
                else:
                    mc = module_macs(m, inp[0], out)
                    r["macs"][t] = mc
                    totals["macs"] += mc
                    if mc:
                        cls = type(m).__name__
                        totals["by_class"][cls] = totals["by_class"].get(cls, 0) + mc
            return hook

        for name, (m, r, is_pool) in rec_of.items():
            hooks.append(m.register_forward_hook(make_hook(name, r, is_pool)))
        x = torch.zeros((1,) + tuple(chw))
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            out = model(x)
        for h in hooks:
            h.remove()
        missing = set(rec_of) - seen
        assert not missing, f"modules not called: {sorted(missing)}"
        flops = fc.get_total_flops()
        assert flops % 2 == 0
        assert flops // 2 == totals["macs"] + totals["blur_macs"], (
            flops // 2, totals["macs"], totals["blur_macs"])
        per_input[t] = dict(macs=totals["macs"], blur_macs=totals["blur_macs"],
                            macs_by_class=totals["by_class"], flop_counter_macs=flops // 2,
                            output_shape=shape_of(out))

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(b.numel() for mn, m in model.named_modules()
                for n, b in m.named_buffers(recurse=False)
                if n not in m._non_persistent_buffers_set and n != "num_batches_tracked")
    sd_keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    return dict(
        params=dict(trainable=trainable, non_trainable=stats + frozen, total=trainable + stats + frozen,
                    non_trainable_is="BN running_mean + running_var (num_batches_tracked excluded)",
                    state_dict_tensors=len(sd_keys)),
        inputs=per_input, modules=records, pool_modules=pools,
    )


def timm_model(name):
    import timm
    model = timm.create_model(name, pretrained=False)
    cfg = model.pretrained_cfg
    default = tuple(cfg["input_size"])
    meta = dict(
        source="timm", name=name,
        constructor=f"timm.create_model({name!r}, pretrained=False)",
        default_input=list(default),
        default_input_from='timm pretrained_cfg["input_size"]',
        pretrained_cfg={k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()
                        if k in ("architecture", "tag", "input_size", "test_input_size",
                                 "pool_size", "crop_pct", "first_conv", "classifier", "num_classes")},
    )
    return model, default, meta


def torchvision_model(name):
    assert name == "resnet50-os8"
    from torchvision.models._utils import IntermediateLayerGetter
    backbone = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
    model = IntermediateLayerGetter(backbone, return_layers={"layer3": "layer3", "layer4": "layer4"})
    meta = dict(
        source="torchvision", name=name,
        constructor=("torchvision.models._utils.IntermediateLayerGetter("
                     "torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True]), "
                     "return_layers={'layer3': 'layer3', 'layer4': 'layer4'})"),
        default_input=list(STD_INPUT),
        default_input_from="torchvision ImageNet 224x224",
        returns=["layer3", "layer4"],
    )
    return model, STD_INPUT, meta


# ---------------------------------------------------------------- Keras models

def _b1(shape):
    return [1 if d is None else int(d) for d in shape]


def keras_config(layer):
    c = layer.get_config()
    keep = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "use_bias",
            "units", "epsilon", "momentum", "axis", "pool_size", "data_format", "center", "scale")
    out = {}
    for k in keep:
        if k in c:
            v = c[k]
            out[k] = list(v) if isinstance(v, tuple) else v
    return out


def keras_layer_macs(layer):
    cls = type(layer).__name__
    if cls == "Conv2D":
        o = _b1(layer.output.shape)
        cin = int(layer.input.shape[-1])
        assert layer.data_format == "channels_last"
        return math.prod(o[1:]) * (cin // layer.groups) * math.prod(layer.kernel_size)
    if cls == "Dense":
        return int(layer.input.shape[-1]) * layer.units
    assert not cls.startswith("Conv") and "Depthwise" not in cls and "Separable" not in cls, cls
    return 0


def keras_count(weights):
    return sum(math.prod(w.shape) for w in weights)


def measure_keras(name, inputs):
    import keras
    ctor = getattr(keras.applications, name)
    per_input, layers, pools = {}, None, None
    totals = {}
    for chw in inputs:
        t = tag(chw)
        kwargs = {} if tuple(chw) == STD_INPUT else {"input_shape": (chw[1], chw[2], chw[0])}
        model = ctor(weights=None, **kwargs)
        lrecs, precs = [], []
        macs, by_class = 0, {}
        for layer in model.layers:
            cls = type(layer).__name__
            if layer.weights:
                mc = keras_layer_macs(layer)
                macs += mc
                if mc:
                    by_class[cls] = by_class.get(cls, 0) + mc
                lrecs.append(dict(
                    name=layer.name, **{"class": cls},
                    trainable=keras_count(layer.trainable_weights),
                    non_trainable=keras_count(layer.non_trainable_weights),
                    weights=[dict(path=w.path, shape=list(w.shape), trainable=bool(w.trainable))
                             for w in layer.weights],
                    config=keras_config(layer),
                    output_shape={t: _b1(layer.output.shape)}, macs={t: mc}))
            elif "Pool" in cls or "Padding" in cls:
                precs.append(dict(name=layer.name, **{"class": cls}, config=keras_config(layer),
                                  output_shape={t: _b1(layer.output.shape)}))
        x = torch.zeros((1, chw[1], chw[2], chw[0]))
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            out = model(x, training=False)
        flops = fc.get_total_flops()
        assert flops % 2 == 0 and flops // 2 == macs, (flops // 2, macs)
        assert list(out.shape) == _b1(model.output.shape)
        per_input[t] = dict(macs=macs, blur_macs=0, macs_by_class=by_class,
                            flop_counter_macs=flops // 2, output_shape=list(out.shape))
        tc = keras_count(model.trainable_weights)
        nc = keras_count(model.non_trainable_weights)
        if not totals:
            totals = dict(trainable=tc, non_trainable=nc, total=tc + nc,
                          non_trainable_is="Keras non_trainable_weights (BN moving_mean + moving_variance)",
                          keras_count_params=model.count_params())
        assert totals["trainable"] == tc and totals["non_trainable"] == nc
        if layers is None:
            layers, pools = lrecs, precs
        else:
            assert [l["name"] for l in layers] == [l["name"] for l in lrecs]
            assert [p["name"] for p in pools] == [p["name"] for p in precs]
            for a, b in zip(layers, lrecs):
                a["output_shape"].update(b["output_shape"])
                a["macs"].update(b["macs"])
            for a, b in zip(pools, precs):
                a["output_shape"].update(b["output_shape"])
        del model
        keras.backend.clear_session()
    meta = dict(
        source="keras", name=name,
        constructor=f"keras.applications.{name}(weights=None)  # KERAS_BACKEND=torch",
        default_input=list(STD_INPUT),
        default_input_from="keras.applications default input_shape (224, 224, 3)",
        layout="NHWC (channels_last); shapes with batch 1",
    )
    return dict(meta, params=totals, inputs=per_input, layers=layers, pool_layers=pools)


# ---------------------------------------------------------------- driver

def build(name):
    if name in TIMM_MODELS:
        model, default, meta = timm_model(name)
    elif name in TORCHVISION_MODELS:
        model, default, meta = torchvision_model(name)
    else:
        return measure_keras(name, input_list(STD_INPUT))
    meta["layout"] = "NCHW; shapes with batch 1"
    return dict(meta, **measure_torch(model, input_list(default)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (files go to OUT/<source>/<name>.json)")
    ap.add_argument("names", nargs="*", help="models (default: all)")
    args = ap.parse_args()
    all_names = TIMM_MODELS + KERAS_MODELS + TORCHVISION_MODELS
    names = args.names or all_names
    bad = [n for n in names if n not in all_names]
    if bad:
        sys.exit(f"zoo_reference.py: unknown model(s) {bad}; known: {all_names}")
    torch.set_num_threads(1)
    vers = versions()
    for name in names:
        rec = build(name)
        rec["versions"] = vers
        d = os.path.join(args.out, rec["source"])
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name + ".json")
        with open(path, "w") as f:
            json.dump(rec, f, sort_keys=True, indent=1)
            f.write("\n")
        p = rec["params"]
        i = rec["inputs"][tag(rec["default_input"])]
        print(f"{path}: params {p['trainable']:,} non-trainable {p['non_trainable']:,} "
              f"MACs@{tag(rec['default_input'])} {i['macs']:,} blur {i['blur_macs']:,}", flush=True)


if __name__ == "__main__":
    main()
