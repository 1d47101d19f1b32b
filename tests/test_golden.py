"""Golden cases computed by the official PyTorch implementation (tests/fixtures/zico_nb201).

float64 must match to 1e-6 relative; float32 within 3e-2 (the official code's own float32-vs-float64 spread
reaches 2%: the statistic divides by tiny standard deviations).
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from zico_jax.data import batches_from_arrays
from zico_jax.engine import Engine
from zico_jax.proxies import zico
from zico_jax.spaces import get_space
from zico_jax.spaces.torch_import import load_torch_weights

CASES = range(4)


def load_case(golden_dir, k, dtype):
    expected = json.loads((golden_dir / "expected.json").read_text())["cases"][k]
    state = dict(np.load(golden_dir / expected["file"]))
    space = get_space("nats_tss")
    g = space.parse(expected["arch"])
    params = load_torch_weights(space, g, state, dtype)
    xs, ys = batches_from_arrays(state["x"], state["y"], 2)  # x[:32], x[32:] as the official code splits
    return expected, space, g, params, jnp.asarray(xs, dtype), jnp.asarray(ys)


@pytest.mark.parametrize("k", CASES)
def test_engine_float64(x64, golden_dir, k):
    expected, space, g, params, xs, ys = load_case(golden_dir, k, jnp.float64)
    result = Engine(space, xs, ys, ("zico", "params")).score_one(g, params)
    assert result.scores["zico"] == pytest.approx(expected["zico_float64"], rel=1e-6, abs=1e-9)
    assert result.layers_counted == expected["layers_counted"]
    assert result.params == expected["params"]


@pytest.mark.parametrize("k", CASES)
def test_engine_float32(golden_dir, k):
    expected, space, g, params, xs, ys = load_case(golden_dir, k, jnp.float32)
    result = Engine(space, xs, ys, ("zico",)).score_one(g, params)
    assert result.scores["zico"] == pytest.approx(expected["zico_float64"], rel=3e-2, abs=1e-6)
    assert result.scores["zico"] == pytest.approx(expected["zico_float32"], rel=3e-2, abs=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_one_call_zico_on_standalone_network(x64, golden_dir, k):
    """`zico(model, variables, xs, ys)`: one jitted vmap(grad) call on the standalone network."""
    expected, space, g, params, xs, ys = load_case(golden_dir, k, jnp.float64)
    value = zico(space.model(g, dtype=jnp.float64), {"params": params}, xs, ys)
    assert float(value) == pytest.approx(expected["zico_float64"], rel=1e-6)
