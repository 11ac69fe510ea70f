"""tconv on CUDA tensors: the functional API and tconv.torch on PyTorch CUDA tensors (and other DLPack CUDA
producers) against PyTorch's CUDA conv_transpose2d, zero copy, stream semantics, autograd, a module swap in
training, the MPS-style objects on a CUDA device (test_objects.py's tests, parametrised), and errors.

The CUDA tests are skipped when PyTorch sees no GPU or tconv was built without CUDA. The first group runs
everywhere: it checks the Python layer's device-side conversions (tconv._cuda: NHWC views, OHWI weights,
memory formats, gradient layouts) with the native CUDA entry points replaced by the CPU ones, which enforce
the same canonical-layout contract.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import tconv
import tconv.torch as tt
from tconv import _core, _cuda
from conftest import geometry, make_tensors, random_config
from test_functional import to_ohwi
from test_torch_module import _autoencoder

HAVE_CUDA = torch.cuda.is_available() and tconv.Device.cuda_device_count() > 0
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="needs a GPU visible to PyTorch and a CUDA build of tconv")

# Unit roundoff of each precision mode's input rounding and of each element type's storage.
U_PRECISION = {"fp32": 0.0, "tf32": 2.0 ** -11, "fp16": 2.0 ** -11, "bf16": 2.0 ** -8}
U_TYPE = {torch.float32: 2.0 ** -24, torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}


def reference(x, w, b, cfg, dy, device):
    """PyTorch's conv_transpose2d on `device` in float64: (y, dx, dw, db) for the given dy."""
    xx = x.to(device, torch.float64).requires_grad_()
    ww = w.to(device, torch.float64).requires_grad_()
    bb = b.to(device, torch.float64).requires_grad_() if b is not None else None
    y = F.conv_transpose2d(xx, ww, bb, **geometry(cfg))
    y.backward(dy.to(device, torch.float64))
    return y.detach(), xx.grad, ww.grad, (bb.grad if bb is not None else None)


def assert_within_bound(got, ref, absref, u_in, u_out, what):
    """Elementwise forward-error bound of a float32-accumulated sum of rounded products:
    |got - ref| <= (2.5 u_in + 2e-5) * (the same sum over |terms|) + 2 u_out |ref| + 1e-6.
    2 u_in: both factors rounded to the precision mode; 2e-5: float32 accumulation over these (< 200-term)
    sums; u_out: rounding of the stored result to its element type."""
    got = got.double()
    err = (got - ref).abs()
    bound = (2.5 * u_in + 2e-5) * absref + 2 * u_out * ref.abs() + 1e-6
    bad = err > bound
    assert not bad.any(), (f"{what}: {int(bad.sum())} elements outside the bound; worst excess "
                           f"{(err - bound).max().item():.3g}, max error {err.max().item():.3g}")


# ---------------------------------------------------------------- the Python layer, everywhere

def test_weight_relayouts_match_the_library():
    """torch_weights_to_ohwi is tconv/convert.hpp's mapping (the test suite's own to_ohwi) and its inverse."""
    for seed in range(8):
        cfg = random_config(seed)
        _, w, _ = make_tensors(cfg, seed)
        o = _cuda.torch_weights_to_ohwi(w, cfg["groups"])
        assert o.is_contiguous() and o.dtype == torch.float32
        torch.testing.assert_close(o, to_ohwi(w, cfg["groups"]), rtol=0, atol=0)
        torch.testing.assert_close(_cuda.ohwi_to_torch_weights(o, cfg["groups"]), w, rtol=0, atol=0)


