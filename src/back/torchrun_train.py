

# ---------------------------------------------------------------------------------------
# Training on torch.distributed: what `resnetc build SPEC --target torchrun` appends to the
# model above. Run it as one process or under torchrun:
#
#     python train.py --data fashion-mnist --out runs/r20
#     torchrun --nproc_per_node=8 train.py --data DIR --out runs/r50 --sync-bn
#     torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 \
#         --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 train.py --data DIR --out runs/r50
#
# The flags and defaults are `resnetc train`'s; `--batch-size` is the global batch, split
# evenly over the processes, so the same flags train the same network on any number of
# them (with `--sync-bn`, batch statistics span the global batch as in one process). The
# run folder holds what `resnetc train` writes: `metrics.csv` (same columns),
# `checkpoint.safetensors` (same layout: `model.*`, `momentum.*`, `run.*`; replaced
# atomically after every epoch), `weights.safetensors` (the state_dict, resnetc's names:
# `resnetc eval`, `resnetc run` and the generated Rust module load it as it is) and, when
# the `resnetc` executable is on PATH (or named by $RESNETC), `curves.png`/`curves.svg`.
# Needs `torch` and `safetensors`; image folders also need `torchvision`.

import argparse
import gzip
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

CSV_HEADER = "epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds"
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
CROP_PADDING = 4
# Bounds on what the data readers accept (as resnetc's readers).
MAX_IDX_BYTES = 1 << 32
MAX_IMAGE_PIXELS = 1 << 26


class RunError(Exception):
    """A problem with the run's inputs or folder: printed as one line, exit status 2."""


# --- Data sets ------------------------------------------------------------------------


