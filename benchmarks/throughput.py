"""Throughput of ZiCo scoring on NAS-Bench-201: zico-jax's Engine against the two obvious alternatives.

    python benchmarks/throughput.py [--end-to-end 30,200] [--end-to-end-batch-sizes 64,128]
                                    [--num-archs 50] [--batch-size 64] [--num-batches 2] [--compile-archs 10]
                                    [--skip-compile-per-candidate] [--devices 1,2,4,8] [--output FILE.json]

End to end (`--end-to-end`, first): what a user waits for. For each number of architectures and each batch size,
two whole processes on the same genotypes, one after the other: the official eager PyTorch loop
(benchmarks/torch_score.py: import torch, build each network, `compute_zico`, 2 threads) and `zico score`
(import, config, data, engine, compilation from a cold cache: `--config.compilation_cache=False`), each timed
from launch to exit, with its time to the first score and its peak resident memory (`wait4`'s ru_maxrss).
The ratio is PyTorch's seconds over zico's (above 1: zico-jax is faster).

The same `--num-archs` random genotypes (fixed seed, degenerate ones included: they are part of the space) are
scored on the same real CIFAR-10 mini-batches (float32), in one process:

  (b) engine      `Engine(space, xs, ys, ("zico",))`, default backend ("auto": the tape of per-block executables
                  on CPU). Timed from a cold start (jax caches cleared, nothing compiled yet), compilation
                  included; "steady" is the median per-candidate `.seconds` after the first 5 candidates.
  (a) compile     one `jax.jit` of the standalone network per genotype (init, the N per-batch gradients unrolled
                  in Python, `zico_statistic`): compile + first run per genotype, on the first `--compile-archs`
                  genotypes only (seconds each on CPU); "steady" is a second run of the compiled executable.
  (c) pytorch     the official eager loop (benchmarks/torch_reference.py, default init, 2 threads): build the
                  network + `torch_zico`; "steady" is the median after the first 5.

In process (the rest): per row, seconds per architecture (mean over the genotypes it timed, everything
included), the median, the steady-state figure, and the ratio to the engine's mean. GFLOP/s counts, per
candidate, 3 x 2 x MACs x images (forward + backward taken as 3 forward passes; 2 FLOPs per multiply-accumulate;
MACs = `space.flops(g)` per image, images = batch x num_batches), set against the measured float32 matmul peak
(`jnp.dot` of two 2048 x 2048 matrices, best of 5, 2 n^3 FLOPs).

Whole-space projection: seconds to score all 15,625 NAS-Bench-201 cells at the engine's steady per-candidate
time, and with `deduplicate=True`, which measures one cell per class of the canonical form (6,466 classes): the
per-class mean is the timed genotypes' mean weighted by 1 / (size of their class), so that a class counts once.

Device scaling: for each d in `--devices`, a subprocess with 8 virtual CPU devices scores 16 genotypes of a tiny
space (C=8, N=1, batch 16 x 2) with the supernet backend sharded over the first d devices (candidate_batch 8),
after a warm-up batch, and reports candidates/second. Virtual devices share the same cores: this shows the
sharding path works and what it costs, not a speed-up.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "benchmarks")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from zico_jax import grads as G  # noqa: E402
from zico_jax import tape as tape_module  # noqa: E402
from zico_jax.data import load_images, make_batches  # noqa: E402
from zico_jax.engine import Engine  # noqa: E402
from zico_jax.engine import _supernet as supernet_backend  # noqa: E402
from zico_jax.engine import _tape as tape_backend  # noqa: E402
from zico_jax.proxies.zico import zico_statistic  # noqa: E402
from zico_jax.sharding import candidate_mesh  # noqa: E402
from zico_jax.spaces import get_space  # noqa: E402
from zico_jax.spaces.base import HasCanonicalForm  # noqa: E402

SCALING_ARCHS, SCALING_BATCH, STEADY_AFTER = 16, 16, 5


def archs_for_end_to_end(space, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed + 1)  # not the in-process genotypes: nothing is shared between the runs
    return [space.sample(rng) for _ in range(n)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--end-to-end", default="30,200", help="architecture counts of the whole-process comparison "
                   "('' to skip)")
    p.add_argument("--end-to-end-batch-sizes", default="64,128", help="mini-batch sizes of the whole-process "
                   "comparison (2 mini-batches each)")
    p.add_argument("--num-archs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-batches", type=int, default=2)
    p.add_argument("--compile-archs", type=int, default=10, help="genotypes timed for (a) compile per candidate")
    p.add_argument("--skip-compile-per-candidate", action="store_true")
    p.add_argument("--devices", default="1,2,4,8", help="device counts for the scaling table ('' to skip)")
    p.add_argument("--seed", type=int, default=0, help="seed of the genotypes and of the mini-batches")
    p.add_argument("--output", help="write the figures as JSON, e.g. "
                   f"benchmarks/results/throughput_{socket.gethostname()}.json")
    p.add_argument("--scaling-worker", type=int, help=argparse.SUPPRESS)  # internal: one device-scaling run
    return p.parse_args(argv)


def machine_info() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "jax": jax.__version__,
            "backend": jax.default_backend(), "torch": torch_version,
            "load_average_at_start": os.getloadavg()}


def clear_compilation_caches() -> None:
    """Forget every compiled executable: jax's caches and the engine's / tape's lru caches of jitted functions."""
    jax.clear_caches()
    for module in (supernet_backend, tape_backend, tape_module):
        for value in vars(module).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()


