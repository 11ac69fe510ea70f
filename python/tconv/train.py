"""python -m tconv.train — the main job (the Fashion-MNIST convolutional auto-encoder of
scripts/train_torch.py and ``tconv train``) in PyTorch with tconv's ConvTranspose2d layers, on one device or
data-parallel over several GPUs through tconv's communicator.

Model, loss, optimizer, initial weights and batch order are the script's, bit for bit: Conv 1->32 k4 s2 p1,
ReLU, Conv 32->64 k4 s2 p1, ReLU, ConvTranspose 64->32 k4 s2 p1, ReLU, ConvTranspose 32->1 k4 s2 p1, sigmoid
(the two transposed convolutions are ``tconv.torch.ConvTranspose2d``); MSE over every pixel of the batch;
Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8); batches of 128, the last partial batch kept; weights from the
SplitMix64 generator of tools/tconv/train_rng.hpp and each epoch's Fisher-Yates order from it. The
definitions below are copies of the script's (the package cannot import from scripts/);
python/tests/test_distributed.py checks that both give the same weights and orders.

Data parallel (``--gpus N``): this process becomes the supervisor of ranks 0..N-1, which it starts as
``python -m tconv.train ... --rank r --id-file F`` (rank 0 makes the communicator's id and writes it to F;
the output of ranks 1.. goes to <work dir>/rank<r>.log). Rank r trains on cuda:r. Every rank holds the
whole model and walks the same global batches; rank r computes the mean loss of its contiguous shard of each
global batch (``tconv.distributed.shard_of``: sizes differ by at most one), and the gradients are
all-reduced as Σ_r share_r·grad_r — the gradient of the global batch's mean loss, so the run equals the
one-GPU run on the same batches up to float32 summation order. The loss that is logged is reduced the same
way (in the same NCCL group), so no step waits for the host. The supervisor ends the whole group when a
rank fails, and the ranks die with it (PR_SET_PDEATHSIG). Ranks may also be started by hand or by another
launcher, one per GPU: ``--gpus N --rank R --id-file F`` (rank 0 writes F, the others wait for it) or the
hex id in TCONV_NCCL_ID.

Deterministic: cuDNN deterministic and without TF32 (float32 convolutions, as tconv's), tconv's kernels
deterministic, fixed orders; two runs with the same arguments give the same bits.
Output (rank 0): one line per epoch and a summary line on stdout; with ``--out DIR``, DIR/steps.csv
(epoch,step,loss of every step) and DIR/summary.json (one line: test MSE, images/s, fingerprints, ...).
"""
import argparse
import gzip
import json
import math
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import _core, distributed
from .torch import ConvTranspose2d

PROG = "python -m tconv.train"
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
PARENT_VARIABLE = "TCONV_TRAIN_PARENT"  # set in the ranks the supervisor starts: its pid
ID_WAIT_SECONDS = 300.0                  # how long a rank waits for rank 0's id file (rank 0 may load data first)

