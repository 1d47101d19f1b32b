"""XLA:CPU compiler options for the library's own programs (the tape backend's), `jit` that applies them, and
`CompilerMemoryRelease`, which hands the memory XLA's compilations freed back to the OS.

XLA:CPU hands every convolution to YNNPACK by default (`xla_cpu_experimental_ynn_fusion_type` includes
`LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION`). For the small convolutions of NAS networks, the weight gradients
in particular, XLA's own (Eigen) convolutions are faster: on a 2-core Intel Xeon with jax 0.10.2, a NAS-Bench-201
candidate at 2 x 64 took 0.99 s instead of 1.11 s (`benchmarks/throughput.py` times the engine on your
machine). `LIBRARY_OPTIONS` keeps YNNPACK for what else it takes by default (dots, reductions, elementwise
fusions). The per-executable option is not bit for bit
`XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution` (whose float32 scores differ from it
by ~1e-3 relative, and which was ~8% faster at 2 x 64 here), but that flag would change every program of the
process, the user's included.

The numbers move: a float32 convolution computed by another algorithm rounds differently, and ZiCo, which divides
by small standard deviations, moves by up to ~2% relative on some networks (float32 noise; float64 results do
not change: YNNPACK has no float64 convolutions). Each option is set per executable
(`jax.jit(..., compiler_options=...)`), never in `XLA_FLAGS`, so a user's own programs keep XLA's defaults.
`ZICO_JAX_XLA_DEFAULTS=1` compiles the library's programs with XLA's defaults as well; an XLA that does not know
the option (another jaxlib) gets none, and other backends get none.

Example:
    >>> from zico_jax import xla_cpu
    >>> double = xla_cpu.jit(lambda x: 2 * x)   # options decided at the first call, when the backend is known
    >>> double(1.0)
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from typing import Any, Callable

import jax

LIBRARY_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": ",".join(
        f"LIBRARY_FUSION_TYPE_{kind}" for kind in ("INDIVIDUAL_DOT", "REDUCE", "ELTWISE")),
}
DEFAULTS_ENV = "ZICO_JAX_XLA_DEFAULTS"


@functools.cache
def compiler_options() -> dict[str, str]:
    """The options the library compiles its CPU programs with: `LIBRARY_OPTIONS` on the CPU backend when this
    XLA accepts them and `$ZICO_JAX_XLA_DEFAULTS` is unset, otherwise none. Decided once per process."""
    if os.environ.get(DEFAULTS_ENV, "") not in ("", "0") or jax.default_backend() != "cpu":
        return {}
    try:
        jax.jit(lambda x: x + 1, compiler_options=LIBRARY_OPTIONS).lower(1.0).compile()
    except Exception as error:  # noqa: BLE001  an XLA without the option: its defaults are the right answer
        logging.getLogger(__name__).info("XLA:CPU options not applied (%s)", str(error).splitlines()[0])
        return {}
    return dict(LIBRARY_OPTIONS)


class jit:  # noqa: N801  (a decorator, named like the one it wraps)
    """`jax.jit(fn, **kwargs)` with `compiler_options()`, bound at the first call: importing the library must not
    start a backend (the run's platform and precision are configured after import)."""

    def __init__(self, fn: Callable, **kwargs: Any):
        self._fn, self._kwargs = fn, kwargs
        self._jitted: Callable | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if self._jitted is None:
            self._jitted = jax.jit(self._fn, compiler_options=compiler_options() or None, **self._kwargs)
        return self._jitted(*args, **kwargs)


_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compilations = [0]  # XLA compilations of this process since the first CompilerMemoryRelease


def _count_compilation(event: str, duration: float, **kwargs) -> None:
    if event == _COMPILE_EVENT:
        _compilations[0] += 1


@functools.cache
def _listen_to_compilations() -> None:  # once per process
    jax.monitoring.register_event_duration_secs_listener(_count_compilation)


@functools.cache
def _glibc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only (Linux); elsewhere there is nothing to call
    except (AttributeError, OSError):
        return None


class CompilerMemoryRelease:
    """Called after each unit of work (a candidate): if XLA compiled anything since the last call, glibc's
    `malloc_trim(0)` returns the freed pages of the process's heaps to the OS.

    Why: compiling an executable allocates and frees far more host memory than the executable keeps (LLVM's
    scratch), and glibc keeps freed pages resident for reuse; the candidates' buffers then fragment around them.
    `zico score` of 60 NAS-Bench-201 candidates at 2 x 128 (2-core Intel Xeon) peaked at 2.12 GB resident without
    it and 1.73 GB with it, in about the same time (147 s, 140 s): the ~90 compilations come with the first few
    candidates, so it trims a few times per run. Trimming after every candidate instead saved more but cost ~13%
    of the time (the next candidate faults its pages in again).

    Example:
        >>> release = CompilerMemoryRelease()
        >>> # for g in genotypes: score(g); release()
    """

    def __init__(self, trim: Callable[[int], Any] | None = None):
        _listen_to_compilations()
        self._trim = trim if trim is not None else _glibc_malloc_trim()
        self._seen = _compilations[0]

    def __call__(self) -> bool:
        """Trims if XLA compiled since the last call; returns whether it did."""
        compiled, self._seen = _compilations[0] != self._seen, _compilations[0]
        if compiled and self._trim is not None:
            self._trim(0)
            return True
        return False