def candidate_flops(space, g, images: int) -> float:
    return 3 * 2 * space.flops(g) * images


def summary(seconds: list[float], total: float | None = None, steady: float | None = None) -> dict:
    total = sum(seconds) if total is None else total
    return {"archs": len(seconds), "total_s": total, "mean_s": total / len(seconds),
            "median_s": statistics.median(seconds), "steady_s": steady, "per_arch_s": seconds}


def time_engine(space, archs, xs, ys) -> dict:
    clear_compilation_caches()
    start = time.perf_counter()
    results = list(Engine(space, xs, ys, ("zico",)).score(archs))
    total = time.perf_counter() - start
    per_arch = [r.seconds for r in results]
    steady = statistics.median(per_arch[STEADY_AFTER:] or per_arch)
    out = summary(per_arch, total, steady)
    out.update(first_candidate_s=per_arch[0], scores=[r.scores["zico"] for r in results])
    return out


def time_compile_per_candidate(space, archs, xs, ys) -> dict:
    compile_s, first_run_s, second_run_s = [], [], []
    key = jax.random.key(0)
    for g in archs:
        model = space.model(g)

        def zico_at_init(key, xs, ys, model=model):  # a new function per genotype: nothing is reused
            params = model.init(key, xs[0, :1])["params"]
            grads = G.per_batch_grads(G.classification_loss(model.apply), params, xs, ys, "unroll")
            return zico_statistic(G.kernel_leaves(grads))

        start = time.perf_counter()
        compiled = jax.jit(zico_at_init).lower(key, xs, ys).compile()
        compiled_at = time.perf_counter()
        float(compiled(key, xs, ys))
        ran_at = time.perf_counter()
        float(compiled(key, xs, ys))
        compile_s.append(compiled_at - start)
        first_run_s.append(ran_at - compiled_at)
        second_run_s.append(time.perf_counter() - ran_at)
    out = summary([c + r for c, r in zip(compile_s, first_run_s)], steady=statistics.median(second_run_s))
    out.update(compile_mean_s=statistics.mean(compile_s), first_run_mean_s=statistics.mean(first_run_s))
    return out


