#!/usr/bin/python3
"""Bad-input test of the `tconv` CLI (issue 2 §6): every case must exit non-zero, print a message holding
the expected fragment (the error code and/or the offending value), and leave no output file behind (no
target and no temporary). Needs only numpy (to write the .npy inputs).

Exit status: 0 pass, 1 failure, 77 skip (no numpy).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tconv", required=True)
    args = ap.parse_args()
    tconv = os.path.abspath(args.tconv)
    d = tempfile.mkdtemp(prefix="tconv-bad-input-")
    out_dir = os.path.join(d, "out")
    os.makedirs(out_dir)

    def p(name):
        return os.path.join(d, name)

    def save(name, a):
        np.save(p(name), a)
        return p(name)

    f32 = np.float32
    x = save("x.npy", np.ones((1, 4, 3, 3), f32))                 # N=1, C=4, 3x3
    w = save("w.npy", np.ones((4, 2, 3, 3), f32))                 # Cin=4, Cout/G=2, 3x3
    dy = save("dy.npy", np.ones((1, 2, 5, 5), f32))               # stride 1, pad 0: 5x5
    b = save("b.npy", np.ones((2,), f32))
    save("x_c3.npy", np.ones((1, 3, 3, 3), f32))
    save("w_c3.npy", np.ones((3, 2, 3, 3), f32))
    save("x_zero.npy", np.ones((1, 0, 3, 3), f32))
    save("x_f64.npy", np.ones((1, 4, 3, 3), np.float64))
    save("w_u8.npy", np.ones((4, 2, 3, 3), np.uint8))
    save("x_3d.npy", np.ones((4, 3, 3), f32))
    save("w_c5.npy", np.ones((5, 2, 3, 3), f32))
    save("dy_bad.npy", np.ones((1, 2, 4, 5), f32))
    save("dy_c3.npy", np.ones((1, 3, 5, 5), f32))
    save("b_bad.npy", np.ones((3,), f32))
    good = open(p("x.npy"), "rb").read()
    open(p("trunc.npy"), "wb").write(good[: len(good) - 7])      # data cut short
    open(p("corrupt.npy"), "wb").write(b"\x93NUMPX" + good[6:])  # wrong magic
    open(p("header.npy"), "wb").write(good[:10] + b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4" +
                                      b" " * (len(good) - 10 - 54))   # unterminated header dict

    y = os.path.join(out_dir, "y.npy")
    dx = os.path.join(out_dir, "dx.npy")
    dw = os.path.join(out_dir, "dw.npy")
    db = os.path.join(out_dir, "db.npy")
    fwd = ["forward", "--w", w, "--y", y]
    grad = ["grad", "--w", w, "--dx", dx, "--dw", dw, "--db", db]

    info = subprocess.run([tconv, "info", "--json"], capture_output=True, text=True)
    cuda_built = json.loads(info.stdout)["build"]["cuda"] if info.returncode == 0 else False

    # (name, argv, fragments expected in the output)
    cases = [
        ("channels not divisible by groups", ["forward", "--x", p("x_c3.npy"), "--w", p("w_c3.npy"), "--y", y,
                                              "--groups", "2"], ["invalid_argument", "not divisible by groups (2)"]),
        ("zero channels", ["forward", "--x", p("x_zero.npy"), "--w", w, "--y", y], ["[1, 0, 3, 3]", "non-positive"]),
        ("negative stride", fwd + ["--x", x, "--stride", "-1"], ["stride must be positive", "-1"]),
        ("zero dilation", fwd + ["--x", x, "--dilation", "2,0"], ["dilation must be positive", "2,0"]),
        ("zero groups", fwd + ["--x", x, "--groups", "0"], ["groups must be positive, got 0"]),
        ("weights/x channel mismatch", ["forward", "--x", x, "--w", p("w_c5.npy"), "--y", y],
         ["5 input channels but x has 4"]),
        ("dy spatial mismatch", grad + ["--x", x, "--dy", p("dy_bad.npy")], ["dy has shape [1, 2, 4, 5]",
                                                                             "expected [1, 2, 5, 5]"]),
        ("dy channel mismatch", grad + ["--x", x, "--dy", p("dy_c3.npy")], ["dy has shape [1, 3, 5, 5]"]),
        ("output padding >= max(stride, dilation)", fwd + ["--x", x, "--stride", "2", "--output-padding", "2"],
         ["output_padding height = 2", "max(stride 2, dilation 1)"]),
        ("negative output padding", fwd + ["--x", x, "--output-padding", "0,-1"], ["output_padding width = -1"]),
        ("non-positive output size", fwd + ["--x", x, "--padding", "3"], ["output size -1x-1 is not positive"]),
        ("float64 npy", fwd + ["--x", p("x_f64.npy")], ["float64", "x_f64.npy"]),
        ("uint8 weights", ["forward", "--x", x, "--w", p("w_u8.npy"), "--y", y], ["uint8", "w_u8.npy"]),
        ("wrong ndim", fwd + ["--x", p("x_3d.npy")], ["must be 4-D", "[4, 3, 3]"]),
        ("truncated npy", fwd + ["--x", p("trunc.npy")], ["format_error", "trunc.npy"]),
        ("corrupted magic", fwd + ["--x", p("corrupt.npy")], ["format_error", "corrupt.npy"]),
        ("corrupted header", fwd + ["--x", p("header.npy")], ["format_error", "header.npy"]),
        ("missing file", fwd + ["--x", p("nope.npy")], ["io_error", "nope.npy"]),
        ("unknown precision", fwd + ["--x", x, "--precision", "fp8"], ["unknown --precision 'fp8'"]),
        ("unknown device", fwd + ["--x", x, "--device", "tpu"], ["unknown --device 'tpu'"]),
        ("unknown algorithm", fwd + ["--x", x, "--algo", "cpu_magic"], ["unknown algorithm 'cpu_magic'"]),
        ("unknown layout", fwd + ["--x", x, "--layout", "chwn"], ["unknown --layout 'chwn'"]),
        ("unknown weight layout", fwd + ["--x", x, "--weight-layout", "oihw"], ["unknown --weight-layout 'oihw'"]),
        ("bad stride text", fwd + ["--x", x, "--stride", "2,x"], ["--stride expects H,W", "'2,x'"]),
        ("bias shape", fwd + ["--x", x, "--b", p("b_bad.npy")], ["bias has shape [3], expected [2]"]),
        ("PyTorch and MPS geometry mixed", fwd + ["--x", x, "--padding", "1", "--mps-padding", "same"],
         ["cannot be combined"]),
        ("unknown MPS padding policy", fwd + ["--x", x, "--mps-padding", "middle"], ["unknown --mps-padding 'middle'"]),
        ("option data without --dx", ["grad", "--x", x, "--w", w, "--dy", dy, "--dw", dw, "--option", "data"],
         ["--option data needs --dx"]),
        ("unknown gradient option", grad + ["--x", x, "--dy", dy, "--option", "bias"], ["unknown --option 'bias'"]),
        ("missing required --y", ["forward", "--x", x, "--w", w], ["invalid_argument", "--y is required"]),
        ("unknown option", fwd + ["--x", x, "--strides", "2"], ["invalid_argument", "--strides"]),
        ("groups not a number", fwd + ["--x", x, "--groups", "two"], ["invalid_argument", "two"]),
        ("negative threads", fwd + ["--x", x, "--threads", "-2"], ["-2"]),
        # One output folder missing: nothing at all may be written (dx and dw would be writable).
        ("unwritable output", ["grad", "--x", x, "--w", w, "--dy", dy, "--dx", dx, "--dw", dw, "--db",
                               os.path.join(d, "no-such-folder", "db.npy")], ["io_error", "no-such-folder"]),
    ]
    if not cuda_built:
        cases.append(("cuda in a CPU-only build", fwd + ["--x", x, "--device", "cuda"], ["device_unavailable"]))

    failures = []
    for name, argv, fragments in cases:
        r = subprocess.run([tconv] + argv, capture_output=True, text=True)
        text = r.stdout + r.stderr
        problems = []
        if r.returncode == 0:
            problems.append("exit status 0")
        if r.returncode != 1:
            problems.append(f"exit status {r.returncode}, expected 1")
        if r.returncode < 0 or r.returncode >= 128:
            problems.append(f"crashed (status {r.returncode})")
        for f in fragments:
            if f not in text:
                problems.append(f"message lacks {f!r}")
        left = os.listdir(out_dir)
        if left:
            problems.append(f"left files behind: {left}")
            for f in left:
                os.remove(os.path.join(out_dir, f))
        status = "ok  " if not problems else "FAIL"
        print(f"{status} {name}: {text.strip().splitlines()[-1] if text.strip() else '(no output)'}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}\n    command: tconv {' '.join(argv)}\n    output: {text.strip()}")

    # The same arguments that fail above succeed once corrected, so the checks above test the input.
    r = subprocess.run([tconv] + grad + ["--x", x, "--dy", dy], capture_output=True, text=True)
    if r.returncode != 0 or sorted(os.listdir(out_dir)) != ["db.npy", "dw.npy", "dx.npy"]:
        failures.append(f"control case failed: {r.stdout + r.stderr} files {os.listdir(out_dir)}")
    shutil.rmtree(d, ignore_errors=True)
    print(f"{len(cases)} bad-input cases, {len(failures)} failures")
    for f in failures:
        print("FAILED " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
