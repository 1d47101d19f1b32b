"""The scoring engine: every candidate of every experiment is scored here, and nowhere else.

    Engine(space, xs, ys, proxies).score(genotypes)  ->  CandidateScore per genotype, in order, as each finishes

For each candidate g the engine
  1. draws the initial weights from a per-candidate key, `fold_in(key(seed), space.arch_id(g))`, with ONE jitted
     init of the whole space (the supernet): linen derives each weight from its module path, so the slice that
     g uses is exactly what the standalone network of g initialised with the same key would hold;
  2. takes the per-mini-batch gradients of the space's loss (`space.loss`: mean cross-entropy for classification)
     at those weights (BatchNorm in train mode,
     see `zico_jax.grads`);
  3. reduces them to ZiCo's per-layer terms (`zico_jax.proxies.zico`) and evaluates every requested proxy on
     that one measurement (`zico_jax.proxies.registry`).
Scores are a function of (architecture, seed, data) only.

Two backends measure step 2 and 3's per-layer terms, because no one program layout is fast everywhere (the
numbers agree; the tests check it in float64):
  * "supernet" (`_supernet.SupernetBackend`) - the architecture is data: the space's network takes the integer
    code as an input and switches per edge, so ONE compiled program scores every candidate (`vmap(grad)` over
    mini-batches inside it), a batch of candidates per call split over the devices. The natural design on
    GPU/TPU.
  * "tape" (`_tape.TapeBackend`) - the candidate's network is a short list of module applications, each (module,
    shape) compiled once as forward and backward and chained with `jax.vjp` in Python (`zico_jax.tape`). The
    set of executables is fixed by the space, not by the number of candidates. On XLA:CPU convolutions inside
    `switch` run as slow generic thunks (about 12 s per NAS-Bench-201 candidate), so this is the CPU default.
  * "auto" - "tape" on CPU when the space provides a tape (`zico_jax.spaces.base.HasTape`), else "supernet";
    "tape" everywhere for a space with no whole-space network (`space.model(None)` raises
    NotImplementedError: TransNAS-Bench-101 macro).
Each backend owns its compiled programs and brings a candidate's terms to the host in one transfer; the facade
(`_engine.Engine`) owns validation, the choice of backend, the seeded weights, the baseline proxies and the
evaluation of every proxy, so that nothing above the backends depends on which one ran.

Example:
    >>> engine = Engine(get_space("nats_tss"), xs, ys, proxies=("zico", "zico_bc"), seed=0)
    >>> for result in engine.score(["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|"]):
    ...     print(result.arch, result.scores["zico"])
"""

from zico_jax.engine._engine import BACKENDS, BASELINE_MODES, CANDIDATE_LOOPS, Backend, CandidateScore, Engine
from zico_jax.engine._supernet import SupernetBackend
from zico_jax.engine._tape import TapeBackend
from zico_jax.engine._tape import layer_term_jit as _layer_term_jit  # noqa: F401  (the tape's per-layer program)

__all__ = ["BACKENDS", "BASELINE_MODES", "CANDIDATE_LOOPS", "Backend", "CandidateScore", "Engine",
           "SupernetBackend", "TapeBackend"]
