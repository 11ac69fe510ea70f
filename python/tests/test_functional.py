"""tconv.conv_transpose2d / conv_transpose2d_backward against PyTorch (CPU), on PyTorch tensors and NumPy
arrays, both activation layouts, MPS weight layout, every registered CPU algorithm, reduced precisions, the
zero-copy DLPack path, and the mapping of library errors to Python exceptions."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tconv
from conftest import geometry, make_tensors, random_config

SEEDS = list(range(24))


def torch_reference(x, w, b, cfg, dy=None):
    """PyTorch's y and, for a given dy, (dx, dw, db) — in float64 so that it is the more exact side."""
    xx = x.double().requires_grad_()
    ww = w.double().requires_grad_()
    bb = b.double().requires_grad_() if b is not None else None
    y = F.conv_transpose2d(xx, ww, bb, **geometry(cfg))
    if dy is None:
        return y.detach()
    y.backward(dy.double())
    return y.detach(), xx.grad, ww.grad, (bb.grad if bb is not None else None)


def close(a, ref, tol):
    a = torch.as_tensor(a).double()
    scale = max(1.0, ref.abs().max().item())
    err = (a - ref).abs().max().item() if ref.numel() else 0.0
    assert err <= tol * scale, f"max error {err} > {tol} * {scale}"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_forward_and_backward_match_torch(seed, layout):
    cfg = random_config(seed)
    x, w, b = make_tensors(cfg, seed)
    y_ref = torch_reference(x, w, b, cfg)
    dy = torch.randn(y_ref.shape)
    _, dx_ref, dw_ref, db_ref = torch_reference(x, w, b, cfg, dy)
    to = (lambda t: t.permute(0, 2, 3, 1).contiguous()) if layout == "nhwc" else (lambda t: t)
    back = (lambda t: t.permute(0, 3, 1, 2)) if layout == "nhwc" else (lambda t: t)

    y = tconv.conv_transpose2d(to(x), w, b, **geometry(cfg), layout=layout)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    close(back(y), y_ref, 1e-5)

    dx, dw, db = tconv.conv_transpose2d_backward(to(dy), to(x), w, **geometry(cfg), layout=layout)
    close(back(dx), dx_ref, 1e-5)
    close(dw, dw_ref, 1e-5)
    close(db, dy.double().sum(dim=(0, 2, 3)), 1e-5)
    assert dw.dtype == torch.float32 and db.shape == (cfg["cout"],)


@pytest.mark.parametrize("algorithm", tconv.algorithms("cpu"))
@pytest.mark.parametrize("seed", [3, 7, 11])
def test_every_cpu_algorithm_that_takes_the_problem(algorithm, seed):
    """Forcing an algorithm either runs it (and matches PyTorch) or raises a tconv error saying why not."""
    cfg = random_config(seed)
    x, w, b = make_tensors(cfg, seed)
    y_ref = torch_reference(x, w, b, cfg)
    dy = torch.randn(y_ref.shape)
    _, dx_ref, dw_ref, _ = torch_reference(x, w, b, cfg, dy)
    ran = 0
    try:
        y = tconv.conv_transpose2d(x, w, b, **geometry(cfg), algorithm=algorithm)
        assert tconv.last_algorithms() == {"forward": algorithm}
        close(y, y_ref, 1e-5)
        ran += 1
    except tconv.Error as e:
        assert algorithm in str(e) or "decline" in str(e).lower() or e.code == "unsupported", str(e)
    for need, ref in (("dx", dx_ref), ("dw", dw_ref)):
        try:
            got = tconv.conv_transpose2d_backward(dy, x, w, **geometry(cfg), need=(need,), algorithm=algorithm)
            close(got[0] if need == "dx" else got[1], ref, 1e-5)
            ran += 1
        except tconv.Error as e:
            assert e.code in ("unsupported", "invalid_argument"), str(e)
    if algorithm == "cpu_ref_f64":
        assert ran == 3  # the reference takes every problem


def test_numpy_in_numpy_out():
    cfg = random_config(5)
    x, w, b = make_tensors(cfg, 5)
    y = tconv.conv_transpose2d(x.numpy(), w.numpy(), b.numpy() if b is not None else None, **geometry(cfg))
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    close(y, torch_reference(x, w, b, cfg), 1e-5)
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    dx, dw, db = tconv.conv_transpose2d_backward(dy, x.numpy(), w.numpy(), **geometry(cfg))
    assert all(isinstance(a, np.ndarray) for a in (dx, dw, db))
    _, dx_ref, dw_ref, _ = torch_reference(x, w, b, cfg, torch.from_numpy(dy))
    close(dx, dx_ref, 1e-5)
    close(dw, dw_ref, 1e-5)