# ---------------------------------------------------------------------------------------------------------
# The main job's definitions: copies of scripts/train_torch.py's (test_distributed.py compares them).

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
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with (gzip.open if gz else open)(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else None
    if magic != 0x800 + dims:
        raise _core.FormatError(f"'{path}' has IDX magic {magic!r}, expected {0x800 + dims:#010x} "
                                f"(unsigned bytes, {dims} dimensions)")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    count = int(np.prod(shape))
    if len(data) < 4 + 4 * dims + count:
        raise _core.FormatError(f"'{path}' is truncated: shape {list(shape)} needs {count} bytes of data, it has "
                                f"{len(data) - 4 - 4 * dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims, count=count).reshape(shape)


def load_split(data_dir, split, limit):
    stem = os.path.join(data_dir, f"{split}-images-idx3-ubyte")
    path = stem + ".gz" if os.path.exists(stem + ".gz") else stem
    if not os.path.exists(path):
        raise _core.FileError(f"cannot find '{stem}.gz' or '{stem}' (install dataset-fashion-mnist or pass --data DIR)")
    images = read_idx(path, 3)
    if limit > 0:
        images = images[:limit]
    # byte / 255 in float32, as tconv does.
    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1).contiguous()


def make_model():
    """The script's model with its two ConvTranspose2d layers run by tconv (same parameters, same order)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 4, 2, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 4, 2, 1), torch.nn.ReLU(),
        ConvTranspose2d(64, 32, 4, 2, 1), torch.nn.ReLU(),
        ConvTranspose2d(32, 1, 4, 2, 1), torch.nn.Sigmoid())


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
        for b in p.detach().cpu().numpy().astype("<f4").tobytes():
            h = ((h ^ b) * 0x100000001B3) & MASK64
    return f"{h:016x}"


# ---------------------------------------------------------------------------------------------------------
# Arguments


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog=PROG, description="The main job (scripts/train_torch.py's Fashion-MNIST auto-encoder) with tconv's "
        "ConvTranspose2d layers, on one device or data-parallel over N GPUs through tconv's communicator.")
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None,
                    help="cpu | cuda (default: cuda when PyTorch sees a GPU and tconv has its CUDA backend)")
    ap.add_argument("--gpus", type=int, default=0,
                    help="data-parallel over N GPUs, one process each (0: one process on --device, no communicator)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="stop after this many optimizer steps in all (0: no limit)")
    ap.add_argument("--batch", type=int, default=128, help="global batch size (split among the ranks)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of the idx(.gz) files (train-/t10k-images-idx3-ubyte)")
    ap.add_argument("--limit-train", type=int, default=0, help="use the first N training images (0: all)")
    ap.add_argument("--limit-test", type=int, default=0, help="use the first N test images (0: all)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of PyTorch and tconv (0: their defaults)")
    ap.add_argument("--out", default="", help="write steps.csv and summary.json here (rank 0)")
    ap.add_argument("--rank", type=int, default=None,
                    help="with --gpus: be this one rank of the group (without: start all N ranks, supervise them)")
    ap.add_argument("--id-file", default="",
                    help="with --gpus: the communicator id file (rank 0 writes it; default <out or temp dir>/nccl_id)")
    a = ap.parse_args(argv)
    for name in ("gpus", "epochs", "steps", "limit_train", "limit_test", "threads"):
        if getattr(a, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0")
    if a.batch < 1:
        ap.error("--batch must be >= 1")
    if a.gpus == 0 and (a.rank is not None or a.id_file):
        ap.error("--rank and --id-file belong to a data-parallel run (--gpus N)")
    if a.rank is not None and not 0 <= a.rank < a.gpus:
        ap.error(f"--rank {a.rank} is outside [0, {a.gpus}) (--gpus is the number of ranks)")
    if a.rank is not None and not a.id_file and distributed.ID_VARIABLE not in os.environ:
        ap.error(f"--rank needs the group's id: --id-file F (rank 0 writes it) or {distributed.ID_VARIABLE}")
    if a.gpus > 0 and a.device == "cpu":
        ap.error("--gpus trains on GPUs; it does not take --device cpu")
    if a.device is None:
        a.device = "cuda" if a.gpus > 0 or (torch.cuda.is_available() and _core._cuda_compiled_in()) else "cpu"
    return a


class UsageError(Exception):
    """A run that cannot start as asked (missing GPUs, a build without NCCL): reported without a traceback."""


# ---------------------------------------------------------------------------------------------------------
# Training


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(model, images, batch=1000):
    """Mean squared error over every pixel of `images` (float64 accumulation, one host read at the end)."""
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            x = images[i:i + batch]
            total += ((model(x) - x) ** 2).double().sum()
    return float(total) / images.numel()


def _configure_determinism(device, threads):
    # Float32 convolutions (tconv's fp32 precision; PyTorch would let cuDNN use TF32) chosen by fixed rules, not
    # by timing: the same algorithms, hence the same bits, on every run.
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)  # only PyTorch's own (overwritten) init draws from it
    if threads > 0:
        torch.set_num_threads(threads)
    if device.type == "cpu":
        # tconv runs CPU tensors on the calling thread's default device; make it the CPU (a CUDA build's default
        # would be the GPU) with the requested threads.
        from . import _functional

        _functional.set_default_device(_core.Device.cpu(threads))


def train(a, rank, ranks, comm, device, log):
    """Trains as `rank` of `ranks` (comm None: one process, no communicator). Returns (summary, rows): the
    summary.json dict and the (epoch, step, loss) rows of steps.csv (the global batch's loss on every rank)."""
    _configure_determinism(device, a.threads)
    train_images = load_split(a.data, "train", a.limit_train).to(device)
    test_images = load_split(a.data, "t10k", a.limit_test).to(device) if rank == 0 else None
    n = train_images.shape[0]
    if n == 0:
        raise _core.InvalidArgumentError(f"no training images in '{a.data}'")
    model = make_model()
    init_model(model, a.seed)
    init_fp = fingerprint(model)  # on the CPU, before the move: the same bytes the script and tconv fingerprint
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    where = (f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
             else f"cpu ({torch.get_num_threads()} threads)")
    par = f", rank {rank} of {ranks} (NCCL {_core.Communicator.library_version()})" if comm is not None else ""
    print(f"{PROG}: torch {torch.__version__}, {where}{par}, {n} training images, init fingerprint {init_fp}",
          file=log, flush=True)

    rows = []
    history = []
    steps_done = 0
    images_done = 0
    train_seconds = 0.0
    test_mse = float("nan")
    last_loss = float("nan")
    for epoch in range(a.epochs):
        if a.steps and steps_done >= a.steps:
            break
        order = torch.from_numpy(epoch_permutation(a.seed, epoch, n)).to(device)
        model.train()
        step_losses = []
        epoch_images = 0
        _synchronize(device)
        t0 = time.perf_counter()
        for i in range(0, n, a.batch):
            if a.steps and steps_done >= a.steps:
                break
            global_batch = min(a.batch, n - i)
            offset, count, weight = distributed.shard_of(global_batch, rank, ranks)
            if count == 0:
                # More ranks than images in this batch: the rank still takes part in the all-reduce, with a
                # gradient of weight 0 (computed on the batch's first image, so that every layer has one).
                offset, count, weight = 0, 1, 0.0
            x = train_images[order[i + offset:i + offset + count]]
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(x), x)
            loss.backward()
            if comm is not None:
                # One NCCL group: Σ_r share_r·grad_r for every gradient and Σ_r share_r·loss_r, the global
                # batch's mean loss, for the log.
                global_loss = loss.detach().reshape(1).clone()
                distributed.all_reduce(_grads(params) + [global_loss], op="sum", scale=weight, communicator=comm)
            else:
                global_loss = loss.detach().reshape(1)
            opt.step()
            step_losses.append(global_loss)
            steps_done += 1
            epoch_images += global_batch
        _synchronize(device)
        dt = time.perf_counter() - t0
        if not step_losses:
            break
        losses = torch.cat(step_losses).cpu().tolist()
        train_seconds += dt
        images_done += epoch_images
        last_loss = losses[-1]
        rows += [(epoch + 1, s + 1, v) for s, v in enumerate(losses)]
        if rank == 0:
            test_mse = evaluate(model, test_images)
        mean_loss = sum(losses) / len(losses)
        history.append({"epoch": epoch + 1, "steps": len(losses), "train_mse": mean_loss,
                        "test_mse": test_mse if rank == 0 else None, "images_per_s": epoch_images / dt})
        test_text = f"  test MSE {test_mse:.6f}" if rank == 0 else ""
        print(f"epoch {epoch + 1}/{a.epochs}: {len(losses)} steps, train MSE {mean_loss:.6f}{test_text}  "
              f"{epoch_images / dt:.0f} img/s  {dt:.2f} s", file=log, flush=True)

    final_fp = fingerprint(model)
    ips = images_done / train_seconds if train_seconds > 0 else 0.0
    return {
        "program": PROG, "tconv": _tconv_version(), "torch": torch.__version__, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(), "gpus": ranks if comm is not None else 0,
        "nccl": _core.Communicator.library_version() if comm is not None else None,
        "epochs": a.epochs, "steps": steps_done, "batch": a.batch, "lr": a.lr, "seed": a.seed,
        "train_images": n, "test_images": test_images.shape[0] if test_images is not None else None,
        "images": images_done, "train_seconds": train_seconds, "images_per_s": ips,
        "final_loss": last_loss, "test_mse": test_mse, "init_fingerprint": init_fp,
        "final_fingerprint": final_fp, "history": history,
    }, rows


def _grads(params):
    """The parameters' gradients, every one present (zeros for a layer the batch did not reach), so that every
    rank reduces the same list."""
    out = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        out.append(p.grad)
    return out


def _tconv_version():
    from . import __version__

    return __version__


def write_outputs(out_dir, summary, rows):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "steps.csv"), "w") as f:
        f.write("epoch,step,loss\n")
        for e, s, v in rows:
            f.write(f"{e},{s},{v:.9g}\n")
    tmp = os.path.join(out_dir, "summary.json.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(summary) + "\n")
    os.replace(tmp, os.path.join(out_dir, "summary.json"))


# ---------------------------------------------------------------------------------------------------------
# Processes of a data-parallel run


def _die_with_parent():
    """A rank started by the supervisor ends when it does (it could wait in a collective forever otherwise)."""
    parent = os.environ.get(PARENT_VARIABLE)
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != parent:  # the supervisor died before the call above
        os._exit(1)


def _log_tail(path, limit=3000):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read its log {path}: {e})"
    if not text:
        return f"(its log {path} is empty)"
    return text if len(text) <= limit else "..." + text[-limit:]


