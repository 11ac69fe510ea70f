"""tconv for PyTorch: ``ConvTranspose2d`` (a drop-in for ``torch.nn.ConvTranspose2d``) and
``conv_transpose2d`` (a drop-in for ``torch.nn.functional.conv_transpose2d``), both with autograd.

``ConvTranspose2d`` *is* a ``torch.nn.ConvTranspose2d`` (a subclass): same constructor, same parameters
(``weight`` [Cin, Cout/groups, kH, kW] and ``bias`` [Cout]), same default initialisation and a compatible
``state_dict``, so swapping one for the other is a one-line change in either direction. Only ``forward``
differs: it runs tconv's kernels (forward, data gradient, weight+bias gradient) through
``torch.autograd.Function``. tconv-specific options are keyword-only: ``precision`` and ``algorithm``.

Element types: float32, float16 and bfloat16 run natively. float64 tensors are computed in float32 and the
results returned as float64 (tconv has no float64 kernels; its reference accumulates in float64 but reads
float32 values). CPU tensors run on the CPU (or ``tconv.default_device()``), CUDA tensors on their GPU in a
CUDA build, on PyTorch's current stream and without host copies (``tconv._cuda``); autograd works the same
on both. Double backward is not supported.
"""
import torch
import torch.nn.functional  # noqa: F401  (torch.nn.ConvTranspose2d's module)
from torch.autograd.function import once_differentiable

from . import _functional

__all__ = ["ConvTranspose2d", "conv_transpose2d"]

_NATIVE = (torch.float32, torch.float16, torch.bfloat16)


def _compute_dtype(t):
    return t.dtype if t.dtype in _NATIVE else torch.float32


class _ConvTranspose2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation, precision, algorithm):
        geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation, precision=precision, algorithm=algorithm)
        ctx.geometry = geometry
        ctx.has_bias = bias is not None
        ctx.dtypes = (x.dtype, weight.dtype, bias.dtype if bias is not None else None)
        xc = x.detach().to(_compute_dtype(x))
        wc = weight.detach().to(_compute_dtype(weight))
        bc = None
        if bias is not None:
            bc = bias.detach()
            if bc.dtype not in _NATIVE:
                bc = bc.to(torch.float32)
        ctx.save_for_backward(xc, wc)
        y = _functional.conv_transpose2d(xc, wc, bc, **geometry)
        return y.to(x.dtype) if y.dtype != x.dtype else y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        xc, wc = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        need = [n for n, wanted in (("dx", need_x), ("dw", need_w), ("db", need_b and ctx.has_bias)) if wanted]
        if not need:
            return (None,) * 10
        dyc = dy.to(xc.dtype)
        dx, dw, db = _functional.conv_transpose2d_backward(dyc, xc, wc, need=need, **ctx.geometry)
        x_dtype, w_dtype, b_dtype = ctx.dtypes
        if dx is not None and dx.dtype != x_dtype:
            dx = dx.to(x_dtype)
        if dw is not None and dw.dtype != w_dtype:
            dw = dw.to(w_dtype)
        if db is not None and db.dtype != b_dtype:
            db = db.to(b_dtype)
        return dx, dw, db, None, None, None, None, None, None, None


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     precision="fp32", algorithm=None):
    """``torch.nn.functional.conv_transpose2d`` computed by tconv, differentiable in input, weight and bias.

    precision: "fp32" (default), "tf32", "bf16" or "fp16" (inputs rounded before each multiply).
    algorithm: force one of ``tconv.algorithms()`` in every pass that it supports (None: tconv chooses).
    Unbatched [C, H, W] input is accepted as PyTorch does.
    """
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    y = _ConvTranspose2dFunction.apply(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                       precision, algorithm)
    return y.squeeze(0) if unbatched else y


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` whose forward and backward run on tconv.

    Same positional and keyword arguments as ``torch.nn.ConvTranspose2d`` (padding_mode must be "zeros", as
    there), plus keyword-only ``precision`` and ``algorithm`` (see ``conv_transpose2d``).
    """

    def __init__(self, *args, precision="fp32", algorithm=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.algorithm = algorithm

    @classmethod
    def from_torch(cls, module, *, precision="fp32", algorithm=None):
        """A tconv module with the configuration and (shared) parameters of a torch.nn.ConvTranspose2d."""
        m = cls(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                padding=module.padding, output_padding=module.output_padding, groups=module.groups,
                bias=module.bias is not None, dilation=module.dilation, padding_mode=module.padding_mode,
                device=module.weight.device, dtype=module.weight.dtype, precision=precision, algorithm=algorithm)
        m.weight = module.weight
        m.bias = module.bias
        return m

    def forward(self, input, output_size=None):
        if self.padding_mode != "zeros":
            raise ValueError("Only 'zeros' padding mode is supported for ConvTranspose2d")
        # torch.nn.ConvTranspose2d's own rule for turning output_size into output_padding (1.13 and 2.x).
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                              2, self.dilation)
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                self.groups, self.dilation, precision=self.precision, algorithm=self.algorithm)

    def extra_repr(self):
        s = super().extra_repr()
        if self.precision != "fp32":
            s += f", precision={self.precision!r}"
        if self.algorithm:
            s += f", algorithm={self.algorithm!r}"
        return s
