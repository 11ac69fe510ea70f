"""The functional API on CUDA tensors: PyTorch CUDA tensors, and any DLPack producer of CUDA memory.

How a call runs (docs/python.md, "CUDA tensors"):

* On tconv's CUDA device of the tensors' GPU (``Device.cuda(tensor.device.index)``), or on ``device=`` when
  it names that same GPU. Mixing devices is an ``InvalidArgumentError``, as it is an error in PyTorch.
* Stream semantics are PyTorch's: tconv enqueues its kernels on ``torch.cuda.current_stream()`` of that GPU
  and returns without waiting, exactly like a PyTorch CUDA op. Arrays reach the native module through the
  DLPack stream handshake, ``__dlpack__(stream=<that stream>)``, so a producer whose work is on another
  stream makes it visible to ours first (PyTorch does this for its tensors; ``torch.from_dlpack`` does it
  for other producers). Scratch memory comes from PyTorch's caching allocator on the same stream, so it is
  stream-ordered and no call synchronises the device or the host.
* Zero copy: no byte goes through the host. tconv's kernels read NHWC activations and float32 OHWI weights.
  Arrays already in those forms are read and written where they lie: ``layout="nhwc"`` tensors, NCHW tensors
  in ``torch.channels_last`` memory format (whose NHWC view is dense), ``weight_layout="mps"`` float32
  weights, float32 bias. Anything else is converted on the GPU, on the same stream, by PyTorch ops (an NCHW
  ``contiguous`` tensor costs one device transpose in and one out; PyTorch-layout weights one small
  transpose), as PyTorch's own channels-last kernels do.
* Results are PyTorch CUDA tensors in the memory format PyTorch's conv_transpose2d would give: channels-last
  for a channels-last input, contiguous otherwise. Inputs from another DLPack producer (e.g. CuPy) are
  imported with ``torch.from_dlpack`` (zero copy) and the results are PyTorch tensors, which that producer's
  own ``from_dlpack`` imports back without a copy.

PyTorch is needed for CUDA arrays (it allocates the outputs and owns the stream); the CPU path does not need it.
"""
import threading

from . import _core

_KDLCUDA = 2  # DLPack device type of CUDA device memory
_devices = {}
_devices_lock = threading.Lock()


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - the CUDA path is only reached with CUDA arrays
        raise _core.UnsupportedError(
            "CUDA arrays need PyTorch: tconv allocates results and orders work on PyTorch's CUDA stream") from None
    return torch


def _is_torch_tensor(a):
    import sys

    t = sys.modules.get("torch")
    return t is not None and isinstance(a, t.Tensor)


def is_cuda(a):
    """Whether `a` is a CUDA array: a PyTorch CUDA tensor or a DLPack producer of CUDA device memory."""
    if a is None:
        return False
    if _is_torch_tensor(a):
        return a.device.type == "cuda"
    dev = getattr(a, "__dlpack_device__", None)
    if dev is None:
        return False
    try:
        return int(dev()[0]) == _KDLCUDA
    except Exception:
        return False


def _device_name(a):
    if _is_torch_tensor(a):
        return str(a.device)
    if is_cuda(a):
        return f"cuda:{int(a.__dlpack_device__()[1])}"
    return "cpu"


def _as_tensor(a, role):
    """`a` as a detached PyTorch CUDA tensor, or an InvalidArgumentError naming where it is."""
    if not _is_torch_tensor(a) and is_cuda(a):
        # Another producer: torch.from_dlpack passes PyTorch's current stream to its __dlpack__ (the DLPack
        # stream handshake) and wraps the memory without a copy.
        a = _torch().from_dlpack(a)
    if not (_is_torch_tensor(a) and is_cuda(a)):
        raise _core.InvalidArgumentError(
            f"{role} is on {_device_name(a)} but other arguments are CUDA tensors; tconv needs every tensor of "
            "a call on one CUDA device")
    return a.detach() if a.requires_grad else a


def _device_index(t):
    return t.device.index if t.device.index is not None else _torch().cuda.current_device()


def _current_stream(index):
    """cudaStream_t (an int; 0: the legacy default stream) of PyTorch's current stream on GPU `index`."""
    return _torch().cuda.current_stream(index).cuda_stream


def _tconv_device(index, requested):
    """tconv's Device for GPU `index`: `requested` when given (it must be that GPU), else a cached one."""
    if requested is not None:
        if not isinstance(requested, _core.Device):
            raise TypeError(f"device must be a tconv.Device, got {type(requested).__name__}")
        if requested.kind != _core.DeviceKind.cuda or requested.ordinal != index:
            raise _core.InvalidArgumentError(
                f"the tensors are on cuda:{index} but device is {requested.name}; pass device=None (the "
                "tensors' GPU) or move the tensors")
        return requested
    with _devices_lock:
        dev = _devices.get(index)
        if dev is None:
            dev = _core.Device.cuda(index)  # DeviceUnavailableError in a build without CUDA
            _devices[index] = dev
        return dev


