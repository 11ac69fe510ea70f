"""tconv.torch: the autograd function against torch.autograd.gradcheck, the module as a drop-in for
torch.nn.ConvTranspose2d (constructor, parameters, init, state_dict, output_size), and a module swap in a
small auto-encoder whose training curve must match PyTorch's."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import tconv
import tconv.torch as tt
from conftest import geometry, make_tensors, random_config


@pytest.mark.parametrize("seed", [0, 1, 2, 5, 6, 10, 13])
def test_gradcheck_float64(seed):
    """gradcheck in float64. tconv computes in float32 (float64 tensors are converted), so the numerical
    Jacobian uses eps = 0.1: the function is linear in each of x, w and b, so finite differences are exact
    for any eps and only float32 rounding (~1e-6 relative) separates them from the analytical Jacobian; a
    wrong gradient is off by O(1) and still fails."""
    cfg = random_config(seed)
    cfg["n"] = 1
    x, w, b = make_tensors(cfg, seed, torch.float64)
    inputs = (x.requires_grad_(), w.requires_grad_()) + ((b.requires_grad_(),) if b is not None else ())

    def fn(*args):
        return tt.conv_transpose2d(args[0], args[1], args[2] if len(args) > 2 else None, **geometry(cfg))

    assert torch.autograd.gradcheck(fn, inputs, eps=0.1, atol=1e-4, rtol=1e-3)


def test_gradcheck_detects_a_wrong_gradient():
    """The tolerances above are not so loose that a wrong gradient passes."""
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 2, 2, dtype=torch.float64, requires_grad=True)

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            return tt.conv_transpose2d(x, w)

        @staticmethod
        def backward(ctx, dy):
            return dy.new_zeros(1, 2, 3, 3) + 1e-2, None

    with pytest.raises(Exception):
        torch.autograd.gradcheck(Wrong.apply, (x, w), eps=0.1, atol=1e-4, rtol=1e-3)


def test_module_is_a_drop_in():
    args = (6, 4, 3)
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1, bias=True)
    torch.manual_seed(42)
    ref = nn.ConvTranspose2d(*args, **kwargs)
    torch.manual_seed(42)
    mod = tt.ConvTranspose2d(*args, **kwargs)
    assert isinstance(mod, nn.ConvTranspose2d)
    sd_ref, sd = ref.state_dict(), mod.state_dict()
    assert list(sd) == list(sd_ref) == ["weight", "bias"]
    for k in sd:
        assert sd[k].shape == sd_ref[k].shape
        assert torch.equal(sd[k], sd_ref[k])  # same default initialisation
    mod2 = tt.ConvTranspose2d(*args, **kwargs)
    mod2.load_state_dict(sd_ref)
    ref2 = nn.ConvTranspose2d(*args, **kwargs)
    ref2.load_state_dict(mod.state_dict())
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(mod2(x), ref(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mod(x), ref2(x), rtol=1e-5, atol=1e-5)
    # output_size picks output_padding as PyTorch does.
    torch.testing.assert_close(mod(x, output_size=[9, 10]), ref(x, output_size=[9, 10]), rtol=1e-5, atol=1e-5)
    assert mod(x, output_size=[9, 10]).shape[-2:] == (9, 10)


def test_from_torch_shares_parameters():
    ref = nn.ConvTranspose2d(3, 5, (2, 3), stride=(2, 1), bias=False)
    mod = tt.ConvTranspose2d.from_torch(ref, precision="fp32")
    assert mod.weight is ref.weight and mod.bias is None
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(mod(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_module_gradients_match_torch(seed):
    cfg = random_config(seed)
    torch.manual_seed(seed)
    ref = nn.ConvTranspose2d(cfg["cin"], cfg["cout"], cfg["kernel"], bias=cfg["bias"], **geometry(cfg))
    mod = tt.ConvTranspose2d(cfg["cin"], cfg["cout"], cfg["kernel"], bias=cfg["bias"], **geometry(cfg))
    mod.load_state_dict(ref.state_dict())
    x = torch.randn(cfg["n"], cfg["cin"], cfg["h"], cfg["w"])
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ref(x1), mod(x2)
    dy = torch.randn(y1.shape)
    y1.backward(dy)
    y2.backward(dy)
    torch.testing.assert_close(y2, y1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mod.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if cfg["bias"]:
        torch.testing.assert_close(mod.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)


def test_only_needed_gradients_are_computed():
    mod = tt.ConvTranspose2d(2, 3, 3)
    mod.weight.requires_grad_(False)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    mod(x).sum().backward()
    assert mod.weight.grad is None and mod.bias.grad is not None and x.grad is not None
    assert set(tconv.last_algorithms()) == {"backward_data", "backward_weights"}
    x2 = torch.randn(1, 2, 4, 4)
    mod(x2).sum().backward()  # bias only
    assert set(tconv.last_algorithms()) == {"backward_weights"}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_module_dtypes(dtype):
    mod = tt.ConvTranspose2d(2, 3, 3, stride=2, dtype=dtype)
    ref = nn.ConvTranspose2d(2, 3, 3, stride=2).to(torch.float64)
    ref.load_state_dict({k: v.double() for k, v in mod.state_dict().items()})
    x = torch.randn(2, 2, 4, 4).to(dtype).requires_grad_()
    y = mod(x)
    assert y.dtype == dtype
    y.float().sum().backward()
    assert x.grad.dtype == dtype and mod.weight.grad.dtype == dtype
    tol = {torch.float16: 3e-3, torch.bfloat16: 2e-2, torch.float64: 1e-5}[dtype]
    torch.testing.assert_close(y.double(), ref(x.detach().double()), rtol=tol, atol=tol)


def test_unbatched_input():
    mod = tt.ConvTranspose2d(2, 3, 3)
    x = torch.randn(2, 4, 4)
    assert mod(x).shape == (3, 6, 6)
    torch.testing.assert_close(mod(x), F.conv_transpose2d(x.unsqueeze(0), mod.weight, mod.bias)[0])


def test_module_errors_are_python_exceptions():
    mod = tt.ConvTranspose2d(2, 3, 3)
    with pytest.raises(tconv.InvalidArgumentError, match="channels"):
        mod(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError):
        tt.ConvTranspose2d(2, 3, 3, padding_mode="reflect")(torch.randn(1, 2, 5, 5))


def _autoencoder(transpose_cls):
    """Conv encoder (PyTorch's) + two transposed-convolution decoder layers of the given class."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        transpose_cls(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        transpose_cls(8, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
    )


def _train(transpose_cls, steps=50):
    torch.manual_seed(1234)
    model = _autoencoder(transpose_cls)
    # Smooth random images (bilinear upsampling of 4x4 noise): an auto-encoder of this size learns them
    # within 50 steps, so the curve has shape to compare.
    coarse = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(99))
    data = F.interpolate(coarse, size=16, mode="bilinear", align_corners=False)
    opt = torch.optim.SGD(model.parameters(), lr=2.0, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(data), data)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


def test_module_swap_training_curve_matches_torch():
    ref_losses, ref_model = _train(nn.ConvTranspose2d)
    losses, model = _train(tt.ConvTranspose2d)
    assert losses[-1] < 0.5 * losses[0]  # the network learns
    for step, (a, b) in enumerate(zip(losses, ref_losses)):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b)) + 1e-6, f"step {step}: tconv {a} vs torch {b}"
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=name)
