#!/usr/bin/python3
"""CLI test of the autotuner and its plan cache (docs/tuning.md), end to end through the `tconv` program.

--device cpu (runs in CI): `tconv tune` on tests/cli/tune_suite.json writes a cache; `tconv grad`, `tconv
forward` and `tconv bench` with TCONV_PLAN_CACHE plan with it (the algorithm they print is the cached one, and a
hand-edited entry naming the reference is obeyed, with the same results); without the variable they use the
preference order; a corrupt or missing cache named by the variable is reported on stderr and ignored; `tconv
tune` refuses to overwrite a corrupt cache, adds to an existing one, and rejects bad options.
--device cuda: the same on the GPU (tune fp32 and bf16; grad and bench --device cuda obey a cached choice that
differs from the tuned one). Skipped (77) when the build or the machine has no CUDA device.

Exit status: 0 pass, 1 failure, 77 skip (no numpy, or no CUDA device for --device cuda).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "tune_suite.json")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(tconv, args, env_cache=None, unset_env=True):
    env = dict(os.environ)
    if unset_env:
        env.pop("TCONV_PLAN_CACHE", None)
    if env_cache is not None:
        env["TCONV_PLAN_CACHE"] = env_cache
    r = subprocess.run([tconv] + args, capture_output=True, text=True, env=env)
    return r


def key(direction, bias, dtype="float32", precision="fp32"):
    # plan_problem_key of layer tiny_s2 at batch 2 (CPU) — part of the cache file format.
    return (f"{direction} n2 ci16 co8 g1 in6x6 out12x12 k4x4 s2x2 d1x1 p1x1 {dtype} {precision} "
            f"bias={1 if bias else 0} accumulate=0 neuron=none")


def load(path):
    with open(path) as f:
        return json.load(f)


def entry(cache, problem, device_prefix):
    hits = [e for e in cache["entries"] if e["problem"] == problem and e["device"].startswith(device_prefix)
            and e["deterministic_only"]]
    return hits[0] if len(hits) == 1 else None


def algos_of(stdout):
    """(dx algorithm, dw/db algorithm) from `tconv grad`'s line."""
    dx = re.search(r"dx -> \S+ \(algorithm (\S+)\)", stdout)
    dw = re.search(r"dw/db \(algorithm (\S+)\)", stdout)
    return (dx.group(1) if dx else None, dw.group(1) if dw else None)


def table(stdout):
    """Rows of `tconv tune`'s table: {(layer, dtype, dir): (chosen, [algorithms timed], chosen ms)}."""
    rows, last = {}, None
    for line in stdout.splitlines():
        if line.startswith("      "):
            if last is not None and "failed:" not in line:
                rows[last][1].append(line.split()[0])
        elif line.startswith("  "):
            f = line.split()
            last = (f[0], f[1], f[2])
            rows[last] = (f[3], [], float(f[4]))
    return rows


