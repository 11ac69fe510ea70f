#!/usr/bin/env python3
"""Per layer and precision: PyTorch (best layout), cuDNN through tconv, tconv's planner (default order and
with a tuned plan cache), speed-ups, the algorithms chosen, and the fraction of the roofline, from the JSON
lines that torch_peer.py and `tconv bench --device cuda` write. Optionally draws the speed-ups as a PNG.

  cuda_results_table.py --peer peer.jsonl --all ours_all_algorithms.jsonl [--tuned ours_tuned.jsonl
                        --tuned-peer peer2.jsonl] [--png speedups.png]

Roofline: a layer's all-three time against max(FLOPs / matrix rate, bytes / copy bandwidth), with the rate and
bandwidth the bench measured in the same run (cuBLAS bf16 GEMM; device-to-device copy). fp32 has no tensor-core
form: its FLOP roof is the FP32 FMA peak (66.9 TFLOP/s at the 1.98 GHz boost clock of the H100 SXM), tf32 half
the bf16 rate. Bytes: each tensor the gradients read or write once (dY twice: both passes read it).
"""
import argparse
import json
import math
from collections import defaultdict

SIZE = {"bf16": 2, "fp16": 2, "tf32": 4, "fp32": 4}


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def best_peer(rows):
    best = {}
    for r in rows:
        if r.get("all_ms") is None:
            continue
        k = (r["layer"], r["dtype"])
        if k not in best or r["all_ms"] < best[k]["all_ms"]:
            best[k] = r
    return best


def by_impl(rows, impl):
    return {(r["layer"], r["dtype"]): r for r in rows if r.get("impl") == impl and "layer" in r}


def fmt_ms(v):
    """A time in ms, or a dash where that run did not measure it (no tuned plan, an algorithm that declined)."""
    return f"{v:.4f}" if v else "—"


def machine(rows):
    for r in rows:
        if r.get("impl") == "tconv-machine":
            return r
    return {}


def tensor_bytes(layer, dtype):
    """dX, dY (read twice), X, W/dW (float32) of one all-three-gradient step, from the suite geometry."""
    g = layer
    n, ci, co = g["n"], g["cin"], g["cout"]
    x = n * ci * g["h"] * g["w"]
    y = n * co * g["out_h"] * g["out_w"]
    w = ci * (co // g["groups"]) * g["kh"] * g["kw"]
    e = SIZE[dtype]
    return (2 * x + 2 * y) * e + 2 * w * 4 + co * 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True)
    ap.add_argument("--all", required=True, help="tconv bench --algorithms list output")
    ap.add_argument("--tuned", help="tconv bench with TCONV_PLAN_CACHE")
    ap.add_argument("--tuned-peer", help="the PyTorch run beside the tuned bench")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--png")
    a = ap.parse_args()

    suite = {L["name"]: L for L in json.load(open(a.suite))["layers"]}
    ours = load(a.all)
    m = machine(ours)
    gemm = m.get("bf16_gemm_tflops", 0) * 1e12
    copy = m.get("copy_gbps", 0) * 1e9
    peer = best_peer(load(a.peer))
    planner = by_impl(ours, "tconv")
    cudnn = by_impl(ours, "tconv-cuda_cudnn")
    tuned = by_impl(load(a.tuned), "tconv") if a.tuned else {}
    tpeer = best_peer(load(a.tuned_peer)) if a.tuned_peer else {}
    own_pairs = total_pairs = 0
    speed = defaultdict(dict)
    print("| layer | dtype | PyTorch ms | cuDNN via tconv ms | tconv ms | speed-up | tuned ms | tuned speed-up "
          "| algorithms (dX / dW) | TFLOP/s | of roof |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (layer, dt) in sorted(planner):
        p, t = peer.get((layer, dt)), planner[(layer, dt)]
        if p is None or t.get("all_ms") is None:
            continue
        c = cudnn.get((layer, dt), {})
        tu = tuned.get((layer, dt), {})
        tp = tpeer.get((layer, dt), p)
        s = p["all_ms"] / t["all_ms"]
        st = tp["all_ms"] / tu["all_ms"] if tu.get("all_ms") else None
        speed[dt][layer] = (s, st)
        flops = 2 * 1e9 * t["gflop_each"]
        tflops = flops / (t["all_ms"] * 1e-3) / 1e12
        rate = {"bf16": gemm, "fp16": gemm, "tf32": gemm / 2, "fp32": 66.9e12}[dt]
        roof_s = max(flops / rate if rate else 0, tensor_bytes(suite[layer], dt) / copy if copy else 0)
        frac = roof_s / (t["all_ms"] * 1e-3)
        algs = f"{t.get('algo_dx')} / {t.get('algo_dw')}"
        src = tu if tu else t
        for d in ("algo_dx", "algo_dw"):
            total_pairs += 1
            own_pairs += not str(src.get(d, "")).startswith("cuda_cudnn")
        print(f"| {layer} | {dt} | {p['all_ms']:.4f} ({p['layout']}) | "
              f"{fmt_ms(c.get('all_ms'))} | {t['all_ms']:.4f} | {s:.2f}x | "
              f"{fmt_ms(tu.get('all_ms'))} | {f'{st:.2f}x' if st else '—'} | {algs} | {tflops:.1f} | "
              f"{frac:.0%} |")
    print()
    for dt in ("bf16", "fp16", "tf32", "fp32"):
        if dt not in speed:
            continue
        v = [x[0] for x in speed[dt].values()]
        line = f"- {dt}: geomean {math.exp(sum(map(math.log, v)) / len(v)):.2f}x (default order), worst {min(v):.2f}x"
        vt = [x[1] for x in speed[dt].values() if x[1]]
        if vt:
            line += f"; tuned {math.exp(sum(map(math.log, vt)) / len(vt)):.2f}x, worst {min(vt):.2f}x"
        print(line)
    if total_pairs:
        print(f"- own kernels chosen (tuned plan where given) for {own_pairs} of {total_pairs} (layer, precision, "
              f"direction) choices ({own_pairs / total_pairs:.0%})")
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        layers = sorted({l for d in speed.values() for l in d})
        fig, ax = plt.subplots(figsize=(12, 5))
        width = 0.2
        for i, dt in enumerate(("bf16", "fp16", "tf32", "fp32")):
            ys = [(speed[dt].get(l, (0, None))[1] or speed[dt].get(l, (0, None))[0]) for l in layers]
            ax.bar([j + (i - 1.5) * width for j in range(len(layers))], ys, width, label=dt)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=35, ha="right")
        ax.set_ylabel("speed-up over PyTorch 2.11 / cuDNN (all three gradients)")
        ax.set_title("tconv on an H100: dX + dW + db vs PyTorch's best layout (" +
                     ("tuned plan" if a.tuned else "default plan") + "; 1.0 = parity)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
