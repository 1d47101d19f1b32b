"""The PyTorch reference (benchmarks/torch_reference.py) against the golden values, and zico-jax against it.

1. The reference reproduces the official float64 ZiCo of the golden cases (1e-6 relative), and float32 within the
   golden cases' own float32 spread (3e-2).
2. zico-jax's Engine (float64) agrees with the reference on random architectures whose weights PyTorch drew
   (default init), exported as a NumPy state dict and imported with `load_torch_weights`.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import jax.numpy as jnp  # noqa: E402
import torch_reference as ref  # noqa: E402

from zico_jax.data import batches_from_arrays  # noqa: E402
from zico_jax.engine import Engine  # noqa: E402
from zico_jax.spaces import get_space  # noqa: E402
from zico_jax.spaces.torch_import import load_torch_weights  # noqa: E402

CASES = range(4)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: PyTorch's spinning OpenMP workers slow down by 10x+ when the cores are shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _golden(golden_dir, k):
    return json.loads((golden_dir / "expected.json").read_text())["cases"][k]


@pytest.mark.parametrize("k", CASES)
def test_reference_reproduces_golden_float64(golden_dir, k):
    case = _golden(golden_dir, k)
    value = ref.fixture_zico(golden_dir / case["file"], case["arch"], torch.float64)
    assert value == pytest.approx(case["zico_float64"], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("k", CASES)
def test_reference_float32_within_golden_spread(golden_dir, k):
    case = _golden(golden_dir, k)
    value = ref.fixture_zico(golden_dir / case["file"], case["arch"], torch.float32)
    assert value == pytest.approx(case["zico_float64"], rel=3e-2, abs=1e-6)
    assert value == pytest.approx(case["zico_float32"], rel=3e-2, abs=1e-6)


def test_reference_state_dict_names_match_fixture(golden_dir):
    case = _golden(golden_dir, 0)
    state, _, _ = ref.load_fixture(golden_dir / case["file"])
    assert set(ref.TinyNetwork(case["arch"]).state_dict()) == set(state)


def test_engine_matches_reference_on_random_architectures(x64, golden_dir):
    """3 random genotypes (the seed is one whose draws use all 5 ops), PyTorch default init, the golden case's
    first 2 x 16 real CIFAR-10 images, float64 on both sides."""
    torch.manual_seed(0)
    _, x, y = ref.load_fixture(golden_dir / _golden(golden_dir, 0)["file"], torch.float64)
    x, y = x[:32], y[:32]
    xs, ys = batches_from_arrays(x.numpy(), y.numpy(), 2)
    space = get_space("nats_tss")
    engine = Engine(space, jnp.asarray(xs, jnp.float64), jnp.asarray(ys), ("zico",))
    rng = np.random.default_rng(1)
    genotypes = [space.sample(rng) for _ in range(3)]
    assert {op for g in genotypes for op in g.ops} == set(ref.OPS)
    for g in genotypes:
        net = ref.TinyNetwork(str(g)).double()
        state = ref.state_dict_numpy(net)  # before the forward: train-mode BN updates running stats only
        expected = ref.torch_zico(net, x, y, splits=2)
        params = load_torch_weights(space, g, state, jnp.float64)
        got = engine.score_one(g, params).scores["zico"]
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), str(g)