def _describe(rc):
    if rc < 0:
        try:
            return f"was killed by signal {-rc} ({signal.Signals(-rc).name})"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _check_parallel_build():
    if not distributed.available():
        raise UsageError("--gpus needs NCCL, and this tconv build has none (build the package with the CUDA "
                         "backend on a machine with NCCL; docs/python.md)")
    if not _core._cuda_compiled_in():
        raise UsageError("--gpus needs tconv's CUDA backend; this build is CPU-only")


def supervise(a, argv):
    """`--gpus N` without --rank: starts ranks 0..N-1 (rank r on cuda:r) and watches them until all have
    finished. The first rank that fails ends the whole group at once, since the others would wait for it in a
    collective forever. The watcher is this separate process, not a thread of rank 0: a rank may block inside
    a CUDA call while holding the GIL (its stream stuck behind an all-reduce that a dead peer never joins),
    where no thread of its own could run. Rank 0's output is this process's; the others' goes to
    <work dir>/rank<r>.log, removed on success. Returns the exit status."""
    distributed.disable_nvls()  # inherited by every rank, before any of them starts NCCL
    _check_parallel_build()
    visible = torch.cuda.device_count()
    if visible < a.gpus:
        raise UsageError(f"--gpus {a.gpus} needs one GPU per rank, but PyTorch sees {visible}")
    work_dir = a.out or tempfile.mkdtemp(prefix="tconv-train-")
    os.makedirs(work_dir, exist_ok=True)
    id_file = a.id_file or os.path.join(work_dir, "nccl_id")
    _remove(id_file)  # a previous run's id would send the other ranks to a rank 0 that is gone
    env = dict(os.environ, NCCL_NVLS_ENABLE="0", **{PARENT_VARIABLE: str(os.getpid())})
    # The supervisor's rank 0 always makes a fresh id: an inherited TCONV_NCCL_ID (an earlier hand-started run's)
    # names a bootstrap root in a process that is gone, and an id is single use.
    env.pop(distributed.ID_VARIABLE, None)
    flags = ["-P"] if getattr(sys.flags, "safe_path", False) else []
    logs = [None] + [os.path.join(work_dir, f"rank{r}.log") for r in range(1, a.gpus)]
    procs = []

    def end_all(grace=5.0):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    try:
        for r in range(a.gpus):
            cmd = [sys.executable, *flags, "-m", "tconv.train", *argv, "--rank", str(r), "--id-file", id_file]
            if logs[r] is None:
                procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env))
            else:
                with open(logs[r], "wb") as f:
                    procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                                  env=env))
        while True:
            codes = [p.poll() for p in procs]
            failed = [(r, rc) for r, rc in enumerate(codes) if rc not in (None, 0)]
            if failed:
                r, rc = failed[0]
                where = "its output is above" if logs[r] is None else f"end of its log:\n{_log_tail(logs[r])}"
                print(f"{PROG}: error: rank {r} of {a.gpus} {_describe(rc)}; ending the other ranks ({where})",
                      file=sys.stderr, flush=True)
                end_all()
                return 1
            if all(rc == 0 for rc in codes):
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        end_all()
        return 130
    except BaseException:
        end_all()
        raise
    finally:
        # Rank 0 removes the id after it joined; a failed or interrupted group may leave it behind.
        _remove(id_file)
    for log in logs[1:]:
        _remove(log)
    if not a.out:
        try:
            os.rmdir(work_dir)
        except OSError:
            pass
    return 0


