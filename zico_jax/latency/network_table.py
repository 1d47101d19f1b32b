"""Whole-network latency tables: canonical NAS-Bench-201 string -> latency (ms) per device (NaN = not measured)."""

from __future__ import annotations

import math
import pathlib
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from zico_jax.data import data_dir as _data_dir
from zico_jax.errors import InputError, UnknownNameError
from zico_jax.latency.schema import LatencyTableError, _cell_float, _cell_int, _read_csv
from zico_jax.spaces.nats_tss import parse_genotype as parse_nb201

NB201_ACCURACY_FILE = pathlib.Path("nb201_accuracy") / "nb201_accuracy.csv"


class NetworkLatencyTable:
    """Immutable table canonical arch string -> latency in ms per device (NaN = not measured)."""

    def __init__(self, name: str, archs: Sequence[str], devices: Sequence[str], values, source: str = "",
                 canonical: Optional[Callable[[Any], str]] = None):
        values = np.asarray(values, np.float64).reshape(len(archs), len(devices))
        self._name, self._source, self._canonical = name, source, canonical
        self._archs, self._devices = list(archs), tuple(devices)
        self._values = values
        self._values.setflags(write=False)
        self._row = {a: r for r, a in enumerate(self._archs)}
        if len(self._row) != len(self._archs):
            dup = next(a for r, a in enumerate(self._archs) if self._row[a] != r)
            raise InputError(f"latency table {name!r}: duplicate architecture {dup!r}")

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._archs)

    def __repr__(self) -> str:
        return f"NetworkLatencyTable({self._name!r}, {len(self)} archs, devices={list(self._devices)})"

    def __contains__(self, arch) -> bool:
        try:
            self._row_of(arch)
            return True
        except KeyError:
            return False

    def devices(self) -> list[str]:
        return list(self._devices)

    def archs(self) -> list[str]:
        return list(self._archs)

    def count(self, device: Optional[str] = None) -> int:
        """Number of archs measured on `device`."""
        return int(np.isfinite(self._values[:, self._col(device)]).sum())

    def select(self, devices: Sequence[str], name: Optional[str] = None) -> "NetworkLatencyTable":
        """The same archs with only `devices`' columns."""
        cols = [self._col(d) for d in devices]
        return NetworkLatencyTable(name or self._name, self._archs, [self._devices[c] for c in cols],
                                   self._values[:, cols], self._source, self._canonical)

    def _col(self, device: Optional[str]) -> int:
        if device is None:
            if len(self._devices) == 1:
                return 0
            raise UnknownNameError(f"latency table {self._name!r} has {len(self._devices)} devices; name one of "
                           f"{', '.join(self._devices)}")
        try:
            return self._devices.index(device)
        except ValueError:
            raise UnknownNameError(f"unknown device {device!r} of latency table {self._name!r}; valid devices: "
                           f"{', '.join(self._devices)}") from None

    def _row_of(self, arch) -> int:
        text = str(arch)
        if text in self._row:
            return self._row[text]
        if self._canonical is not None:  # accept any spelling the space parses, e.g. extra whitespace
            try:
                text = self._canonical(arch)
            except ValueError as e:
                raise UnknownNameError(f"architecture {arch!r} is not in latency table {self._name!r}: {e}") from None
            if text in self._row:
                return self._row[text]
        raise UnknownNameError(f"architecture {arch!r} is not in latency table {self._name!r}")

    def latency(self, arch, device: Optional[str] = None) -> float:
        """Latency in ms of `arch` (string or genotype) on `device` (may be omitted for a one-device table)."""
        c = self._col(device)
        value = float(self._values[self._row_of(arch), c])
        if math.isnan(value):
            raise UnknownNameError(f"architecture {str(arch)!r} was not measured on device {self._devices[c]!r} "
                                   f"in latency table {self._name!r} "
                                   f"({self.count(self._devices[c])} of {len(self)} archs were)")
        return value

    def values(self, archs: Iterable, device: Optional[str] = None) -> np.ndarray:
        """float64 latencies (ms) of `archs` on `device`; NaN where not measured; KeyError for an unknown arch."""
        c = self._col(device)
        return self._values[[self._row_of(a) for a in archs], c].astype(np.float64)


