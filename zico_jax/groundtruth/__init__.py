"""Benchmark ground truth: trained accuracies of a search space's architectures, keyed by genotype string.

`GroundTruth` (the table) and `load_table` (generic CSV) in `table`; one loader per benchmark, registered by
space name (`registry`), reading the offline tables of the shared data folder or the official files:
`nb201` (NAS-Bench-201 / NATS-Bench-TSS).
"""

from zico_jax.groundtruth.registry import groundtruth_spaces, load_groundtruth, register_groundtruth
from zico_jax.groundtruth.table import GroundTruth, load_table
from zico_jax.groundtruth.nb201 import NB201_COLUMNS, NB201_ENV, load_nb201, nb201_path  # noqa: E402  (registers)

__all__ = ["GroundTruth", "load_table", "register_groundtruth", "load_groundtruth", "groundtruth_spaces",
           "load_nb201", "nb201_path", "NB201_COLUMNS", "NB201_ENV"]
