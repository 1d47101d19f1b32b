"""The engine facade: what a candidate's score is, whichever backend measures it.

`Engine` validates the inputs and options, picks a backend and owns everything that does not depend on it: the
candidate's seeded weights (`candidate_key`, `initial_params`), the baseline proxies (run on the candidate's
standalone network), the analytic counts, and the evaluation of every requested proxy on one `Measurement`.
A backend only measures ZiCo's per-layer terms:

    backend.measure(genotypes, params=None) -> [{layer path: log S_l of the counted layers}, ...]
    backend.batch_size                      -> how many candidates one call measures best together

so `score` groups candidates by `batch_size` and has no backend-specific path.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zico_jax import sharding
from zico_jax.engine._supernet import SupernetBackend, supernet_init
from zico_jax.engine._tape import TapeBackend
from zico_jax.errors import InputError
from zico_jax.grads import GRADIENTS
from zico_jax.proxies import registry as proxy_registry
from zico_jax.proxies.baselines import baseline_network, jitted_baseline
from zico_jax.spaces.base import HasCanonicalForm, HasTape, Space

BACKENDS = ("auto", "tape", "supernet")
CANDIDATE_LOOPS = ("map", "vmap")
BASELINE_MODES = ("auto", "eager", "jit")
DEFAULT_OPTIONS = proxy_registry.ProxyOptions()


class Backend(Protocol):
    """What the engine asks of a backend (`TapeBackend`, `SupernetBackend`)."""

    batch_size: int

    def measure(self, genotypes: Sequence, params: Sequence | None = None) -> list[dict[str, float]]: ...


@dataclasses.dataclass(frozen=True)
class CandidateScore:
    """One scored candidate: genotype string, proxy scores, analytic counts, wall time. `scored_as`: with
    `Engine(deduplicate=True)`, the genotype whose network was measured for this one's class (None: itself)."""

    arch: str
    scores: Mapping[str, float]
    params: int
    flops: int
    layers_counted: int
    seconds: float
    scored_as: str | None = None

    def row(self) -> dict[str, Any]:
        row = {"arch": self.arch, **self.scores, "params": self.params, "flops": self.flops,
               "layers_counted": self.layers_counted, "seconds": round(self.seconds, 4)}
        if self.scored_as is not None:
            row["scored_as"] = self.scored_as
        return row


