"""Shared test fixtures: the packaged data and golden cases, tiny NAS-Bench-201 setups, compile counting."""

from __future__ import annotations

import contextlib
import os
import pathlib

# The suite compiles many small programs and runs each a few times. LLVM's heavier passes (level 2 and up) are a
# third of XLA:CPU's compile time and buy nothing here: a tiny NB201 supernet compiles in 11.5 s at level 1 against
# 18.5 s at the default, while a full-size NB201 network runs as fast (level 0 would make it 7x slower). Set
# before jax starts its backend; subprocesses (the CLI and sharding tests) inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()

import jax  # noqa: E402
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The data the loaders read by default (zico_jax/packaged_data) and the golden cases of the official
# implementation (tests/fixtures): the suite needs nothing outside the repository.
DATA = pathlib.Path(__file__).resolve().parents[1] / "zico_jax" / "packaged_data"
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def golden_dir() -> pathlib.Path:
    path = FIXTURES / "zico_nb201"
    if not (path / "expected.json").exists():
        pytest.fail(f"golden fixtures missing at {path}")
    return path


@pytest.fixture()
def x64():
    """Run a test in float64 (jax_enable_x64), restoring the previous setting afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def tiny_batches(num_batches=2, batch=4, hw=8, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(num_batches, batch, hw, hw, 3)).astype(dtype)
    ys = rng.integers(0, 10, (num_batches, batch)).astype(np.int32)
    return xs, ys


@contextlib.contextmanager
def count_compilations():
    """Counts XLA backend compilations inside the block: `with count_compilations() as n: ...; n[0]`."""
    count = [0]

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
