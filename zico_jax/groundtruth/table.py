"""A benchmark's ground truth as a table: architecture string -> (benchmark index, float metrics).

A `GroundTruth` is read-only: one row per architecture (its benchmark index and its canonical string, e.g. NB201's
`|nor_conv_3x3~0|+|...|`), one float column per metric. Correlation experiments look up the true accuracy of each
scored candidate with `values(archs, column)`. `load_table` is the generic CSV reader behind the loaders.

Example:
    >>> gt = GroundTruth("toy", ["a", "b"], [0, 1], ["acc"], [[90.0], [80.0]])
    >>> gt.value("b", "acc"), gt.index("a")
    (80.0, 0)
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
from typing import Iterable, Sequence

import numpy as np

from zico_jax.data import DataNotFoundError
from zico_jax.errors import InputError, UnknownNameError


class GroundTruth:
    """An immutable table arch string -> (benchmark index, float metrics), rows kept in benchmark-index order."""

    def __init__(self, name: str, archs: Sequence[str], indices: Sequence[int], columns: Sequence[str],
                 values: np.ndarray):
        values = np.asarray(values, np.float64)
        if values.shape != (len(archs), len(columns)) or len(indices) != len(archs):
            raise InputError(f"GroundTruth {name!r}: {len(archs)} archs and {len(indices)} indices do not match "
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
                raise InputError(f"GroundTruth {name!r}: duplicate {what} {dup!r}")

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
            raise UnknownNameError(f"architecture {arch!r} is not in ground truth {self._name!r}") from None

    def _col(self, column: str) -> int:
        try:
            return self._columns.index(column)
        except ValueError:
            raise UnknownNameError(f"unknown column {column!r} of ground truth {self._name!r}; "
                           f"columns are {', '.join(self._columns)}") from None

    def index(self, arch: str) -> int:
        """The benchmark index of `arch`."""
        return self._indices[self._row_of(arch)]

    def arch(self, index: int) -> str:
        """The architecture string with benchmark index `index`."""
        try:
            return self._archs[self._row_of_index[int(index)]]
        except KeyError:
            raise UnknownNameError(f"no architecture with index {index} in ground truth {self._name!r}") from None

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
        raise InputError(f"{path}, line {line}, column {column!r}: expected a number, got {text!r}") from None


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
            raise InputError(f"{path}: empty file, expected a header row with column {arch_column!r}")
        header = [h.strip() for h in header]
        required = [arch_column] + ([index_column] if index_column else []) + list(columns or [])
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(f"{path}, line 1: missing column(s) {', '.join(missing)}; "
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
                raise InputError(f"{path}, line {line}: {len(record)} fields, expected {len(header)} as in the header")
            archs.append(record[pos[arch_column]].strip())
            if index_column:
                text = record[pos[index_column]].strip()
                try:
                    indices.append(int(text))
                except ValueError:
                    raise InputError(f"{path}, line {line}, column {index_column!r}: expected an integer index, "
                                     f"got {text!r}") from None
            else:
                indices.append(len(indices))
            rows.append([_parse_float(record[pos[c]], path, line, c) for c in metric_cols])
    values = np.asarray(rows, np.float64).reshape(len(rows), len(metric_cols))
    return GroundTruth(name or path.stem, archs, indices, metric_cols, values)