class Engine:
    """Scores genotypes of one space on fixed mini-batches with a set of proxies.

    Args:
      space: a `zico_jax.spaces.Space`.
      xs, ys: (N, B, H, W, C) inputs and (N, B, ...) targets of `space.loss` (class labels by default,
        `space.targets` makes them); xs's dtype is the compute precision.
      proxies: registered proxy names (`zico_jax.proxies.registry`).
      seed: the run's seed; candidate g is initialised from `fold_in(key(seed), space.arch_id(g))`.
      options: proxy options (ZiCo-BC's beta and feature map).
      backend: "auto", "tape" or "supernet" (see `zico_jax.engine`).
      cumulative: ZiCo on running sums g_1, g_1 + g_2 of the per-batch gradients, as the official repository's
        superseded first commit computed it (the current official code zeroes the gradients per batch: the default).
      grad_method: how the N gradients are laid out when scoring imported weights ("vmap", "unroll", "map").
      candidate_batch: candidates per call of the supernet program (rounded up to a multiple of the device
        count); it bounds the memory per device.
      mesh: the device mesh the candidate axis is split over (default: every device, `sharding.candidate_mesh`).
      candidate_loop: "map" (default; grouping-invariant scores) or "vmap" over a device's candidates.
      candidate_parallel: "shard_map" (default) or "pmap": how the supernet backend spreads candidates over the
        mesh's devices (`zico_jax.engine._supernet.SupernetBackend`; the same scores either way).
      baseline_mode: how baseline proxies (snip, synflow, ...: `zico_jax.proxies.baselines`) run on each
        candidate's standalone network, initialised from the candidate's key like ZiCo's weights, on the first
        mini-batch `xs[0], ys[0]`: "jit" compiles one program per candidate and proxy; "eager" runs op by op, so
        XLA compiles each primitive once per shape and every candidate reuses them (no per-candidate compile);
        "auto": eager on CPU, jit elsewhere.
      gradients: "per_batch" (default: ZiCo over the N mini-batch gradients, as the official code) or
        "per_sample" (over the N * B per-sample gradients, BatchNorm statistics of each sample's mini-batch held
        fixed: `zico_jax.grads.per_sample_grads`). Per-sample runs on the tape backend only ("auto" picks it).
      deduplicate: score each class of `space.canonical` once (a space with `HasCanonicalForm`: NAS-Bench-201's
        6,466 classes of 15,625 cells). The first genotype of a class met is measured, with its own key; every
        later member reports its scores (the class shares that one random initialisation, so its members' scores
        are equal, where separately initialised networks would differ by the init's noise) with its own params and
        FLOPs, `seconds` 0 and `scored_as` naming the measured genotype. Scores are kept for the engine's
        lifetime, so a search never measures a class twice.
    """

    def __init__(
        self, space: Space, xs, ys, proxies: Iterable[str] = ("zico",), *, seed: int = 0,
        options: proxy_registry.ProxyOptions = DEFAULT_OPTIONS, backend: str = "auto",
        cumulative: bool = False, grad_method: str = "vmap", candidate_batch: int = 8, mesh=None,
        candidate_loop: str = "map", baseline_mode: str = "auto", gradients: str = "per_batch",
        deduplicate: bool = False, candidate_parallel: str = "shard_map",
    ):
        xs, ys = jnp.asarray(xs), jnp.asarray(ys)
        if xs.ndim != 5 or ys.shape[:2] != xs.shape[:2]:
            raise InputError(f"Engine: expected xs (N, B, H, W, C) and targets ys (N, B, ...); got {xs.shape} and "
                             f"{ys.shape}")
        if xs.shape[0] < 2:
            raise InputError(f"Engine: ZiCo needs at least 2 mini-batches, got {xs.shape[0]}")
        if backend not in BACKENDS:
            raise InputError(f"Engine: unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        try:
            supernet = space.model(None, dtype=xs.dtype)
        except NotImplementedError:  # e.g. TransNAS-Bench-101 macro: feature shapes change with the genotype
            supernet = None
        if gradients not in GRADIENTS:
            raise InputError(f"Engine: gradients {gradients!r}; expected one of {', '.join(GRADIENTS)}")
        per_sample = gradients == "per_sample"
        if per_sample and cumulative:
            raise InputError("Engine: cumulative=True has no per-sample counterpart; use gradients='per_batch'")
        has_tape = isinstance(space, HasTape)
        if backend == "auto":
            cpu = jax.default_backend() == "cpu"
            backend = "tape" if has_tape and (cpu or supernet is None or per_sample) else "supernet"
        if per_sample and backend != "tape":
            raise InputError(f"Engine: gradients='per_sample' runs on the tape backend only (got backend {backend!r} "
                             f"for space {space.name!r}); use backend='tape' or 'auto' on a space with a tape")
        if backend == "supernet" and supernet is None:
            raise InputError(f"Engine: space {space.name!r} has no whole-space network; use backend='tape'")
        if backend == "tape" and not has_tape:
            raise InputError(f"Engine: space {space.name!r} provides no tape; use backend='supernet'")
        if deduplicate and not isinstance(space, HasCanonicalForm):
            raise InputError(f"Engine: deduplicate=True needs a space with a canonical form (Space.canonical); "
                             f"space {space.name!r} has none")
        self.deduplicate = bool(deduplicate)
        self._class_scores: dict[str, CandidateScore] = {}  # canonical form -> the measured member's result
        self.space, self.xs, self.ys = space, xs, ys
        self.proxies = proxy_registry.parse_proxies(tuple(proxies))
        self.seed, self.options, self.backend = seed, options, backend
        self.cumulative, self.grad_method = cumulative, grad_method
        self.gradients = gradients
        self.dtype = xs.dtype
        self.supernet = supernet
        self._needs_grads = any(proxy_registry.get_proxy(p).needs_grads for p in self.proxies)
        self._baselines = tuple(p for p in self.proxies if proxy_registry.get_proxy(p).needs_network)
        if baseline_mode not in BASELINE_MODES:
            raise InputError(f"Engine: baseline_mode {baseline_mode!r}; expected one of {', '.join(BASELINE_MODES)}")
        if baseline_mode == "auto":
            baseline_mode = "eager" if jax.default_backend() == "cpu" else "jit"
        self.baseline_mode = baseline_mode
        self._code0 = space.encode(space.sample(np.random.default_rng(0)))
        if candidate_loop not in CANDIDATE_LOOPS:
            raise InputError(f"Engine: candidate_loop {candidate_loop!r}; expected one of {', '.join(CANDIDATE_LOOPS)}")
        self.candidate_loop = candidate_loop
        self.mesh = sharding.candidate_mesh() if mesh is None else mesh
        self.candidate_batch = -(-max(1, candidate_batch) // self.mesh.size) * self.mesh.size
        self._backend: Backend
        if backend == "tape":
            self._backend = TapeBackend(space, xs, ys, initial_params=self.initial_params, cumulative=cumulative,
                                        gradients=gradients)
        else:
            self._backend = SupernetBackend(space, supernet, xs, ys, seed=seed, initial_params=self.initial_params,
                                            cumulative=cumulative, grad_method=grad_method, mesh=self.mesh,
                                            batch_size=self.candidate_batch, candidate_loop=candidate_loop,
                                            candidate_parallel=candidate_parallel)

    # ------------------------------------------------------------------------------------------- weights
    def candidate_key(self, genotype) -> jax.Array:
        return jax.random.fold_in(jax.random.key(self.seed), self.space.arch_id(genotype))

    def initial_params(self, genotype):
        """The supernet's weights drawn from `genotype`'s key; the genotype's own weights are a subtree.

        A space without a whole-space network initialises the standalone network of `genotype` from the same
        key, eagerly: op by op, so the executables are shared across genotypes instead of one jit each."""
        if self.supernet is None:
            model = self.space.model(self._parse(genotype), dtype=self.dtype)
            return model.init(self.candidate_key(genotype), jnp.zeros((1, *self.xs.shape[2:]), self.dtype))["params"]
        init = supernet_init(self.supernet, self.xs.shape[2:], self.dtype)
        return init(self.candidate_key(genotype), jnp.asarray(self._code0))

    # ------------------------------------------------------------------------------------------- scoring
    def measure(self, genotype, params=None) -> proxy_registry.Measurement:
        """One candidate's measurement. `params`: the standalone network's weights (e.g. imported from
        PyTorch) instead of the seeded initialisation."""
        return self._measure_batch([self._parse(genotype)], params)[0]

    def score_one(self, genotype, params=None) -> CandidateScore:
        """One candidate; `params` as in `measure`."""
        return next(self._score_batch([genotype], params))

    def score(self, genotypes: Iterable) -> Iterator[CandidateScore]:
        """Score each genotype (object or official string) in order, yielding results as they finish.

        Candidates are measured `batch_size` at a time, as the backend asks: the supernet backend
        `candidate_batch` per call, split over the mesh; the tape backend one at a time. A generator of
        genotypes is consumed lazily. With `deduplicate`, only the first member of each class is measured."""
        if self.deduplicate:
            yield from self._score_classes(genotypes)
            return
        yield from self._score_each(genotypes)

    def _score_each(self, genotypes: Iterable) -> Iterator[CandidateScore]:
        size = self._backend.batch_size if self._needs_grads else 1
        batch = []
        for g in genotypes:
            batch.append(g)
            if len(batch) == size:
                yield from self._score_batch(batch)
                batch = []
        if batch:
            yield from self._score_batch(batch)

    def _score_classes(self, genotypes: Iterable) -> Iterator[CandidateScore]:
        """`score` with one measurement per canonical class, results in input order and streamed: a genotype is
        yielded as soon as its class's measured member is (members of classes scored before, at once)."""
        waiting: collections.deque = collections.deque()  # (genotype, class), in input order
        queued: set[str] = set()

        def new_classes():
            for g in genotypes:
                g = self._parse(g)
                form = self.space.canonical(g)
                waiting.append((g, form))
                if form not in self._class_scores and form not in queued:
                    queued.add(form)
                    yield g

        def ready():
            while waiting and waiting[0][1] in self._class_scores:
                g, form = waiting.popleft()
                yield self._member_result(g, self._class_scores[form])

        for result in self._score_each(new_classes()):
            self._class_scores[self.space.canonical(self._parse(result.arch))] = result
            yield from ready()
        yield from ready()

    def _member_result(self, g, measured: CandidateScore) -> CandidateScore:
        """`g`'s result from its class's measured member: the same proxy scores except the analytic ones (params,
        FLOPs), which are `g`'s own."""
        if str(g) == measured.arch:
            return measured
        m = proxy_registry.Measurement({}, {}, self.space.params(g), self.space.flops(g), {})
        analytic = {name: proxy_registry.get_proxy(name).fn(m, self.options) for name in self.proxies
                    if not proxy_registry.get_proxy(name).needs_grads
                    and not proxy_registry.get_proxy(name).needs_network}
        return dataclasses.replace(measured, arch=str(g), scores={**measured.scores, **analytic}, params=m.params,
                                   flops=m.flops, seconds=0.0, scored_as=measured.arch)

    def _parse(self, genotype):
        return self.space.parse(genotype) if isinstance(genotype, str) else genotype

    def _score_batch(self, genotypes, params=None) -> Iterator[CandidateScore]:
        """Measure `genotypes` together (`params`: the weights of a single genotype), then evaluate the proxies;
        each result's `seconds` is the batch's wall time over its size."""
        start = time.perf_counter()
        gs = [self._parse(g) for g in genotypes]
        measurements = self._measure_batch(gs, params)
        seconds = (time.perf_counter() - start) / len(gs)
        for g, m in zip(gs, measurements):
            yield self._result(g, m, seconds)

    def _measure_batch(self, gs: list, params=None) -> list[proxy_registry.Measurement]:
        """Measurements of parsed genotypes; `params` (the standalone network's weights) needs a single one."""
        if params is not None and len(gs) != 1:
            raise InputError(f"Engine: weights given for {len(gs)} genotypes; they belong to one")
        terms: list[dict[str, float]] = [{} for _ in gs]
        if self._needs_grads:
            terms = self._backend.measure(gs, None if params is None else [params])
        return [self._measurement(g, t, params) for g, t in zip(gs, terms)]

    def _measurement(self, g, terms: Mapping[str, float], params=None) -> proxy_registry.Measurement:
        layers = {layer.path: layer for layer in self.space.layers(g)}
        baselines = self._baseline_scores(g, params) if self._baselines else {}
        return proxy_registry.Measurement(terms, layers, self.space.params(g), self.space.flops(g), baselines)

    def _baseline_scores(self, g, params=None) -> dict[str, float]:
        """The requested baseline proxies of `g`'s standalone network at `params` (default: the seeded init,
        the same weights ZiCo sees) on the first mini-batch; zen draws its Gaussians from the candidate's key.
        Every value stays on the device until one transfer brings them all back."""
        net = baseline_network(self.space, g, self.dtype, loss=self.space.loss)
        key = self.candidate_key(g)
        x, y = self.xs[0], self.ys[0]
        with jax.disable_jit(self.baseline_mode == "eager"):
            if params is None:
                params = net.model.init(key, jnp.zeros((1, *x.shape[1:]), self.dtype))["params"]
            values = {name: jitted_baseline(name)(net, params, x, y, jax.random.fold_in(key, 1))
                      for name in self._baselines}
            host = jax.device_get(values)
        return {name: float(host[name]) for name in values}

    def _result(self, g, m: proxy_registry.Measurement, seconds: float) -> CandidateScore:
        scores = {name: proxy_registry.get_proxy(name).fn(m, self.options) for name in self.proxies}
        return CandidateScore(str(g), scores, m.params, m.flops,
                              len(proxy_registry.counted_terms(m, self.options)), seconds)
