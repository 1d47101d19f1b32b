"""NAS-Bench-101 ground truth, keyed by the canonical (pruned) spec string of `zico_jax.spaces.nasbench101`.

Read from, in order of precedence:
  1. the `path` argument (the CLI's --groundtruth),
  2. the file named by $ZICO_JAX_NB101,
  3. `<data_dir>/nasbench_suite_zero_subsets/nb101_accuracy_subset.csv` (see `zico_jax.data.data_dir`).

Offline CSV (NAS-Bench-Suite-Zero subset; columns n_nodes, adjacency_rowmajor, ops, val_accuracy): 500 rows of
specs as NASLib's random sampler drew them, i.e. UNPRUNED 7-vertex matrices, each with the 108-epoch validation
accuracy (%) of one randomly queried training run. Rows are pruned and keyed by the canonical string; rows that
prune to the same string collapse into one arch (index = its first row number), and an arch's value is the mean
over every row with the same official spec hash (isomorphic specs are one benchmark entry, and each row is one
of its 3 runs). The 500 rows give 301 archs (292 distinct hashes). Column: "val_accuracy".

Official files (`nasbench_only108.tfrecord` or `nasbench_full.tfrecord`, suffix .tfrecord), read through the
official API (`from nasbench import api`; `git clone https://github.com/google-research/nasbench && pip install
./nasbench`, which needs TensorFlow): one arch per hash (423,624), the dataset's stored (pruned) spec, index = rank
of the hash in sorted order (the same in both files). Columns: "val_accuracy" and "test_accuracy" (mean over the
runs at 108 epochs, in %, as the CSV), "trainable_parameters" (the dataset's count, = `NB101Space().params`).

Example:
    >>> gt = load_nb101()
    >>> len(gt), gt.columns
    (301, ('val_accuracy',))
"""

from __future__ import annotations

import csv
import os
import pathlib
from collections import defaultdict

import numpy as np

from zico_jax.data import DataNotFoundError
from zico_jax.data import data_dir as _data_dir
from zico_jax.errors import GenotypeError, InputError
from zico_jax.groundtruth.registry import register_groundtruth
from zico_jax.groundtruth.table import GroundTruth
from zico_jax.spaces.nasbench101_graph import make_spec, parse_spec, spec_hash

NB101_ENV = "ZICO_JAX_NB101"
NB101_FILE = pathlib.Path("nasbench_suite_zero_subsets") / "nb101_accuracy_subset.csv"
NB101_CSV_COLUMNS = ("val_accuracy",)
NB101_OFFICIAL_COLUMNS = ("val_accuracy", "test_accuracy", "trainable_parameters")
_ORIGIN = ("the nasbench_suite_zero_subsets/ folder of the zico-jax shared data (see its SOURCE.md), or the official "
           "nasbench_only108.tfrecord from https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord")


def nb101_path(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Where `load_nb101` reads from: `path` > $ZICO_JAX_NB101 > <data_dir>/nasbench_suite_zero_subsets/...csv."""
    if path is not None:
        return pathlib.Path(path).expanduser()
    if os.environ.get(NB101_ENV):
        return pathlib.Path(os.environ[NB101_ENV]).expanduser()
    return _data_dir(data_dir) / NB101_FILE


@register_groundtruth("nasbench101")
def load_nb101(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> GroundTruth:
    """NAS-Bench-101 ground truth from the offline CSV or an official .tfrecord (see the module docstring)."""
    p = nb101_path(path, data_dir)
    if not p.exists():
        raise DataNotFoundError(f"NAS-Bench-101 ground truth {p} not found; get it from {_ORIGIN}, then pass "
                                f"--groundtruth PATH or set {NB101_ENV}=PATH")
    if p.suffix.lower() == ".tfrecord":
        return _load_official(p)
    return _load_csv(p)


def _load_csv(path: pathlib.Path) -> GroundTruth:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ("adjacency_rowmajor", "ops", "val_accuracy") if c not in header]
        if missing:
            raise InputError(f"{path}, line 1: missing column(s) {', '.join(missing)}; the header has "
                             f"{', '.join(header) or 'nothing'}")
        first_row: dict[str, int] = {}  # canonical string -> first row number
        arch_hash: dict[str, str] = {}
        by_hash: dict[str, list[float]] = defaultdict(list)
        for row_number, record in enumerate(reader):
            line = reader.line_num
            text = f"{record['adjacency_rowmajor'].strip()}|{record['ops'].strip()}"
            if record.get("n_nodes", "").strip():
                text = f"{record['n_nodes'].strip()},{text.replace('|', ',', 1)}"
            try:
                spec = parse_spec(text)
            except GenotypeError as e:
                raise InputError(f"{path}, line {line}: {e}") from None
            try:
                value = float(record["val_accuracy"])
            except ValueError:
                raise InputError(f"{path}, line {line}, column 'val_accuracy': expected a number, got "
                                 f"{record['val_accuracy']!r}") from None
            arch = str(spec)
            first_row.setdefault(arch, row_number)
            arch_hash[arch] = h = spec_hash(spec)
            by_hash[h].append(value)
    archs = list(first_row)
    values = [[float(np.mean(by_hash[arch_hash[a]]))] for a in archs]
    return GroundTruth("nb101", archs, [first_row[a] for a in archs], NB101_CSV_COLUMNS,
                       np.asarray(values, np.float64).reshape(len(archs), 1))


def _load_official(path: pathlib.Path) -> GroundTruth:
    """Every spec of an official .tfrecord through `nasbench.api` (loading takes minutes; cache as CSV)."""
    try:
        from nasbench import api
    except ImportError as e:
        raise ImportError(f"reading {path} needs the NAS-Bench-101 API (the `nasbench` package, with TensorFlow): "
                          "git clone https://github.com/google-research/nasbench && pip install ./nasbench") from e
    bench = api.NASBench(str(path))
    archs, rows = [], []
    for module_hash in sorted(bench.hash_iterator()):
        fixed, computed = bench.get_metrics_from_hash(module_hash)
        runs = computed.get(108)
        if not runs:
            raise InputError(f"{path}: spec {module_hash} has no 108-epoch runs (epochs: {sorted(computed)})")
        spec = make_spec(np.asarray(fixed["module_adjacency"]), list(fixed["module_operations"]))
        archs.append(str(spec))
        rows.append([100.0 * float(np.mean([r["final_validation_accuracy"] for r in runs])),
                     100.0 * float(np.mean([r["final_test_accuracy"] for r in runs])),
                     float(fixed["trainable_parameters"])])
    return GroundTruth("nb101", archs, list(range(len(archs))), NB101_OFFICIAL_COLUMNS,
                       np.asarray(rows, np.float64).reshape(len(archs), len(NB101_OFFICIAL_COLUMNS)))


__all__ = ["load_nb101", "nb101_path", "NB101_ENV", "NB101_CSV_COLUMNS", "NB101_OFFICIAL_COLUMNS"]