def run_rank(a):
    """One rank of a --gpus run (started by `supervise`, or by another launcher: --rank R --id-file F)."""
    distributed.disable_nvls()  # before anything in this process starts NCCL
    _die_with_parent()
    _check_parallel_build()
    visible = torch.cuda.device_count()
    if visible == 0:
        raise UsageError(f"--gpus {a.gpus}: PyTorch sees no CUDA device")
    ordinal = a.rank % visible  # one rank per GPU on each node
    device = torch.device("cuda", ordinal)
    torch.cuda.set_device(device)  # PyTorch's current device and stream: where the all-reduces are enqueued
    from_env = distributed.ID_VARIABLE in os.environ
    comm = None
    try:
        if from_env:
            cid = _core.CommunicatorId.from_environment(distributed.ID_VARIABLE)
        elif a.rank == 0:
            cid = _core.CommunicatorId.generate()
            cid.write_file(a.id_file)
        else:
            cid = _core.CommunicatorId.read_file(a.id_file, ID_WAIT_SECONDS)
        comm = _core.Communicator(_core.Device.cuda(ordinal), cid, a.rank, a.gpus)  # blocks until all have joined
        if a.rank == 0 and not from_env:
            _remove(a.id_file)  # every rank has read it; an id is single use
        result = train(a, a.rank, a.gpus, comm, device, sys.stdout)
        comm.close()  # waits for this rank's last all-reduce
        comm = None
        return result
    finally:
        if comm is not None:
            comm.abort()  # an error here: drop pending collectives instead of waiting for the peers
        if a.rank == 0 and not from_env:
            _remove(a.id_file)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    try:
        if a.gpus > 0 and a.rank is None:
            return supervise(a, argv)
        if a.gpus > 0:
            summary, rows = run_rank(a)
        else:
            device = torch.device(a.device)
            if device.type == "cuda" and not (torch.cuda.is_available() and _core._cuda_compiled_in()):
                raise UsageError("--device cuda needs a GPU that PyTorch sees and tconv's CUDA backend "
                                 f"(torch.cuda.is_available() {torch.cuda.is_available()}, tconv CUDA backend "
                                 f"{_core._cuda_compiled_in()})")
            summary, rows = train(a, 0, 1, None, device, sys.stdout)
    except (UsageError, _core.Error) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if a.rank in (None, 0):
        if a.out:
            write_outputs(a.out, summary, rows)
        print(f"{PROG}: test MSE {summary['test_mse']:.6f} after {summary['steps']} steps, "
              f"{summary['images_per_s']:.0f} images/s ({summary['device']}"
              f"{', ' + str(summary['gpus']) + ' GPUs' if summary['gpus'] else ''})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