def time_pytorch(archs, xs, ys) -> dict | None:
    try:
        import torch
        from torch_reference import TinyNetwork, torch_zico
    except ImportError as e:
        print(f"(c) PyTorch eager loop skipped: torch is not importable ({e})")
        return None
    torch.set_num_threads(2)
    n, b, h, w, c = xs.shape
    x = torch.from_numpy(np.ascontiguousarray(xs.reshape(n * b, h, w, c).transpose(0, 3, 1, 2)))
    y = torch.from_numpy(ys.reshape(-1).astype(np.int64))
    per_arch, scores = [], []
    for g in archs:
        start = time.perf_counter()
        scores.append(torch_zico(TinyNetwork(str(g)), x, y, splits=n))
        per_arch.append(time.perf_counter() - start)
    out = summary(per_arch, steady=statistics.median(per_arch[STEADY_AFTER:] or per_arch))
    out["scores"] = scores
    return out


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = (jax.random.normal(jax.random.key(i), (n, n), jnp.float32) for i in range(2))
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def scaling_worker(devices: int, seed: int) -> None:
    """One device count (run in a subprocess with 8 virtual CPU devices); prints one JSON line."""
    space = get_space("nats_tss", C=8, N=1)
    x, y = load_images("cifar10")
    xs, ys = make_batches(x, y, num_batches=2, batch_size=SCALING_BATCH, seed=seed)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(SCALING_ARCHS)]
    engine = Engine(space, xs, ys, ("zico",), backend="supernet", mesh=candidate_mesh(jax.devices()[:devices]),
                    candidate_batch=8)
    start = time.perf_counter()
    list(engine.score(archs[:8]))  # warm-up: compiles the one sharded program
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    scores = [r.scores["zico"] for r in engine.score(archs)]
    seconds = time.perf_counter() - start
    print(json.dumps({"devices": devices, "available": jax.device_count(), "warmup_s": warmup, "seconds": seconds,
                      "candidates_per_s": len(archs) / seconds, "scores": scores}))


def device_scaling(device_counts: list[int], seed: int) -> list[dict]:
    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"))
    rows = []
    for d in device_counts:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--scaling-worker", str(d), "--seed",
                               str(seed)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"device scaling with {d} device(s) failed:\n{proc.stderr[-2000:]}")
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


def run_process(cmd: list[str], env: dict | None = None) -> dict:
    """`cmd` to completion: wall seconds from launch to exit, seconds to its first line on stdout (its first
    score), peak resident memory (MB), and its stdout lines."""
    with tempfile.TemporaryFile("w+") as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        first, lines = None, []
        for line in proc.stdout:
            first = time.perf_counter() - start if first is None else first
            lines.append(line)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(cmd[:3])} ... exited with {proc.returncode}:\n{errors.read()[-3000:]}")
    return {"wall_s": wall, "first_score_s": first, "peak_rss_mb": usage.ru_maxrss / 1024, "lines": lines}


def end_to_end(archs, x, y, counts: list[int], batch_sizes: list[int], seed: int) -> list[dict]:
    """PyTorch's loop and `zico score` as whole processes, on the first n genotypes, per batch size (the
    mini-batches drawn from images x, labels y)."""
    zico = os.path.join(os.path.dirname(sys.executable), "zico")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in batch_sizes:
            xs, ys = make_batches(x, y, num_batches=2, batch_size=batch, seed=seed)
            batches = os.path.join(tmp, f"batches_{batch}.npz")
            np.savez(batches, xs=np.asarray(xs), ys=np.asarray(ys))
            for n in counts:
                archs_file = os.path.join(tmp, f"archs_{n}.txt")
                with open(archs_file, "w") as f:
                    f.write("".join(f"{g}\n" for g in archs[:n]))
                torch_run = run_process([sys.executable, os.path.join(ROOT, "benchmarks", "torch_score.py"),
                                         archs_file, batches])
                cache = os.path.join(tmp, f"cache_{batch}_{n}")  # cold: a new, empty folder (and the cache off)
                zico_run = run_process([zico, "score", f"--config.archs_file={archs_file}", "--config.proxies=zico",
                                        f"--config.batch_size={batch}", "--config.num_batches=2",
                                        f"--config.seed={seed}", "--config.compilation_cache=False",
                                        "--config.json=True"], env=dict(os.environ, ZICO_JAX_CACHE=cache))
                row = {"archs": n, "batch_size": batch, "num_batches": 2}
                for name, run in (("pytorch", torch_run), ("zico", zico_run)):
                    scored = [json.loads(line) for line in run.pop("lines") if line.startswith("{")]
                    if len(scored) != n:
                        raise RuntimeError(f"{name}: {len(scored)} scores for {n} architectures")
                    row[name] = run
                row["ratio"] = torch_run["wall_s"] / zico_run["wall_s"]
                rows.append(row)
                print(f"end to end, {n} archs at 2 x {batch}: PyTorch {torch_run['wall_s']:.1f} s, zico score "
                      f"{zico_run['wall_s']:.1f} s, ratio {row['ratio']:.2f}", flush=True)
    return rows


