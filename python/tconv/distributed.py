"""Data-parallel training through tconv's communicator (NCCL): one process per GPU, gradients all-reduced in
place on PyTorch's current stream, without host copies or synchronisation.

A minimal data-parallel step (every rank runs this; ``python -m tconv.train --gpus N`` is a complete one)::

    import tconv.distributed as dist
    torch.cuda.set_device(rank)                      # one GPU per rank; the tensors below live there
    comm = dist.init(rank, world_size, id_file="/tmp/run42.id")   # rank 0 writes the id, the others read it
    try:
        ...
        loss = loss_fn(model(x_shard), y_shard)      # this rank's share of the global batch: mean loss
        loss.backward()
        dist.all_reduce_gradients(model, scale=share)  # Σ_r share_r·grad_r = the global batch's gradient
        optimizer.step()                             # every rank applies the same update
    except BaseException:
        comm.abort()   # on one node NCCL does not notice a dead peer: the others would wait for ever
        raise

``all_reduce`` enqueues one NCCL group on ``torch.cuda.current_stream()`` of the tensors' GPU and returns at
once, exactly like a PyTorch CUDA op: work enqueued after it on that stream (the optimizer step) sees the
reduced values. The tensors are reduced where they lie (handed over as DLPack capsules, no copy).
Results are deterministic for a fixed number of ranks (NCCL reduces in a fixed order and every rank gets the
same bits). Every rank must make the same sequence of all-reduces with the same tensor sizes; a rank that
skips one leaves the others waiting. ``torch.distributed`` is not involved.

The module imports without PyTorch (ids and ``init`` need none); ``all_reduce`` needs it. In a build without
NCCL, ``available()`` is False and ``init`` raises ``tconv.UnsupportedError``.
"""
import os

import numpy as np

from . import _core
from ._core import Communicator, CommunicatorId, FloatSpan, ReduceOp  # noqa: F401  (re-exported)

__all__ = ["available", "init", "get_communicator", "shutdown", "all_reduce", "all_reduce_gradients",
           "shard_of", "Communicator", "CommunicatorId", "FloatSpan", "ReduceOp", "ID_VARIABLE"]

ID_VARIABLE = "TCONV_NCCL_ID"  # environment variable holding the hex id (CommunicatorId.from_environment)

_default = None           # the communicator init() made: all_reduce's default
_written_id_file = None   # the id file init() wrote as rank 0 (shutdown removes it: an id is single use)


def available():
    """Whether this tconv build has NCCL, the communicator's only backend."""
    return _core.Communicator.available()


def disable_nvls():
    """Sets NCCL_NVLS_ENABLE=0 in this process's environment (inherited by processes it starts).

    NVLink multicast can put the GPUs of a shared host out of service; NCCL reads the variable once, at its
    first call, so this must run before anything in the process starts NCCL. tconv's communicator sets it
    too; setting it from Python as well keeps os.environ (what child processes get) in agreement."""
    os.environ["NCCL_NVLS_ENABLE"] = "0"


def _reduce_op(op):
    if isinstance(op, _core.ReduceOp):
        return op
    if op in ("sum", "mean"):
        return getattr(_core.ReduceOp, op)
    raise _core.InvalidArgumentError(f"op must be 'sum', 'mean' or a tconv.ReduceOp, got {op!r}")


def _cuda_device(device, rank):
    """tconv's Device for this rank: `device` (tconv.Device, torch.device, 'cuda[:N]' or an index), or by
    default cuda:<rank mod the GPUs this process sees> (one rank per GPU on each node)."""
    if isinstance(device, _core.Device):
        return device
    if device is None:
        count = _core.Device.cuda_device_count()
        if count == 0:
            raise _core.DeviceUnavailableError(
                "tconv.distributed.init: no CUDA device is visible to tconv (a CPU-only build, or no GPU); "
                "the communicator runs one rank per GPU")
        return _core.Device.cuda(rank % count)
    if isinstance(device, int):
        return _core.Device.cuda(device)
    text = str(device)  # torch.device('cuda:1') prints as 'cuda:1'
    if text == "cuda":
        return _cuda_device(None, rank)
    if text.startswith("cuda:") and text[5:].isdigit():
        return _core.Device.cuda(int(text[5:]))
    raise _core.InvalidArgumentError(
        f"device must be a CUDA device (tconv.Device, torch.device, 'cuda', 'cuda:N' or an index), got {device!r}")


