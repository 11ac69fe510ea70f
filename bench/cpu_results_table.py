#!/usr/bin/env python3
"""Markdown tables for bench/results/cpu-*.md from one measured run: PyTorch's JSON lines (torch_peer.py)
and tconv's (`tconv bench --json`). Per layer: PyTorch's best layout vs tconv for dX, dW+db and all three,
tconv's GFLOP/s, its fraction of the sgemm rate measured in the same run, its streaming fraction
(time to read+write its tensors once at the measured copy bandwidth / measured time), and the CPU time.

  python3 bench/cpu_results_table.py PEER.jsonl TCONV.jsonl
"""
import json, math, sys


def lines(path):
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)


def main():
    peer_path, ours_path = sys.argv[1], sys.argv[2]
    peer = {}
    for r in lines(peer_path):
        if "error" in r or r.get("all_ms") is None:
            continue
        for m in ("dx_ms", "dwdb_ms", "all_ms"):  # best layout per measurement, as a careful user would pick
            k = (r["layer"], m)
            if k not in peer or r[m] < peer[k][0]:
                peer[k] = (r[m], r["layout"])
    machine, ours = None, []
    for r in lines(ours_path):
        if r.get("impl") == "tconv-machine":
            machine = r
        elif r.get("impl") == "tconv":
            ours.append(r)
    if machine:
        print(f"Machine, same run: OpenBLAS sgemm {machine['sgemm_size']}^3 at {machine['threads']} threads "
              f"{machine['sgemm_gflops']:.1f} GFLOP/s; parallel copy {machine['copy_gbps']:.1f} GB/s (read+write).\n")
    print("| layer | n | torch all ms (layout) | tconv all ms | speed-up all | dX | dW+db | tconv GFLOP/s | of sgemm | streaming | tconv CPU ms (all) | algorithms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    sp = {"all_ms": [], "dx_ms": [], "dwdb_ms": []}
    for r in ours:
        L = r["layer"]
        if (L, "all_ms") not in peer:
            print(f"| {L} | {r['n']} | missing | {r['all_ms']:.2f} | | | | | | | | |")
            continue
        s = {m: peer[(L, m)][0] / r[m] for m in sp}
        for m in sp:
            sp[m].append(s[m])
        algos = r["algo_dx"] if r["algo_dx"] == r["algo_dw"] else f"{r['algo_dx']}, {r['algo_dw']}"
        print(f"| {L} | {r['n']} | {peer[(L, 'all_ms')][0]:.2f} ({peer[(L, 'all_ms')][1]}) | {r['all_ms']:.2f} | "
              f"{s['all_ms']:.2f}x | {s['dx_ms']:.2f}x | {s['dwdb_ms']:.2f}x | {r['gflops']:.1f} | "
              f"{100 * r.get('sgemm_fraction', 0):.0f}% | {r.get('stream_fraction', 0):.2f} | {r['all_cpu_ms']:.1f} | {algos} |")
    print()
    for m, v in sp.items():
        if v:
            gm = math.exp(sum(map(math.log, v)) / len(v))
            print(f"- {m}: geometric-mean speed-up {gm:.2f}x over {len(v)} layers, worst {min(v):.2f}x")


if __name__ == "__main__":
    main()
