"""The PyTorch-style functional API of tconv on NumPy arrays and DLPack tensors.

Arrays are handed to the native module through DLPack, so tconv reads the caller's memory directly; outputs
are allocated here in the caller's framework (PyTorch tensors for PyTorch inputs, NumPy arrays otherwise) and
written by tconv in place. Inputs that are not dense C order are made contiguous first (that is a copy, as in
PyTorch's own kernels); dense inputs are never copied.

CUDA arrays (PyTorch CUDA tensors, other DLPack producers of CUDA memory) are computed on the GPU they
live on, on PyTorch's current stream, without host copies: see ``tconv._cuda``.

Geometry follows ``torch.nn.functional.conv_transpose2d``: weights are ``[Cin, Cout/groups, kH, kW]``
(``weight_layout="pytorch"``) or MPS OHWI ``[Cout, kH, kW, Cin/groups]`` (``weight_layout="mps"``);
activations are NCHW (``layout="nchw"``) or NHWC (``layout="nhwc"``). Element types: float32, float16 and
bfloat16 (bfloat16 through PyTorch; NumPy has no bfloat16). Weight gradients and bias gradients are always
float32, as the library computes them.
"""
import sys
import threading

import numpy as np

from . import _core, _cuda

_default = threading.local()


def default_device():
    """The device functional calls use unless given ``device=`` (per thread; created on first use)."""
    dev = getattr(_default, "device", None)
    if dev is None:
        dev = _core.Device.default_device()
        _default.device = dev
    return dev


def set_default_device(device):
    """Makes ``device`` (a ``tconv.Device``) the default of the calling thread."""
    if not isinstance(device, _core.Device):
        raise TypeError(f"expected a tconv.Device, got {type(device).__name__}")
    _default.device = device


def last_algorithms():
    """Names of the algorithms the calling thread's last functional call ran (a dict; empty before any)."""
    return dict(getattr(_default, "algorithms", {}))


def _pair(name, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v), int(v))
    try:
        t = tuple(int(e) for e in v)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t


def _options(stride, padding, output_padding, groups, dilation, output_size, layout, weight_layout, precision,
             algorithm, allow_nondeterministic):
    osz = (0, 0) if output_size is None else _pair("output_size", output_size)
    return _core._make_options(_pair("stride", stride), _pair("padding", padding),
                               _pair("output_padding", output_padding), _pair("dilation", dilation), int(groups),
                               osz, str(layout), str(weight_layout), str(precision), algorithm or "",
                               bool(allow_nondeterministic))


def _torch_module(a):
    """PyTorch, when `a` is a PyTorch tensor (without importing PyTorch otherwise)."""
    t = sys.modules.get("torch")
    if t is not None and isinstance(a, t.Tensor):
        return t
    return None


def _as_input(a, role, optional=False):
    """A dense array tconv can read through DLPack: the object itself when it already is one."""
    if a is None:
        if optional:
            return None
        raise TypeError(f"{role} must be an array or tensor, got None")
    t = _torch_module(a)
    if t is not None:
        if a.requires_grad:
            a = a.detach()
        if a.device.type != "cpu":
            raise _core.UnsupportedError(f"{role} is on device {a.device}; tconv computes on CPU and CUDA tensors")
        return a if a.is_contiguous() else a.contiguous()
    if isinstance(a, np.ndarray):
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)
    if hasattr(a, "__dlpack__"):
        return a
    # Lists, scalars and other array-likes: NumPy float32.
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _empty_like_framework(ref, shape, dtype_of_ref=True):
    """A new output in `ref`'s framework: `ref`'s element type, or float32 when dtype_of_ref is False."""
    t = _torch_module(ref)
    if t is not None:
        return t.empty(tuple(shape), dtype=ref.dtype if dtype_of_ref else t.float32)
    if isinstance(ref, np.ndarray):
        return np.empty(tuple(shape), dtype=ref.dtype if dtype_of_ref else np.float32)
    # Another DLPack producer: read its element type through NumPy's view of it.
    dt = np.from_dlpack(ref).dtype if dtype_of_ref else np.float32
    return np.empty(tuple(shape), dtype=dt)


