"""A candidate's ZiCo terms come to the host in one explicit transfer, and nothing else leaves the device."""

import jax
import numpy as np

from zico_jax.engine import Engine
from zico_jax.spaces import get_space


def test_tape_candidate_is_one_explicit_transfer(monkeypatch):
    """Scoring one candidate on the tape backend: no implicit device-to-host transfer (a `float()` or `bool()` of
    a device array would raise under the guard), and exactly one `jax.device_get`, of every layer's terms."""
    space = get_space("nats_tss", C=4, N=1)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(2, 4, *space.input_shape(1)[1:])).astype(np.float32)
    ys = rng.integers(0, 10, (2, 4)).astype(np.int32)
    engine = Engine(space, xs, ys, ("zico", "zico_bc", "params"), seed=1, backend="tape")
    g = space.sample(np.random.default_rng(1))
    calls = []
    device_get = jax.device_get

    def counting_device_get(tree):
        calls.append(tree)
        return device_get(tree)

    monkeypatch.setattr(jax, "device_get", counting_device_get)
    with jax.transfer_guard_device_to_host("disallow"):
        result = engine.score_one(g)
    assert len(calls) == 1, [type(c) for c in calls]
    (terms,) = calls
    kernels = {layer.path for layer in space.layers(g)}
    assert set(terms) <= kernels and result.layers_counted == len(terms) > 0
    assert np.isfinite(result.scores["zico"]) and np.isfinite(result.scores["zico_bc"])
