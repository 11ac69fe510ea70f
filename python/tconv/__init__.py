"""tconv — the training passes of 2-D transposed convolution with Apple MPS semantics, on CPUs (and NVIDIA
GPUs in a CUDA build), for NumPy and PyTorch.

Three layers, thinnest first:

* ``tconv.conv_transpose2d`` / ``tconv.conv_transpose2d_backward``: PyTorch's geometry and keyword names on
  NumPy arrays and DLPack tensors (PyTorch CPU tensors are read and written in place, no copy; CUDA tensors
  are computed on their GPU, on PyTorch's current stream, without host copies — see ``tconv._cuda``).
* the MPS-style objects (``Device``, ``CommandBuffer``, ``Image``, ``ConvolutionDescriptor``,
  ``ArrayDataSource``, ``ConvolutionTranspose``, ``ConvolutionTransposeGradient``, the states and the
  optimizers) for code ported from Metal Performance Shaders.
* ``tconv.torch``: ``ConvTranspose2d`` (a drop-in for ``torch.nn.ConvTranspose2d``) and
  ``conv_transpose2d`` with autograd. Imported on demand so that the package works without PyTorch.
* data-parallel training: ``Communicator``, ``CommunicatorId``, ``ReduceOp``, ``FloatSpan`` (NCCL, one process
  per GPU), ``tconv.distributed`` (``init``, ``all_reduce`` of PyTorch CUDA tensors in place on the current
  stream) and ``python -m tconv.train`` (the main job, ``--gpus N``); loaded on demand like ``tconv.torch``.

Errors raise subclasses of ``tconv.Error`` (a ``RuntimeError``) chosen by the library's error code, e.g.
``tconv.InvalidArgumentError`` (also a ``ValueError``), carrying the library's message and ``.code``.
"""
from . import _core
from ._core import (  # noqa: F401  (re-exported API)
    AdamParameters,
    ArrayDataSource,
    BinaryKernelProperties,
    Buffer,
    CommandBuffer,
    CommandBufferStatus,
    Communicator,
    CommunicatorId,
    ConvolutionDataSource,
    ConvolutionDescriptor,
    ConvolutionGradientState,
    ConvolutionTranspose,
    ConvolutionTransposeGradient,
    ConvolutionTransposeGradientState,
    ConvolutionWeightsAndBiasesState,
    DataType,
    Device,
    DeviceKind,
    DeviceUnavailableError,
    Error,
    FileError,
    FloatSpan,
    FormatError,
    ForwardRecord,
    GradientOption,
    Image,
    ImageDescriptor,
    InternalError,
    InvalidArgumentError,
    KernelProperties,
    NeuronType,
    Offset,
    Optimizer,
    OptimizerAdam,
    OptimizerDescriptor,
    OptimizerRMSProp,
    OptimizerSGD,
    OutOfMemoryError,
    Precision,
    Region,
    ReduceOp,
    RegularizationType,
    State,
    UnsupportedError,
    algorithms,
)
from ._functional import (  # noqa: F401
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose2d_output_shape,
    default_device,
    last_algorithms,
    set_default_device,
)

__version__ = "0.1.0"


def __getattr__(name):
    # `tconv.torch` and `tconv.train` need PyTorch; they and `tconv.distributed` load when first used.
    if name in ("torch", "distributed", "train"):
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'tconv' has no attribute {name!r}")