def cpu_test(tconv, d):
    f32 = np.float32
    rng = np.random.default_rng(5)
    # Small integers: every algorithm's results are exact, so a cached algorithm must agree bit for bit.
    x = rng.integers(-3, 4, (2, 16, 6, 6)).astype(f32)
    w = rng.integers(-3, 4, (16, 8, 4, 4)).astype(f32)
    dy = rng.integers(-3, 4, (2, 8, 12, 12)).astype(f32)
    b = rng.integers(-3, 4, (8,)).astype(f32)
    for name, a in (("x", x), ("w", w), ("dy", dy), ("b", b)):
        np.save(os.path.join(d, name + ".npy"), a)
    P = lambda n: os.path.join(d, n)
    geo = ["--stride", "2", "--padding", "1"]

    def grad(tag, env_cache):
        r = run(tconv, ["grad", "--x", P("x.npy"), "--w", P("w.npy"), "--dy", P("dy.npy"), "--dx", P(tag + "dx.npy"),
                        "--dw", P(tag + "dw.npy"), "--db", P(tag + "db.npy")] + geo, env_cache)
        return r, algos_of(r.stdout)

    def forward(env_cache):
        r = run(tconv, ["forward", "--x", P("x.npy"), "--w", P("w.npy"), "--b", P("b.npy"), "--y", P("y.npy")] + geo,
                env_cache)
        m = re.search(r"\(algorithm (\S+),", r.stdout)
        return r, m.group(1) if m else None

    # 1. tune
    cache = P("cache.json")
    r = run(tconv, ["tune", "--suite", SUITE, "--device", "cpu", "--cache", cache, "--reps", "3", "--warmup", "1",
                    "--threads", "2", "--verbose"])
    check(r.returncode == 0, f"tconv tune --device cpu exits 0 (got {r.returncode}: {r.stderr.strip()})")
    print(r.stdout)
    c = load(cache)
    check(c.get("format") == "tconv-plan-cache" and c.get("version") == 1, "cache header format/version")
    check(len(c["entries"]) == 6, f"6 entries (2 layers x 3 directions), got {len(c['entries'])}")
    check(all(e["device"].startswith("cpu:") for e in c["entries"]), "every entry is keyed to the CPU")
    rows = table(r.stdout)
    check(len(rows) == 6, f"6 table rows, got {len(rows)}")
    for (layer, dtype, direction), (chosen, timed, _) in rows.items():
        check(chosen in timed and "cpu_ref_f64" in timed, f"{layer} {direction}: chosen {chosen} among timed {timed}")
    e_dx, e_dw, e_fwd = entry(c, key("bwd_data", False), "cpu:"), entry(c, key("bwd_weights", True), "cpu:"), \
        entry(c, key("fwd", True), "cpu:")
    check(None not in (e_dx, e_dw, e_fwd), "entries for tiny_s2's fwd (bias), bwd_data, bwd_weights (bias)")
    if None in (e_dx, e_dw, e_fwd):
        return
    check(rows[("tiny_s2", "fp32", "bwd_data")][0] == e_dx["algorithm"], "table and cache agree")

    # 2. without the cache: the preference order; with it: the cached choices
    r0, (def_dx, def_dw) = grad("def_", None)
    check(r0.returncode == 0 and def_dx and def_dw, f"tconv grad without a cache ({r0.stderr.strip()})")
    r1, (dx1, dw1) = grad("c1_", cache)
    check(r1.returncode == 0, f"tconv grad with TCONV_PLAN_CACHE ({r1.stderr.strip()})")
    check(r1.stderr == "", f"no warning with a good cache: {r1.stderr.strip()!r}")
    check((dx1, dw1) == (e_dx["algorithm"], e_dw["algorithm"]),
          f"tconv grad plans with the cache: {dx1}, {dw1} vs cached {e_dx['algorithm']}, {e_dw['algorithm']}")
    r0f, def_fwd = forward(None)
    check(r0f.returncode == 0 and def_fwd, "tconv forward without a cache")

    # 3. a hand-edited cache naming the reference is obeyed (whatever was fastest), with the same results
    edited = P("edited.json")
    c2 = load(cache)
    for e in c2["entries"]:
        e["algorithm"] = "cpu_ref_f64"
    with open(edited, "w") as f:
        json.dump(c2, f)
    check(def_dx != "cpu_ref_f64" and def_dw != "cpu_ref_f64" and def_fwd != "cpu_ref_f64",
          "the preference order picks optimised algorithms (so the override below is visible)")
    r2, (dx2, dw2) = grad("c2_", edited)
    check((dx2, dw2) == ("cpu_ref_f64", "cpu_ref_f64"), f"edited cache obeyed by tconv grad: {dx2}, {dw2}")
    for n in ("dx", "dw", "db"):
        a, bb = np.load(P("def_" + n + ".npy")), np.load(P("c2_" + n + ".npy"))
        check(np.array_equal(a, bb), f"{n}: the cached algorithm gives the default's exact result")
    r2f, fwd2 = forward(edited)
    check(fwd2 == "cpu_ref_f64", f"edited cache obeyed by tconv forward (fwd with bias): {fwd2}")

    # 4. tconv bench plans through choose(), so it uses the cache too
    r = run(tconv, ["bench", "--suite", SUITE, "--device", "cpu", "--layers", "tiny_s2", "--no-machine", "--reps", "1",
                    "--warmup", "0"], edited)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    check(r.returncode == 0 and len(lines) == 1, f"tconv bench with the cache ({r.stderr.strip()})")
    if lines:
        check(lines[0].get("algo_dx") == "cpu_ref_f64" and lines[0].get("algo_dw") == "cpu_ref_f64",
              f"tconv bench uses the cached algorithms: {lines[0].get('algo_dx')}, {lines[0].get('algo_dw')}")

    # 5. a corrupt or missing cache named by TCONV_PLAN_CACHE: one warning, the preference order
    corrupt = P("corrupt.json")
    with open(corrupt, "w") as f:
        f.write(open(cache).read()[:120])  # cut short
    r3, (dx3, dw3) = grad("c3_", corrupt)
    check(r3.returncode == 0, "a corrupt cache does not fail tconv grad")
    check("TCONV_PLAN_CACHE ignored" in r3.stderr and "format_error" in r3.stderr and corrupt in r3.stderr,
          f"the corrupt cache is reported: {r3.stderr.strip()!r}")
    check(r3.stderr.count("TCONV_PLAN_CACHE ignored") == 1, "reported once")
    check((dx3, dw3) == (def_dx, def_dw), "and the preference order is used")
    r4, (dx4, _) = grad("c4_", P("no-such-cache.json"))
    check(r4.returncode == 0 and "io_error" in r4.stderr and dx4 == def_dx,
          f"a missing cache is reported and ignored: {r4.stderr.strip()!r}")

    # 6. tconv tune refuses to overwrite a corrupt cache
    before = open(corrupt).read()
    r = run(tconv, ["tune", "--suite", SUITE, "--cache", corrupt, "--reps", "1", "--warmup", "0"])
    check(r.returncode != 0 and "format_error" in r.stderr and "not overwritten" in r.stderr,
          f"tune on a corrupt cache fails: {r.stderr.strip()!r}")
    check(open(corrupt).read() == before, "and leaves it as it was")

    # 7. tuning adds to an existing cache: tiny_dw re-tuned, tiny_s2's (edited) entries kept
    merged = P("merged.json")
    shutil.copy(edited, merged)
    r = run(tconv, ["tune", "--suite", SUITE, "--layers", "tiny_dw", "--reps", "1", "--warmup", "0"], merged,
            unset_env=False)  # --cache defaults to $TCONV_PLAN_CACHE
    check(r.returncode == 0, f"tune --layers tiny_dw with the cache from TCONV_PLAN_CACHE ({r.stderr.strip()})")
    m = load(merged)
    check(len(m["entries"]) == 6, f"still 6 entries, got {len(m['entries'])}")
    check(entry(m, key("bwd_data", False), "cpu:")["algorithm"] == "cpu_ref_f64", "tiny_s2's entries kept")
    rows2 = table(r.stdout)
    check(sorted(rows2) == [("tiny_dw", "fp32", "bwd_data"), ("tiny_dw", "fp32", "bwd_weights"), ("tiny_dw", "fp32", "fwd")],
          f"only tiny_dw tuned: {sorted(rows2)}")
    dw_entries = [e for e in m["entries"] if " g8 " in e["problem"]]
    check(len(dw_entries) == 3, "tiny_dw's 3 entries")
    for e in dw_entries:
        row = rows2.get(("tiny_dw", "fp32", e["problem"].split()[0]))
        check(row is not None and e["algorithm"] == row[0] and abs(e["ms"] - row[2]) < 6e-5,
              f"tiny_dw {e['problem'].split()[0]}: the entry is this run's measurement ({e['algorithm']} {e['ms']} "
              f"vs {row})")

    # 8. bad options
    for args, frag in ((["--device", "gpu"], "--device"), (["--dtypes", "fp64"], "fp64"),
                       (["--layers", "nope"], "no layer"), (["--reps", "0"], "--reps")):
        r = run(tconv, ["tune", "--suite", SUITE, "--cache", P("x.json")] + args)
        check(r.returncode != 0 and frag in r.stderr, f"tune {' '.join(args)} refused: {r.stderr.strip()!r}")
    r = run(tconv, ["tune", "--suite", SUITE])
    check(r.returncode != 0 and "TCONV_PLAN_CACHE" in r.stderr, f"tune without a cache file: {r.stderr.strip()!r}")


