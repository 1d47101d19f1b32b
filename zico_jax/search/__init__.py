"""Training-free architecture search: the ZiCo paper's evolutionary algorithm, random search and a score-vs-latency
Pareto mode, under FLOPs / parameter / layer / latency budgets, resumable from orbax checkpoints.

See `run.run_search` (the loop), `evolution` (the official EA as a state machine), `budgets`, `pareto`, `checkpoint`.
"""

from zico_jax.search.budgets import BUDGET_NAMES, Budget, Budgets, budgets_from_config, make_budgets
from zico_jax.search.checkpoint import SearchCheckpointer, SearchPreempted
from zico_jax.search.evolution import Evolution, EvolutionState, accept, new_state
from zico_jax.search.from_config import run_search_from_config
from zico_jax.search.pareto import dominates, pareto_front, update_front
from zico_jax.search.random_search import RandomSearch
from zico_jax.search.run import MODES, AnalyticScorer, compare_with_groundtruth, format_summary, run_search

__all__ = ["Budget", "Budgets", "BUDGET_NAMES", "make_budgets", "budgets_from_config", "SearchCheckpointer",
           "SearchPreempted", "Evolution", "EvolutionState", "accept", "new_state", "RandomSearch", "dominates",
           "pareto_front", "update_front", "MODES", "AnalyticScorer", "compare_with_groundtruth", "format_summary",
           "run_search", "run_search_from_config"]