class Dataset:
    """Images as uint8 [N, C, H, W] in memory, labels int64 [N], per-channel statistics."""

    def __init__(self, images, labels, classes, mean, std):
        self.images = images
        self.labels = labels
        self.classes = classes
        self.mean = mean
        self.std = std

    def __len__(self):
        return int(self.labels.shape[0])

    def limit(self, keep):
        """Keeps `keep` evenly spaced examples, as `resnetc train --limit-*`."""
        n = len(self)
        if keep is None or keep >= n:
            return self
        idx = torch.tensor([k * n // max(keep, 1) for k in range(keep)], dtype=torch.long)
        return Dataset(self.images[idx], self.labels[idx], self.classes, self.mean, self.std)


def data_root():
    home = os.environ.get("RESNETC_HOME")
    if not home:
        home = os.path.join(os.environ.get("HOME", "."), ".cache", "resnetc")
    return os.path.join(home, "data")


def read_idx(path, ndim):
    """An IDX file (raw or gzipped) of unsigned bytes with `ndim` dimensions, checked
    against its header: magic number, dimensions, and exactly the promised bytes."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4 + 4 * ndim)
            if len(head) < 4 + 4 * ndim:
                raise RunError(f"data file `{path}` is truncated: it ends inside its header")
            magic = struct.unpack(">I", head[:4])[0]
            if magic != 0x800 + ndim:
                raise RunError(
                    f"data file `{path}` is not an IDX file of {ndim}-d unsigned bytes "
                    f"(magic number {magic:#x}, expected {0x800 + ndim:#x})")
            dims = struct.unpack(">" + "I" * ndim, head[4:])
            size = math.prod(dims)
            if size == 0 or size > MAX_IDX_BYTES:
                raise RunError(f"data file `{path}` has an unusable IDX header: dimensions {dims}")
            data = f.read(size + 1)
    except OSError as e:
        raise RunError(f"cannot read data file `{path}`: {e}") from None
    if len(data) != size:
        what = "truncated" if len(data) < size else "corrupt (bytes follow its data)"
        raise RunError(f"data file `{path}` is {what}: its header promises {size} bytes")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(*dims)


def idx_file(folder, name):
    raw, gz = os.path.join(folder, name), os.path.join(folder, name + ".gz")
    return gz if not os.path.exists(raw) and os.path.exists(gz) else raw


def load_idx_pair(folder, split, classes, mean, std):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(idx_file(folder, f"{prefix}-images-idx3-ubyte"), 3)
    labels = read_idx(idx_file(folder, f"{prefix}-labels-idx1-ubyte"), 1).long()
    if images.shape[0] != labels.shape[0]:
        raise RunError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
    if int(labels.max()) >= len(classes):
        raise RunError(f"{folder}: a label is {int(labels.max())}, beyond the {len(classes)} classes")
    return Dataset(images.unsqueeze(1), labels, classes, [mean], [std])


def list_classes(folder):
    """(class, sorted image files) for each subfolder with images, in name order."""
    try:
        subs = sorted(os.path.join(folder, s) for s in os.listdir(folder))
    except OSError as e:
        raise RunError(f"cannot list `{folder}`: {e}") from None
    classes = []
    for sub in subs:
        if not os.path.isdir(sub):
            continue
        files = sorted(
            os.path.join(sub, f) for f in os.listdir(sub)
            if f.lower().endswith((".png", ".jpg", ".jpeg")) and os.path.isfile(os.path.join(sub, f)))
        if files:
            classes.append((os.path.basename(sub), files))
    if not classes:
        raise RunError(f"`{folder}` has no class folders with .png or .jpg images")
    return classes


def load_image(path, size, channels):
    """One image as uint8 [channels, H, W] by resnetc's evaluation recipe: decoded by
    torchvision, the shorter side resized to min(H, W) * 256 / 224 by torch's antialiased
    bilinear filter, the center crop (a pixel may differ from resnetc's by a level), grey by
    ITU-R BT.601 luma."""
    try:
        from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:
        raise RunError("image folders need torchvision (pip install torchvision)") from None
    try:
        rgb = decode_image(read_file(path), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError) as e:
        raise RunError(f"cannot decode image `{path}`: {e}") from None
    if rgb.shape[1] * rgb.shape[2] > MAX_IMAGE_PIXELS:
        raise RunError(f"image `{path}` is {rgb.shape[2]}x{rgb.shape[1]}, too large")
    x = rgb.float()
    h, w = size
    short = round(min(h, w) * 256 / 224)
    ih, iw = x.shape[1], x.shape[2]
    rh, rw = (int(short * ih / iw), short) if iw <= ih else (short, int(short * iw / ih))
    if (rh, rw) != (ih, iw):
        x = F.interpolate(x[None], size=(rh, rw), mode="bilinear", align_corners=False,
                          antialias=True)[0]
    top, left = round((rh - h) / 2), round((rw - w) / 2)
    x = x[:, top:top + h, left:left + w]
    if channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        x = (x * w).sum(0, keepdim=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def load_folder(folder, split, limit, size, channels):
    train_dir = os.path.join(folder, "train")
    test_dir = next((p for p in (os.path.join(folder, t) for t in ("test", "val"))
                     if os.path.isdir(p)), None)
    if os.path.isdir(train_dir) and test_dir:
        train, test = list_classes(train_dir), list_classes(test_dir)
        if [n for n, _ in train] != [n for n, _ in test]:
            raise RunError(f"`{folder}`: train and test hold different classes")
        files = train if split == "train" else test
    else:
        files = [(n, [f for i, f in enumerate(fs) if (i % 10 == 9) == (split == "test")])
                 for n, fs in list_classes(folder)]
    entries = [(f, label) for label, (_, fs) in enumerate(files) for f in fs]
    if limit is not None and limit < len(entries):
        entries = [entries[k * len(entries) // max(limit, 1)] for k in range(limit)]
    channels = 1 if channels == 1 else 3
    images = torch.stack([load_image(f, size, channels) for f, _ in entries])
    labels = torch.tensor([label for _, label in entries], dtype=torch.long)
    mean, std = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if channels == 3 else ([0.5], [0.5])
    return Dataset(images, labels, [n for n, _ in files], mean, std)


def load_split(data, split, limit, size, channels):
    if data in ("fashion-mnist", "fashion_mnist", "fmnist"):
        d = load_idx_pair(os.path.join(data_root(), "fashion-mnist"), split,
                          FASHION_MNIST_CLASSES, 0.2860406, 0.3530242)
    elif data == "mnist":
        d = load_idx_pair(os.path.join(data_root(), "mnist"), split,
                          [str(i) for i in range(10)], 0.1306605, 0.3081078)
    else:
        return load_folder(data, split, limit, size, channels)
    return d.limit(limit)


# --- Batches --------------------------------------------------------------------------


def stream_seed(seed, *parts):
    """A 63-bit seed for one random stream of the run (splitmix64 over the parts)."""
    x = seed & (2**64 - 1)
    for p in parts:
        x = (x ^ (p + 0x9E3779B97F4A7C15)) & (2**64 - 1)
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        x ^= x >> 31
    return x >> 1


def augmentation(n, augment, seed, epoch):
    """Per-example crop shifts and flips of one epoch, drawn for the whole data set at
    once, so an example gets the same ones whichever process trains on it."""
    g = torch.Generator().manual_seed(stream_seed(seed, 2, epoch))
    shifts = torch.randint(-CROP_PADDING, CROP_PADDING + 1, (n, 2), generator=g)
    flips = torch.rand(n, generator=g) < 0.5
    if "crop" not in augment:
        shifts.zero_()
    if "flip" not in augment:
        flips.zero_()
    return shifts, flips


def make_batch(data, idx, aug, input_shape, device):
    """Gathers, augments and normalizes examples `idx`, then moves them to the device and
    resizes them to the model's input, in resnetc's order."""
    x = data.images[idx]
    if aug is not None:
        shifts, flips = aug[0][idx], aug[1][idx]
        p = CROP_PADDING
        padded = F.pad(x, [p, p, p, p])
        h, w = x.shape[2], x.shape[3]
        x = torch.stack([
            padded[k, :, p - int(dy):p - int(dy) + h, p - int(dx):p - int(dx) + w]
            for k, (dy, dx) in enumerate(shifts.tolist())])
        x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
    c = x.shape[1]
    # Per channel, the last statistic repeating for channels beyond the list (as resnetc).
    mean = torch.tensor([data.mean[min(i, len(data.mean) - 1)] for i in range(c)]).view(1, c, 1, 1)
    std = torch.tensor([data.std[min(i, len(data.std) - 1)] for i in range(c)]).view(1, c, 1, 1)
    x = ((x.to(torch.get_default_dtype()) / 255.0 - mean) / std).to(device)
    ch, h, w = input_shape
    if tuple(x.shape[2:]) != (h, w):
        down = h < x.shape[2] or w < x.shape[3]
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=down)
    if c == 1 and ch != 1:
        x = x.expand(-1, ch, -1, -1).contiguous()
    elif c != ch:
        x = x.mean(1, keepdim=True).expand(-1, ch, -1, -1).contiguous()
    return x, data.labels[idx].to(device)


# --- Batch statistics over all processes ------------------------------------------------


class DistBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every process's batch, on any device and
    backend (gloo included; `nn.SyncBatchNorm` takes CUDA only). The statistics are
    all-reduced through autograd (one collective forward, one backward), so gradients flow
    across processes as in one batch."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce
        c = x.shape[1]
        # One all-reduce of each process's count, mean and variance (each computed in two
        # passes over its own batch), combined as in parallel variance: the global variance
        # is the mean of the variances plus the variance of the means.
        n = float(x.numel() // c)
        mean_p = x.mean((0, 2, 3))
        var_p = x.var((0, 2, 3), unbiased=False)
        stats = all_reduce(torch.cat([mean_p * n, var_p * n, mean_p * mean_p * n, x.new_full((1,), n)]))
        count = stats[3 * c:]
        mean = stats[:c] / count
        var = ((stats[c:2 * c] + stats[2 * c:3 * c]) / count - mean * mean).clamp(min=0)
        centred = x - mean.view(1, c, 1, 1)
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        with torch.no_grad():
            n = count.item()
            self.running_mean.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
            unbiased = var.detach() * (n / max(n - 1, 1))
            self.running_var.mul_(1 - self.momentum).add_(unbiased, alpha=self.momentum)
            self.num_batches_tracked.add_(1)
        return y


def sync_batch_norm(module, device):
    """`module` with every BatchNorm2d synchronized: nn.SyncBatchNorm on CUDA,
    DistBatchNorm2d elsewhere (same parameters and buffers, same state_dict names)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            bn = DistBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum)
            bn.load_state_dict(child.state_dict())
            setattr(module, name, bn.to(child.weight.device))
        else:
            sync_batch_norm(child, device)
    return module


class Logits(nn.Module):
    """The model's pre-softmax output, what the loss takes."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.logits(x) if hasattr(self.net, "logits") else self.net(x)


# --- Run files ------------------------------------------------------------------------


def atomic_write(path, write):
    """Calls write(tmp) on a temporary file beside `path`, then renames it over `path`: a
    reader (or a killed run) sees the old file or the new one, never half of one."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def csv_text(history):
    lines = [CSV_HEADER]
    for m in history:
        lines.append(f"{int(m[0])},{m[1]:.6f},{m[2]:.6f},{m[3]:.6f},{m[4]:.1f},{m[5]:.2f}")
    return "\n".join(lines) + "\n"


def write_text(path, text):
    def w(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, w)


def save_tensors(path, tensors):
    from safetensors.torch import save_file
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, tmp))