def conv_transpose2d_output_shape(x_shape, w_shape, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                                  *, output_size=None, layout="nchw", weight_layout="pytorch"):
    """Shape of ``conv_transpose2d``'s result (in ``layout``) without computing it."""
    opt = _options(stride, padding, output_padding, groups, dilation, output_size, layout, weight_layout, "fp32",
                   None, False)
    return tuple(_core._output_shape(list(x_shape), list(w_shape), opt))


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     layout="nchw", weight_layout="pytorch", precision="fp32", algorithm=None,
                     output_size=None, allow_nondeterministic=False, out=None, device=None):
    """y = conv_transpose2d(x, w, b) with ``torch.nn.functional.conv_transpose2d``'s geometry.

    precision: "fp32" (default), "tf32", "bf16" or "fp16" — inputs are rounded to it before each multiply,
    products accumulate in float32. algorithm: a name from ``tconv.algorithms()`` to force one (None: the
    library chooses). output_size: an explicit (H, W) of the result instead of output_padding (tconv
    extension; padding may also be negative). out: a preallocated dense output to write into.
    device: the tconv.Device to run on (None: ``default_device()`` for host arrays, the tensors' own GPU for
    CUDA arrays). Returns an array of x's framework and element type (a PyTorch CUDA tensor for CUDA inputs,
    enqueued on PyTorch's current stream).
    """
    geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                    dilation=dilation, output_size=output_size, layout=layout, weight_layout=weight_layout,
                    precision=precision, algorithm=algorithm, allow_nondeterministic=allow_nondeterministic)
    opt = _options(**geometry)
    if _cuda.is_cuda(x) or _cuda.is_cuda(w) or _cuda.is_cuda(b) or _cuda.is_cuda(out):
        y, name = _cuda.conv_transpose2d(x, w, b, geometry, out, device)
        _default.algorithms = {"forward": name}
        return y
    x = _as_input(x, "x")
    w = _as_input(w, "weight")
    b = _as_input(b, "bias", optional=True)
    shape = _core._output_shape(list(x.shape), list(w.shape), opt)
    if out is None:
        y = _empty_like_framework(x, shape)
    else:
        y = out
        if isinstance(y, np.ndarray) and not y.flags.writeable:
            raise _core.InvalidArgumentError("out is a read-only array")
    name = _core._conv_transpose2d(device or default_device(), x, w, b, y, opt)
    _default.algorithms = {"forward": name}
    return y


def conv_transpose2d_backward(dy, x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                              need=("dx", "dw", "db"), layout="nchw", weight_layout="pytorch", precision="fp32",
                              algorithm=None, output_size=None, allow_nondeterministic=False, device=None):
    """Gradients of ``y = conv_transpose2d(x, w, b)`` for ``dy = dL/dy``.

    need: which of "dx", "dw", "db" to compute. Returns a tuple (dx, dw, db) with None for the ones not
    asked for. dx has x's shape and dy's element type; dw has w's shape and db is [Cout], both float32.
    x is read only for dw/db and w only for dx, but both are always needed for their shapes. The geometry
    arguments must be those of the forward call: dy's shape is checked against them.
    """
    need = set(need)
    unknown = need - {"dx", "dw", "db"}
    if unknown:
        raise ValueError(f"need may hold 'dx', 'dw' and 'db', got {sorted(unknown)}")
    geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                    dilation=dilation, output_size=output_size, layout=layout, weight_layout=weight_layout,
                    precision=precision, algorithm=algorithm, allow_nondeterministic=allow_nondeterministic)
    opt = _options(**geometry)
    if _cuda.is_cuda(dy) or _cuda.is_cuda(x) or _cuda.is_cuda(w):
        grads, data_alg, weights_alg = _cuda.conv_transpose2d_backward(dy, x, w, geometry, need, device)
        _default.algorithms = {k: v for k, v in (("backward_data", data_alg), ("backward_weights", weights_alg))
                               if v}
        return grads
    dy = _as_input(dy, "grad_output")
    x = _as_input(x, "x")
    w = _as_input(w, "weight")
    dx = _empty_like_framework(dy, x.shape) if "dx" in need else None
    dw = _empty_like_framework(dy, w.shape, dtype_of_ref=False) if "dw" in need else None
    cout = None
    if "db" in need:
        cout = w.shape[0] if weight_layout == "mps" else w.shape[1] * int(groups)
    db = _empty_like_framework(dy, (cout,), dtype_of_ref=False) if cout is not None else None
    data_alg, weights_alg = _core._conv_transpose2d_backward(device or default_device(), x, w, dy, dx, dw, db, opt)
    _default.algorithms = {k: v for k, v in (("backward_data", data_alg), ("backward_weights", weights_alg)) if v}
    return dx, dw, db
