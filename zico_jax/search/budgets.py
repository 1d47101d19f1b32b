"""Resource budgets of a search: a candidate is kept only if every measured value is at most its limit.

A `Budget` is a name, a function genotype -> float and a limit; `Budgets.check(g)` returns the first budget the
genotype violates (None if it meets all). The order is the official evolutionary search's: layers, parameters,
FLOPs, then latency. A value that is NaN (e.g. an architecture a latency table does not cover) violates its budget:
a candidate whose cost is unknown is never reported as meeting it.

`make_budgets(space, flops=..., params=..., layers=..., latency=..., latency_table=...)` builds them from a space:
  * flops   - `space.search_flops(g)` where the space defines it (the official search's FLOPs), else `space.flops(g)`
              (multiply-accumulates of Conv/Dense layers);
  * params  - `space.search_params(g)` where the space defines it (zennas_imagenet: the official `get_model_size`
              of the network WITH residual links: evolution_search.py builds the budget-checked model with
              no_reslink=False, the scored one with no_reslink=True), else `space.params(g)`;
  * layers  - `space.num_layers(g)` where defined (the official `get_num_layers`), else the number of Conv/Dense
              layers, `len(space.layers(g))`;
  * latency - milliseconds from a latency table: a whole-network table (`NetworkLatencyTable`, keyed by the
              canonical string; NaN where not measured) or a per-layer table (`LayerLatencyTable`, sum of layers).

Example:
    >>> table = get_latency_table("nb201_sd855_gpu")
    >>> budgets = make_budgets(get_space("nats_tss"), params=1e6, latency=10.0, latency_table=table)
    >>> violated = budgets.check(g)          # None, or the Budget that g exceeds
    >>> budgets.values(g)                    # {"params": 587386.0, "latency": 7.3}
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Optional

from zico_jax.errors import InputError

BUDGET_NAMES = ("layers", "params", "flops", "latency")


@dataclasses.dataclass(frozen=True)
class Budget:
    """`measure(g) <= limit`, or the candidate is rejected (NaN always rejected)."""

    name: str
    measure: Callable[[Any], float]
    limit: float

    def value(self, genotype) -> float:
        return float(self.measure(genotype))

    def violated_by(self, genotype, value: Optional[float] = None) -> bool:
        value = self.value(genotype) if value is None else value
        return not value <= self.limit  # NaN: violated


class Budgets:
    """An ordered set of budgets; empty means unconstrained."""

    def __init__(self, budgets: Iterable[Budget] = ()):
        self.budgets = list(budgets)
        names = [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise InputError(f"budgets: each name may appear once, got {names}")

    def __iter__(self):
        return iter(self.budgets)

    def __len__(self) -> int:
        return len(self.budgets)

    def __repr__(self) -> str:
        return "Budgets(" + ", ".join(f"{b.name}<={b.limit:g}" for b in self.budgets) + ")"

    def get(self, name: str) -> Optional[Budget]:
        return next((b for b in self.budgets if b.name == name), None)

    def check(self, genotype) -> Optional[Budget]:
        """The first budget `genotype` violates, or None when it meets them all."""
        for budget in self.budgets:
            if budget.violated_by(genotype):
                return budget
        return None

    def values(self, genotype) -> dict[str, float]:
        return {b.name: b.value(genotype) for b in self.budgets}

    def limits(self) -> dict[str, float]:
        return {b.name: b.limit for b in self.budgets}


def flops_of(space) -> Callable[[Any], float]:
    fn = getattr(space, "search_flops", None) or space.flops
    return lambda g: float(fn(g))


def params_of(space) -> Callable[[Any], float]:
    """What a params budget bounds: the official search's count where the space has one (see the module docstring)."""
    fn = getattr(space, "search_params", space.params)
    return lambda g: float(fn(g))


def layers_of(space) -> Callable[[Any], float]:
    fn = getattr(space, "num_layers", None)
    if fn is not None:
        return lambda g: float(fn(g))
    return lambda g: float(len(space.layers(g)))


def latency_of(space, table) -> Callable[[Any], float]:
    """Latency (ms) of a genotype from `table`; NaN where a whole-network table lacks a measurement."""
    if hasattr(table, "network_latency"):  # per-layer lookup table
        return lambda g: float(table.network_latency(space.layers(g)))
    if not hasattr(table, "values"):
        raise TypeError(f"latency table {table!r}: expected a NetworkLatencyTable or LayerLatencyTable")

    def latency(g) -> float:
        try:
            return float(table.values([str(g)])[0])
        except KeyError:  # not in the table at all: unknown cost
            return math.nan

    return latency


def make_budgets(space, flops: Optional[float] = None, params: Optional[float] = None,
                 layers: Optional[float] = None, latency: Optional[float] = None, latency_table=None) -> Budgets:
    """Budgets for the limits given (None: no limit); `latency` needs `latency_table` (ms)."""
    budgets = []
    if layers is not None:
        budgets.append(Budget("layers", layers_of(space), float(layers)))
    if params is not None:
        budgets.append(Budget("params", params_of(space), float(params)))
    if flops is not None:
        budgets.append(Budget("flops", flops_of(space), float(flops)))
    if latency is not None:
        if latency_table is None:
            raise InputError("a latency budget needs a latency table (e.g. get_latency_table('nb201_sd855_gpu'))")
        budgets.append(Budget("latency", latency_of(space, latency_table), float(latency)))
    return Budgets(budgets)


def budgets_from_config(space, limits: dict, latency_table=None) -> Budgets:
    """`make_budgets` from a {name: limit or None} mapping; unknown names are an error."""
    limits = dict(limits or {})
    unknown = sorted(set(limits) - set(BUDGET_NAMES))
    if unknown:
        raise InputError(f"unknown budget(s) {', '.join(map(repr, unknown))}; "
                         f"expected any of {', '.join(BUDGET_NAMES)}")
    return make_budgets(space, latency_table=latency_table, **{k: v for k, v in limits.items() if v is not None})
