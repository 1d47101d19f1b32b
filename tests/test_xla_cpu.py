"""The library's XLA:CPU options: applied to its own programs only, float64 untouched, float32 within noise."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_batches

from zico_jax import xla_cpu
from zico_jax.engine import Engine
from zico_jax.spaces import get_space

ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
         "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|"]


@pytest.fixture
def xla_defaults(monkeypatch):
    """Runs the block with the library's programs compiled with XLA's defaults (fresh tape executables)."""
    from zico_jax import tape
    from zico_jax.engine import _tape

    def reset():
        xla_cpu.compiler_options.cache_clear()
        for factory in (tape._module_forward, tape._function_forward, tape._loss_head, tape._constant_jit):
            factory.cache_clear()
        for wrapped in (tape._pull_back, tape._add_n_jit, _tape.layer_term_jit):
            wrapped._jitted = None

    monkeypatch.setenv(xla_cpu.DEFAULTS_ENV, "1")
    reset()
    yield
    monkeypatch.delenv(xla_cpu.DEFAULTS_ENV)
    reset()


def _scores(dtype):
    space = get_space("nats_tss", C=4, N=1, image_size=8)
    xs, ys = (jnp.asarray(a) for a in tiny_batches(dtype=dtype))
    engine = Engine(space, xs, ys, ("zico",), seed=2, backend="tape")
    return [r.scores["zico"] for r in engine.score(ARCHS)]


def test_options_on_cpu_and_the_opt_out():
    assert jax.default_backend() == "cpu"
    assert xla_cpu.compiler_options() == xla_cpu.LIBRARY_OPTIONS
    os.environ[xla_cpu.DEFAULTS_ENV] = "1"
    try:
        xla_cpu.compiler_options.cache_clear()
        assert xla_cpu.compiler_options() == {}
    finally:
        del os.environ[xla_cpu.DEFAULTS_ENV]
        xla_cpu.compiler_options.cache_clear()


def test_float64_scores_do_not_move(x64, request):
    with_options = _scores(np.float64)
    request.getfixturevalue("xla_defaults")
    assert _scores(np.float64) == with_options  # bit for bit: YNNPACK has no float64 convolution


def test_float32_scores_move_within_noise(request):
    with_options = _scores(np.float32)
    request.getfixturevalue("xla_defaults")
    np.testing.assert_allclose(_scores(np.float32), with_options, rtol=2e-2)


def test_importing_the_tape_starts_no_backend():
    code = ("import zico_jax.tape, zico_jax.engine; from jax._src import xla_bridge; "
            "import sys; sys.exit(1 if xla_bridge.backends_are_initialized() else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_compiler_memory_is_released_after_compilations_only():
    trims = []
    release = xla_cpu.CompilerMemoryRelease(trim=trims.append)
    assert release() is False and trims == []  # nothing compiled since it was made
    jax.jit(lambda x: x * 3.0 + 0.25).lower(jnp.ones(7)).compile()  # a program no other test compiles
    assert release() is True and trims == [0]
    assert release() is False and trims == [0]  # nothing new since


def test_compiler_memory_release_calls_glibc_where_there_is_one():
    release = xla_cpu.CompilerMemoryRelease()
    jax.jit(lambda x: x * 5.0 - 0.5).lower(jnp.ones(9)).compile()
    assert release() is (xla_cpu._glibc_malloc_trim() is not None)
