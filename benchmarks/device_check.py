"""The one prepared accelerator check: the supernet backend on NAS-Bench-201 at the paper's 2 x 128, on a GPU/TPU.

    python benchmarks/device_check.py --output OUT/device_check.json            # the real check (< 8 min, H200)
    python benchmarks/device_check.py --dry-run --output /tmp/device_check.json  # a tiny run of every step (CPU)

Needs only jax, flax, optax, numpy, scipy and absl (what a CUDA/TPU JAX image carries) and the repository: it runs
from the checkout, with the packaged data, and installs nothing. Every section is written to the JSON file as soon
as it is measured, so a run stopped by a time limit still leaves what it measured. Sections:

  environment  jax / jaxlib / flax versions, backend, devices.
  throughput   for candidate_loop "map" (lax.map over a device's candidates: switch runs one op per edge) and
               "vmap" (candidates batched: switch becomes select), the supernet backend scores `--num-archs`
               random genotypes in calls of `--candidate-batch`: compile seconds (first call), steady candidates
               per second (the other calls), peak device memory, and the projected seconds for all 15,625.
  agreement    `--agree-archs` genotypes scored on the accelerator (supernet) and on the host CPU (tape backend)
               with the same seeded weights and images: max relative difference of ZiCo in float64 and in float32
               (float32 at the default matmul precision, which may use TF32 on NVIDIA GPUs, and at "highest", which
               does not).

The time budget (`--budget-s`, default 420 s) is checked between sections and between calls; what did not fit is
recorded as skipped rather than overrunning the device lease.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from the checkout, installed or not

from zico_jax import data as D  # noqa: E402
from zico_jax import sharding as S  # noqa: E402
from zico_jax.engine import Engine  # noqa: E402
from zico_jax.proxies.baselines_grad import x64_scope  # noqa: E402
from zico_jax.spaces import get_space  # noqa: E402

NB201_SIZE = 15_625


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", required=True, help="JSON file to write (sections appear as they are measured)")
    p.add_argument("--num-archs", type=int, default=256, help="genotypes per candidate loop (throughput)")
    p.add_argument("--candidate-batch", type=int, default=32, help="candidates per device call")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-batches", type=int, default=2)
    p.add_argument("--agree-archs", type=int, default=4, help="genotypes compared accelerator vs host CPU")
    p.add_argument("--loops", default="map,vmap", help="candidate loops to time")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting new work after this many seconds")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny space (C=4, N=1), 2 x 8 images, 8 archs: checks every step in seconds on a CPU")
    return p.parse_args(argv)


class Report:
    """The JSON record, rewritten whole after each section (small; strict JSON, NaN as null)."""

    def __init__(self, path: pathlib.Path):
        self.path, self.data = path, {}
        path.parent.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, value) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(_strict(self.data), indent=1, allow_nan=False) + "\n")
        print(f"[device_check] {key}: {json.dumps(_strict(value), allow_nan=False)[:400]}", flush=True)


def _strict(obj):
    # zico_jax.results.dumps does this too, but zico_jax.results needs tqdm, which an accelerator image may lack
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def environment() -> dict:
    import flax

    return {"jax": jax.__version__, "jaxlib": getattr(jax.lib, "__version__", None) or jax.__version__,
            "flax": flax.__version__, "backend": jax.default_backend(),
            "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()], "process_count": jax.process_count()}


def genotypes(space, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [str(space.sample(rng)) for _ in range(n)]


def throughput(space, xs, ys, archs, loop: str, candidate_batch: int, deadline: float) -> dict:
    engine = Engine(space, xs, ys, ("zico",), backend="supernet", candidate_loop=loop,
                    candidate_batch=candidate_batch)
    calls = [archs[i:i + engine.candidate_batch] for i in range(0, len(archs), engine.candidate_batch)]
    start = time.perf_counter()
    scores = [r.scores["zico"] for r in engine.score(calls[0])]
    compile_s = time.perf_counter() - start
    steady_n, steady_s = 0, 0.0
    for batch in calls[1:]:
        if time.perf_counter() > deadline:
            break
        t = time.perf_counter()
        scores += [r.scores["zico"] for r in engine.score(batch)]
        steady_s += time.perf_counter() - t
        steady_n += len(batch)
    rate = steady_n / steady_s if steady_s else float("nan")
    return {"candidate_loop": loop, "candidate_batch": engine.candidate_batch, "first_call_s": round(compile_s, 2),
            "steady_candidates": steady_n, "steady_s": round(steady_s, 3), "candidates_per_s": rate,
            "projected_nb201_s": NB201_SIZE / rate if steady_n else float("nan"),
            "finite_scores": int(np.isfinite(scores).sum()), "scored": len(scores),
            "peak_memory_bytes": S.peak_memory_bytes()}


def _scores(space, xs, ys, archs, *, cpu: bool, dtype, precision=None) -> np.ndarray:
    devices = jax.devices("cpu") if cpu else jax.devices()
    with contextlib.ExitStack() as stack:
        stack.enter_context(jax.default_device(devices[0]))
        if precision is not None:
            stack.enter_context(jax.default_matmul_precision(precision))
        # the host runs the tape (XLA:CPU's fast path; it equals the supernet in float64, tests/test_engine.py)
        engine = Engine(space, jnp.asarray(xs, dtype), jnp.asarray(ys), ("zico",), mesh=S.candidate_mesh(devices[:1]),
                        backend="tape" if cpu else "supernet", candidate_batch=len(archs))
        return np.array([r.scores["zico"] for r in engine.score(archs)], np.float64)


def agreement(space64, space32, xs, ys, archs, precisions=(None, "highest")) -> dict:
    out = {}
    with x64_scope():
        acc, host = (_scores(space64, xs, ys, archs, cpu=c, dtype=jnp.float64) for c in (False, True))
    out["float64_max_rel_diff"] = float(np.max(np.abs(acc - host) / np.abs(host)))
    host32 = _scores(space32, xs, ys, archs, cpu=True, dtype=jnp.float32)
    for precision in precisions:
        acc32 = _scores(space32, xs, ys, archs, cpu=False, dtype=jnp.float32, precision=precision)
        out[f"float32_{precision or 'default'}_max_rel_diff"] = float(np.max(np.abs(acc32 - host32) / np.abs(host32)))
    out["float32_vs_float64_max_rel_diff"] = float(np.max(np.abs(host32 - host) / np.abs(host)))
    out["archs"] = list(archs)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    deadline = start + args.budget_s
    report = Report(pathlib.Path(args.output))
    options = {"C": 4, "N": 1} if args.dry_run else {}
    if args.dry_run:
        args.num_archs, args.candidate_batch, args.batch_size, args.agree_archs = 8, 4, 8, 2
    report.put("environment", environment())
    report.put("setup", {"space": "nats_tss", "space_options": options, "batch_size": args.batch_size,
                         "num_batches": args.num_batches, "num_archs": args.num_archs, "dry_run": args.dry_run})
    space = get_space("nats_tss", **options)
    x, y = D.load_images("cifar10", "train")
    xs, ys = D.make_batches(x, y, args.num_batches, args.batch_size, seed=0)
    archs = genotypes(space, args.num_archs)
    for loop in [s.strip() for s in args.loops.split(",") if s.strip()]:
        if time.perf_counter() > deadline:
            report.put(f"throughput_{loop}", {"skipped": "time budget"})
            continue
        report.put(f"throughput_{loop}", throughput(space, jnp.asarray(xs), jnp.asarray(ys), archs, loop,
                                                    args.candidate_batch, deadline))
    if time.perf_counter() > deadline:
        report.put("agreement", {"skipped": "time budget"})
    else:
        # a dry run on a CPU has no TF32 to switch off: one float32 precision is enough there
        precisions = (None,) if args.dry_run else (None, "highest")
        report.put("agreement", agreement(get_space("nats_tss", **options), space, xs, ys, archs[:args.agree_archs],
                                          precisions))
    report.put("total_s", round(time.perf_counter() - start, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
