#!/usr/bin/python3
"""Oracle test: the `tconv` CLI (`forward`, `grad`) against PyTorch's conv_transpose2d autograd in float64.

Two parts:
  1. Random configurations (>= 500): groups, stride 1..4, dilation 1..3, kernel 1..7, output padding,
     padding 0 and > 0, non-square everything, batch 1..4, channels up to 16, all four precision modes,
     float16 input files, both activation layouts, both weight layouts, and a quarter of the cases in MPS
     geometry (--mps-padding/--mps-offset/--mps-kernel-offset). Each is run through `tconv grad` (dx, dw,
     db) and `tconv forward` (y, with bias) and compared with PyTorch within the TOLERANCE table below.
  2. Exact: small-integer data, for every registered algorithm (`tconv info --json`), must match
     `--algo cpu_ref_f64` bit for bit (and the reference must equal PyTorch exactly).

The PyTorch side is written from the definitions, not from tconv's code: MPS geometry is reduced here with
the spec's formulas (a.5.5 A, a.13) and computed as a crop of the unpadded transposed convolution; weight
layout conversion is written here again from spec a.13.

Exit status: 0 pass, 1 failure, 77 skip (this Python has no torch).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # ctest SKIP_RETURN_CODE
    print(f"SKIP: {e}")
    sys.exit(77)

# ------------------------------------------------------------------------------------------------------
# Tolerance table (the one place). The PyTorch side rounds every multiply input (x, w, dy; not the bias)
# exactly as the precision mode does, then computes in float64, so what remains is tconv's float32
# accumulation and the rounding of the stored result. For an output element that sums K products with
# absolute sum S = sum |a*b| (computed by PyTorch on |inputs|), any summation order in float32 errs by at
# most gamma_K * S <= (K + 2) * u32 * S (Higham, Accuracy and Stability, 3.1); storing the result rounds once
# more by u_store * |ref|. The per-mode entry says why the products add no error of their own.
U32 = 2.0 ** -24
TOLERANCE = {
    # mode: (units of u32 per reduction term, reason)
    "fp32": (1.0, "products rounded once in float32 (the +2 in K + 2 covers it), float32 accumulation"),
    "tf32": (1.0, "inputs rounded to 10-bit mantissas as the kernels do; 11x11-bit products are exact in "
                  "float32, so only the float32 accumulation errs"),
    "bf16": (1.0, "inputs rounded to bfloat16 as the kernels do; 8x8-bit products are exact in float32"),
    "fp16": (1.0, "inputs rounded to binary16 as the kernels do; 11x11-bit products are exact in float32"),
}
STORE_UNIT = {  # (relative, absolute) error of storing a result once
    "float32": (2.0 ** -24, 2.0 ** -150),  # float32 results: half an ulp (absolute: half the least subnormal)
    "float16": (2.0 ** -11, 2.0 ** -25),   # float16 activations: dx and y stored as binary16 (dw, db float32)
}
ABS_FLOOR = 1e-30  # only for elements whose every term is zero (then tconv must give exactly 0)


def round_tf32(a32):
    u = a32.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0xFFF + ((u >> 13) & 1)) & 0xFFFFE000
    return u.astype(np.uint32).view(np.float32)


def round_input(a32, mode):
    a32 = np.asarray(a32, dtype=np.float32)
    if mode == "fp32":
        return a32
    if mode == "tf32":
        return round_tf32(a32)
    if mode == "bf16":
        return torch.from_numpy(a32).to(torch.bfloat16).to(torch.float32).numpy()
    if mode == "fp16":
        return a32.astype(np.float16).astype(np.float32)
    raise ValueError(mode)


# ------------------------------------------------------------------------------------------------------
# Geometry written from the spec.

def effective(k, d):
    return (k - 1) * d + 1


def mps_policy_axis(n_in, k, s, d, policy):
    """Spec a.5.5 A (centred, remainder top-left): result size and total offset T."""
    ke = effective(k, d)
    style = {"valid": -1, "same": 0, "full": 1}[policy]
    out = (n_in - 1) * s + 1 + style * (ke - 1)
    extra = (style + 1) * (ke - 1)
    left = (extra + 1) // 2
    return out, ke // 2 - left


def torch_pad_from_T(T, k, d):
    """Spec a.13: P = T + (ke - 1) - h."""
    ke = effective(k, d)
    return T + (ke - 1) - ke // 2


def torch_weight_to_mps(wpt, groups):
    """Spec a.13: W[o][q][p][c] = Wpt[g*Ig + c][o - g*Og][kH-1-q][kW-1-p]."""
    cin, og, kh, kw = wpt.shape
    ig = cin // groups
    w = wpt.reshape(groups, ig, og, kh, kw)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 4, 1).reshape(groups * og, kh, kw, ig))


def mps_weight_to_torch(w, groups):
    cout, kh, kw, ig = w.shape
    og = cout // groups
    t = w.reshape(groups, og, kh, kw, ig)[:, :, ::-1, ::-1, :]
    return np.ascontiguousarray(t.transpose(0, 4, 1, 2, 3).reshape(groups * ig, og, kh, kw))


def forward_torch(cfg, x, w, b):
    """y in float64 (NCHW, PyTorch weights). MPS geometry PyTorch cannot express: a crop of the unpadded
    result (rows [P, P + out) of it, zeros outside), bias added after."""
    if not cfg["mps"] or cfg["torch_expressible"]:
        return F.conv_transpose2d(x, w, b, stride=cfg["stride"], padding=cfg["padding"],
                                  output_padding=cfg["output_padding"], groups=cfg["groups"],
                                  dilation=cfg["dilation"])
    full = F.conv_transpose2d(x, w, None, stride=cfg["stride"], padding=0, output_padding=0,
                              groups=cfg["groups"], dilation=cfg["dilation"])
    (ph, pw), (oh, ow) = cfg["padding"], cfg["out_size"]
    fh, fw = full.shape[2], full.shape[3]
    # F.pad: negative values crop, positive ones add zeros. Keep rows [ph, ph + oh) of the full result.
    y = F.pad(full, (-pw, pw + ow - fw, -ph, ph + oh - fh))
    if b is not None:
        y = y + b.view(1, -1, 1, 1)
    return y


# ------------------------------------------------------------------------------------------------------
# Configurations.

def random_config(rng, index, depthwise=False):
    groups = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
    ig, og = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if depthwise:  # groups = channels (the layers a depthwise algorithm takes)
        groups, ig, og = int(rng.integers(1, 9)), 1, 1
    kh, kw = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    sh, sw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    dh, dw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    hin, win = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    cfg = dict(index=index, n=int(rng.integers(1, 5)), cin=groups * ig, cout=groups * og, groups=groups,
               k=(kh, kw), stride=(sh, sw), dilation=(dh, dw), hw_in=(hin, win),
               precision=str(rng.choice(["fp32", "tf32", "bf16", "fp16"])),
               f16_inputs=bool(rng.random() < 0.2), f16_weights=bool(rng.random() < 0.1),
               layout=str(rng.choice(["nchw", "nhwc"])), weight_layout=str(rng.choice(["pytorch", "mps"])),
               mps=bool(rng.random() < 0.25), mps_flags=[], threads=int(rng.integers(1, 4)),
               torch_expressible=False,
               # the registry's choice mostly; the reference itself now and then (it runs last otherwise)
               algo="cpu_ref_f64" if rng.random() < 0.15 else "")
    if not cfg["mps"]:
        pad, opad = [], []
        for n_in, k, s, d in zip((hin, win), (kh, kw), (sh, sw), (dh, dw)):
            op = int(rng.integers(0, max(s, d)))
            full = (n_in - 1) * s + d * (k - 1) + op + 1
            # padding 0 half the time, else up to what keeps the output positive
            p = 0 if rng.random() < 0.5 else int(rng.integers(0, (full - 1) // 2 + 1))
            pad.append(p)
            opad.append(op)
        cfg.update(padding=tuple(pad), output_padding=tuple(opad))
        cfg["out_size"] = tuple((n_in - 1) * s - 2 * p + d * (k - 1) + op + 1 for n_in, k, s, d, p, op in
                                zip((hin, win), (kh, kw), (sh, sw), (dh, dw), pad, opad))
        return cfg
    # MPS geometry: a padding policy sizes the result; the total offset is the policy's, or given as
    # --mps-offset/--mps-kernel-offset converted from a PyTorch padding (spec a.13: T = P + h - (ke - 1)).
    policy = str(rng.choice(["valid", "same", "full"]))
    explicit = bool(rng.random() < 0.5)
    pads, outs, offs, koffs = [], [], [], []
    for n_in, k, s, d in zip((hin, win), (kh, kw), (sh, sw), (dh, dw)):
        out, T = mps_policy_axis(n_in, k, s, d, policy)
        if explicit:
            p_torch = int(rng.integers(0, effective(k, d)))
            T = p_torch + effective(k, d) // 2 - (effective(k, d) - 1)
        pads.append(torch_pad_from_T(T, k, d))
        outs.append(out)
        offs.append(T // s)
        koffs.append(T % s)
    if outs[0] <= 0 or outs[1] <= 0:
        return None  # a valid-only policy on a too-small input: not a forward problem
    # Where PyTorch can express the same layer (padding >= 0, output_padding in [0, max(s, d))), the
    # reference is PyTorch's own ConvTranspose2d with the converted geometry; elsewhere a crop (see
    # forward_torch).
    ops = [o - ((n_in - 1) * s - 2 * p + effective(k, d)) for o, n_in, s, p, k, d in
           zip(outs, (hin, win), (sh, sw), pads, (kh, kw), (dh, dw))]
    expressible = all(p >= 0 and 0 <= op < max(s, d) for p, op, s, d in zip(pads, ops, (sh, sw), (dh, dw)))
    cfg.update(padding=tuple(pads), out_size=tuple(outs), torch_expressible=expressible,
               output_padding=tuple(ops) if expressible else (0, 0))
    flags = ["--mps-padding", policy]
    if explicit:  # MPS offsets are X,Y
        flags += ["--mps-offset", f"{offs[1]},{offs[0]}", "--mps-kernel-offset", f"{koffs[1]},{koffs[0]}"]
    cfg["mps_flags"] = flags
    return cfg


def geometry_flags(cfg):
    f = ["--stride", "%d,%d" % cfg["stride"], "--dilation", "%d,%d" % cfg["dilation"],
         "--groups", str(cfg["groups"]), "--layout", cfg["layout"], "--weight-layout", cfg["weight_layout"],
         "--precision", cfg["precision"], "--threads", str(cfg["threads"])]
    if cfg["algo"]:
        f += ["--algo", cfg["algo"]]
    if cfg["mps"]:
        return f + cfg["mps_flags"]
    return f + ["--padding", "%d,%d" % cfg["padding"], "--output-padding", "%d,%d" % cfg["output_padding"]]


def describe(cfg):
    keys = ["n", "cin", "cout", "groups", "k", "stride", "dilation", "hw_in", "padding", "output_padding",
            "out_size", "precision", "f16_inputs", "f16_weights", "layout", "weight_layout", "mps_flags", "torch_expressible",
            "threads", "algo"]
    return " ".join(f"{k}={cfg[k]}" for k in keys)


# ------------------------------------------------------------------------------------------------------
# Running the CLI.

class Runner:
    def __init__(self, tconv, workdir):
        self.tconv, self.dir = tconv, workdir
        self.calls = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def save_act(self, name, a_nchw, layout, f16):
        a = a_nchw if layout == "nchw" else a_nchw.transpose(0, 2, 3, 1)
        np.save(self.path(name), np.ascontiguousarray(a.astype(np.float16 if f16 else np.float32)))

    def load_act(self, name, layout):
        a = np.load(self.path(name))
        assert a.dtype == np.float32, f"{name}: tconv wrote dtype {a.dtype}, expected float32"
        return a if layout == "nchw" else a.transpose(0, 3, 1, 2)

    def run(self, args):
        self.calls += 1
        r = subprocess.run([self.tconv] + args, capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


def generate_data(rng, cfg, integers=False):
    n, cin, cout, g = cfg["n"], cfg["cin"], cfg["cout"], cfg["groups"]
    (hin, win), (hout, wout), (kh, kw) = cfg["hw_in"], cfg["out_size"], cfg["k"]
    shapes = dict(x=(n, cin, hin, win), w=(cin, cout // g, kh, kw), b=(cout,), dy=(n, cout, hout, wout))
    if integers:
        return {k: rng.integers(-3, 4, size=s).astype(np.float32) for k, s in shapes.items()}
    d = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    if cfg["f16_inputs"]:  # the values the float16 files hold
        d["x"] = d["x"].astype(np.float16).astype(np.float32)
        d["dy"] = d["dy"].astype(np.float16).astype(np.float32)
    if cfg["f16_weights"]:
        d["w"] = d["w"].astype(np.float16).astype(np.float32)
    return d


def write_inputs(run, cfg, data):
    run.save_act("x.npy", data["x"], cfg["layout"], cfg["f16_inputs"])
    run.save_act("dy.npy", data["dy"], cfg["layout"], cfg["f16_inputs"])
    w = data["w"] if cfg["weight_layout"] == "pytorch" else torch_weight_to_mps(data["w"], cfg["groups"])
    np.save(run.path("w.npy"), w.astype(np.float16 if cfg["f16_weights"] else np.float32))
    np.save(run.path("b.npy"), data["b"])
    for out in ("y.npy", "dx.npy", "dw.npy", "db.npy"):
        if os.path.exists(run.path(out)):
            os.remove(run.path(out))


def run_cli(run, cfg):
    """Runs tconv grad and tconv forward; returns (outputs dict in NCHW/PyTorch layouts, error text)."""
    geo = geometry_flags(cfg)
    p = run.path
    rc, out = run.run(["grad", "--x", p("x.npy"), "--w", p("w.npy"), "--dy", p("dy.npy"), "--dx", p("dx.npy"),
                       "--dw", p("dw.npy"), "--db", p("db.npy")] + geo)
    if rc != 0:
        return None, f"tconv grad failed (exit status {rc}): " + out.strip()
    rc, out = run.run(["forward", "--x", p("x.npy"), "--w", p("w.npy"), "--b", p("b.npy"), "--y", p("y.npy")] + geo)
    if rc != 0:
        return None, f"tconv forward failed (exit status {rc}): " + out.strip()
    return read_outputs(run, cfg, ("y", "dx", "dw", "db")), ""


def read_outputs(run, cfg, names):
    res = {}
    for name in names:
        if name in ("y", "dx"):
            res[name] = run.load_act(name + ".npy", cfg["layout"])
        else:
            res[name] = np.load(run.path(name + ".npy"))
            if name == "dw" and cfg["weight_layout"] == "mps":
                res[name] = mps_weight_to_torch(res[name], cfg["groups"])
    return res


def run_cli_forced(run, cfg, algo):
    """With --algo: each direction on its own (an algorithm may implement only some), so each output comes
    from exactly the named algorithm. Returns (outputs it computed, declined directions, error text)."""
    geo = geometry_flags(dict(cfg, algo="")) + ["--algo", algo]
    p = run.path
    commands = [
        (("y",), ["forward", "--x", p("x.npy"), "--w", p("w.npy"), "--b", p("b.npy"), "--y", p("y.npy")]),
        (("dx",), ["grad", "--option", "data", "--x", p("x.npy"), "--w", p("w.npy"), "--dy", p("dy.npy"),
                   "--dx", p("dx.npy")]),
        (("dw", "db"), ["grad", "--option", "weights", "--x", p("x.npy"), "--w", p("w.npy"), "--dy", p("dy.npy"),
                        "--dw", p("dw.npy"), "--db", p("db.npy")]),
    ]
    res, declined = {}, []
    for names, argv in commands:
        rc, out = run.run(argv + geo)
        if rc != 0:
            if "unsupported" in out and "declines" in out:
                declined += names
                continue
            return None, declined, (f"tconv {' '.join(argv[:3])} --algo {algo} failed (exit status {rc}): "
                                    f"{out.strip()}")
        res.update(read_outputs(run, cfg, names))
    return res, declined, ""


def torch_reference(cfg, data, mode):
    """Values and error bounds' absolute sums, float64, inputs rounded as the precision mode does."""
    r = {k: torch.from_numpy(round_input(data[k], mode).astype(np.float64)) for k in ("x", "w", "dy")}
    b = torch.from_numpy(data["b"].astype(np.float64))
    dy_as_given = torch.from_numpy(data["dy"].astype(np.float64))  # db sums dy unrounded: no multiply
    out = {}
    for tag, src in (("val", r), ("abs", {k: v.abs() for k, v in r.items()})):
        x = src["x"].clone().requires_grad_(True)
        w = src["w"].clone().requires_grad_(True)
        bb = (b if tag == "val" else b.abs()).clone().requires_grad_(True)
        y = forward_torch(cfg, x, w, None)
        y.backward(src["dy"])
        yb = forward_torch(cfg, src["x"], src["w"], bb)  # forward with bias (its own graph)
        out[tag] = dict(y=yb.detach().numpy(), dx=x.grad.numpy(), dw=w.grad.numpy(),
                        db=(dy_as_given if tag == "val" else dy_as_given.abs()).sum(dim=(0, 2, 3)).numpy())
    return out


