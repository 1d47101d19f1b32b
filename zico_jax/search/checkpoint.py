"""Checkpoints of a search with orbax-checkpoint: the whole `EvolutionState` (population, scores, iteration, RNG
state, Pareto archive) as one JSON item per step, step = the iteration count.

`SearchCheckpointer(directory, every)`:
  * `maybe_save(state)` saves when `state.iteration` has crossed a multiple of `every` since the last save;
  * `save(state)` saves now (a step already saved is skipped: its state is the same);
  * `restore()` returns the latest saved state, or None when there is none;
  * `on_sigterm(get_state)` installs a SIGTERM handler (preemption) that saves `get_state()` at once (the state
    of the last completed round, which is consistent) and sets `preempted`; the search loop then stops after the
    round in flight (`run_search` saves again and raises `SearchPreempted`).
The JSON round-trip is exact: genotype strings, float scores (repr round-trip), the 128-bit PCG64 integers.
orbax writes a step to a temporary folder and renames it when complete, so a kill mid-save leaves the previous
checkpoint intact; it keeps the newest `max_to_keep` steps.

Example:
    >>> ckpt = SearchCheckpointer("runs/search/checkpoints", every=1000)
    >>> state = ckpt.restore() or evolution.init(seed=0)
    >>> ckpt.maybe_save(state)
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Optional

import orbax.checkpoint as ocp
from absl import logging

from zico_jax.errors import InputError
from zico_jax.search.evolution import EvolutionState


class SearchPreempted(SystemExit):
    """Raised by the search after a SIGTERM, once its state is checkpointed (exit status 143 = 128 + SIGTERM)."""

    def __init__(self, iteration: int):
        super().__init__(143)
        self.iteration = iteration


class SearchCheckpointer:
    def __init__(self, directory: str | os.PathLike, every: int = 1000, max_to_keep: int = 2):
        if every < 1:
            raise InputError(f"checkpoint_every must be a positive number of iterations, got {every}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.every = every
        self.manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True))
        latest = self.manager.latest_step()
        self._last_saved = -1 if latest is None else int(latest)
        self.preempted = False
        self._saving = False
        self._previous_handler = None

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, state: EvolutionState) -> bool:
        """Save `state` as step `state.iteration`; False when that step exists already (or a save is running)."""
        step = int(state.iteration)
        if self._saving or step in self.manager.all_steps():
            return False
        self._saving = True
        try:
            self.manager.save(step, args=ocp.args.Composite(state=ocp.args.JsonSave(state.to_dict())), force=True)
            self.manager.wait_until_finished()
        finally:
            self._saving = False
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

    def on_sigterm(self, get_state: Callable[[], EvolutionState]) -> None:
        """Install the preemption handler (main thread only; elsewhere a no-op with a warning)."""

        def handler(signum, frame):
            self.preempted = True
            logging.warning("search: SIGTERM received; saving the last completed round")
            try:
                self.save(get_state())
            except Exception as err:  # the loop saves again after the round in flight
                logging.error("search: checkpoint on SIGTERM failed: %s", err)

        try:
            self._previous_handler = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread
            logging.warning("search: not in the main thread; no SIGTERM checkpoint")

    def restore_signal_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def close(self) -> None:
        self.restore_signal_handler()
        self.manager.close()
