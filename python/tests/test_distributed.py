"""Data-parallel training from Python: tconv's communicator (tconv.CommunicatorId, tconv.Communicator,
tconv.distributed) and the main job trained through it (python -m tconv.train).

Every machine: the id's hex, file and environment forms and their errors; available() agreeing with the build
(and, without NCCL, a clear UnsupportedError for everything that needs it); shard_of; the package's copies of
the main job's definitions against scripts/train_torch.py; a CPU training run on a small synthetic data set
(finite, falling loss equal to a plain PyTorch loop's, deterministic, output files written) and the CLI's
errors. With one GPU and NCCL: one-rank all-reduces of PyTorch tensors (sum with a pre-multiplier, mean) in
place, on the current stream, without host synchronisation, through the object API too, and their errors.
With two GPUs: a 2-rank all-reduce between spawned processes, and `--gpus 2` against `--gpus 1` (same losses
within float tolerance; `--gpus 1` bit-identical to the single-process run) and against itself (bit-identical).
"""
import gzip
import importlib.util
import json
import math
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

import tconv
import tconv.distributed as dist
from tconv import _core
from tconv import train as job

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_torch.py"
HAVE_NCCL = tconv.Communicator.available()
CUDA_BUILD = _core._cuda_compiled_in()
GPUS = torch.cuda.device_count() if (CUDA_BUILD and torch.cuda.is_available()) else 0
needs_gpu = pytest.mark.skipif(not (HAVE_NCCL and GPUS >= 1),
                               reason="needs NCCL in the tconv build and a GPU visible to PyTorch")
needs_2gpus = pytest.mark.skipif(not (HAVE_NCCL and GPUS >= 2),
                                 reason="needs NCCL in the tconv build and 2 GPUs visible to PyTorch")
HEX = bytes(range(255, 127, -1)).hex()  # 256 digits, every nibble value


# ---------------------------------------------------------------- helpers

def _write_idx(path, images):
    data = struct.pack(">IIII", 0x803, *images.shape) + images.tobytes()
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(data)


