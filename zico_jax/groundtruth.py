"""Benchmark ground truth: trained accuracies of every architecture of a search space, keyed by architecture string.

A `GroundTruth` is a read-only table: one row per architecture (its benchmark index and its string, e.g. NB201's
`|nor_conv_3x3~0|+|...|`), one float column per metric. Correlation experiments look up the true accuracy of each
scored candidate with `values(archs, column)`.

NAS-Bench-201 / NATS-Bench-TSS (`load_nb201`) is read from, in order of precedence:
  1. the `path` argument (the CLI's --groundtruth),
  2. the file named by $ZICO_JAX_NB201,
  3. `<data_dir>/nb201_accuracy/nb201_accuracy.csv` (see `zico_jax.data.data_dir`).
The CSV (columns idx, arch_str, cifar10_test, cifar100_test, imagenet16_120_test, cifar10valid_valid,
cifar10valid_test; accuracies in %, averaged over seeds, 200-epoch schedule) is a dump of the official benchmark.
The official files can be read too, through their own packages, giving the same columns:
  * NATS-Bench-TSS archive directory (NATS-tss-v1_0-3ffb9-simple) or .pickle.pbz2 file: `pip install nats_bench`;
  * NAS-Bench-201 .pth file (NAS-Bench-201-v1_1-096897.pth): `pip install nas-bench-201` (needs torch).

`load_table` is the generic CSV reader behind it, for other benchmarks' tables.

Example:
    >>> gt = load_nb201()
    >>> len(gt), gt.columns[:2]
    (15625, ('cifar10_test', 'cifar100_test'))
    >>> gt.value(gt.arch(0), "cifar10_test")
    85.8633
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
from typing import Iterable, Sequence

import numpy as np

from zico_jax.data import DataNotFoundError, data_dir as _data_dir

NB201_ENV = "ZICO_JAX_NB201"
NB201_FILE = pathlib.Path("nb201_accuracy") / "nb201_accuracy.csv"
NB201_COLUMNS = ("cifar10_test", "cifar100_test", "imagenet16_120_test", "cifar10valid_valid", "cifar10valid_test")
_NB201_ORIGIN = ("the nb201_accuracy/ folder of the zico-jax shared data (see its SOURCE.md: a dump of the official "
                 "NATS-Bench-TSS results), or the official NATS-Bench archive NATS-tss-v1_0-3ffb9-simple")

# Official API queries behind each CSV column: (dataset name in the API, key of get_more_info's dict).
_OFFICIAL_QUERIES = {
    "cifar10_test": ("cifar10", "test-accuracy"),
    "cifar100_test": ("cifar100", "test-accuracy"),
    "imagenet16_120_test": ("ImageNet16-120", "test-accuracy"),
    "cifar10valid_valid": ("cifar10-valid", "valid-accuracy"),
    "cifar10valid_test": ("cifar10-valid", "test-accuracy"),
}


class GroundTruth:
    """An immutable table arch string -> (benchmark index, float metrics), rows kept in benchmark-index order."""

    def __init__(self, name: str, archs: Sequence[str], indices: Sequence[int], columns: Sequence[str],
                 values: np.ndarray):
        values = np.asarray(values, np.float64)
        if values.shape != (len(archs), len(columns)) or len(indices) != len(archs):
            raise ValueError(f"GroundTruth {name!r}: {len(archs)} archs and {len(indices)} indices do not match "
                             f"values of shape {values.shape} for {len(columns)} columns")
        order = np.argsort(np.asarray(indices, np.int64), kind="stable")
        self._name = name
        self._archs = [archs[i] for i in order]
        self._indices = [int(indices[i]) for i in order]
        self._columns = tuple(columns)
        self._values = values[order]
        self._values.setflags(write=False)
        self._row = {a: r for r, a in enumerate(self._archs)}
        self._row_of_index = {ix: r for r, ix in enumerate(self._indices)}
        for what, table, items in (("architecture", self._row, self._archs), ("index", self._row_of_index,
                                                                              self._indices)):
            if len(table) != len(items):
                dup = next(x for r, x in enumerate(items) if table[x] != r)
                raise ValueError(f"GroundTruth {name!r}: duplicate {what} {dup!r}")

    @property
    def name(self) -> str:
        return self._name

    @property
    def columns(self) -> tuple[str, ...]:
        """The metric column names, in table order."""
        return self._columns

    def __len__(self) -> int:
        return len(self._archs)

    def __contains__(self, arch: object) -> bool:
        return arch in self._row

    def __repr__(self) -> str:
        return f"GroundTruth({self._name!r}, {len(self)} archs, columns={list(self._columns)})"

    def _row_of(self, arch: str) -> int:
        try:
            return self._row[arch]
        except KeyError:
            raise KeyError(f"architecture {arch!r} is not in ground truth {self._name!r}") from None

    def _col(self, column: str) -> int:
        try:
            return self._columns.index(column)
        except ValueError:
            raise KeyError(f"unknown column {column!r} of ground truth {self._name!r}; "
                           f"columns are {', '.join(self._columns)}") from None

    def index(self, arch: str) -> int:
        """The benchmark index of `arch`."""
        return self._indices[self._row_of(arch)]

    def arch(self, index: int) -> str:
        """The architecture string with benchmark index `index`."""
        try:
            return self._archs[self._row_of_index[int(index)]]
        except KeyError:
            raise KeyError(f"no architecture with index {index} in ground truth {self._name!r}") from None

    def archs(self) -> list[str]:
        """All architecture strings in benchmark-index order."""
        return list(self._archs)

    def value(self, arch: str, column: str) -> float:
        return float(self._values[self._row_of(arch), self._col(column)])

    def values(self, archs: Iterable[str], column: str) -> np.ndarray:
        """float64 array of `column` for each of `archs`, in order; KeyError names the first unknown arch."""
        c = self._col(column)
        return self._values[[self._row_of(a) for a in archs], c].astype(np.float64)


def _parse_float(text: str, path, line: int, column: str) -> float:
    # Empty cells mean "not measured" (some benchmarks have gaps) and become NaN, which the rank metrics drop.
    if text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}, column {column!r}: expected a number, got {text!r}") from None


def load_table(path: str | os.PathLike, arch_column: str, index_column: str | None = None,
               name: str | None = None, columns: Sequence[str] | None = None) -> GroundTruth:
    """Read a CSV with a header row into a GroundTruth.

    `arch_column` holds the architecture strings; `index_column` (optional) the integer benchmark index, else the
    row order is the index. `columns` selects the metric columns (default: every other column, all of which must
    then be numeric). Empty cells read as NaN. Errors name the file, line and column.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"ground-truth table {path} not found")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header row with column {arch_column!r}")
        header = [h.strip() for h in header]
        required = [arch_column] + ([index_column] if index_column else []) + list(columns or [])
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}, line 1: missing column(s) {', '.join(missing)}; "
                             f"the header has {', '.join(header)}")
        keys = {arch_column, index_column}
        metric_cols = list(columns) if columns is not None else [h for h in header if h not in keys]
        pos = {h: i for i, h in enumerate(header)}
        archs, indices, rows = [], [], []
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                continue  # tolerate blank lines, e.g. a trailing newline
            line = reader.line_num
            if len(record) != len(header):
                raise ValueError(f"{path}, line {line}: {len(record)} fields, expected {len(header)} as in the header")
            archs.append(record[pos[arch_column]].strip())
            if index_column:
                text = record[pos[index_column]].strip()
                try:
                    indices.append(int(text))
                except ValueError:
                    raise ValueError(f"{path}, line {line}, column {index_column!r}: expected an integer index, "
                                     f"got {text!r}") from None
            else:
                indices.append(len(indices))
            rows.append([_parse_float(record[pos[c]], path, line, c) for c in metric_cols])
    values = np.asarray(rows, np.float64).reshape(len(rows), len(metric_cols))
    return GroundTruth(name or path.stem, archs, indices, metric_cols, values)


