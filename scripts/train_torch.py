#!/usr/bin/python3
"""PyTorch peer of `tconv train`: the same convolutional auto-encoder trained the same way.

Same model (Conv 1->32 k4 s2 p1, ReLU, Conv 32->64 k4 s2 p1, ReLU, ConvTranspose 64->32 k4 s2 p1, ReLU,
ConvTranspose 32->1 k4 s2 p1, sigmoid), same loss (mean squared error over every pixel of the batch), same
optimizer (Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8), same batches (128, last partial batch kept), and the
same random numbers: weights and biases are drawn from the SplitMix64 generator of tools/tconv/train_rng.hpp
(U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default distribution, in PyTorch's tensor order) and each
epoch visits the images in the same Fisher-Yates order. Both programs therefore start from bit-identical
weights (compare the "init fingerprint" lines) and see identical batches.

Run with Debian's interpreter, which has torch 1.13:  /usr/bin/python3 scripts/train_torch.py --epochs 3
On a GPU (as `tconv train` picks the GPU when there is one):  python3 scripts/train_torch.py --device cuda
The data set lives on the device for the whole run and each step gathers its batch there, so the GPU timing
is the training's, not the host-to-device copies'. On CUDA, PyTorch's own defaults apply (cuDNN may use TF32
for the convolutions: torch.backends.cudnn.allow_tf32); --no-tf32 makes every convolution float32, as tconv's.
Prints one line per epoch and a final summary line; --json prints the summary as one JSON object instead.
python/tconv/train.py (`python -m tconv.train`, also data-parallel) carries copies of this file's definitions
(SplitMix64 to fingerprint); python/tests/test_distributed.py checks that they stay identical.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

MASK64 = (1 << 64) - 1


class SplitMix64:
    """Bit-identical to tconv::cli::train::SplitMix64 (tools/tconv/train_rng.hpp)."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform_symmetric(self, count, bound):
        # u = (next >> 40) * 2^-24; value = (2u - 1) * bound in double, rounded once to float32.
        u = np.array([self.next() >> 40 for _ in range(count)], dtype=np.float64) * (1.0 / 16777216.0)
        return ((2.0 * u - 1.0) * bound).astype(np.float32)


def epoch_permutation(seed, epoch, count):
    rng = SplitMix64(seed ^ ((0xD1B54A32D192ED03 * (epoch + 1)) & MASK64))
    p = list(range(count))
    for i in range(count - 1, 0, -1):
        j = rng.next() % (i + 1)
        p[i], p[j] = p[j], p[i]
    return np.array(p, dtype=np.int64)


def read_idx(path, dims):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x800 + dims:
        sys.exit(f"train_torch.py: '{path}' has IDX magic {magic:#010x}, expected {0x800 + dims:#010x}")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims, count=int(np.prod(shape))).reshape(shape)


def load_split(data_dir, split, limit):
    stem = os.path.join(data_dir, f"{split}-images-idx3-ubyte")
    path = stem + ".gz" if os.path.exists(stem + ".gz") else stem
    if not os.path.exists(path):
        sys.exit(f"train_torch.py: cannot find '{stem}.gz' (install dataset-fashion-mnist or pass --data DIR)")
    images = read_idx(path, 3)
    if limit > 0:
        images = images[:limit]
    # byte / 255 in float32, as tconv does.
    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1).contiguous()


def make_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 4, 2, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 4, 2, 1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(64, 32, 4, 2, 1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(32, 1, 4, 2, 1), torch.nn.Sigmoid())


def init_model(model, seed):
    """Draws every layer's weight then bias, layer by layer, in PyTorch's C order of each tensor."""
    rng = SplitMix64(seed)
    for layer in model:
        if not isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            continue
        w = layer.weight
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]  # torch.nn.init._calculate_fan_in_and_fan_out
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            w.copy_(torch.from_numpy(rng.uniform_symmetric(w.numel(), bound).reshape(w.shape)))
            layer.bias.copy_(torch.from_numpy(rng.uniform_symmetric(layer.bias.numel(), bound)))