def _blobs(n, seed):
    """n 28x28 images of one soft disc each (something an auto-encoder learns quickly), as idx bytes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    cy, cx, r = rng.uniform(8, 20, n), rng.uniform(8, 20, n), rng.uniform(3, 8, n)
    d = np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]) / r[:, None, None]
    return (np.clip(1.2 - d, 0, 1) * 255).astype(np.uint8)


def _make_data(folder, train, test):
    folder.mkdir(parents=True, exist_ok=True)
    _write_idx(folder / "train-images-idx3-ubyte.gz", _blobs(train, 1))  # gzip, as Debian ships them
    _write_idx(folder / "t10k-images-idx3-ubyte", _blobs(test, 2))       # and plain
    return folder


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return _make_data(tmp_path_factory.mktemp("tiny"), 640, 200)


def _run(args, cwd, timeout=600, env=None):
    """`python -m tconv.train ARGS` in a fresh interpreter (the installed package, -P: not the source tree)."""
    p = subprocess.run([sys.executable, "-P", "-m", "tconv.train", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p


def _train_ok(args, cwd, timeout=600):
    p = _run(args, cwd, timeout)
    assert p.returncode == 0, f"tconv.train {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    out = pathlib.Path(args[args.index("--out") + 1])
    rows = (out / "steps.csv").read_text().splitlines()
    assert rows[0] == "epoch,step,loss"
    losses = [float(r.split(",")[2]) for r in rows[1:]]
    summary_text = (out / "summary.json").read_text()
    assert summary_text.count("\n") == 1  # one line
    return losses, json.loads(summary_text), (out / "steps.csv").read_bytes()


def _load_script():
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} not found (tests run from a repository checkout)")
    spec = importlib.util.spec_from_file_location("train_torch_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- ids (every build)

def test_id_hex_round_trip():
    a = tconv.CommunicatorId.from_hex(HEX)
    assert a.to_hex() == HEX and len(HEX) == 256
    assert a.bytes == bytes.fromhex(HEX)
    assert tconv.CommunicatorId.from_hex("  " + HEX.upper() + "\n") == a  # a file's newline, upper case
    b = tconv.CommunicatorId.from_hex(HEX[:-2] + "00")
    assert a != b and not (a == b)
    assert hash(a) == hash(tconv.CommunicatorId.from_hex(HEX))
    assert pickle.loads(pickle.dumps(a)) == a  # ids can be handed to multiprocessing workers
    assert HEX[:16] in repr(a)
    assert tconv.CommunicatorId().bytes == bytes(128)


def test_id_file_round_trip_and_waiting(tmp_path):
    a = tconv.CommunicatorId.from_hex(HEX)
    path = tmp_path / "id"
    a.write_file(str(path))
    assert os.listdir(tmp_path) == ["id"]  # written atomically: no temporary left beside it
    assert path.read_text() == HEX + "\n"
    assert tconv.CommunicatorId.read_file(str(path)) == a

    # A reader waits for rank 0's file; the GIL is released meanwhile, so this Python thread can write it.
    late = tmp_path / "late"
    writer = threading.Timer(0.3, lambda: a.write_file(str(late)))
    writer.start()
    t0 = time.monotonic()
    try:
        assert tconv.CommunicatorId.read_file(str(late), timeout=20) == a
    finally:
        writer.join()
    assert time.monotonic() - t0 >= 0.25

    t0 = time.monotonic()
    with pytest.raises(tconv.FileError, match="waited") as e:
        tconv.CommunicatorId.read_file(str(tmp_path / "missing"), timeout=0.2)
    assert time.monotonic() - t0 >= 0.2
    assert str(tmp_path / "missing") in str(e.value) and isinstance(e.value, OSError)
    with pytest.raises(tconv.InvalidArgumentError, match="timeout"):
        tconv.CommunicatorId.read_file(str(path), timeout=-1)


def test_malformed_ids_are_format_errors(tmp_path, monkeypatch):
    with pytest.raises(tconv.FormatError, match="got 255 characters") as e:
        tconv.CommunicatorId.from_hex(HEX[1:])
    assert isinstance(e.value, ValueError) and e.value.code == "format_error"
    with pytest.raises(tconv.FormatError, match="got 0 characters"):
        tconv.CommunicatorId.from_hex("")
    with pytest.raises(tconv.FormatError, match="character 17 is 'g'"):
        tconv.CommunicatorId.from_hex(HEX[:17] + "g" + HEX[18:])
    junk = tmp_path / "junk"
    junk.write_text("not an id\n")
    with pytest.raises(tconv.FormatError, match="junk"):
        tconv.CommunicatorId.read_file(str(junk))

    monkeypatch.delenv("TCONV_TEST_ID", raising=False)
    with pytest.raises(tconv.InvalidArgumentError, match="TCONV_TEST_ID"):
        tconv.CommunicatorId.from_environment("TCONV_TEST_ID")
    monkeypatch.setenv("TCONV_TEST_ID", HEX)
    assert tconv.CommunicatorId.from_environment("TCONV_TEST_ID") == tconv.CommunicatorId.from_hex(HEX)
    monkeypatch.setenv("TCONV_TEST_ID", "abc")
    with pytest.raises(tconv.FormatError, match="TCONV_TEST_ID"):
        tconv.CommunicatorId.from_environment("TCONV_TEST_ID")


# ---------------------------------------------------------------- availability and argument checks (every build)

def test_available_agrees_with_the_build():
    assert dist.available() == HAVE_NCCL
    if not CUDA_BUILD:
        assert not HAVE_NCCL  # NCCL moves device memory: only beside the CUDA backend
    cpu = tconv.Device.cpu()
    some_id = tconv.CommunicatorId.from_hex(HEX)
    # Rank checks come first, in every build.
    with pytest.raises(tconv.InvalidArgumentError, match=r"rank 2 is outside \[0, 2\)"):
        tconv.Communicator(cpu, some_id, 2, 2)
    with pytest.raises(tconv.InvalidArgumentError, match="at least 1 rank, got 0"):
        tconv.Communicator(cpu, some_id, 0, 0)
    with pytest.raises(tconv.InvalidArgumentError, match="rank must be an int"):
        dist.init(1, 1)
    if HAVE_NCCL:
        v = tconv.Communicator.library_version()
        assert v >= 21300, v  # ncclGetLastError and PreMulSum: NCCL 2.13
        a, b = tconv.CommunicatorId.generate(), tconv.CommunicatorId.generate()
        assert a != b and a != tconv.CommunicatorId()
        with pytest.raises(tconv.InvalidArgumentError, match="CUDA device"):
            tconv.Communicator(cpu, a, 0, 1)
    else:
        assert tconv.Communicator.library_version() == 0
        with pytest.raises(tconv.UnsupportedError, match="no NCCL") as e:
            tconv.CommunicatorId.generate()
        assert isinstance(e.value, NotImplementedError)
        with pytest.raises(tconv.UnsupportedError, match="no NCCL"):
            tconv.Communicator(cpu, some_id, 0, 1)
        with pytest.raises(tconv.UnsupportedError, match="no NCCL"):
            dist.init(0, 1)


def test_reduce_op_and_default_communicator_errors():
    assert {tconv.ReduceOp.sum, tconv.ReduceOp.mean} == {dist._reduce_op("sum"), dist._reduce_op("mean")}
    with pytest.raises(tconv.InvalidArgumentError, match="'avg'"):
        dist._reduce_op("avg")
    dist.shutdown()  # no communicator: nothing to do
    with pytest.raises(tconv.InvalidArgumentError, match="tconv.distributed.init"):
        dist.all_reduce(torch.zeros(3))


def test_shard_of_splits_every_batch_exactly():
    assert dist.shard_of(128, 0, 2) == (0, 64, 0.5) and dist.shard_of(128, 1, 2) == (64, 64, 0.5)
    assert dist.shard_of(128, 0, 1) == (0, 128, 1.0)
    for n in (0, 1, 3, 96, 127, 128):
        for ranks in (1, 2, 3, 8):
            parts = [dist.shard_of(n, r, ranks) for r in range(ranks)]
            assert [p[0] for p in parts] == [sum(q[1] for q in parts[:r]) for r in range(ranks)]  # contiguous
            assert sum(p[1] for p in parts) == n
            assert max(p[1] for p in parts) - min(p[1] for p in parts) <= 1
            for _, count, weight in parts:
                assert weight == (float(np.float32(count / n)) if n else 0.0)
    with pytest.raises(tconv.InvalidArgumentError):
        dist.shard_of(10, 2, 2)


# ---------------------------------------------------------------- the main job (every build)

def test_package_copies_of_the_main_job_match_the_script():
    """train.py carries the script's definitions (the package cannot import scripts/): same generator, orders,
    weights (fingerprints) and layer shapes, the transposed convolutions being tconv's."""
    script = _load_script()
    a, b = script.SplitMix64(12345), job.SplitMix64(12345)
    assert [a.next() for _ in range(50)] == [b.next() for _ in range(50)]
    for seed, epoch, count in ((1, 0, 1000), (3, 2, 777)):
        assert np.array_equal(script.epoch_permutation(seed, epoch, count), job.epoch_permutation(seed, epoch, count))
    for seed in (1, 7):
        ref, ours = script.make_model(), job.make_model()
        script.init_model(ref, seed)
        job.init_model(ours, seed)
        assert job.fingerprint(ours) == script.fingerprint(ref)
        assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in ref.parameters()]
        assert sum(isinstance(m, tconv.torch.ConvTranspose2d) for m in ours) == 2


