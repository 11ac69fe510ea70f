"""Shared helpers of the tconv Python tests: random problem configurations and the PyTorch oracle.

PyTorch (CPU) is the outside oracle throughout, as in the C++ oracle tests. Configurations are drawn from
a seeded generator, so every run tests the same cases and a failure names its seed.
"""
import random

import pytest
import torch


def random_config(seed):
    """A valid ConvTranspose2d geometry (PyTorch's rules) with small sizes, varied groups/stride/dilation."""
    r = random.Random(seed)
    groups = r.choice([1, 1, 2, 3])
    cin = groups * r.randint(1, 3)
    cout = groups * r.randint(1, 3)
    kh, kw = r.randint(1, 4), r.randint(1, 4)
    sh, sw = r.randint(1, 3), r.randint(1, 3)
    dh, dw = r.randint(1, 2), r.randint(1, 2)
    ph, pw = r.randint(0, (kh - 1) * dh // 2 + 1), r.randint(0, (kw - 1) * dw // 2 + 1)
    oph, opw = r.randint(0, max(sh, dh) - 1), r.randint(0, max(sw, dw) - 1)
    n = r.randint(1, 3)
    h, w = r.randint(1, 7), r.randint(1, 7)
    cfg = dict(n=n, cin=cin, cout=cout, h=h, w=w, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
               output_padding=(oph, opw), dilation=(dh, dw), groups=groups, bias=r.random() < 0.7)
    # Redraw sizes until PyTorch's output is non-empty (large padding on a tiny image has none).
    while any(o <= 0 for o in output_hw(cfg)):
        cfg["h"] += 1
        cfg["w"] += 1
    return cfg


def output_hw(cfg):
    out = []
    for i, size in enumerate((cfg["h"], cfg["w"])):
        k, s, d = cfg["kernel"][i], cfg["stride"][i], cfg["dilation"][i]
        out.append((size - 1) * s - 2 * cfg["padding"][i] + d * (k - 1) + cfg["output_padding"][i] + 1)
    return out


def geometry(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], output_padding=cfg["output_padding"],
                groups=cfg["groups"], dilation=cfg["dilation"])


def make_tensors(cfg, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg["n"], cfg["cin"], cfg["h"], cfg["w"], generator=g).to(dtype)
    w = torch.randn(cfg["cin"], cfg["cout"] // cfg["groups"], *cfg["kernel"], generator=g).to(dtype)
    b = torch.randn(cfg["cout"], generator=g).to(dtype) if cfg["bias"] else None
    return x, w, b


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