def projection(space, archs, per_arch_s: list[float]) -> dict:
    """Seconds for every cell of the space at the timed genotypes' steady cost, without and with dedup."""
    if not isinstance(space, HasCanonicalForm):
        return {}
    sizes = collections.Counter(space.canonical(g) for g in space.enumerate())
    weights = [1 / sizes[space.canonical(g)] for g in archs]
    per_class_s = sum(w * t for w, t in zip(weights, per_arch_s)) / sum(weights)
    total = sum(sizes.values())
    return {"cells": total, "classes": len(sizes), "per_arch_s": statistics.mean(per_arch_s),
            "per_class_s": per_class_s, "all_cells_s": total * statistics.mean(per_arch_s),
            "deduplicated_s": len(sizes) * per_class_s}


def report_end_to_end(rows: list[dict]) -> None:
    print("\nend to end: whole processes on the same genotypes, cold compilation cache; ratio = PyTorch s / zico s")
    print(f"{'archs':>6}{'batch':>8}{'PyTorch s':>11}{'zico s':>9}{'ratio':>7}{'first score s':>20}"
          f"{'peak RSS MB':>20}")
    print(f"{'':>41}{'PyTorch':>10}{'zico':>10}{'PyTorch':>10}{'zico':>10}")
    for r in rows:
        p, z = r["pytorch"], r["zico"]
        print(f"{r['archs']:>6}{'2 x ' + str(r['batch_size']):>8}{p['wall_s']:>11.1f}{z['wall_s']:>9.1f}"
              f"{r['ratio']:>7.2f}{p['first_score_s']:>10.1f}{z['first_score_s']:>10.1f}{p['peak_rss_mb']:>10.0f}"
              f"{z['peak_rss_mb']:>10.0f}")