def _reference_curve(data, steps, batch=128, seed=1):
    """The main job's loop in plain PyTorch (torch.nn.ConvTranspose2d) on the same data: the expected losses."""
    script = _load_script()
    train = script.load_split(str(data), "train", 0)
    order = torch.from_numpy(script.epoch_permutation(seed, 0, train.shape[0]))
    model = script.make_model()
    script.init_model(model, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for step in range(steps):
        x = train[order[step * batch:(step + 1) * batch]]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_cpu_training_run(tiny_data, tmp_path):
    args = ["--device", "cpu", "--steps", "5", "--data", str(tiny_data), "--threads", "2"]
    losses, summary, csv = _train_ok(args + ["--out", str(tmp_path / "a")], tmp_path)
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] and losses[-1] < 0.97 * losses[0], losses  # it trains
    assert summary["steps"] == 5 and summary["images"] == 5 * 128 and summary["gpus"] == 0
    assert summary["device"] == "cpu" and summary["train_images"] == 640 and summary["test_images"] == 200
    assert math.isfinite(summary["test_mse"]) and 0 < summary["test_mse"] < losses[0]
    assert summary["images_per_s"] > 0 and np.float32(summary["final_loss"]) == np.float32(losses[-1])
    model = job.make_model()
    job.init_model(model, 1)
    assert summary["init_fingerprint"] == job.fingerprint(model)
    # The same losses as the job's loop in plain PyTorch (tconv's layers agree with PyTorch's to ~1e-6).
    for step, (got, ref) in enumerate(zip(losses, _reference_curve(tiny_data, 5))):
        assert abs(got - ref) <= 1e-4 * ref, f"step {step + 1}: tconv.train {got} vs PyTorch {ref}"
    # Deterministic: a second run gives the same bits.
    _, summary2, csv2 = _train_ok(args + ["--out", str(tmp_path / "b")], tmp_path)
    assert csv2 == csv and summary2["final_fingerprint"] == summary["final_fingerprint"]
    assert summary2["test_mse"] == summary["test_mse"]


