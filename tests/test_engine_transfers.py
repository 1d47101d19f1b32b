"""A candidate's ZiCo terms come to the host in one explicit transfer, and nothing else leaves the device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zico_jax.engine import Engine
from zico_jax.spaces import get_space


@pytest.fixture()
def host_reads(monkeypatch):
    """Every `jax.device_get` call (its argument), and a guard on implicit ones.

    `jax.transfer_guard_device_to_host("disallow")` raises on an implicit transfer (a `float()`, `bool()` or
    `np.asarray` of a device array) on an accelerator, but XLA:CPU's arrays live in host memory and the guard
    lets them pass. So the array's host value (`_value`, which those conversions and `device_get` all read) is
    also refused outside `jax.device_get`: the check holds on CPU too."""
    calls = []
    array_type = type(jnp.zeros(()))
    host_value = array_type.__dict__["_value"]
    inside = [False]
    device_get = jax.device_get

    def counting_device_get(tree):
        calls.append(tree)
        inside[0] = True
        try:
            return device_get(tree)
        finally:
            inside[0] = False

    def guarded_value(array):
        if not inside[0]:
            raise AssertionError(f"implicit device-to-host transfer of a {array.dtype}{list(array.shape)} array")
        return host_value.fget(array)

    monkeypatch.setattr(jax, "device_get", counting_device_get)
    monkeypatch.setattr(array_type, "_value", property(guarded_value))
    return calls


def test_tape_candidate_is_one_explicit_transfer(host_reads):
    """Scoring one candidate on the tape backend: no implicit device-to-host transfer, and exactly one
    `jax.device_get`, of every layer's (term, counted) pair."""
    space = get_space("nats_tss", C=4, N=1)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(2, 4, *space.input_shape(1)[1:])).astype(np.float32)
    ys = rng.integers(0, 10, (2, 4)).astype(np.int32)
    engine = Engine(space, xs, ys, ("zico", "zico_bc", "params"), seed=1, backend="tape")
    g = space.sample(np.random.default_rng(1))
    with jax.transfer_guard_device_to_host("disallow"):
        result = engine.score_one(g)
    assert len(host_reads) == 1, [type(c) for c in host_reads]
    (terms,) = host_reads
    assert set(terms) <= {layer.path for layer in space.layers(g)}
    assert result.layers_counted == len(terms) > 0
    assert np.isfinite(result.scores["zico"]) and np.isfinite(result.scores["zico_bc"])