def _check_dtype(t, role):
    """float32/float16/bfloat16 only, with the library's wording (the CPU path's error for the same input)."""
    torch = _torch()
    if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise _core.InvalidArgumentError(
            f"{role} has element type {str(t.dtype).replace('torch.', '')}; tconv takes float32, float16 or "
            "bfloat16")


def _export(t, stream):
    """A DLPack capsule of `t` for a consumer working on `stream` (DLPack: 1 names the legacy default; host
    memory takes no stream)."""
    if t.device.type != "cuda":
        return t.__dlpack__()
    return t.__dlpack__(stream=stream if stream != 0 else 1)


def nhwc(t, layout):
    """A dense NHWC tensor with t's values (t itself, or a view of it, whenever its memory already is)."""
    torch = _torch()
    if layout == "nhwc":
        return t.contiguous()
    # NCHW: the NHWC view of a channels-last tensor is dense; otherwise one transpose on the device.
    if not t.is_contiguous(memory_format=torch.channels_last):
        t = t.contiguous(memory_format=torch.channels_last)
    return t.permute(0, 2, 3, 1)


def torch_weights_to_ohwi(w, groups):
    """PyTorch [Cin][Cout/G][kH][kW] -> float32 MPS OHWI [Cout][kH][kW][Cin/G], on w's device.

    mps[g*Og + o][q][p][c] = torch[g*Ig + c][o][kH-1-q][kW-1-p] (the rotated kernel, docs/direction-mapping.md;
    tconv/convert.hpp's transpose_weights_from_torch on the host)."""
    cin, og, kh, kw = w.shape
    ig = cin // groups
    return (w.float().reshape(groups, ig, og, kh, kw).flip(3, 4).permute(0, 2, 3, 4, 1)
            .reshape(groups * og, kh, kw, ig).contiguous())


def ohwi_to_torch_weights(d, groups):
    """The inverse of torch_weights_to_ohwi (for weight gradients)."""
    cout, kh, kw, ig = d.shape
    og = cout // groups
    return (d.reshape(groups, og, kh, kw, ig).permute(0, 4, 1, 2, 3).flip(3, 4)
            .reshape(groups * ig, og, kh, kw).contiguous())


def _ohwi(w, weight_layout, groups):
    if weight_layout == "mps":
        return w.float().contiguous()
    return torch_weights_to_ohwi(w, groups)


def _canonical_options(geometry):
    """Options of the same call with the canonical layouts the native entry points take."""
    from ._functional import _options

    g = dict(geometry)
    g["layout"], g["weight_layout"] = "nhwc", "mps"
    return _options(**g)


def _channels_last_result(shape, dtype, device, layout):
    """An output of `shape` (in the caller's layout) and its dense NHWC view."""
    torch = _torch()
    if layout == "nhwc":
        y = torch.empty(tuple(shape), dtype=dtype, device=device)
        return y, y
    y = torch.empty(tuple(shape), dtype=dtype, device=device, memory_format=torch.channels_last)
    return y, y.permute(0, 2, 3, 1)


def _in_memory_format_of(result, like, layout):
    """PyTorch's rule: a channels-last input gives a channels-last result, any other a contiguous one."""
    torch = _torch()
    if layout == "nchw" and not like.is_contiguous(memory_format=torch.channels_last):
        return result.contiguous()
    return result


def _workspace(device):
    torch = _torch()
    return lambda nbytes, stream: _export(torch.empty(int(nbytes), dtype=torch.uint8, device=device), stream)


def _common_index(named):
    """The GPU index shared by the named tensors (None entries skipped); InvalidArgumentError otherwise."""
    index, first = None, None
    for role, t in named:
        if t is None:
            continue
        i = _device_index(t)
        if index is None:
            index, first = i, role
        elif i != index:
            raise _core.InvalidArgumentError(
                f"{role} is on cuda:{i} but {first} is on cuda:{index}; tconv needs every tensor of a call on "
                "one CUDA device")
    return index