def test_cli_errors(tiny_data, tmp_path):
    p = _run(["--gpus", "2", "--device", "cpu"], tmp_path)
    assert p.returncode == 2 and "does not take --device cpu" in p.stderr
    p = _run(["--device", "cpu", "--steps", "1", "--data", str(tmp_path / "nowhere")], tmp_path)
    assert p.returncode == 1 and "cannot find" in p.stderr and "nowhere" in p.stderr
    if not HAVE_NCCL:
        p = _run(["--gpus", "1", "--data", str(tiny_data)], tmp_path)
        assert p.returncode == 1 and "needs NCCL" in p.stderr, p.stderr
    elif GPUS < 8:
        p = _run(["--gpus", str(GPUS + 1), "--data", str(tiny_data)], tmp_path)
        assert p.returncode == 1 and "one GPU per rank" in p.stderr, p.stderr


# ---------------------------------------------------------------- one GPU

@needs_gpu
def test_one_rank_all_reduce_of_torch_tensors():
    comm = dist.init(0, 1, device="cuda:0")  # one rank needs no id source
    try:
        assert dist.get_communicator() is comm and comm.rank == 0 and comm.size == 1
        assert comm.device == tconv.Device.cuda(0) and "rank 0 of 1" in repr(comm)
        g = torch.Generator(device="cuda").manual_seed(0)
        a = torch.randn(1000, device="cuda", generator=g)
        b = torch.randn(7, 5, device="cuda", generator=g).t()  # a transposed view of dense memory
        c = torch.randn(2, 3, 4, 5, device="cuda", generator=g).contiguous(memory_format=torch.channels_last)
        e = torch.empty(0, device="cuda")
        tensors = [a, b, c, e]
        before = [t.clone() for t in tensors]
        ptrs = [t.data_ptr() for t in tensors]
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")  # any host synchronisation in the call raises
        try:
            assert dist.all_reduce(tensors, op="sum", scale=0.25) is tensors
            sum_scaled = [t.clone() for t in tensors]
            dist.all_reduce(tensors, op=tconv.ReduceOp.mean)
            mean = [t.clone() for t in tensors]
            dist.all_reduce(a)  # a single tensor
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert [t.data_ptr() for t in tensors] == ptrs  # in place
        for x0, s, m in zip(before, sum_scaled, mean):
            assert torch.equal(s, x0 * 0.25)  # one rank: 0.25·x, exact
            assert torch.equal(m, x0 * 0.25)  # the mean of one rank is its value
        assert torch.equal(a, before[0] * 0.25)

        # Ordered on the current stream: a side stream that is still sleeping when the fill is enqueued.
        s = torch.cuda.Stream()
        x = torch.zeros(1 << 16, device="cuda")
        torch.cuda.synchronize()
        with torch.cuda.stream(s):
            torch.cuda._sleep(50_000_000)
            x.fill_(3.0)
            dist.all_reduce(x, scale=2.0)
            y = x.clone()
        torch.cuda.synchronize()
        assert torch.all(y == 6.0)

        # Gradients of a module: every parameter, a missing gradient made zero so that all ranks agree.
        m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 2, 3)).cuda()
        m(torch.randn(2, 1, 8, 8, device="cuda")).sum().backward()
        m[1].bias.grad = None
        ref = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in m.parameters()]
        grads = dist.all_reduce_gradients(m, scale=0.5)
        assert len(grads) == 4 and m[1].bias.grad is not None
        for p, r in zip(m.parameters(), ref):
            assert torch.equal(p.grad, r * 0.5)

        # Errors name the tensor and the problem, before anything is enqueued.
        with pytest.raises(tconv.InvalidArgumentError, match="tensor 1 is on cpu"):
            dist.all_reduce([a, torch.zeros(3)])
        with pytest.raises(tconv.InvalidArgumentError, match="float64"):
            dist.all_reduce([a.double()])
        with pytest.raises(tconv.InvalidArgumentError, match="gaps or overlaps"):
            dist.all_reduce([a[::2]])
        with pytest.raises(tconv.InvalidArgumentError, match="scale must be 1"):
            dist.all_reduce([a], op="mean", scale=0.5)
        with pytest.raises(tconv.InvalidArgumentError, match="finite"):
            dist.all_reduce([a], scale=float("inf"))
        with pytest.raises(tconv.InvalidArgumentError, match="no tensors"):
            dist.all_reduce([])
    finally:
        dist.shutdown()
    with pytest.raises(tconv.InvalidArgumentError, match="null communicator"):
        comm.enqueue_all_reduce([], tconv.ReduceOp.sum, 1.0, 0)
    assert "closed" in repr(comm)


