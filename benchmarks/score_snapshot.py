"""Scores of fixed cases, to check that a refactor leaves every number bitwise unchanged.

    python benchmarks/score_snapshot.py --output before.json
    python benchmarks/score_snapshot.py --output after.json --compare before.json   # exit 1 on any difference

Cases: the four golden NAS-Bench-201 cases (float64 and float32, imported official weights), the README's
`zico score` example, two sampled genotypes of every registered space (small inputs, all on the default backend),
every baseline proxy on one NAS-Bench-201 network, and a 6-architecture `correlate` run. Scores are stored with
`float.hex` so that "equal" means bitwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pathlib
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import zico_jax as zj
from zico_jax import cli

try:  # the installed name since 0.2
    from zico_jax.spaces.torch_import import load_torch_weights
except ImportError:  # before 0.2
    from zico_jax.spaces.torch_import import load_torch_weights

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "zico_nb201"
README_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
SMALL_OPTIONS = {"efficientnet_cls": {"image_size": 32, "num_classes": 10},
                 "efficientnet_det": {"image_size": 64}, "ffnet_seg": {"image_size": 64},
                 "zennas_imagenet": {"image_size": 32, "num_classes": 10}}


def _hex(value) -> str | None:
    value = float(value)
    return None if value != value else value.hex()


def golden_cases(out):
    expected = json.loads((GOLDEN / "expected.json").read_text())["cases"]
    space = zj.get_space("nats_tss")
    for k, case in enumerate(expected):
        state = dict(np.load(GOLDEN / case["file"]))
        g = space.parse(case["arch"])
        for dtype in (jnp.float64, jnp.float32):
            params = load_torch_weights(space, g, state, dtype)
            xs, ys = zj.batches_from_arrays(state["x"], state["y"], 2)
            xs, ys = jnp.asarray(xs, dtype), jnp.asarray(ys)
            r = zj.Engine(space, xs, ys, ("zico", "zico_bc")).score_one(g, params)
            out[f"golden{k}/{jnp.dtype(dtype).name}/engine"] = {p: _hex(v) for p, v in r.scores.items()}
            out[f"golden{k}/{jnp.dtype(dtype).name}/zico"] = _hex(
                zj.zico(space.model(g, dtype=dtype), {"params": params}, xs, ys))


def readme_score(out):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(["score", "--arch", README_ARCH, "--json"]) == 0
    row = json.loads(buf.getvalue().splitlines()[-1])
    out["readme/zico_score"] = {p: _hex(row[p]) for p in ("zico", "zico_bc")}


def every_space(out):
    rng = np.random.default_rng(0)
    for name in zj.space_names():
        space = zj.get_space(name, **SMALL_OPTIONS.get(name, {}))
        shape = space.input_shape(2) if hasattr(space, "input_shape") else (2, 32, 32, 3)
        xs = rng.normal(size=(2, *shape)).astype(np.float32)
        labels = rng.integers(0, getattr(space, "num_classes", 10) or 10, size=(2, shape[0]))
        xs = space.inputs(xs)
        ys = space.targets(xs, labels)
        engine = zj.Engine(space, xs, ys, ("zico", "zico_bc"), seed=3)
        genotypes = [space.sample(np.random.default_rng(s)) for s in (1, 2)]
        for _g, r in zip(genotypes, engine.score(genotypes)):
            out[f"space/{name}/{r.arch}"] = {p: _hex(v) for p, v in r.scores.items()}


def baselines(out):
    space = zj.get_space("nats_tss")
    x, y = zj.load_images("cifar10")
    xs, ys = zj.make_batches(x, y, 2, 16, 0)
    names = [p for p in zj.proxy_names()]
    r = zj.Engine(space, xs, ys, names).score_one(README_ARCH)
    out["baselines/nats_tss"] = {p: _hex(v) for p, v in r.scores.items()}


def correlate(out):
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["correlate", "--num-archs", "6", "--batch-size", "16", "--output-dir", tmp]) == 0
        for line in pathlib.Path(tmp, "scores.jsonl").read_text().splitlines():
            row = json.loads(line)
            out[f"correlate/{row['arch']}"] = {p: _hex(row[p]) for p in ("zico", "zico_bc")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--compare", default=None, help="an earlier snapshot: report every difference, exit 1 if any")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    out: dict = {}
    for step in (golden_cases, readme_score, every_space, baselines, correlate):
        step(out)
        print(f"{step.__name__}: done ({len(out)} entries)", file=sys.stderr, flush=True)
    pathlib.Path(args.output).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(pathlib.Path(args.compare).read_text())
        diffs = [k for k in sorted(set(before) | set(out)) if before.get(k) != out.get(k)]
        for k in diffs:
            print(f"DIFFERENT {k}: {before.get(k)} -> {out.get(k)}")
        print(f"{len(out)} entries compared, {len(diffs)} different")
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