@pytest.fixture
def emulated_cuda(monkeypatch):
    """tconv._cuda on CPU tensors: every CPU tensor counts as 'CUDA', and the native CUDA entry points are
    the CPU functional ones, called with exactly the arrays (DLPack capsules) and canonical options the
    CUDA ones get; the CPU entry points check shapes, types and density, i.e. the same contract."""
    cpu = tconv.Device.cpu()
    calls = []
    monkeypatch.setattr(_cuda, "is_cuda", lambda a: isinstance(a, torch.Tensor))
    monkeypatch.setattr(_cuda, "_device_index", lambda t: 0)
    monkeypatch.setattr(_cuda, "_current_stream", lambda index: 0)
    monkeypatch.setattr(_cuda, "_tconv_device", lambda index, requested: cpu)

    def forward(dev, x, w, b, y, opt, stream, workspace):
        assert (opt.layout, opt.weight_layout, stream) == ("nhwc", "mps", 0)
        calls.append("forward")
        return _core._conv_transpose2d(dev, x, w, b, y, opt)

    def backward(dev, x_shape, w_shape, x, w, dy, dx, dw, db, opt, stream, workspace):
        assert (opt.layout, opt.weight_layout) == ("nhwc", "mps")
        calls.append("backward")
        # The CPU entry point wants x and w for their shapes even where it does not read them.
        x = x if x is not None else torch.zeros(x_shape).__dlpack__()
        w = w if w is not None else torch.zeros(w_shape).__dlpack__()
        return _core._conv_transpose2d_backward(dev, x, w, dy, dx, dw, db, opt)

    monkeypatch.setattr(_core, "_cuda_conv_transpose2d", forward)
    monkeypatch.setattr(_core, "_cuda_conv_transpose2d_backward", backward)
    return calls


@pytest.mark.parametrize("seed", [0, 1, 4, 7])
@pytest.mark.parametrize("layout, weight_layout, channels_last",
                         [("nchw", "pytorch", False), ("nchw", "pytorch", True), ("nhwc", "mps", False),
                          ("nchw", "mps", False), ("nhwc", "pytorch", False)])
