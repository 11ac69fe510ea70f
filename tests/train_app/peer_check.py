#!/usr/bin/python3
"""CTest: tconv train against its PyTorch peer (scripts/train_torch.py) on a small subset.

Both must start from bit-identical weights (same init fingerprint), see the same first batch (so the first
step's loss, a pure forward pass, agrees to float32 rounding), and end within 10% of each other's test MSE
(the issue's quality target, here on a short run). Usage: peer_check.py TCONV_BINARY WORK_DIR
"""
import csv
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["--epochs", "2", "--batch", "64", "--limit-train", "2048", "--limit-test", "500", "--seed", "3",
        "--threads", "2"]


def main():
    tconv, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    out = subprocess.run([tconv, "train", *ARGS, "--progress", "0", "--out", work], check=True,
                         capture_output=True, text=True).stdout
    fp_tconv = out.split("init fingerprint ")[1].split()[0]
    with open(os.path.join(work, "summary.json")) as f:
        tc = json.load(f)
    with open(os.path.join(work, "train_log.csv")) as f:
        first_tconv = float(next(csv.DictReader(f))["train_loss"])
    steps = os.path.join(work, "torch_steps.csv")
    peer = json.loads(subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train_torch.py"), *ARGS,
                                      "--json", "--step-log", steps], check=True, capture_output=True,
                                     text=True).stdout)
    with open(steps) as f:
        first_torch = float(next(csv.DictReader(f))["loss"])
    print(f"init fingerprint tconv {fp_tconv} torch {peer['init_fingerprint']}")
    print(f"first step loss tconv {first_tconv:.9g} torch {first_torch:.9g}")
    print(f"test MSE tconv {tc['test_mse']:.6g} torch {peer['test_mse']:.6g}")
    ok = True
    if fp_tconv != peer["init_fingerprint"]:
        print("FAIL: the two trainers start from different weights"); ok = False
    if abs(first_tconv - first_torch) > 1e-5 * first_torch:
        print("FAIL: first-step losses differ beyond float32 rounding"); ok = False
    if abs(tc["test_mse"] - peer["test_mse"]) > 0.1 * peer["test_mse"]:
        print("FAIL: final test MSE differs by more than 10%"); ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