def init(rank, world_size, id_file=None, device=None, *, id=None, timeout=300.0):
    """Joins the data-parallel group as `rank` of `world_size` and returns the ``tconv.Communicator``, which
    becomes the default of ``all_reduce`` (like ``torch.distributed.init_process_group``).

    The id comes from, in this order: `id` (a ``tconv.CommunicatorId``); environment variable TCONV_NCCL_ID
    (hex); `id_file`, which rank 0 creates (a fresh id, written atomically) and the other ranks wait for up to
    `timeout` seconds. Use a fresh path per run (``shutdown`` removes it on rank 0): a rank that reads a
    previous run's id would wait for a rank 0 that is gone. A group of one rank needs no id source.
    `device`: see ``_cuda_device`` (default cuda:<rank mod GPUs>). Blocks until every rank has joined.
    Sets NCCL_NVLS_ENABLE=0 first. Does not change PyTorch's current device.
    """
    global _default, _written_id_file
    disable_nvls()
    if not isinstance(rank, int) or not isinstance(world_size, int) or world_size < 1 or not 0 <= rank < world_size:
        raise _core.InvalidArgumentError(
            f"rank must be an int in [0, world_size) and world_size >= 1, got rank {rank!r} of {world_size!r}")
    if not available():
        raise _core.UnsupportedError(
            "tconv.distributed.init: this tconv build has no NCCL (build the package with the CUDA backend on a "
            "machine with NCCL; tconv.distributed.available() is False)")
    dev = _cuda_device(device, rank)
    if id is None and ID_VARIABLE in os.environ:
        id = CommunicatorId.from_environment(ID_VARIABLE)
    if id is None and id_file is not None:
        if rank == 0:
            id = CommunicatorId.generate()
            id.write_file(os.fspath(id_file))
            _written_id_file = os.fspath(id_file)
        else:
            id = CommunicatorId.read_file(os.fspath(id_file), float(timeout))
    if id is None:
        if world_size != 1:
            raise _core.InvalidArgumentError(
                f"tconv.distributed.init: rank {rank} of {world_size} needs the group's id: pass id=, "
                f"id_file= (rank 0 writes it) or set {ID_VARIABLE}")
        id = CommunicatorId.generate()
    if not isinstance(id, CommunicatorId):
        raise TypeError(f"id must be a tconv.CommunicatorId, got {type(id).__name__}")
    comm = Communicator(dev, id, rank, world_size)
    if _written_id_file is not None:
        # Every rank has read it (the constructor returns once all have joined), and an id is single use: a
        # stale file could send the next run's ranks to this run's bootstrap root.
        try:
            os.remove(_written_id_file)
        except OSError:
            pass
        _written_id_file = None
    _default = comm
    return comm


def get_communicator():
    """The communicator ``init`` made (InvalidArgumentError before ``init`` or after ``shutdown``)."""
    if _default is None:
        raise _core.InvalidArgumentError("no tconv communicator: call tconv.distributed.init(rank, world_size, ...)")
    return _default


def shutdown():
    """Releases the default communicator (after its pending all-reduces) and, on rank 0, removes the id file
    that ``init`` wrote. Safe to call twice."""
    global _default, _written_id_file
    comm, _default = _default, None
    if comm is not None:
        comm.close()
    if _written_id_file is not None:
        try:
            os.remove(_written_id_file)
        except FileNotFoundError:
            pass
        _written_id_file = None


def _torch():
    import torch

    return torch


