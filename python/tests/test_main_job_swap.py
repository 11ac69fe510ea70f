"""The issue's acceptance check: in the main job's PyTorch training script (scripts/train_torch.py: the
Fashion-MNIST auto-encoder, SplitMix64 init, Adam), swapping torch.nn.ConvTranspose2d for
tconv.torch.ConvTranspose2d gives the same loss curve. Runs the script's own model, init, data loading and
batch order for the first STEPS steps of epoch 1 (a full run is `tconv train` vs the script, docs/training.md).
Skipped only when the repository's scripts/ folder or Debian's dataset-fashion-mnist is absent."""
import copy
import importlib.util
import os
import pathlib

import pytest
import torch

import tconv.torch as tt

STEPS = 30
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_torch.py"
DATA = "/usr/share/datasets/fashion-mnist"


def _load_script():
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} not found (tests run from a repository checkout)")
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")) and not os.path.exists(
            os.path.join(DATA, "train-images-idx3-ubyte")):
        pytest.skip(f"Fashion-MNIST not found in {DATA} (Debian package dataset-fashion-mnist)")
    spec = importlib.util.spec_from_file_location("train_torch", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _swap(model):
    """A copy of `model` whose ConvTranspose2d layers are tconv's, with the same parameter values."""
    swapped = copy.deepcopy(model)
    for i, layer in enumerate(swapped):
        if type(layer) is torch.nn.ConvTranspose2d:
            swapped[i] = tt.ConvTranspose2d.from_torch(layer)
    return swapped


def _curve(script, model, train, order, batch=128):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.MSELoss()
    losses = []
    for step in range(STEPS):
        x = train[order[step * batch:(step + 1) * batch]]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_main_job_training_curve_with_tconv_layers():
    script = _load_script()
    seed = 1
    train = script.load_split(DATA, "train", 0)
    order = torch.from_numpy(script.epoch_permutation(seed, 0, train.shape[0]))
    model = script.make_model()
    script.init_model(model, seed)
    swapped = _swap(model)
    assert sum(isinstance(m, tt.ConvTranspose2d) for m in swapped) == 2
    assert script.fingerprint(swapped) == script.fingerprint(model)  # identical starting weights

    ref = _curve(script, model, train, order)
    got = _curve(script, swapped, train, order)
    assert ref[-1] < 0.8 * ref[0]  # it trains
    for step, (a, b) in enumerate(zip(got, ref)):
        assert abs(a - b) <= 1e-4 * abs(b), f"step {step + 1}: tconv {a} vs torch {b}"