def nb201_canonical(arch) -> str:
    """The canonical NB201 string of `arch` (string or genotype), via the nats_tss space's parser."""
    return str(parse_nb201(str(arch)))


_INDEX_MAPS: dict[tuple, dict[int, str]] = {}


def nb201_index_map(data_dir=None) -> dict[int, str]:
    """NB201 benchmark index -> canonical arch string, from <data_dir>/nb201_accuracy/nb201_accuracy.csv."""
    path = _data_dir(data_dir) / NB201_ACCURACY_FILE
    cache_key = (str(path), path.stat().st_mtime if path.is_file() else None)
    if cache_key not in _INDEX_MAPS:
        header, rows = _read_csv(path, "NAS-Bench-201 index table (idx -> arch_str)")
        missing = [c for c in ("idx", "arch_str") if c not in header]
        if missing:
            raise LatencyTableError(f"{path}, line 1: missing column(s) {', '.join(missing)}")
        mapping = {}
        for line, row in rows:
            mapping[_cell_int(row["idx"], path, line, "idx")] = nb201_canonical(row["arch_str"].strip())
        _INDEX_MAPS[cache_key] = mapping
    return _INDEX_MAPS[cache_key]


def load_network_table(path, name: Optional[str] = None, devices: Optional[Sequence[str]] = None,
                       data_dir=None, require_all: bool = False) -> NetworkLatencyTable:
    """Read a whole-network NB201 latency CSV (ms): an `idx` (NB201 index) or `arch_str` column, then one column per
    device. `devices` (optional) are the allowed device columns: any other column is an error, and with
    `require_all` so is a missing one. Empty cells = not
    measured (NaN). `data_dir` locates nb201_accuracy.csv for `idx` keys."""
    path = pathlib.Path(path)
    header, rows = _read_csv(path, "latency table")
    key_col = "arch_str" if "arch_str" in header else "idx" if "idx" in header else None
    if key_col is None:
        raise LatencyTableError(f"{path}, line 1: missing column 'idx' (NB201 index) or 'arch_str'; the header has "
                                f"{', '.join(header)}")
    device_cols = [h for h in header if h not in ("idx", "arch_str")]
    if not device_cols:
        raise LatencyTableError(f"{path}, line 1: no device columns after {key_col!r}")
    if devices is not None:
        unknown = [h for h in device_cols if h not in devices]
        if unknown:
            raise LatencyTableError(f"{path}, line 1, column {unknown[0]!r}: unknown device; expected one of "
                                    f"{', '.join(devices)}")
        missing = [d for d in devices if d not in device_cols]
        if missing and require_all:
            raise LatencyTableError(f"{path}, line 1: missing device column(s) {', '.join(missing)}")
    index_map = nb201_index_map(data_dir) if key_col == "idx" else None
    archs, values, first_line = [], [], {}
    for line, row in rows:
        if index_map is not None:
            idx = _cell_int(row["idx"], path, line, "idx")
            if idx not in index_map:
                raise LatencyTableError(f"{path}, line {line}, column 'idx': NB201 index {idx} is not in 0..15624")
            arch = index_map[idx]
        else:
            try:
                arch = nb201_canonical(row["arch_str"].strip())
            except ValueError as e:
                raise LatencyTableError(f"{path}, line {line}, column 'arch_str': {e}") from None
        if arch in first_line:
            raise LatencyTableError(f"{path}, line {line}, column {key_col!r}: duplicate architecture {arch!r} "
                                    f"(first on line {first_line[arch]})")
        first_line[arch] = line
        archs.append(arch)
        values.append([_cell_float(row[d], path, line, d, allow_empty=True) for d in device_cols])
    return NetworkLatencyTable(name or path.stem, archs, device_cols, values, str(path), nb201_canonical)