def test_python_layer_conversions(emulated_cuda, seed, layout, weight_layout, channels_last):
    cfg = random_config(seed)
    x, w, b = make_tensors(cfg, seed)
    dy = torch.randn(cfg["n"], cfg["cout"], *F.conv_transpose2d(x, w, **geometry(cfg)).shape[2:])
    y_ref, dx_ref, dw_ref, db_ref = reference(x, w, b, cfg, dy, "cpu")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        dy = dy.contiguous(memory_format=torch.channels_last)
    to = (lambda t: t.permute(0, 2, 3, 1).contiguous()) if layout == "nhwc" else (lambda t: t)
    back = (lambda t: t.permute(0, 3, 1, 2)) if layout == "nhwc" else (lambda t: t)
    wl = to_ohwi(w, cfg["groups"]) if weight_layout == "mps" else w
    kw = dict(geometry(cfg), layout=layout, weight_layout=weight_layout)

    y = tconv.conv_transpose2d(to(x), wl, b, **kw)
    assert emulated_cuda == ["forward"]
    torch.testing.assert_close(back(y).double(), y_ref, rtol=1e-5, atol=1e-5)
    # PyTorch's memory-format rule: channels-last in, channels-last out; contiguous otherwise.
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    for need in (("dx", "dw", "db"), ("dx",), ("db",), ("dw",)):
        dx, dw, db = tconv.conv_transpose2d_backward(to(dy), to(x), wl, **kw, need=need)
        assert (dx is not None, dw is not None, db is not None) == ("dx" in need, "dw" in need, "db" in need)
        if dx is not None:
            torch.testing.assert_close(back(dx).double(), dx_ref, rtol=1e-5, atol=1e-5)
            assert dx.shape == to(x).shape
        if dw is not None:
            want = to_ohwi(dw_ref.float(), cfg["groups"]).double() if weight_layout == "mps" else dw_ref
            torch.testing.assert_close(dw.double(), want, rtol=1e-5, atol=1e-5)
        if db is not None:
            torch.testing.assert_close(db.double(), dy.double().sum(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)

    out = torch.empty_like(to(y_ref.float()))
    if channels_last and layout == "nchw":
        out = out.contiguous(memory_format=torch.channels_last)
    got = tconv.conv_transpose2d(to(x), wl, b, **kw, out=out)
    assert got is out
    torch.testing.assert_close(back(out).double(), y_ref, rtol=1e-5, atol=1e-5)


def test_python_layer_autograd(emulated_cuda):
    """tconv.torch's autograd function goes through the CUDA path for 'CUDA' tensors."""
    cfg = random_config(3)
    torch.manual_seed(3)
    ref = nn.ConvTranspose2d(cfg["cin"], cfg["cout"], cfg["kernel"], bias=cfg["bias"], **geometry(cfg))
    mod = tt.ConvTranspose2d.from_torch(ref)
    x = torch.randn(cfg["n"], cfg["cin"], cfg["h"], cfg["w"])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1 = ref(x1)
    y2 = mod(x2)
    y1.square().sum().backward()
    w_grad = ref.weight.grad.clone()
    ref.weight.grad = None
    y2.square().sum().backward()
    assert "forward" in emulated_cuda and "backward" in emulated_cuda
    torch.testing.assert_close(y2, y1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ref.weight.grad, w_grad, rtol=1e-4, atol=1e-4)


def test_python_layer_errors(emulated_cuda):
    x, w = torch.randn(1, 4, 5, 5), torch.randn(4, 2, 3, 3)
    with pytest.raises(tconv.InvalidArgumentError, match="channels"):
        tconv.conv_transpose2d(torch.randn(1, 3, 5, 5), w)
    with pytest.raises(tconv.InvalidArgumentError, match="float64"):
        tconv.conv_transpose2d(x.double(), w)
    with pytest.raises(tconv.InvalidArgumentError, match="grad_output has shape"):
        tconv.conv_transpose2d_backward(torch.randn(1, 2, 6, 6), x, w)
    with pytest.raises(tconv.InvalidArgumentError, match="out has shape"):
        tconv.conv_transpose2d(x, w, out=torch.empty(1, 2, 6, 6))


# ---------------------------------------------------------------- on the GPU

@pytest.fixture
def cuda_exact():
    """PyTorch's own CUDA kernels in exact float32 (no TF32) and deterministic, for the references."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    yield
    (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.deterministic,
     torch.backends.cudnn.benchmark) = saved


PRECISIONS = [(torch.float32, "fp32"), (torch.float32, "tf32"), (torch.float32, "bf16"), (torch.float32, "fp16"),
              (torch.float16, "fp32"), (torch.float16, "fp16"), (torch.bfloat16, "fp32"), (torch.bfloat16, "bf16")]


@needs_cuda
@pytest.mark.parametrize("dtype, precision", PRECISIONS)
@pytest.mark.parametrize("seed", [0, 2, 5, 9, 13])
def test_cuda_forward_and_backward_match_torch(cuda_exact, dtype, precision, seed):
    cfg = random_config(seed)
    x, w, b = make_tensors(cfg, seed, dtype)
    dev = torch.device("cuda")
    x, w = x.to(dev), w.to(dev)
    b = b.to(dev) if b is not None else None
    y_shape = F.conv_transpose2d(x.double(), w.double(), **geometry(cfg)).shape
    dy = torch.randn(y_shape, generator=torch.Generator().manual_seed(seed + 100)).to(dtype).to(dev)
    y_ref, dx_ref, dw_ref, db_ref = reference(x, w, b, cfg, dy, dev)
    ay, adx, adw, _ = reference(x.abs(), w.abs(), b.abs() if b is not None else None, cfg, dy.abs(), dev)
    u_in = U_PRECISION[precision]

    y = tconv.conv_transpose2d(x, w, b, **geometry(cfg), precision=precision)
    assert y.device == x.device and y.dtype == dtype and y.shape == y_ref.shape
    assert tconv.last_algorithms()["forward"].startswith("cuda_")
    assert_within_bound(y, y_ref, ay, u_in, U_TYPE[dtype], "y")

    dx, dw, db = tconv.conv_transpose2d_backward(dy, x, w, **geometry(cfg), precision=precision)
    assert all(t.startswith("cuda_") for t in tconv.last_algorithms().values())
    assert dx.dtype == dtype and dw.dtype == torch.float32 and db.dtype == torch.float32
    assert dx.device == dw.device == db.device == x.device
    assert_within_bound(dx, dx_ref, adx, u_in, U_TYPE[dtype], "dx")
    assert_within_bound(dw, dw_ref, adw, u_in, U_TYPE[torch.float32], "dw")
    torch.testing.assert_close(db.double(), dy.double().sum(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("algorithm", tconv.algorithms("cuda") if HAVE_CUDA else [])
@pytest.mark.parametrize("seed", [3, 7])
def test_cuda_every_algorithm_that_takes_the_problem(cuda_exact, algorithm, seed):
    """Forcing a CUDA algorithm runs it (tf32 precision: every CUDA algorithm has it) or raises a tconv
    error saying why not; cuda_direct takes every problem."""
    cfg = random_config(seed)
    x, w, b = (t.cuda() if t is not None else None for t in make_tensors(cfg, seed))
    dy = torch.randn(F.conv_transpose2d(x, w, **geometry(cfg)).shape, device="cuda")
    y_ref, dx_ref, dw_ref, _ = reference(x, w, b, cfg, dy, "cuda")
    ay, adx, adw, _ = reference(x.abs(), w.abs(), b.abs() if b is not None else None, cfg, dy.abs(), "cuda")
    kw = dict(geometry(cfg), precision="tf32", algorithm=algorithm, allow_nondeterministic=True)
    ran = 0
    try:
        y = tconv.conv_transpose2d(x, w, b, **kw)
        assert tconv.last_algorithms() == {"forward": algorithm}
        assert_within_bound(y, y_ref, ay, U_PRECISION["tf32"], 2.0 ** -24, "y")
        ran += 1
    except tconv.Error as e:
        assert e.code == "unsupported", str(e)
    for need, ref, absref in (("dx", dx_ref, adx), ("dw", dw_ref, adw)):
        try:
            got = tconv.conv_transpose2d_backward(dy, x, w, **kw, need=(need,))
            assert_within_bound(got[0] if need == "dx" else got[1], ref, absref, U_PRECISION["tf32"], 2.0 ** -24, need)
            ran += 1
        except tconv.Error as e:
            assert e.code == "unsupported", str(e)
    if algorithm == "cuda_direct":
        assert ran == 3


@needs_cuda
@pytest.mark.parametrize("layout, weight_layout", [("nhwc", "mps"), ("nhwc", "pytorch"), ("nchw", "mps")])
def test_cuda_layouts(cuda_exact, layout, weight_layout):
    cfg = random_config(11)
    x, w, b = (t.cuda() if t is not None else None for t in make_tensors(cfg, 11))
    dy = torch.randn(F.conv_transpose2d(x, w, **geometry(cfg)).shape, device="cuda")
    y_ref, dx_ref, dw_ref, db_ref = reference(x, w, b, cfg, dy, "cuda")
    to = (lambda t: t.permute(0, 2, 3, 1).contiguous()) if layout == "nhwc" else (lambda t: t)
    back = (lambda t: t.permute(0, 3, 1, 2)) if layout == "nhwc" else (lambda t: t)
    wl = to_ohwi(w.cpu(), cfg["groups"]).cuda() if weight_layout == "mps" else w
    kw = dict(geometry(cfg), layout=layout, weight_layout=weight_layout)
    y = tconv.conv_transpose2d(to(x), wl, b, **kw)
    torch.testing.assert_close(back(y).double(), y_ref, rtol=1e-5, atol=1e-5)
    dx, dw, db = tconv.conv_transpose2d_backward(to(dy), to(x), wl, **kw)
    torch.testing.assert_close(back(dx).double(), dx_ref, rtol=1e-5, atol=1e-5)
    want = to_ohwi(dw_ref.float().cpu(), cfg["groups"]).cuda().double() if weight_layout == "mps" else dw_ref
    torch.testing.assert_close(dw.double(), want, rtol=1e-5, atol=1e-5)


@needs_cuda
def test_cuda_zero_copy(monkeypatch):
    """No copies where the memory already has the kernels' layout: the arrays tconv is handed are the
    caller's own (same data_ptr), results are written in place, and the DLPack import is zero-copy."""
    cfg = random_config(2)
    x, w, b = make_tensors(cfg, 2)
    b = torch.randn(cfg["cout"])
    x_nhwc = x.permute(0, 2, 3, 1).contiguous().cuda()
    w_ohwi = to_ohwi(w, cfg["groups"]).cuda()
    b = b.cuda()
    stream = torch.cuda.current_stream().cuda_stream
    for t in (x_nhwc, w_ohwi, b):
        assert _core._cuda_data_pointer(_cuda._export(t, stream)) == t.data_ptr()
    exported = []
    real_export = _cuda._export
    monkeypatch.setattr(_cuda, "_export", lambda t, s: (exported.append(t.data_ptr()), real_export(t, s))[1])

    kw = dict(geometry(cfg), layout="nhwc", weight_layout="mps")
    y = tconv.conv_transpose2d(x_nhwc, w_ohwi, b, **kw)
    assert exported[:4] == [x_nhwc.data_ptr(), w_ohwi.data_ptr(), b.data_ptr(), y.data_ptr()]
    out = torch.empty_like(y)
    exported.clear()
    assert tconv.conv_transpose2d(x_nhwc, w_ohwi, b, **kw, out=out) is out
    assert exported[3] == out.data_ptr()
    torch.testing.assert_close(out, y, rtol=0, atol=0)

    dy = torch.randn_like(y)
    exported.clear()
    dx, dw, db = tconv.conv_transpose2d_backward(dy, x_nhwc, w_ohwi, **kw)
    assert set(exported) >= {x_nhwc.data_ptr(), w_ohwi.data_ptr(), dy.data_ptr(), dx.data_ptr(), dw.data_ptr(),
                             db.data_ptr()}

    # NCHW in channels-last memory format: the NHWC view is the tensor's own memory, in and out.
    x_cl = x.cuda().contiguous(memory_format=torch.channels_last)
    exported.clear()
    y_cl = tconv.conv_transpose2d(x_cl, w_ohwi, b, **geometry(cfg), weight_layout="mps")
    assert exported[0] == x_cl.data_ptr() and exported[3] == y_cl.data_ptr()
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl.permute(0, 2, 3, 1), y, rtol=1e-6, atol=1e-6)