def momentum_name(name):
    return "momentum." + name


def save_checkpoint(path, model, opt, names, epoch, seed, history, config):
    t = {"model." + k: v for k, v in model.state_dict().items()}
    for name, p in names:
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            t[momentum_name(name)] = buf
    t["run.epoch"] = torch.tensor([epoch], dtype=torch.int64)
    t["run.seed"] = torch.tensor([seed & (2**63 - 1)], dtype=torch.int64)
    t["run.history"] = torch.tensor(history, dtype=torch.float64).view(len(history), 6)
    t["run.config"] = torch.tensor(list(config.encode()), dtype=torch.uint8)
    save_tensors(path, t)


def load_checkpoint(path, model, opt, names, config):
    """Restores the model and the momentum buffers; returns (epoch, history)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        t = load_file(path)
    except (SafetensorError, OSError) as e:
        raise RunError(f"checkpoint `{path}` is unreadable: {e}") from None
    for key in ("run.epoch", "run.history", "run.config"):
        if key not in t:
            raise RunError(f"checkpoint `{path}` lacks `{key}`: not a training checkpoint")
    saved = json.loads(bytes(t["run.config"].tolist()).decode())
    now = json.loads(config)
    diffs = [f"{k}: {saved.get(k)!r} then, {now[k]!r} now" for k in now
             if k not in ("epochs", "device") and saved.get(k) != now[k]]
    if diffs:
        raise RunError(f"checkpoint `{path}` belongs to another run ({'; '.join(diffs)}); "
                       "use another --out or the same settings")
    state = {k[len("model."):]: v for k, v in t.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RunError(f"checkpoint `{path}` does not fit the model: {e}") from None
    for name, p in names:
        key = momentum_name(name)
        if key in t:
            opt.state[p]["momentum_buffer"] = t[key].to(p.device, p.dtype)
        elif opt.defaults["momentum"] != 0:
            raise RunError(f"checkpoint `{path}` lacks `{key}`")
    epoch = int(t["run.epoch"][0])
    history = t["run.history"].tolist()
    return epoch, [list(r) for r in history]


def draw_curves(out):
    """curves.png and curves.svg from metrics.csv, by `resnetc curves` when at hand."""
    exe = os.environ.get("RESNETC") or shutil.which("resnetc")
    if not exe:
        return False
    r = subprocess.run([exe, "curves", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        print(f"warning: `resnetc curves {out}` failed: {r.stderr.strip()}", file=sys.stderr)
    return r.returncode == 0


# --- Training -------------------------------------------------------------------------


def learning_rate(schedule, base, step, steps_per_epoch, epochs):
    """`resnetc train`'s schedules (src/train/schedule.rs)."""
    total = max(steps_per_epoch * epochs, 1)
    if schedule == "step":
        epoch = step // max(steps_per_epoch, 1)
        drops = sum(1 for m in (epochs // 2, epochs * 3 // 4) if m > 0 and epoch >= m)
        return base * 0.1 ** drops
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return base


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=f"Train {MODEL_CLASS.__name__} (generated by resnetc) in one process or "
        "under torchrun. Flags and defaults are `resnetc train`'s.")
    p.add_argument("--data", required=True, metavar="fashion-mnist|mnist|DIR")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128,
                   help="global batch, split evenly over the processes")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=["constant", "step", "cosine"], default="constant")
    p.add_argument("--resize", type=int, metavar="N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--limit-train", type=int, metavar="N")
    p.add_argument("--limit-test", type=int, metavar="N")
    p.add_argument("--augment", default="none", metavar="LIST", help="none, crop, flip or crop,flip")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per process (default: cores / local processes)")
    p.add_argument("--sync-bn", action="store_true",
                   help="batch-norm statistics over the global batch (all processes)")
    p.add_argument("--float64", action="store_true",
                   help="train in float64 (slow): to check that runs on different numbers of "
                   "processes compute the same network, free of float32 rounding")
    p.add_argument("--backend", choices=["gloo", "nccl"],
                   help="torch.distributed backend (default: nccl on CUDA, gloo otherwise)")
    args = p.parse_args(argv)
    augment = set() if args.augment == "none" else set(args.augment.split(","))
    if not augment <= {"crop", "flip"}:
        p.error(f"--augment: expected none, crop, flip or crop,flip, found `{args.augment}` "
                "(RandomResizedCrop is resnetc train's only)")
    args.augment_set = augment
    if args.epochs < 1 or args.batch_size < 1:
        p.error("--epochs and --batch-size must be at least 1")
    return args


