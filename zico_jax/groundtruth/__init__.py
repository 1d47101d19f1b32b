"""Benchmark ground truth: trained accuracies of a search space's architectures, keyed by genotype string.

`GroundTruth` (the table) and `load_table` (generic CSV) in `table`; one loader per benchmark, registered by
space name (`registry`), reading the offline tables of the shared data folder or the official files:
`nb201` (NAS-Bench-201 / NATS-Bench-TSS), `nats_sss` (NATS-Bench-SSS, official file only), `nasbench101`,
`transnas101` (micro and macro, per task).
"""

from zico_jax.groundtruth.nasbench101 import load_nb101  # noqa: E402  (registers)
from zico_jax.groundtruth.nats_sss import load_nats_sss  # noqa: E402  (registers)
from zico_jax.groundtruth.nb201 import NB201_COLUMNS, NB201_ENV, load_nb201, nb201_path  # noqa: E402  (registers)
from zico_jax.groundtruth.registry import groundtruth_spaces, load_groundtruth, register_groundtruth
from zico_jax.groundtruth.table import GroundTruth, load_table
from zico_jax.groundtruth.transnas101 import load_tnb101_macro, load_tnb101_micro  # noqa: E402  (registers)

__all__ = ["GroundTruth", "load_table", "register_groundtruth", "load_groundtruth", "groundtruth_spaces",
           "load_nb201", "nb201_path", "load_nats_sss", "load_nb101", "load_tnb101_micro", "load_tnb101_macro",
           "NB201_COLUMNS", "NB201_ENV"]