@needs_cuda
def test_cuda_no_host_synchronisation(cuda_exact):
    """The Python layer makes no PyTorch call that synchronises with the host (no .item(), no copies to the
    CPU): PyTorch's sync debug mode turns any such call into an error."""
    cfg = random_config(4)
    x, w, b = (t.cuda() if t is not None else None for t in make_tensors(cfg, 4))
    mod = tt.ConvTranspose2d(cfg["cin"], cfg["cout"], cfg["kernel"], bias=cfg["bias"], **geometry(cfg)).cuda()
    xr = x.clone().requires_grad_()
    mod(xr).sum().backward()  # first call: cuDNN's algorithm search (not a PyTorch operation) happens here
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = mod(xr)
        y.sum().backward()
        tconv.conv_transpose2d(x, w, b, **geometry(cfg))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@needs_cuda
def test_cuda_runs_on_the_current_stream(cuda_exact):
    """Work is ordered on PyTorch's current stream: on a side stream, x is written after a long GPU sleep and
    read by tconv right after, without any synchronisation — correct only if tconv's kernels queue behind
    the write on the same stream. The result (and its gradient) then match a run on settled inputs."""
    cfg = random_config(6)
    x, w, b = (t.cuda() if t is not None else None for t in make_tensors(cfg, 6))
    y_ref = tconv.conv_transpose2d(x, w, b, **geometry(cfg))
    dy = torch.randn_like(y_ref)
    dx_ref, dw_ref, _ = tconv.conv_transpose2d_backward(dy, x, w, **geometry(cfg))
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        xs = torch.zeros_like(x)
        torch.cuda._sleep(50_000_000)  # ~25 ms of GPU time on this stream
        xs.copy_(x)
        y = tconv.conv_transpose2d(xs, w, b, **geometry(cfg))
        dx, dw, _ = tconv.conv_transpose2d_backward(dy, xs, w, **geometry(cfg))
    side.synchronize()
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(dx, dx_ref, rtol=0, atol=0)
    torch.testing.assert_close(dw, dw_ref, rtol=0, atol=0)