@needs_gpu
def test_one_rank_all_reduce_through_the_object_api():
    dev = tconv.Device.cuda(0)
    comm = tconv.Communicator(dev, tconv.CommunicatorId.generate(), 0, 1)
    values = np.arange(8, dtype=np.float32) + 1
    buf = tconv.Buffer.from_numpy(dev, values)
    whole = tconv.Buffer.from_numpy(dev, values)
    cb = tconv.CommandBuffer(dev)
    comm.encode_all_reduce(cb, [tconv.FloatSpan(buf, 4, 3)], tconv.ReduceOp.sum, 2.0)  # floats 1..3, doubled
    comm.encode_all_reduce(cb, [whole], tconv.ReduceOp.mean)  # a Buffer is a whole-buffer span
    comm.encode_join(cb)
    cb.commit()
    cb.wait_and_check()
    expected = values.copy()
    expected[1:4] *= 2
    assert np.array_equal(buf.to_numpy(), expected)
    assert np.array_equal(whole.to_numpy(), values)
    with pytest.raises(tconv.InvalidArgumentError, match="not a multiple of 4"):
        comm.encode_all_reduce(tconv.CommandBuffer(dev), [tconv.FloatSpan(buf, 2)])
    comm.abort()
    with pytest.raises(tconv.InvalidArgumentError, match="aborted"):
        comm.encode_all_reduce(tconv.CommandBuffer(dev), [buf])


# ---------------------------------------------------------------- two GPUs

_RANK_PROGRAM = textwrap.dedent("""
    import json, sys, torch, tconv.distributed as dist
    rank, id_file, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    torch.cuda.set_device(rank)
    comm = dist.init(rank, 2, id_file=id_file, timeout=120)
    assert comm.device.ordinal == rank
    t = torch.full((1000,), float(rank + 1), device="cuda")
    u = (torch.arange(12, device="cuda", dtype=torch.float32) * (rank + 1)).reshape(3, 4)
    v = torch.full((5,), float(rank + 1), device="cuda")
    dist.all_reduce([t, u], op="sum", scale=(0.25, 0.75)[rank])   # the ranks' shares of a batch
    dist.all_reduce(v, op="mean")
    w = torch.full((3,), float(10 * (rank + 1)), device="cuda")
    dist.all_reduce(w)                                             # a plain sum
    res = {k: x.cpu().flatten().tolist() for k, x in dict(t=t, u=u, v=v, w=w).items()}
    dist.shutdown()
    json.dump(res, open(out, "w"))
""")