def report(info, setup, rows, gflops, scaling) -> None:
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, host {info['host']}; jax {info['jax']} "
          f"({info['backend']}), torch {info['torch'] or 'not installed'}; load average at start "
          + ", ".join(f"{v:.2f}" for v in info["load_average_at_start"]))
    print(f"setup: {setup['num_archs']} random NAS-Bench-201 genotypes (seed {setup['seed']}), C=16 N=5, "
          f"{setup['num_batches']} x {setup['batch_size']} real CIFAR-10 images, float32\n")
    engine_mean = rows["engine"]["mean_s"]
    print(f"{'method':<34}{'archs':>6}{'s/arch':>9}{'median':>9}{'steady':>9}{'x engine':>10}")
    labels = {"compile": "(a) jit per genotype (compile+run)", "engine": "(b) zico-jax Engine (tape)",
              "pytorch": "(c) PyTorch eager, 2 threads"}
    for name in ("compile", "engine", "pytorch"):
        r = rows.get(name)
        if r is None:
            continue
        steady = "-" if r["steady_s"] is None else f"{r['steady_s']:.3f}"
        print(f"{labels[name]:<34}{r['archs']:>6}{r['mean_s']:>9.3f}{r['median_s']:>9.3f}{steady:>9}"
              f"{r['mean_s'] / engine_mean:>10.2f}")
    if "compile" in rows:
        c = rows["compile"]
        print(f"  (a) timed on the first {c['archs']} genotypes only: compile {c['compile_mean_s']:.2f} s + first run "
              f"{c['first_run_mean_s']:.2f} s per genotype; steady = a second run of the compiled executable")
    e = rows["engine"]
    print(f"  (b) includes compilation from a cold start ({e['total_s']:.1f} s in all; first candidate "
          f"{e['first_candidate_s']:.1f} s); steady = median per-candidate seconds after the first {STEADY_AFTER}")
    ratios = [f"a/b = {rows['compile']['mean_s'] / engine_mean:.2f}"] if "compile" in rows else []
    if "pytorch" in rows:
        p = rows["pytorch"]
        ratios += [f"c/b = {p['mean_s'] / engine_mean:.2f}", f"steady c/b = {p['steady_s'] / e['steady_s']:.2f}"]
    print("  ratios: " + ", ".join(ratios))
    if "pytorch" in rows:
        print(f"  sanity: engine vs PyTorch scores of the same genotypes differ by "
              f"{100 * setup['engine_vs_pytorch_median_rel']:.1f}% (median; different random inits, float32)")
    print(f"\nGFLOP/s (3 x 2 x MACs x images per candidate, MACs = space.flops(g) per image): engine "
          f"{gflops['engine_overall']:.2f} overall, {gflops['engine_steady']:.2f} steady"
          + (f"; PyTorch {gflops['pytorch_steady']:.2f} steady" if "pytorch_steady" in gflops else "")
          + f"; float32 matmul peak {gflops['matmul_peak']:.1f} (jnp.dot 2048^2, best of 5)")
    if scaling:
        print("\ndevice scaling (supernet backend, C=8 N=1, 16 genotypes, batch 16 x 2, candidate_batch 8; virtual "
              "CPU devices share the same cores: no speed-up expected)")
        first = f"max |score - score(d={scaling[0]['devices']})|"
        print(f"{'devices':>8}{'warm-up s':>11}{'cand/s':>9}{first:>27}")
        base = scaling[0]["scores"]
        for r in scaling:
            diff = max(abs(a - b) for a, b in zip(r["scores"], base))
            print(f"{r['devices']:>8}{r['warmup_s']:>11.1f}{r['candidates_per_s']:>9.2f}{diff:>27.2e}")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.scaling_worker is not None:
        return scaling_worker(args.scaling_worker, args.seed)
    info = machine_info()
    space = get_space("nats_tss")
    x, y = load_images("cifar10")
    xs, ys = make_batches(x, y, num_batches=args.num_batches, batch_size=args.batch_size, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.num_archs)]
    setup = {"num_archs": args.num_archs, "seed": args.seed, "num_batches": args.num_batches,
             "batch_size": args.batch_size, "archs": [str(g) for g in archs]}
    images = args.num_batches * args.batch_size
    counts = [int(n) for n in args.end_to_end.split(",") if n.strip()]
    batch_sizes = [int(b) for b in args.end_to_end_batch_sizes.split(",") if b.strip()]
    whole = end_to_end(archs_for_end_to_end(space, max(counts), args.seed), x, y, counts, batch_sizes,
                       args.seed) if counts else []

    rows = {"engine": time_engine(space, archs, xs, ys)}  # first: a cold start, nothing compiled yet
    print(f"(b) engine: {rows['engine']['mean_s']:.3f} s/arch", flush=True)
    if not args.skip_compile_per_candidate:
        rows["compile"] = time_compile_per_candidate(space, archs[: args.compile_archs], xs, ys)
        print(f"(a) compile per genotype: {rows['compile']['mean_s']:.3f} s/arch", flush=True)
    pytorch = time_pytorch(archs, xs, ys)
    if pytorch is not None:
        rows["pytorch"] = pytorch
        rel = [abs(a - b) / abs(b) for a, b in zip(rows["engine"]["scores"], pytorch["scores"]) if b != 0]
        setup["engine_vs_pytorch_median_rel"] = statistics.median(rel) if rel else float("nan")

    flops = [candidate_flops(space, g, images) for g in archs]
    after = slice(STEADY_AFTER, None) if len(archs) > STEADY_AFTER else slice(None)
    gflops = {"engine_overall": sum(flops) / rows["engine"]["total_s"] / 1e9,
              "engine_steady": sum(flops[after]) / sum(rows["engine"]["per_arch_s"][after]) / 1e9,
              "matmul_peak": matmul_peak_gflops()}
    if pytorch is not None:
        gflops["pytorch_steady"] = sum(flops[after]) / sum(pytorch["per_arch_s"][after]) / 1e9
    device_counts = [int(d) for d in args.devices.split(",") if d.strip()]
    scaling = device_scaling(device_counts, args.seed) if device_counts else []

    projected = projection(space, archs[after], rows["engine"]["per_arch_s"][after])  # steady candidates

    report(info, setup, rows, gflops, scaling)
    if projected:
        print(f"\nall {projected['cells']:,} NAS-Bench-201 cells at the steady {projected['per_arch_s']:.2f} s per "
              f"candidate: {projected['all_cells_s'] / 3600:.1f} h; deduplicated ({projected['classes']:,} classes, "
              f"{projected['per_class_s']:.2f} s per class): {projected['deduplicated_s'] / 3600:.1f} h")
    if whole:
        report_end_to_end(whole)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump({"machine": info, "setup": setup, "end_to_end": whole, "timings": rows, "gflops": gflops,
                       "projection": projected, "device_scaling": scaling},
                      f, indent=1)
        print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