class Stopped(Exception):
    pass


def main(argv=None):
    args = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda":
        index = local_rank % max(torch.cuda.device_count(), 1) if device.index is None else device.index
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // local_world))
    ckpt_path = os.path.join(args.out, "checkpoint.safetensors")

    def stop(signum, frame):
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if world > 1:
            dist.init_process_group(args.backend or ("nccl" if device.type == "cuda" else "gloo"))
        return train(args, world, rank, device, ckpt_path)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (Stopped, RuntimeError, dist.DistBackendError) as e:
        if isinstance(e, Stopped):
            what = f"stopped by {e} (torchrun stops every process when one fails)"
        else:
            what = f"lost contact with the other processes ({e})"
        print(f"error: rank {rank}: {what}. {last_checkpoint(ckpt_path)}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                pass


def last_checkpoint(path):
    """Where a stopped run can continue from, in words."""
    if not os.path.exists(path):
        return "No checkpoint yet: rerun without --resume to start again."
    try:
        from safetensors import safe_open
        with safe_open(path, "pt") as f:
            epoch = int(f.get_tensor("run.epoch")[0])
        return (f"The last complete checkpoint is `{path}` (epoch {epoch}); "
                "rerun with --resume to continue from it.")
    except Exception as e:  # A damaged file is reported, not raised over the first error.
        return f"The checkpoint `{path}` is unreadable ({e})."


def train(args, world, rank, device, ckpt_path):
    lead = rank == 0
    if args.batch_size % world != 0:
        raise RunError(f"--batch-size {args.batch_size} does not split evenly over {world} processes")
    per_rank = args.batch_size // world
    c, h, w = INPUT_SHAPE
    if args.resize:
        h = w = args.resize
    input_shape = (c, h, w)
    train_set = load_split(args.data, "train", args.limit_train, (h, w), c)
    test_set = load_split(args.data, "test", args.limit_test, (h, w), c)
    if len(train_set) == 0 or len(test_set) == 0:
        raise RunError(f"nothing to train on: {len(train_set)} training and {len(test_set)} test examples")
    classes = len(train_set.classes)

    files = {n: os.path.join(args.out, n) for n in
             ("metrics.csv", "checkpoint.safetensors", "weights.safetensors")}
    os.makedirs(args.out, exist_ok=True)
    if not args.resume and any(os.path.exists(f) for f in files.values()):
        raise RunError(f"`{args.out}` already holds a run: pass --resume to continue it, or another --out")

    if args.float64:
        torch.set_default_dtype(torch.float64)
    torch.manual_seed(stream_seed(args.seed, 0))
    model = MODEL_CLASS(num_classes=classes)
    model.to(device)
    if args.sync_bn and world > 1:
        model = sync_batch_norm(model, device)
    config = json.dumps({
        "model": MODEL_CLASS.__name__, "data": args.data, "input": list(input_shape),
        "classes": classes, "train_examples": len(train_set), "test_examples": len(test_set),
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "momentum": args.momentum, "weight_decay": args.weight_decay, "schedule": args.schedule,
        "seed": args.seed, "augment": ",".join(sorted(args.augment_set)) or "none",
        "device": str(device.type), "processes": world, "sync_bn": args.sync_bn,
        "float64": args.float64,
    }, sort_keys=True)
    names = sorted((n, p) for n, p in model.named_parameters() if p.requires_grad)
    opt = torch.optim.SGD([p for _, p in names], lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    history, start = [], 0
    if args.resume and os.path.exists(ckpt_path):
        start, history = load_checkpoint(ckpt_path, model, opt, names, config)
        if lead:
            print(f"resuming {args.out} at epoch {start + 1} of {args.epochs}", flush=True)
    elif args.resume and lead:
        print(f"no checkpoint in {args.out}: starting a new run", flush=True)
    net = Logits(model)
    ddp = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else net

    sampler = torch.utils.data.DistributedSampler(
        range(len(train_set)), num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    steps = math.ceil(len(sampler) / per_rank)
    test_idx = torch.arange(rank, len(test_set), world)
    drew = None
    for epoch in range(start, args.epochs):
        started = time.perf_counter()
        torch.manual_seed(stream_seed(args.seed, 1, epoch, rank))
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long)
        aug = augmentation(len(train_set), args.augment_set, args.seed, epoch) \
            if args.augment_set else None
        ddp.train()
        sums = torch.zeros(3, dtype=torch.float64)
        train_time = 0.0
        bar = progress(lead, steps, epoch + 1, args.epochs)
        for step in range(steps):
            t0 = time.perf_counter()
            idx = order[step * per_rank:(step + 1) * per_rank]
            x, y = make_batch(train_set, idx, aug, input_shape, device)
            lr = learning_rate(args.schedule, args.lr, epoch * steps + step, steps, args.epochs)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = ddp(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = y.shape[0]
            sums += torch.tensor([loss.item() * n, float((logits.argmax(-1) == y).sum()), n],
                                 dtype=torch.float64)
            train_time += time.perf_counter() - t0
            bar(step + 1, sums)
        if world > 1:
            # Every process tests with the same statistics: rank 0's (identical with --sync-bn).
            for b in model.buffers():
                dist.broadcast(b, 0)
            dist.all_reduce(sums)
            train_times = torch.tensor([train_time], dtype=torch.float64)
            dist.all_reduce(train_times, op=dist.ReduceOp.MAX)
            train_time = float(train_times[0])
        correct = evaluate(model, test_set, test_idx, per_rank, input_shape, device, world)
        history.append([epoch + 1, sums[0].item() / sums[2].item(), sums[1].item() / sums[2].item(),
                        correct / len(test_set), sums[2].item() / max(train_time, 1e-9),
                        time.perf_counter() - started])
        if lead:
            # Checkpoint first: it is what --resume reads.
            save_checkpoint(ckpt_path, model, opt, names, epoch + 1, args.seed, history, config)
            write_text(files["metrics.csv"], csv_text(history))
            drew = draw_curves(args.out)
            m = history[-1]
            print(f"epoch {epoch + 1}/{args.epochs}: loss {m[1]:.4f}, train acc {m[2]:.4f}, "
                  f"test acc {m[3]:.4f}, {m[4]:.1f} examples/s, {m[5]:.1f} s", flush=True)
        if world > 1:
            dist.barrier()
    if lead:
        if start >= args.epochs:
            write_text(files["metrics.csv"], csv_text(history))
            drew = draw_curves(args.out)
        # float32, as resnetc reads weights (the checkpoint keeps --float64's precision).
        save_tensors(files["weights.safetensors"],
                     {k: v.float() if v.is_floating_point() else v
                      for k, v in model.state_dict().items()})
        if history:
            correct = round(history[-1][3] * len(test_set))
            print(f"test accuracy {history[-1][3]:.4f} ({correct} of {len(test_set)} "
                  f"{args.data} test images, {MODEL_CLASS.__name__} on {world} process(es))")
        if not drew:
            print(f"curves: `resnetc curves {args.out}` draws them from metrics.csv")
        print(f"wrote {files['weights.safetensors']}")
    if world > 1:
        # Leave together: a process that tears its connections down while another still
        # writes can abort in gloo's shutdown.
        dist.barrier()
    return 0


@torch.no_grad()
def evaluate(model, data, idx, batch, input_shape, device, world):
    """Correct predictions over the whole test set, each process testing its share."""
    model.eval()
    correct = torch.zeros(1, dtype=torch.float64)
    for s in range(0, len(idx), batch):
        x, y = make_batch(data, idx[s:s + batch], None, input_shape, device)
        out = model.logits(x) if hasattr(model, "logits") else model(x)
        correct += float((out.argmax(-1) == y).sum())
    if world > 1:
        dist.all_reduce(correct)
    return int(correct[0])


def progress(show, steps, epoch, epochs):
    """A progress bar on rank 0 (tqdm when installed and stderr is a terminal)."""
    if not show or not sys.stderr.isatty():
        return lambda step, sums: None
    try:
        from tqdm import tqdm
    except ImportError:
        def plain(step, sums):
            print(f"\repoch {epoch}/{epochs} {step}/{steps} loss {sums[0] / sums[2]:.4f}",
                  end="\n" if step == steps else "", file=sys.stderr, flush=True)
        return plain
    bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False)

    def update(step, sums):
        bar.update(1)
        bar.set_postfix_str(f"loss {sums[0] / sums[2]:.4f} acc {sums[1] / sums[2]:.3f}")
        if step == steps:
            bar.close()
    return update


if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, leave without the interpreter's teardown: destructors of
        # libtorch's and gloo's threads can abort a process whose work is done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