def to_ohwi(w_torch, groups):
    """PyTorch [Cin][Cout/G][kH][kW] -> MPS OHWI [Cout][kH][kW][Cin/G] (spec a.13: rotated kernel)."""
    cin, og, kh, kw = w_torch.shape
    ig = cin // groups
    out = torch.empty(og * groups, kh, kw, ig)
    for g in range(groups):
        blk = w_torch[g * ig:(g + 1) * ig]  # [Ig][Og][kH][kW]
        out[g * og:(g + 1) * og] = blk.flip(2, 3).permute(1, 2, 3, 0)
    return out.contiguous()


@pytest.mark.parametrize("seed", [1, 2, 9])
def test_mps_weight_layout(seed):
    cfg = random_config(seed)
    x, w, b = make_tensors(cfg, seed)
    y = tconv.conv_transpose2d(x, to_ohwi(w, cfg["groups"]), b, **geometry(cfg), weight_layout="mps")
    close(y, torch_reference(x, w, b, cfg), 1e-5)
    dy = torch.randn(y.shape)
    _, dw, _ = tconv.conv_transpose2d_backward(dy, x, to_ohwi(w, cfg["groups"]), **geometry(cfg),
                                                  weight_layout="mps", need=("dw",))
    _, _, dw_ref, _ = torch_reference(x, w, b, cfg, dy)
    close(dw, to_ohwi(dw_ref.float(), cfg["groups"]).double(), 1e-5)


@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
def test_half_types(dtype, tol):
    """Storage types: the result of float16/bfloat16 inputs is rounded once to the type (float32 sums)."""
    cfg = random_config(4)
    x, w, b = make_tensors(cfg, 4, dtype)
    y = tconv.conv_transpose2d(x, w, b, **geometry(cfg))
    assert y.dtype == dtype
    close(y, torch_reference(x.double(), w.double(), b.double() if b is not None else None, cfg), tol)
    dy = torch.randn(y.shape).to(dtype)
    dx, dw, db = tconv.conv_transpose2d_backward(dy, x, w, **geometry(cfg))
    assert dx.dtype == dtype and dw.dtype == torch.float32 and db.dtype == torch.float32
    _, dx_ref, dw_ref, _ = torch_reference(x.double(), w.double(), b, cfg, dy.double())
    close(dx, dx_ref, tol)
    close(dw, dw_ref, 1e-5)  # float32 accumulation of exactly representable products


def test_precision_mode_rounds_inputs():
    """precision="bf16": inputs rounded to bfloat16 before the multiply, float32 accumulation."""
    cfg = dict(random_config(8), bias=False)
    x, w, _ = make_tensors(cfg, 8)
    y = tconv.conv_transpose2d(x, w, **geometry(cfg), precision="bf16")
    ref_rounded = torch_reference(x.bfloat16().double(), w.bfloat16().double(), None, cfg)
    close(y, ref_rounded, 1e-5)
    exact = torch_reference(x, w, None, cfg)
    assert (y.double() - exact).abs().max() > 1e-4  # the rounding is visible: the option was honoured


def test_zero_copy_dlpack_inputs_and_out():
    x = torch.randn(2, 3, 4, 5)
    w = torch.randn(3, 2, 3, 3)
    assert tconv._core._data_pointer(x) == x.data_ptr()
    assert tconv._core._data_pointer(x.numpy()) == x.data_ptr()
    out = torch.full((2, 2, 6, 7), float("nan"))
    ptr = out.data_ptr()
    y = tconv.conv_transpose2d(x, w, out=out)
    assert y is out and out.data_ptr() == ptr
    close(out, F.conv_transpose2d(x.double(), w.double()), 1e-5)


def test_non_contiguous_inputs_are_accepted():
    x = torch.randn(2, 5, 4, 3).permute(0, 3, 2, 1)  # NCHW view of other memory
    w = torch.randn(3, 4, 2, 2)
    close(tconv.conv_transpose2d(x, w, stride=2), F.conv_transpose2d(x.double(), w.double(), stride=2), 1e-5)


def test_backward_need_selects_outputs():
    x, w = torch.randn(1, 2, 3, 3), torch.randn(2, 2, 3, 3)
    dy = torch.randn(1, 2, 5, 5)
    dx, dw, db = tconv.conv_transpose2d_backward(dy, x, w, need=("db",))
    assert dx is None and dw is None
    close(db, dy.double().sum(dim=(0, 2, 3)), 1e-6)
    assert set(tconv.last_algorithms()) == {"backward_weights"}
    with pytest.raises(ValueError, match="need"):
        tconv.conv_transpose2d_backward(dy, x, w, need=("dz",))