def cuda_test(tconv, d):
    P = lambda n: os.path.join(d, n)
    cache = P("cache.json")
    r = run(tconv, ["tune", "--suite", SUITE, "--device", "cuda", "--dtypes", "fp32,bf16", "--cache", cache, "--reps",
                    "3", "--verbose"])
    if r.returncode != 0 and "device_unavailable" in r.stderr:
        print(f"SKIP: {r.stderr.strip()}")
        sys.exit(77)
    print(r.stdout)
    check(r.returncode == 0, f"tconv tune --device cuda exits 0 ({r.stderr.strip()})")
    c = load(cache)
    check(len(c["entries"]) == 12, f"12 entries (2 layers x 2 dtypes x 3 directions), got {len(c['entries'])}")
    check(all(e["device"].startswith("cuda:") for e in c["entries"]), "every entry is keyed to the GPU")
    rows = table(r.stdout)
    # The GPU batch is the suite's n = 8.
    gkey = lambda direction, bias: key(direction, bias).replace(" n2 ", " n8 ")
    e_dx, e_dw = entry(c, gkey("bwd_data", False), "cuda:"), entry(c, gkey("bwd_weights", True), "cuda:")
    check(e_dx is not None and e_dw is not None, "fp32 entries of tiny_s2 on the GPU")
    if e_dx is None or e_dw is None:
        return
    rng = np.random.default_rng(5)
    f32 = np.float32
    for name, shape in (("x", (8, 16, 6, 6)), ("w", (16, 8, 4, 4)), ("dy", (8, 8, 12, 12))):
        np.save(P(name + ".npy"), rng.integers(-3, 4, shape).astype(f32))
    geo = ["--stride", "2", "--padding", "1", "--device", "cuda"]

    def grad(tag, env_cache):
        r = run(tconv, ["grad", "--x", P("x.npy"), "--w", P("w.npy"), "--dy", P("dy.npy"), "--dx", P(tag + "dx.npy"),
                        "--dw", P(tag + "dw.npy"), "--db", P(tag + "db.npy")] + geo, env_cache)
        return r, algos_of(r.stdout)

    r1, got = grad("c1_", cache)
    check(r1.returncode == 0 and got == (e_dx["algorithm"], e_dw["algorithm"]),
          f"tconv grad --device cuda plans with the cache: {got} vs {e_dx['algorithm']}, {e_dw['algorithm']} "
          f"({r1.stderr.strip()})")
    # Force a different algorithm that takes the problem (the tuner timed it) through an edited cache.
    timed_dx = rows.get(("tiny_s2", "fp32", "bwd_data"), ("", [], 0))[1]
    others = [a for a in timed_dx if a != e_dx["algorithm"]]
    if not others:
        print("note: one CUDA algorithm takes tiny_s2's bwd_data; the override check is skipped")
        return
    c2 = load(cache)
    for e in c2["entries"]:
        if e["problem"] == gkey("bwd_data", False) and e["device"].startswith("cuda:"):
            e["algorithm"] = others[0]
    edited = P("edited.json")
    with open(edited, "w") as f:
        json.dump(c2, f)
    r2, got2 = grad("c2_", edited)
    check(r2.returncode == 0 and got2[0] == others[0], f"edited GPU cache obeyed: {got2[0]} vs {others[0]}")
    a, b = np.load(P("c1_dx.npy")), np.load(P("c2_dx.npy"))
    check(np.array_equal(a, b), "small integers: the two CUDA algorithms give the same dx")
    r = run(tconv, ["bench", "--suite", SUITE, "--device", "cuda", "--dtypes", "fp32", "--layers", "tiny_s2",
                    "--no-machine", "--reps", "2", "--warmup", "1"], edited)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    planner = [l for l in lines if l.get("impl") == "tconv"]
    check(r.returncode == 0 and len(planner) == 1 and planner[0].get("algo_dx") == others[0],
          f"tconv bench --device cuda uses the cache: {planner[0].get('algo_dx') if planner else None} "
          f"({r.stderr.strip()})")
    if planner:
        check(planner[0].get("check") == "bitwise", f"bench's own check with the cached choice: {planner[0].get('check')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tconv", required=True)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    tconv = os.path.abspath(args.tconv)
    d = tempfile.mkdtemp(prefix="tconv-tune-test-")
    try:
        (cuda_test if args.device == "cuda" else cpu_test)(tconv, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if failures:
        print(f"{len(failures)} FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
