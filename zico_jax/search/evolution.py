"""The ZiCo / Zen-NAS evolutionary search (`evolution_search.py` of SLDGroup/ZiCo) as a pure state machine.

The official loop, for `loop_count` in range(evolution_max_iter):
  1. while len(population) > population_size: remove the member with the lowest score (the FIRST such member:
     `list.index(min(scores))`);
  2. propose a child: if len(population) <= 10, ONE block mutation of the initial network, else TWO block mutations
     of a uniformly random member (`random.randint(0, len - 1)`); the space's `mutate` also splits blocks of 6 or
     more sub-layers (`split(split_layer_threshold=6)`);
  3. reject it (`continue`: the iteration still counts) if it has more layers than max_layers, more parameters or
     FLOPs than the budget;
  4. score it and append it to the population.

Here the loop is split into `propose(state, n)` and `accept(state, children, scores)`, so that a round's children
are scored in one call of the compile-once engine. `accept` appends, then removes the lowest-scoring members while
the population is larger than `population_size` (step 1 moved to the end of the previous iteration: the population
every proposal sees is the same). Budget filtering and the iteration count live in `zico_jax.search.run`: every
proposal is one iteration, rejected or not.

Batching: `propose(state, k)` draws k children from the population as it is at proposal time, so the "population
<= 10" rule and the parent choice see the population before any of the k is accepted. With k = 1 the sequence of
proposals, populations and scores is exactly the official sequential loop (with numpy's Generator in place of
Python's `random`); with k > 1 it is a different (equally valid) trajectory: e.g. the first round proposes k
mutations of the initial network even when the population would pass 10 members half-way through the round.

Randomness: one `np.random.Generator` (PCG64) whose `bit_generator.state` is part of `EvolutionState`, so a state
restored from a checkpoint continues with exactly the same draws.

Example:
    >>> evo = Evolution(space, initial=str(space.initial_genotype()), population_size=512)
    >>> state = evo.init(seed=0)
    >>> children = evo.propose(state, 8)
    >>> evo.accept(state, children, [score(c) for c in children])
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from typing import Any, Optional, Sequence

import numpy as np

from zico_jax.errors import InputError
from zico_jax.spaces import Mutable

SMALL_POPULATION = 10  # the official `len(popu_structure_list) <= 10`


@dataclasses.dataclass
class EvolutionState:
    """Everything a search needs to continue: JSON-able (see `to_dict`), so a checkpoint round-trips exactly.

    population/scores: canonical genotype strings and their scores, in insertion order (order matters: ties are
    broken by the first index, and parents are drawn by index). iteration: proposals made so far, rejected ones
    included. rng_state: `np.random.Generator.bit_generator.state`. initial: the network mutated while the
    population is small. front: the Pareto archive [[arch, score, latency], ...] of the multi-objective mode.
    rejected: proposals rejected by a budget so far; scored: children scored so far.
    """

    population: list[str]
    scores: list[float]
    iteration: int
    rng_state: dict[str, Any]
    initial: Optional[str] = None
    front: list[list[Any]] = dataclasses.field(default_factory=list)
    rejected: int = 0
    scored: int = 0

    def rng(self) -> np.random.Generator:
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = copy.deepcopy(self.rng_state)
        return rng

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng_state = rng.bit_generator.state

    def best(self) -> tuple[str, float]:
        """(arch, score) of the best member (the first one on ties)."""
        if not self.population:
            raise InputError("the population is empty: no candidate met the budgets yet")
        i = int(np.argmax(self.scores))
        return self.population[i], self.scores[i]

    def to_dict(self) -> dict[str, Any]:
        return {"population": list(self.population), "scores": [float(s) for s in self.scores],
                "iteration": int(self.iteration), "rng_state": copy.deepcopy(self.rng_state), "initial": self.initial,
                "front": [list(p) for p in self.front], "rejected": int(self.rejected), "scored": int(self.scored)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvolutionState":
        missing = {"population", "scores", "iteration", "rng_state"} - set(d)
        if missing:
            raise InputError(f"search state: missing field(s) {', '.join(sorted(missing))}")
        if len(d["population"]) != len(d["scores"]):
            raise InputError(f"search state: {len(d['population'])} members but {len(d['scores'])} scores")
        return cls(list(d["population"]), [float(s) for s in d["scores"]], int(d["iteration"]),
                   copy.deepcopy(dict(d["rng_state"])), d.get("initial"), [list(p) for p in d.get("front", [])],
                   int(d.get("rejected", 0)), int(d.get("scored", 0)))


def new_state(seed: int, initial: Optional[str] = None) -> EvolutionState:
    rng = np.random.default_rng(seed)
    return EvolutionState([], [], 0, rng.bit_generator.state, initial)


def mutate(space, genotype, rng: np.random.Generator, num_mutations: int):
    """`space.mutate(g, rng, num_mutations)`; for a space whose mutate takes no count, that many single mutations."""
    try:
        takes_count = "num_mutations" in inspect.signature(space.mutate).parameters or len(
            inspect.signature(space.mutate).parameters) >= 3
    except (TypeError, ValueError):
        takes_count = True
    if takes_count:
        return space.mutate(genotype, rng, num_mutations)
    for _ in range(num_mutations):
        genotype = space.mutate(genotype, rng)
    return genotype


def remove_lowest(state: EvolutionState, population_size: int) -> None:
    """The official trim: while too large, pop the first member with the minimum score."""
    while len(state.population) > population_size:
        i = state.scores.index(min(state.scores))
        state.population.pop(i)
        state.scores.pop(i)


class Evolution:
    """The official mutation rule and population update (see the module docstring).

    Args:
      space: provides `parse` and `mutate(g, rng, num_mutations)`.
      initial: the initial network's string (mutated once while the population has <= 10 members).
      population_size: the official 512.
    """

    def __init__(self, space, initial: str, population_size: int = 512, small_population: int = SMALL_POPULATION):
        if population_size < 1:
            raise InputError(f"population_size must be positive, got {population_size}")
        if not isinstance(space, Mutable):
            raise InputError(f"space {space.name!r} has no mutate(genotype, rng[, num_mutations]): the evolutionary "
                             "search needs one (mode 'random' only needs sample)")
        self.space, self.initial = space, str(initial)
        self.population_size, self.small_population = population_size, small_population

    def init(self, seed: int) -> EvolutionState:
        return new_state(seed, self.initial)

    def propose(self, state: EvolutionState, n: int) -> list[str]:
        """n children (canonical strings) from the population at proposal time; advances state's RNG only."""
        rng = state.rng()
        children = []
        for _ in range(n):
            if len(state.population) <= self.small_population:
                parent, count = state.initial or self.initial, 1
            else:
                parent, count = state.population[int(rng.integers(len(state.population)))], 2
            children.append(str(mutate(self.space, self.space.parse(parent), rng, count)))
        state.set_rng(rng)
        return children

    def accept(self, state: EvolutionState, children: Sequence[str], scores: Sequence[float]) -> None:
        """Append the scored children in order, then remove the lowest while over population_size."""
        accept(state, children, scores, self.population_size)


def accept(state: EvolutionState, children: Sequence[str], scores: Sequence[float], population_size: int) -> None:
    """Append the children in order (a NaN score is stored as -inf: it ranks last, as the official -9999), then
    `remove_lowest`."""
    if len(children) != len(scores):
        raise InputError(f"accept: {len(children)} children but {len(scores)} scores")
    for child, score in zip(children, scores):
        state.population.append(str(child))
        state.scores.append(-math.inf if math.isnan(float(score)) else float(score))  # a failed score ranks last
    state.scored += len(children)
    remove_lowest(state, population_size)