def fingerprint(model):
    """FNV-1a (64-bit) over the float32 bytes of every parameter in model order; tconv prints the same."""
    h = 0xCBF29CE484222325
    for p in model.parameters():
        for b in p.detach().numpy().astype("<f4").tobytes():
            h = ((h ^ b) * 0x100000001B3) & MASK64
    return f"{h:016x}"


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(model, images, batch):
    total = 0.0
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            x = images[i:i + batch]
            total += float(((model(x) - x) ** 2).double().sum())
    return total / images.numel()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--limit-test", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--device", default="",
                    help="cpu | cuda[:N] (default: the GPU when there is one, else the CPU, as tconv train)")
    ap.add_argument("--no-tf32", action="store_true",
                    help="CUDA: float32 convolutions and matmuls (PyTorch's default lets cuDNN use TF32)")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ap.add_argument("--step-log", default="", help="write every step's loss to this CSV (epoch,step,loss)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)  # only PyTorch's own (overwritten) init draws from it
    device = torch.device(a.device if a.device else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit(f"train_torch.py: --device {a.device}: this PyTorch ({torch.__version__}) sees no CUDA device")
        if a.no_tf32:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False

    train = load_split(a.data, "train", a.limit_train).to(device)
    test = load_split(a.data, "t10k", a.limit_test).to(device)
    model = make_model()
    init_model(model, a.seed)
    fp = fingerprint(model)  # on the CPU, before the move: the same bytes tconv fingerprints
    model.to(device)
    log = sys.stderr if a.json else sys.stdout
    where = (f"{device} ({torch.cuda.get_device_name(device)}, cuDNN TF32 "
             f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'})" if device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {where}, init fingerprint {fp}", file=log)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.MSELoss()

    n = train.shape[0]
    train_seconds = 0.0
    images_seen = 0
    test_mse = float("nan")
    history = []
    step_rows = ["epoch,step,loss"]
    for epoch in range(a.epochs):
        order = torch.from_numpy(epoch_permutation(a.seed, epoch, n)).to(device)
        model.train()
        loss_sum, steps = 0.0, 0
        synchronize(device)
        t0 = time.perf_counter()
        for i in range(0, n, a.batch):
            x = train[order[i:i + a.batch]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), x)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            steps += 1
            if a.step_log:
                step_rows.append(f"{epoch + 1},{steps},{loss.item():.9g}")
        synchronize(device)
        dt = time.perf_counter() - t0
        train_seconds += dt
        images_seen += n
        test_mse = evaluate(model, test, 1000)
        history.append({"epoch": epoch + 1, "train_mse": loss_sum / steps, "test_mse": test_mse,
                        "images_per_s": n / dt})
        print(f"epoch {epoch + 1}/{a.epochs}: train MSE {loss_sum / steps:.6f}  test MSE {test_mse:.6f}  "
              f"{n / dt:.0f} img/s  {dt:.1f} s", file=log, flush=True)
    if a.step_log:
        with open(a.step_log, "w") as f:
            f.write("\n".join(step_rows) + "\n")
    ips = images_seen / train_seconds if train_seconds > 0 else 0.0
    summary = {"peer": "pytorch", "torch": torch.__version__, "device": str(device),
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
               "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32) if device.type == "cuda" else None,
               "threads": torch.get_num_threads(),
               "epochs": a.epochs, "batch": a.batch, "seed": a.seed, "train_images": n,
               "test_images": test.shape[0], "test_mse": test_mse, "images_per_s": ips,
               "init_fingerprint": fp, "history": history}
    if a.json:
        print(json.dumps(summary))
    else:
        print(f"pytorch: test MSE {test_mse:.6f} after {a.epochs} epochs, {ips:.0f} images/s ({where})")


if __name__ == "__main__":
    main()