def _export(t, stream):
    # DLPack's stream handshake: the consumer (tconv) works on `stream`, PyTorch's current stream, so PyTorch
    # orders nothing extra; 1 names the legacy default stream (cuda_stream 0) in the protocol.
    return t.__dlpack__(stream=stream if stream != 0 else 1)


def all_reduce(tensors, op="sum", scale=1.0, communicator=None):
    """All-reduces CUDA float32 tensors in place across the group: every rank's tensors are replaced by
    Σ_r scale_r·t_r (op "sum"; `scale` is this rank's own pre-multiplier, e.g. its share of the batch) or
    by the mean (op "mean"; scale must be 1).

    `tensors`: one tensor or a list, each a float32 CUDA tensor on the communicator's GPU whose memory is
    dense in some dimension order (contiguous, channels-last, a transpose of either; not a strided slice).
    Tensors that require grad are reduced through their ``.detach()`` (same memory); autograd does not see
    the change, so do not reduce tensors saved for a backward pass still to run. One NCCL group, enqueued on
    ``torch.cuda.current_stream()`` of that GPU; returns without waiting (no host synchronisation).
    Returns `tensors`.
    """
    torch = _torch()
    comm = communicator if communicator is not None else get_communicator()
    single = isinstance(tensors, torch.Tensor)
    items = [tensors] if single else list(tensors)
    if not items:
        raise _core.InvalidArgumentError("tconv.distributed.all_reduce: no tensors to reduce")
    index = comm.device.ordinal
    for i, t in enumerate(items):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor {i} is a {type(t).__name__}, not a torch.Tensor")
        if t.device.type != "cuda" or t.device.index != index:
            raise _core.InvalidArgumentError(
                f"tensor {i} is on {t.device} but the communicator runs on {comm.device.name}; all-reduce "
                "tensors on the rank's own GPU")
        if t.dtype != torch.float32:
            raise _core.InvalidArgumentError(
                f"tensor {i} has element type {str(t.dtype).replace('torch.', '')}; the communicator reduces "
                "float32 tensors")
    stream = torch.cuda.current_stream(index).cuda_stream
    arrays = [_export(t.detach(), stream) for t in items]
    comm.enqueue_all_reduce(arrays, _reduce_op(op), float(scale), stream)
    return tensors


def all_reduce_gradients(parameters, op="sum", scale=1.0, communicator=None):
    """``all_reduce`` of the gradients of `parameters` (a module or an iterable of parameters), every
    parameter that requires grad, in order. A parameter without a gradient gets a zero one first, so that
    every rank reduces the same list even when a rank's batch did not reach a layer. Returns the gradients."""
    torch = _torch()
    if isinstance(parameters, torch.nn.Module):
        parameters = parameters.parameters()
    grads = []
    for p in parameters:
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    if grads:
        all_reduce(grads, op=op, scale=scale, communicator=communicator)
    return grads


def shard_of(n, rank, ranks):
    """Rank `rank`'s part of a batch of `n` items: ``(offset, count, weight)`` — items [offset, offset+count)
    of the batch and its weight count/n (rounded once to float32) in the sum of the ranks' mean-loss
    gradients. Shards differ by at most one item (the first n mod ranks ranks take one more), exactly as
    ``tconv train --gpus`` splits its batches (tools/tconv/train_parallel.cpp, shard_of)."""
    if not (isinstance(n, int) and isinstance(rank, int) and isinstance(ranks, int)) or ranks < 1 \
            or not 0 <= rank < ranks or n < 0:
        raise _core.InvalidArgumentError(f"shard_of({n!r}, {rank!r}, {ranks!r}): need n >= 0 and 0 <= rank < ranks")
    base, extra = divmod(n, ranks)
    offset = rank * base + min(rank, extra)
    count = base + (1 if rank < extra else 0)
    weight = float(np.float32(count / n)) if n > 0 else 0.0
    return offset, count, weight
