"""The MPS-style objects from Python: Image transfers, ConvolutionTranspose (explicit-destination and
training encodes), ConvolutionTransposeGradient, the states, and the optimizers' state form — each checked
against PyTorch or the optimizer's formula, plus error reporting through CommandBuffer."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tconv
from test_functional import to_ohwi


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """Every object test runs on the CPU and, in a CUDA build with a GPU, on CUDA device 0 (the objects keep
    their memory on the device; Image.from_numpy / to_numpy copy through the host)."""
    if request.param == "cuda":
        if tconv.Device.cuda_device_count() == 0:
            pytest.skip("no CUDA device (or tconv built without CUDA)")
        return tconv.Device.cuda(0)
    return tconv.Device.cpu()


def mps_offsets(padding, kernel, stride, dilation):
    """PyTorch padding -> MPS (offset, kernelOffset) on one axis (tconv/convert.hpp, spec a.13)."""
    ke = (kernel - 1) * dilation + 1
    total = padding + ke // 2 - (ke - 1)
    return total // stride, total % stride


def torch_from_total_offset(x, w, b, stride, dilation, total, out_hw):
    """PyTorch oracle for an MPS transpose with total offsets T and an explicit output size: the full
    (padding-0) result, then cropped/zero-extended: y[j] = full[j + P] with P = T - h + (ke - 1)."""
    full = F.conv_transpose2d(x.double(), w.double(), b.double() if b is not None else None, stride=stride,
                              dilation=dilation)
    y = torch.zeros(x.shape[0], full.shape[1], *out_hw, dtype=torch.float64)
    if b is not None:
        y += b.double().view(1, -1, 1, 1)  # positions outside the full result hold only the bias
    pads = []
    for axis in range(2):
        k = w.shape[2 + axis]
        ke = (k - 1) * dilation[axis] + 1
        pads.append(total[axis] - ke // 2 + (ke - 1))
    for j in range(out_hw[0]):
        for i in range(out_hw[1]):
            sj, si = j + pads[0], i + pads[1]
            if 0 <= sj < full.shape[2] and 0 <= si < full.shape[3]:
                y[:, :, j, i] = full[:, :, sj, si]
    return y


def nchw(img):
    return torch.from_numpy(img.to_numpy()).permute(0, 3, 1, 2)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def test_image_round_trip(device):
    a = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)
    img = tconv.Image.from_numpy(device, a)
    assert (img.number_of_images, img.height, img.width, img.feature_channels) == (3, 4, 5, 6)
    assert img.data_type == tconv.DataType.float32
    np.testing.assert_array_equal(img.to_numpy(), a)
    h = tconv.Image.from_numpy(device, a, data_type="float16")
    assert h.to_numpy().dtype == np.float16
    np.testing.assert_array_equal(h.to_numpy(), a.astype(np.float16))
    one = tconv.Image.from_numpy(device, a[0])
    assert one.number_of_images == 1
    with pytest.raises(tconv.InvalidArgumentError):
        tconv.Image.from_numpy(device, a[0, 0])


def make_layer(device, cin, cout, k, stride, dilation, groups, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(cin, cout // groups, k, k, generator=g)
    b = torch.randn(cout, generator=g)
    d = tconv.ConvolutionDescriptor(k, k, cin, cout)
    d.stride_x = d.stride_y = stride
    d.dilation_x = d.dilation_y = dilation
    d.groups = groups
    ds = tconv.ArrayDataSource(d, to_ohwi(w, groups).numpy(), b.numpy(), label="layer")
    return d, ds, w, b


def test_forward_explicit_destination_matches_torch(device):
    cin, cout, k, s, dil, groups, p = 4, 6, 3, 2, 1, 2, 1
    _, ds, w, b = make_layer(device, cin, cout, k, s, dil, groups, 1)
    kernel = tconv.ConvolutionTranspose(device, ds)
    assert (kernel.input_feature_channels, kernel.output_feature_channels, kernel.groups) == (cin, cout, groups)
    x = torch.randn(2, cin, 5, 4)
    ref = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=1, groups=groups)
    off, koff = mps_offsets(p, k, s, dil)
    props = kernel.properties
    props.offset = tconv.Offset(off, off, 0)
    props.kernel_offset_x = props.kernel_offset_y = koff
    src = tconv.Image.from_numpy(device, nhwc(x))
    dst = tconv.Image(device, tconv.ImageDescriptor(ref.shape[3], ref.shape[2], cout, 2))
    cb = tconv.CommandBuffer(device)
    kernel.encode_into(cb, src, dst)
    cb.commit()
    cb.wait_and_check()
    assert cb.status == tconv.CommandBufferStatus.completed
    torch.testing.assert_close(nchw(dst), ref, rtol=1e-5, atol=1e-5)


def test_training_encode_and_gradient_match_torch(device):
    cin, cout, k, s, dil, groups = 3, 4, 3, 2, 2, 1
    _, ds, w, b = make_layer(device, cin, cout, k, s, dil, groups, 2)
    fwd = tconv.ConvolutionTranspose(device, ds)
    grad = tconv.ConvolutionTransposeGradient(device, ds)
    x = torch.randn(2, cin, 4, 5)
    src = tconv.Image.from_numpy(device, nhwc(x))
    cb = tconv.CommandBuffer(device)
    y_img, state = fwd.encode_training(cb, src)
    assert isinstance(state, tconv.ConvolutionTransposeGradientState) and state
    rec = state.forward
    gy = torch.randn(2, cout, y_img.height, y_img.width)
    gy_img = tconv.Image.from_numpy(device, nhwc(gy))
    gx_img = grad.encode(cb, gy_img, src, state)
    cb.commit()
    cb.wait_and_check()

    # PyTorch oracle with the geometry the padding policy chose (read back from the state's record).
    total = (rec.total_offset_y, rec.total_offset_x)
    out_hw = (y_img.height, y_img.width)
    assert (rec.destination_height, rec.destination_width) == out_hw
    xx = x.double().requires_grad_()
    ww = w.double().requires_grad_()
    bb = b.double().requires_grad_()
    y_ref = torch_from_total_offset(xx, ww, bb, (s, s), (dil, dil), total, out_hw)
    torch.testing.assert_close(nchw(y_img).double(), y_ref.detach(), rtol=1e-5, atol=1e-5)
    y_ref.backward(gy.double())
    torch.testing.assert_close(nchw(gx_img).double(), xx.grad, rtol=1e-5, atol=1e-5)
    gw = torch.from_numpy(state.gradient_for_weights_numpy()).view(cout, k, k, cin // groups)
    torch.testing.assert_close(gw.double(), to_ohwi(ww.grad.float(), groups).double(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(state.gradient_for_biases_numpy()).double(), bb.grad,
                               rtol=1e-5, atol=1e-5)
    assert state.gradients_initialised


def _gradient_step(device, seed):
    """One training forward + gradient on a small layer; returns the kernels, the state and the data."""
    _, ds, w, b = make_layer(device, 2, 3, 3, 1, 1, 1, seed)
    fwd = tconv.ConvolutionTranspose(device, ds)
    grad = tconv.ConvolutionTransposeGradient(device, ds)
    grad.gradient_option = tconv.GradientOption.weights_and_bias
    x = tconv.Image.from_numpy(device, np.random.default_rng(seed).standard_normal((1, 4, 4, 2)).astype(np.float32))
    cb = tconv.CommandBuffer(device)
    y, state = fwd.encode_training(cb, x)
    gy = tconv.Image(device, y.descriptor)
    gy.fill(0.5)
    gx = grad.encode(cb, gy, x, state)
    assert gx.empty  # no data gradient asked for (e5)
    return fwd, grad, state, cb


def test_sgd_update_through_states(device):
    fwd, grad, state, cb = _gradient_step(device, 3)
    source = fwd.export_weights_and_biases(cb)
    sgd = tconv.OptimizerSGD(device, 0.1)
    sgd.encode(cb, state, source, [], source)
    fwd.reload_weights_and_biases(cb, source)
    w0 = fwd.current_weights()
    b0 = fwd.current_biases()
    cb.commit()
    cb.wait_and_check()
    gw, gb = state.gradient_for_weights_numpy(), state.gradient_for_biases_numpy()
    np.testing.assert_allclose(source.weights_numpy(), w0 - 0.1 * gw, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fwd.current_weights(), w0 - 0.1 * gw, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fwd.current_biases(), b0 - 0.1 * gb, rtol=1e-6, atol=1e-6)


def test_adam_and_rmsprop_first_step(device):
    for kind in ("adam", "rmsprop"):
        fwd, grad, state, cb = _gradient_step(device, 4)
        source = fwd.export_weights_and_biases(cb)
        w0 = fwd.current_weights()
        nw = w0.size * 4
        nb = fwd.current_biases().size * 4
        if kind == "adam":
            opt = tconv.OptimizerAdam(device, 0.01)
            m = [tconv.Buffer.allocate(device, nw), tconv.Buffer.allocate(device, nb)]
            v = [tconv.Buffer.allocate(device, nw), tconv.Buffer.allocate(device, nb)]
            opt.encode(cb, state, source, m, v, source)
        else:
            opt = tconv.OptimizerRMSProp(device, 0.01)
            sq = [tconv.Buffer.allocate(device, nw), tconv.Buffer.allocate(device, nb)]
            opt.encode(cb, state, source, sq, source)
        cb.commit()
        cb.wait_and_check()
        g = state.gradient_for_weights_numpy().astype(np.float64)
        if kind == "adam":
            assert opt.time_step == 1
            lr_t = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
            mm, vv = 0.1 * g, 0.001 * g * g
            expect = w0 - lr_t * mm / (np.sqrt(vv) + 1e-8)
        else:
            s = 0.1 * g * g
            expect = w0 - 0.01 * g / (np.sqrt(s) + 1e-8)
        np.testing.assert_allclose(source.weights_numpy(), expect, rtol=1e-4, atol=1e-6)


def test_object_errors(device):
    with pytest.raises(tconv.InvalidArgumentError):
        tconv.ConvolutionDescriptor(0, 3, 2, 2).validate()
    d = tconv.ConvolutionDescriptor(3, 3, 2, 4)
    with pytest.raises(tconv.InvalidArgumentError, match="elements"):
        tconv.ArrayDataSource(d, np.zeros(5, np.float32))
    kernel = tconv.ConvolutionTranspose(device, tconv.ArrayDataSource(d, np.zeros(72, np.float32)))
    # A source with fewer channels than the kernel reads.
    with pytest.raises(tconv.InvalidArgumentError):
        kernel.encode(tconv.CommandBuffer(device), tconv.Image(device, tconv.ImageDescriptor(4, 4, 1)))
    # Encoding into a committed command buffer.
    cb = tconv.CommandBuffer(device)
    cb.commit()
    with pytest.raises(tconv.InvalidArgumentError):
        kernel.encode(cb, tconv.Image(device, tconv.ImageDescriptor(4, 4, 2)))
    # A gradient encode without the state of a training forward.
    grad = tconv.ConvolutionTransposeGradient(device, tconv.ArrayDataSource(d, np.zeros(72, np.float32)))
    with pytest.raises(tconv.InvalidArgumentError):
        grad.encode(tconv.CommandBuffer(device), tconv.Image(device, tconv.ImageDescriptor(4, 4, 4)),
                    tconv.Image(device, tconv.ImageDescriptor(4, 4, 2)), tconv.ConvolutionTransposeGradientState())


def test_batch_training_encodes_accumulate_weight_gradients(device):
    """encodeBatch: images of a batch share one state; the weight/bias gradients sum over the batch and
    equal those of one multi-image encode."""
    _, ds, w, b = make_layer(device, 2, 3, 3, 2, 1, 1, 6)
    fwd = tconv.ConvolutionTranspose(device, ds)
    grad = tconv.ConvolutionTransposeGradient(device, ds)
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    cb = tconv.CommandBuffer(device)
    sources = [tconv.Image.from_numpy(device, xs[i]) for i in range(3)]
    ys, states = fwd.encode_training_batch(cb, sources)
    assert len(ys) == 3 and len(states) == 3 and states[0].same_object(states[2])
    gys = [tconv.Image.from_numpy(device, rng.standard_normal((1, y.height, y.width, 3)).astype(np.float32))
           for y in ys]
    gxs = grad.encode_batch(cb, gys, sources, states)
    cb.commit()
    cb.wait_and_check()
    # The same as one 3-image encode.
    cb2 = tconv.CommandBuffer(device)
    y_all, st = fwd.encode_training(cb2, tconv.Image.from_numpy(device, xs))
    gy_all = tconv.Image.from_numpy(device, np.concatenate([g.to_numpy() for g in gys]))
    gx_all = grad.encode(cb2, gy_all, tconv.Image.from_numpy(device, xs), st)
    cb2.commit()
    cb2.wait_and_check()
    np.testing.assert_allclose(np.concatenate([y.to_numpy() for y in ys]), y_all.to_numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([g.to_numpy() for g in gxs]), gx_all.to_numpy(), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(states[0].gradient_for_weights_numpy(), st.gradient_for_weights_numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(states[0].gradient_for_biases_numpy(), st.gradient_for_biases_numpy(),
                               rtol=1e-5, atol=1e-5)
