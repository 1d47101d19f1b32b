"""Checkpoints of a search with orbax-checkpoint: the whole `EvolutionState` (population, scores, iteration, RNG
state, Pareto archive) as one JSON item per step, step = the iteration count. The folder may be in a bucket.

`SearchCheckpointer(directory, every)`:
  * `maybe_save(state)` saves when `state.iteration` has crossed a multiple of `every` since the last save;
  * `save(state)` saves now (a step already saved is skipped: its state is the same);
  * `restore()` returns the latest saved state, or None when there is none;
  * `reached_preemption(round_index)` is orbax's preemption check (`CheckpointManager.reached_preemption`): after
    a preemption notice (SIGTERM) reaches any host, it is True on every host at the same round, so that all of
    them save the same state and stop together. JAX's preemption sync service carries the notice; it runs where
    `jax.distributed` is initialised (every multi-host run; `zico search` starts a one-process service on a single
    host, `zico_jax.sharding.enable_preemption_notice`). Without it the check is always False, and SIGTERM ends the
    process as usual: a rerun resumes from the last periodic checkpoint.
The JSON round-trip is exact: genotype strings, float scores (repr round-trip), the 128-bit PCG64 integers.
orbax writes a step to a temporary folder and renames it when complete (on a bucket: a commit marker), so a kill
mid-save leaves the previous checkpoint intact; it keeps the newest `max_to_keep` steps.

Example:
    >>> ckpt = SearchCheckpointer("runs/search/checkpoints", every=1000)
    >>> state = ckpt.restore() or evolution.init(seed=0)
    >>> ckpt.maybe_save(state)
"""

from __future__ import annotations

import os
from typing import Optional

from absl import logging
from etils import epy

with epy.lazy_imports():  # loaded on first use: orbax takes ~0.2 s to import, and scoring never needs it
    import orbax.checkpoint as ocp

from zico_jax import storage
from zico_jax.errors import InputError
from zico_jax.search.evolution import EvolutionState


class SearchPreempted(SystemExit):
    """Raised by the search after a preemption notice, once its state is checkpointed (exit status 143 = 128 +
    SIGTERM, the notice's signal)."""

    def __init__(self, iteration: int):
        super().__init__(143)
        self.iteration = iteration


class SearchCheckpointer:
    def __init__(self, directory: str | os.PathLike, every: int = 1000, max_to_keep: int = 2):
        if every < 1:
            raise InputError(f"checkpoint_every must be a positive number of iterations, got {every}")
        self.directory = storage.absolute(directory)
        self.every = every
        self.manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True))
        latest = self.manager.latest_step()
        self._last_saved = -1 if latest is None else int(latest)

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, state: EvolutionState) -> bool:
        """Save `state` as step `state.iteration`; False when that step exists already."""
        step = int(state.iteration)
        if step in self.manager.all_steps():
            return False
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.JsonSave(state.to_dict())), force=True)
        self.manager.wait_until_finished()
        self._last_saved = step
        logging.info("search: checkpoint at iteration %d in %s", step, self.directory)
        return True

    def maybe_save(self, state: EvolutionState) -> bool:
        if state.iteration // self.every > max(self._last_saved, 0) // self.every:
            return self.save(state)
        return False

    def restore(self, step: Optional[int] = None) -> Optional[EvolutionState]:
        step = self.manager.latest_step() if step is None else step
        if step is None:
            return None
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.JsonRestore()))
        return EvolutionState.from_dict(restored.state)

    def reached_preemption(self, round_index: int) -> bool:
        """orbax's preemption sync point (see the module docstring). `round_index` counts the rounds of this process
        from 0, consecutively: JAX's sync protocol stops every host at the same step id, one past the highest any
        host had reached, so the ids must be consecutive and the same on all hosts (a resumed run restarts them at
        0 on every host together)."""
        return self.manager.reached_preemption(round_index)

    def close(self) -> None:
        self.manager.close()