def test_output_shape_helper():
    assert tconv.conv_transpose2d_output_shape((2, 3, 4, 5), (3, 6, 3, 3), stride=2, padding=1,
                                               output_padding=1) == (2, 6, 8, 10)


@pytest.mark.parametrize(
    "call,cls,words",
    [
        (lambda x, w: tconv.conv_transpose2d(x, w, groups=2), tconv.InvalidArgumentError, ["3", "groups"]),
        (lambda x, w: tconv.conv_transpose2d(x[0], w), tconv.InvalidArgumentError, ["4-D"]),
        (lambda x, w: tconv.conv_transpose2d(x.double(), w), tconv.InvalidArgumentError, ["float64"]),
        (lambda x, w: tconv.conv_transpose2d(x.int(), w), tconv.InvalidArgumentError, ["int32"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, output_padding=1), tconv.InvalidArgumentError,
         ["output_padding"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, stride=0), tconv.InvalidArgumentError, ["stride"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, layout="nwhc"), tconv.InvalidArgumentError, ["nwhc"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, precision="fp8"), tconv.InvalidArgumentError, ["fp8"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, algorithm="no_such_algorithm"), tconv.Error,
         ["no_such_algorithm"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, torch.zeros(5)), tconv.InvalidArgumentError, ["bias"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, out=torch.empty(1, 2, 6, 5)), tconv.InvalidArgumentError,
         ["shape"]),
        (lambda x, w: tconv.conv_transpose2d(x, w, out=torch.empty(1, 2, 6, 12)[..., ::2]),
         tconv.InvalidArgumentError, ["dense"]),
        (lambda x, w: tconv.conv_transpose2d_backward(torch.zeros(1, 2, 5, 5), x, w), tconv.InvalidArgumentError,
         ["shape"]),
    ],
)
def test_errors_become_python_exceptions(call, cls, words):
    x, w = torch.randn(1, 3, 4, 4), torch.randn(3, 2, 3, 3)
    with pytest.raises(cls) as info:
        call(x, w)
    assert isinstance(info.value, tconv.Error) and isinstance(info.value, RuntimeError)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert isinstance(info.value.code, str)


def test_python_level_argument_errors():
    x, w = torch.randn(1, 3, 4, 4), torch.randn(3, 2, 3, 3)
    with pytest.raises(TypeError, match="weight"):
        tconv.conv_transpose2d(x, None)
    with pytest.raises(ValueError, match="stride"):
        tconv.conv_transpose2d(x, w, stride=(1, 2, 3))
    ro = np.zeros((1, 2, 6, 6), np.float32)
    ro.flags.writeable = False
    with pytest.raises(tconv.InvalidArgumentError, match="read-only"):
        tconv.conv_transpose2d(x.numpy(), w.numpy(), out=ro)


def test_extensions_output_size_and_negative_padding():
    """tconv's extensions: an explicit output size (here larger than PyTorch's: the extra rows and
    columns receive no taps) and negative padding (= PyTorch's result with a zero border added)."""
    x, w = torch.randn(2, 3, 4, 5), torch.randn(3, 2, 3, 3)
    ref = F.conv_transpose2d(x.double(), w.double(), stride=2)  # [2, 2, 9, 11]
    y = tconv.conv_transpose2d(x, w, stride=2, output_size=(10, 12))
    assert y.shape == (2, 2, 10, 12)
    close(y[:, :, :9, :11], ref, 1e-5)
    assert torch.count_nonzero(y[:, :, 9:, :]) == 0 and torch.count_nonzero(y[:, :, :, 11:]) == 0
    y = tconv.conv_transpose2d(x, w, stride=2, padding=-1)
    assert y.shape == (2, 2, 11, 13)
    close(y, F.pad(ref, (1, 1, 1, 1)), 1e-5)


def test_error_classes_follow_codes():
    assert issubclass(tconv.InvalidArgumentError, ValueError)
    assert issubclass(tconv.UnsupportedError, NotImplementedError)
    assert issubclass(tconv.OutOfMemoryError, MemoryError)
    assert issubclass(tconv.FileError, OSError)
    with pytest.raises(tconv.DeviceUnavailableError if tconv.Device.cuda_device_count() == 0 else AssertionError):
        if tconv.Device.cuda_device_count() == 0:
            tconv.Device.cuda(0)
        else:
            raise AssertionError("a CUDA device exists")