def conv_transpose2d(x, w, b, geometry, out, device):
    """The CUDA forward; `geometry` holds _functional._options' keyword arguments."""
    x = _as_tensor(x, "x")
    w = _as_tensor(w, "weight")
    b = _as_tensor(b, "bias") if b is not None else None
    index = _common_index((("x", x), ("weight", w), ("bias", b)))
    dev = _tconv_device(index, device)
    for t, role in ((x, "x"), (w, "weight"), (b, "bias")):
        if t is not None:
            _check_dtype(t, role)
    from ._functional import _options

    layout = geometry["layout"]
    # Geometry checked in the caller's own terms (its layouts, its shapes) before any conversion.
    shape = _core._output_shape(list(x.shape), list(w.shape), _options(**geometry))
    x_n = nhwc(x, layout)
    w_o = _ohwi(w, geometry["weight_layout"], int(geometry["groups"]))
    b_f = b.float().contiguous() if b is not None else None
    direct_out = None
    if out is not None:
        out = _as_tensor(out, "out")
        if tuple(out.shape) != tuple(shape) or out.dtype != x.dtype:
            raise _core.InvalidArgumentError(
                f"out has shape {list(out.shape)} and type {out.dtype}, expected {list(shape)} and {x.dtype}")
        _common_index((("x", x), ("out", out)))
        if layout == "nhwc":
            direct_out = out
        elif out.is_contiguous(memory_format=_torch().channels_last):
            direct_out = out.permute(0, 2, 3, 1)
    if direct_out is not None:
        y, y_n = out, direct_out
    else:
        y, y_n = _channels_last_result(shape, x.dtype, x.device, layout)
    stream = _current_stream(index)
    ws = _workspace(x.device)
    name = _core._cuda_conv_transpose2d(dev, _export(x_n, stream), _export(w_o, stream),
                                        _export(b_f, stream) if b_f is not None else None, _export(y_n, stream),
                                        _canonical_options(geometry), stream, lambda n: ws(n, stream))
    if out is not None:
        if direct_out is None:
            out.copy_(y)  # a non-dense out: computed in scratch, copied on the device (same stream)
        return out, name
    return _in_memory_format_of(y, x, layout), name


def conv_transpose2d_backward(dy, x, w, geometry, need, device):
    """The CUDA gradients; returns ((dx, dw, db), data_algorithm, weights_algorithm)."""
    torch = _torch()
    from ._functional import _options

    dy = _as_tensor(dy, "grad_output")
    x = _as_tensor(x, "x")
    w = _as_tensor(w, "weight")
    index = _common_index((("grad_output", dy), ("x", x), ("weight", w)))
    dev = _tconv_device(index, device)
    want_dx, want_dw, want_db = "dx" in need, "dw" in need, "db" in need
    _check_dtype(dy, "grad_output")
    if want_dx:
        _check_dtype(w, "weight")
    if want_dw or want_db:
        _check_dtype(x, "x")
    layout, weight_layout, groups = geometry["layout"], geometry["weight_layout"], int(geometry["groups"])
    y_shape = tuple(_core._output_shape(list(x.shape), list(w.shape), _options(**geometry)))
    if tuple(dy.shape) != y_shape:
        raise _core.InvalidArgumentError(
            f"grad_output has shape {list(dy.shape)}, expected {list(y_shape)} (the forward's output)")
    if weight_layout == "mps":
        w_shape = list(w.shape)
        cout = w.shape[0]
    else:
        cin, og, kh, kw = w.shape
        w_shape = [og * groups, kh, kw, cin // groups]
        cout = og * groups
    x_shape = list(x.shape) if layout == "nhwc" else [x.shape[0], x.shape[2], x.shape[3], x.shape[1]]

    stream = _current_stream(index)
    ex = lambda t: _export(t, stream) if t is not None else None  # noqa: E731
    dy_n = nhwc(dy, layout)
    x_n = nhwc(x, layout) if (want_dw or want_db) else None
    w_o = _ohwi(w, weight_layout, groups) if want_dx else None
    dx = dx_n = dw = dw_o = db = None
    if want_dx:
        dx, dx_n = _channels_last_result(x.shape, dy.dtype, dy.device, layout)
    if want_dw or want_db:
        # The weight pass always writes a weight gradient: into the result when its layout is the kernels'
        # (MPS OHWI), else into OHWI scratch transposed afterwards on the device.
        dw_o = torch.empty(w_shape, dtype=torch.float32, device=dy.device)
        if want_dw and weight_layout == "mps":
            dw = dw_o
    if want_db:
        db = torch.empty(cout, dtype=torch.float32, device=dy.device)
    ws = _workspace(dy.device)
    data_alg, weights_alg = _core._cuda_conv_transpose2d_backward(
        dev, x_shape, w_shape, ex(x_n), ex(w_o), ex(dy_n), ex(dx_n), ex(dw_o), ex(db),
        _canonical_options(geometry), stream, lambda n: ws(n, stream))
    if want_dx:
        dx = _in_memory_format_of(dx, x, layout)
    if want_dw and dw is None:
        dw = ohwi_to_torch_weights(dw_o, groups)
    return (dx, dw, db), data_alg, weights_alg