@needs_2gpus
def test_two_rank_all_reduce_between_processes(tmp_path):
    program = tmp_path / "rank.py"
    program.write_text(_RANK_PROGRAM)
    id_file = tmp_path / "id"
    env = dict(os.environ, NCCL_NVLS_ENABLE="0")
    procs = [subprocess.Popen([sys.executable, "-P", str(program), str(r), str(id_file), str(tmp_path / f"r{r}.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for r in range(2)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=240)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, text) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"rank {r} failed:\n{text}"
    res = [json.loads((tmp_path / f"r{r}.json").read_text()) for r in range(2)]
    assert res[0] == res[1]  # every rank receives the same bits
    assert res[0]["t"] == [0.25 * 1 + 0.75 * 2] * 1000
    assert res[0]["u"] == [i * (0.25 * 1 + 0.75 * 2) for i in range(12)]
    assert res[0]["v"] == [1.5] * 5
    assert res[0]["w"] == [30.0] * 3
    assert not id_file.exists()  # rank 0's shutdown removed the single-use id


@needs_2gpus
def test_train_two_gpus_equals_one_and_is_deterministic(tmp_path):
    data = _make_data(tmp_path / "data", 1280, 300)
    base = ["--steps", "8", "--data", str(data)]
    single, s_single, csv_single = _train_ok(base + ["--device", "cuda", "--out", str(tmp_path / "g0")], tmp_path)
    one, s_one, csv_one = _train_ok(base + ["--gpus", "1", "--out", str(tmp_path / "g1")], tmp_path)
    two, s_two, csv_two = _train_ok(base + ["--gpus", "2", "--out", str(tmp_path / "g2")], tmp_path)
    again, s_again, csv_again = _train_ok(base + ["--gpus", "2", "--out", str(tmp_path / "g2b")], tmp_path)
    assert s_two["gpus"] == 2 and s_one["gpus"] == 1 and s_single["gpus"] == 0
    assert len(two) == 8 and all(math.isfinite(v) for v in two) and two[-1] < two[0]
    assert s_single["init_fingerprint"] == s_one["init_fingerprint"] == s_two["init_fingerprint"]
    # One rank through the communicator changes nothing: a sum over one rank with weight 1 is a copy.
    assert csv_one == csv_single and s_one["final_fingerprint"] == s_single["final_fingerprint"]
    # Two ranks: the same global batches, gradients summed in another order (float32 rounding only).
    for step, (a, b) in enumerate(zip(two, one)):
        assert abs(a - b) <= 1e-4 * b, f"step {step + 1}: --gpus 2 {a} vs --gpus 1 {b}"
    assert abs(s_two["test_mse"] - s_one["test_mse"]) <= 1e-4 * s_one["test_mse"]
    # Deterministic: the same bits on a second run.
    assert csv_again == csv_two
    assert s_again["final_fingerprint"] == s_two["final_fingerprint"] and s_again["test_mse"] == s_two["test_mse"]
    # Rank 0 cleaned up: the id file and the other rank's log are gone on success.
    assert sorted(os.listdir(tmp_path / "g2")) == ["steps.csv", "summary.json"]


@needs_2gpus
def test_train_two_gpus_uneven_shards_and_an_empty_rank(tmp_path):
    """Shards of different sizes (batch 127 over 2 ranks: 64 + 63) and a last global batch of one image, where
    rank 1 has nothing to train on but still joins every all-reduce with weight 0: the same result as one GPU."""
    data = _make_data(tmp_path / "data", 128 * 3, 300)
    base = ["--batch", "127", "--steps", "4", "--data", str(data)]  # 384 = 3·127 + 3: a last step of 3 (2 + 1)
    one, s_one, _ = _train_ok(base + ["--gpus", "1", "--out", str(tmp_path / "u1")], tmp_path)
    two, s_two, _ = _train_ok(base + ["--gpus", "2", "--out", str(tmp_path / "u2")], tmp_path)
    for step, (a, b) in enumerate(zip(two, one)):
        assert abs(a - b) <= 1e-4 * b, f"step {step + 1}: --gpus 2 {a} vs --gpus 1 {b}"
    assert abs(s_two["test_mse"] - s_one["test_mse"]) <= 1e-4 * s_one["test_mse"]
    data1 = _make_data(tmp_path / "data1", 129, 300)  # batch 128: a second step of one image
    single = ["--batch", "128", "--data", str(data1), "--epochs", "1"]
    one, s_one, _ = _train_ok(single + ["--gpus", "1", "--out", str(tmp_path / "e1")], tmp_path)
    two, s_two, _ = _train_ok(single + ["--gpus", "2", "--out", str(tmp_path / "e2")], tmp_path)
    assert len(two) == len(one) == 2
    for step, (a, b) in enumerate(zip(two, one)):
        assert abs(a - b) <= 1e-4 * b, f"step {step + 1}: --gpus 2 {a} vs --gpus 1 {b}"