class _Producer:
    """A DLPack producer that is not a PyTorch tensor (the protocol's two methods only)."""

    def __init__(self, t):
        self._t = t
        self.streams = []

    def __dlpack__(self, stream=None, **kwargs):
        self.streams.append(stream)
        return self._t.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return self._t.__dlpack_device__()


@needs_cuda
def test_cuda_other_dlpack_producers(cuda_exact):
    cfg = random_config(8)
    x, w, b = (t.cuda() if t is not None else None for t in make_tensors(cfg, 8))
    y_ref = F.conv_transpose2d(x, w, b, **geometry(cfg))
    px, pw = _Producer(x), _Producer(w)
    y = tconv.conv_transpose2d(px, pw, b, **geometry(cfg))
    assert isinstance(y, torch.Tensor) and y.is_cuda
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    # torch.from_dlpack named the consumer's stream (DLPack: 1 is the legacy default stream).
    assert px.streams and all(s is not None for s in px.streams)
    cp = pytest.importorskip("cupy")
    y2 = tconv.conv_transpose2d(cp.asarray(x), cp.asarray(w), cp.asarray(b) if b is not None else None,
                                **geometry(cfg))
    torch.testing.assert_close(y2, y_ref, rtol=1e-5, atol=1e-5)
    assert cp.from_dlpack(y2).shape == tuple(y2.shape)  # back to CuPy without a copy


