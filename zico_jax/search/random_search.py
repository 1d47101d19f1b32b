"""Random search, the baseline: every proposal is an independent uniform sample of the space (`space.sample`).

It shares `EvolutionState` and `accept` with the evolution, so budgets, iteration counting, batching, checkpoints
and resumption are the same: the "population" keeps the `population_size` best samples seen (the best is the
search's answer), and proposals never depend on it, so batching does not change the sequence of samples.

Example:
    >>> search = RandomSearch(space, population_size=16)
    >>> state = search.init(seed=0)
    >>> children = search.propose(state, 8)
    >>> search.accept(state, children, [score(c) for c in children])
"""

from __future__ import annotations

from typing import Sequence

from zico_jax.errors import InputError
from zico_jax.search.evolution import EvolutionState, accept, new_state


class RandomSearch:
    def __init__(self, space, population_size: int = 512):
        if population_size < 1:
            raise InputError(f"population_size must be positive, got {population_size}")
        self.space, self.population_size = space, population_size

    def init(self, seed: int) -> EvolutionState:
        return new_state(seed)

    def propose(self, state: EvolutionState, n: int) -> list[str]:
        rng = state.rng()
        children = [str(self.space.sample(rng)) for _ in range(n)]
        state.set_rng(rng)
        return children

    def accept(self, state: EvolutionState, children: Sequence[str], scores: Sequence[float]) -> None:
        accept(state, children, scores, self.population_size)