def check_close(cfg, got, ref):
    """Returns a list of failure strings (empty when every element is within its bound)."""
    n, (kh, kw), g = cfg["n"], cfg["k"], cfg["groups"]
    (hin, win), (hout, wout) = cfg["hw_in"], cfg["out_size"]
    terms = dict(y=(cfg["cin"] // g) * kh * kw + 1, dx=(cfg["cout"] // g) * kh * kw, dw=n * hin * win,
                 db=n * hout * wout)
    act_store = "float16" if cfg["f16_inputs"] else "float32"
    units = TOLERANCE[cfg["precision"]][0]
    fails = []
    for name in ("y", "dx", "dw", "db"):
        v, a, t = ref["val"][name], ref["abs"][name], got[name]
        if t.shape != v.shape:
            fails.append(f"{name}: shape {t.shape}, PyTorch {v.shape}")
            continue
        rel, absolute = STORE_UNIT[act_store if name in ("y", "dx") else "float32"]
        bound = (terms[name] + 2) * units * U32 * a + rel * np.abs(v) + absolute + ABS_FLOOR
        err = np.abs(t.astype(np.float64) - v)
        bad = ~(err <= bound)  # NaN fails too
        if bad.any():
            i = np.unravel_index(int(np.argmax(np.where(bad, err / bound, 0))), v.shape)
            fails.append(f"{name}: {int(bad.sum())}/{v.size} elements out of tolerance; worst at {i}: "
                         f"tconv {t[i]!r} PyTorch {v[i]!r} bound {bound[i]:.3g}")
    return fails


# ------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tconv", required=True, help="path of the tconv program")
    # TCONV_ORACLE_CASES lowers the count where the binary under test is slow (the sanitizer build).
    ap.add_argument("--configs", type=int, default=int(os.environ.get("TCONV_ORACLE_CASES", "520")),
                    help="random configurations (default 520, or $TCONV_ORACLE_CASES)")
    ap.add_argument("--exact-configs", type=int, default=16, help="integer configurations per algorithm")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--workdir", help="scratch folder (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    workdir = args.workdir or tempfile.mkdtemp(prefix="tconv-oracle-")
    os.makedirs(workdir, exist_ok=True)
    run = Runner(os.path.abspath(args.tconv), workdir)
    t0 = time.time()
    failures = []

    rc, info = run.run(["info", "--json"])
    if rc != 0:
        print("tconv info --json failed:\n" + info)
        return 1
    algos = [a["name"] for a in json.loads(info)["algorithms"]["cpu"]]
    if "cpu_ref_f64" not in algos:
        print(f"cpu_ref_f64 is not registered (cpu algorithms: {algos})")
        return 1

    # Part 1: random configurations against PyTorch.
    count, seen = 0, dict(mps=0, mps_as_torch=0, f16=0, nhwc=0, mpsw=0, ref=0, **{m: 0 for m in TOLERANCE})
    while count < args.configs:
        cfg = random_config(rng, count)
        if cfg is None:
            continue
        count += 1
        data = generate_data(rng, cfg)
        write_inputs(run, cfg, data)
        got, err = run_cli(run, cfg)
        if got is None:
            failures.append(f"config {cfg['index']}: {describe(cfg)}\n    {err}")
            continue
        ref = torch_reference(cfg, data, cfg["precision"])
        for f in check_close(cfg, got, ref):
            failures.append(f"config {cfg['index']}: {describe(cfg)}\n    {f}")
        seen["mps"] += cfg["mps"]
        seen["mps_as_torch"] += cfg["torch_expressible"]
        seen["ref"] += cfg["algo"] == "cpu_ref_f64"
        seen["f16"] += cfg["f16_inputs"]
        seen["nhwc"] += cfg["layout"] == "nhwc"
        seen["mpsw"] += cfg["weight_layout"] == "mps"
        seen[cfg["precision"]] += 1
    print(f"random: {count} configurations ({seen}) in {time.time() - t0:.1f} s")

    # Part 2: small integers: every algorithm equals cpu_ref_f64 bit for bit, and the reference equals
    # PyTorch exactly (all sums of small integer products are exact in float32 and float64).
    t1 = time.time()
    exact_rng = np.random.default_rng(args.seed + 1)
    taken = {a: 0 for a in algos}
    made = 0
    while made < args.exact_configs:
        cfg = random_config(exact_rng, 10000 + made, depthwise=made % 3 == 0)
        if cfg is None:
            continue
        made += 1
        cfg.update(precision=str(exact_rng.choice(["fp32", "fp32", "fp32", "bf16"])),
                   f16_inputs=bool(exact_rng.random() < 0.25), f16_weights=False)
        data = generate_data(exact_rng, cfg, integers=True)
        write_inputs(run, cfg, data)
        ref_out, declined, err = run_cli_forced(run, cfg, "cpu_ref_f64")
        if ref_out is None or declined:
            failures.append(f"exact config {cfg['index']}: {describe(cfg)}\n    {err or 'cpu_ref_f64 declined'}")
            continue
        ref = torch_reference(cfg, data, "fp32")["val"]
        if cfg["f16_inputs"]:  # float16 activations: the exact sums, rounded once to binary16 when stored
            ref.update(y=ref["y"].astype(np.float16).astype(np.float64),
                       dx=ref["dx"].astype(np.float16).astype(np.float64))
        for name in ref_out:
            if not np.array_equal(ref_out[name].astype(np.float64), ref[name]):
                failures.append(f"exact config {cfg['index']}: cpu_ref_f64 {name} differs from PyTorch on "
                                f"integers: {describe(cfg)}")
        for algo in algos:
            if algo == "cpu_ref_f64":
                continue
            got, declined, err = run_cli_forced(run, cfg, algo)
            if got is None:
                failures.append(f"exact config {cfg['index']} --algo {algo}: {describe(cfg)}\n    {err}")
                continue
            taken[algo] += len(got)
            for name in got:
                if got[name].tobytes() != ref_out[name].tobytes():
                    failures.append(f"exact config {cfg['index']} --algo {algo}: {name} differs from "
                                    f"cpu_ref_f64: {describe(cfg)}")
    for algo, n in taken.items():
        if algo != "cpu_ref_f64" and n == 0:
            failures.append(f"algorithm {algo} declined every direction of the {made} exact configurations")
    print(f"exact: {made} integer configurations x {len(algos)} algorithms {algos} "
          f"(taken: {taken}) in {time.time() - t1:.1f} s")
    print(f"{run.calls} tconv runs, {time.time() - t0:.1f} s in all")

    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print(f"FAILED: {len(failures)} failures")
        for f in failures[:40]:
            print(f)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