@needs_cuda
def test_cuda_host_arrays_on_a_cuda_device():
    """Host tensors with device=Device.cuda(0): the library's staged path (copies through the GPU)."""
    cfg = random_config(1)
    x, w, b = make_tensors(cfg, 1)
    y = tconv.conv_transpose2d(x, w, b, **geometry(cfg), device=tconv.Device.cuda(0))
    assert y.device.type == "cpu" and tconv.last_algorithms()["forward"].startswith("cuda_")
    torch.testing.assert_close(y, F.conv_transpose2d(x, w, b, **geometry(cfg)), rtol=1e-4, atol=1e-4)


@needs_cuda
@pytest.mark.parametrize("seed", [0, 1, 5, 10])
def test_cuda_gradcheck_float64(seed):
    """gradcheck on CUDA float64 tensors. tconv has no float64 kernels: tconv.torch computes float64 tensors
    in float32 (as on the CPU, test_torch_module.py), so eps = 0.1 with the CPU test's tolerances."""
    cfg = random_config(seed)
    cfg["n"] = 1
    x, w, b = (t.cuda() if t is not None else None for t in make_tensors(cfg, seed, torch.float64))
    inputs = (x.requires_grad_(), w.requires_grad_()) + ((b.requires_grad_(),) if b is not None else ())

    def fn(*args):
        return tt.conv_transpose2d(args[0], args[1], args[2] if len(args) > 2 else None, **geometry(cfg))

    assert torch.autograd.gradcheck(fn, inputs, eps=0.1, atol=1e-4, rtol=1e-3)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_module_gradients_match_torch(cuda_exact, dtype):
    cfg = random_config(3)
    torch.manual_seed(3)
    ref = nn.ConvTranspose2d(cfg["cin"], cfg["cout"], cfg["kernel"], bias=cfg["bias"], **geometry(cfg))
    ref = ref.to("cuda", dtype)
    mod = tt.ConvTranspose2d.from_torch(ref)
    x = torch.randn(cfg["n"], cfg["cin"], cfg["h"], cfg["w"], device="cuda").to(dtype)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1 = ref(x1)
    dy = torch.randn_like(y1)
    y1.backward(dy)
    g_ref = [p.grad.clone() for p in ref.parameters()]
    ref.zero_grad(set_to_none=True)
    y2 = mod(x2)
    y2.backward(dy)
    assert y2.dtype == dtype and y2.is_cuda and x2.grad.dtype == dtype
    tol = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(y2, y1, rtol=tol, atol=tol)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=tol, atol=tol)
    for p, g in zip(mod.parameters(), g_ref):
        torch.testing.assert_close(p.grad, g, rtol=tol, atol=tol * 10)