def nb201_path(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Where `load_nb201` reads from: `path` > $ZICO_JAX_NB201 > <data_dir>/nb201_accuracy/nb201_accuracy.csv."""
    if path is not None:
        return pathlib.Path(path).expanduser()
    if os.environ.get(NB201_ENV):
        return pathlib.Path(os.environ[NB201_ENV]).expanduser()
    return _data_dir(data_dir) / NB201_FILE


def load_nb201(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> GroundTruth:
    """NAS-Bench-201 / NATS-Bench-TSS ground truth (15,625 archs, columns NB201_COLUMNS), from CSV or official file."""
    p = nb201_path(path, data_dir)
    if not p.exists():
        raise DataNotFoundError(f"NAS-Bench-201 ground truth {p} not found; get it from {_NB201_ORIGIN}, then pass "
                                f"--groundtruth PATH or set {NB201_ENV}=PATH")
    if p.is_file() and p.suffix.lower() == ".csv":
        return load_table(p, arch_column="arch_str", index_column="idx", name="nb201", columns=NB201_COLUMNS)
    return _load_official(p)


def _load_official(path: pathlib.Path) -> GroundTruth:
    """Query every architecture of an official benchmark file through its API (slow: minutes; cache as CSV)."""
    if path.suffix.lower() == ".pth":
        # NAS-Bench-201 .pth files are torch pickles with a different layout, which nats_bench cannot read.
        try:
            from nas_201_api import NASBench201API
        except ImportError as e:
            raise ImportError(f"reading {path} needs the NAS-Bench-201 API: pip install nas-bench-201 torch") from e
        api = NASBench201API(str(path), verbose=False)
    else:
        try:
            from nats_bench import create
        except ImportError as e:
            raise ImportError(f"reading {path} needs the NATS-Bench API: pip install nats_bench") from e
        # nats_bench insists on fast_mode=True for an archive directory and fast_mode=False for a single file.
        api = create(str(path), "tss", fast_mode=path.is_dir(), verbose=False)
    archs, rows = [], []
    for i in range(len(api)):
        archs.append(api.arch(i))
        infos = {}  # one query per API dataset, shared by the columns that read it
        row = []
        for dataset, key in _OFFICIAL_QUERIES.values():
            if dataset not in infos:
                # hp="200": the full 200-epoch schedule; is_random=False averages the available seeds.
                infos[dataset] = api.get_more_info(i, dataset, hp="200", is_random=False)
            row.append(float(infos[dataset].get(key, math.nan)))
        rows.append(row)
    return GroundTruth("nb201", archs, list(range(len(archs))), NB201_COLUMNS, np.asarray(rows, np.float64))