def _train_cuda(transpose_cls, steps=50):
    torch.manual_seed(1234)
    model = _autoencoder(transpose_cls).cuda()
    coarse = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(99))
    data = F.interpolate(coarse, size=16, mode="bilinear", align_corners=False).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=2.0, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(data), data)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return [v.item() for v in losses], model


@needs_cuda
def test_cuda_module_swap_training_curve_matches_torch(cuda_exact):
    """test_torch_module.py's auto-encoder on the GPU: the decoder's two ConvTranspose2d swapped for
    tconv's; 50 SGD steps; the loss curve must follow PyTorch's (exact float32 cuDNN, no TF32)."""
    ref_losses, ref_model = _train_cuda(nn.ConvTranspose2d)
    losses, model = _train_cuda(tt.ConvTranspose2d)
    assert losses[-1] < 0.5 * losses[0]
    for step, (a, b) in enumerate(zip(losses, ref_losses)):
        assert abs(a - b) <= 2e-4 * max(1.0, abs(b)) + 1e-6, f"step {step}: tconv {a} vs torch {b}"
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=name)


@needs_cuda
def test_cuda_errors_are_python_exceptions():
    x, w = torch.randn(1, 4, 5, 5, device="cuda"), torch.randn(4, 2, 3, 3, device="cuda")
    with pytest.raises(tconv.InvalidArgumentError, match="on cpu"):
        tconv.conv_transpose2d(x, w.cpu())
    with pytest.raises(tconv.InvalidArgumentError, match="on cpu"):
        tconv.conv_transpose2d_backward(torch.randn(1, 2, 7, 7, device="cuda"), x.cpu(), w)
    with pytest.raises(tconv.InvalidArgumentError, match="device"):
        tconv.conv_transpose2d(x, w, device=tconv.Device.cpu())
    with pytest.raises(tconv.InvalidArgumentError, match="float64"):
        tconv.conv_transpose2d(x.double(), w)
    with pytest.raises(tconv.InvalidArgumentError, match="channels"):
        tconv.conv_transpose2d(torch.randn(1, 3, 5, 5, device="cuda"), w)
    with pytest.raises(tconv.InvalidArgumentError, match="grad_output has shape"):
        tconv.conv_transpose2d_backward(torch.randn(1, 2, 6, 6, device="cuda"), x, w)
    with pytest.raises(tconv.InvalidArgumentError, match="no_such_algorithm"):
        tconv.conv_transpose2d(x, w, algorithm="no_such_algorithm")
    with pytest.raises(tconv.Error):
        tconv.conv_transpose2d(x, w, algorithm="cpu_ref_f64")  # a CPU algorithm on a CUDA device
    with pytest.raises(ValueError):
        tt.conv_transpose2d(x, w, stride=0)
    y = tconv.conv_transpose2d(x, w)  # the failures above left nothing behind
    torch.testing.assert_close(y, F.conv_transpose2d(x, w), rtol=1e-4, atol=1e-4)
