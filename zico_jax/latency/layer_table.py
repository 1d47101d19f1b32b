"""Per-layer latency lookup tables (a network's latency = the sum of its layers' entries), their two CSV schemas,
and the export of a space's distinct layers for measuring on a device."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import math
import pathlib
from typing import Iterable, Optional

from zico_jax import storage
from zico_jax.errors import InputError, UnknownNameError
from zico_jax.latency.schema import (
    LAYER_FIELDS,
    LAYER_OPS,
    LatencyTableError,
    LayerKey,
    MissingLayerError,
    _cell_float,
    _cell_int,
    _read_csv,
    layer_keys,
)


class LayerLatencyTable:
    """Immutable per-layer lookup table: (resolution, LayerKey) -> latency in ms. `resolution` is the network input
    size the layer was measured in (None when the table does not say)."""

    def __init__(self, name: str, entries: Iterable[tuple[Optional[int], LayerKey, float]], source: str = ""):
        self._name, self._source = name, source
        self._entries: dict[tuple[Optional[int], LayerKey], float] = {}
        for resolution, key, ms in entries:
            if (resolution, key) in self._entries:
                raise InputError(f"layer table {name!r}: duplicate layer {key} at resolution {resolution}")
            self._entries[(resolution, key)] = float(ms)
        self._default_resolution, self._default_predictor = None, None

    def configured(self, resolution=None, predictor=None) -> "LayerLatencyTable":
        """This table with a default `resolution` (for a table measured at several, e.g. OFA's 160..224) and a
        default `predictor` for the layers it lacks, used by `network_latency` / `breakdown` when they are not
        given: what a search's latency budget needs, as it only passes the layers.

        Example: `get_latency_table("note10_lut").configured(224, fit_predictor(lut))`."""
        table = copy.copy(self)
        if resolution is not None:
            table._default_resolution = self._resolution(resolution)
        if predictor is not None:
            table._default_predictor = predictor
        return table

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"LayerLatencyTable({self._name!r}, {len(self)} rows, resolutions={self.resolutions()})"

    def resolutions(self) -> list:
        return sorted({r for r, _ in self._entries}, key=lambda r: (r is None, r or 0))

    def items(self) -> list[tuple[Optional[int], LayerKey, float]]:
        """Every row as (resolution, key, ms), in file order."""
        return [(r, k, ms) for (r, k), ms in self._entries.items()]

    def keys(self, resolution=None) -> list[LayerKey]:
        r = self._resolution(resolution)
        return [k for (rr, k) in self._entries if rr == r]

    def at_resolution(self, resolution) -> "LayerLatencyTable":
        r = self._resolution(resolution)
        return LayerLatencyTable(f"{self._name}@{r}", [(rr, k, ms) for (rr, k), ms in self._entries.items() if rr == r],
                                 self._source)

    def _resolution(self, resolution):
        have = self.resolutions()
        if resolution is None:
            resolution = self._default_resolution
        if resolution is None:
            if len(have) == 1:
                return have[0]
            raise InputError(f"layer table {self._name!r} holds layers measured at resolutions "
                             f"{', '.join(map(str, have))}; pass resolution= (or set one with configured())")
        if resolution not in have:
            raise UnknownNameError(f"layer table {self._name!r} has no resolution {resolution!r}; it has "
                           f"{', '.join(map(str, have))}")
        return resolution

    def latency(self, layer, resolution=None) -> float:
        key = LayerKey.from_layer(layer)
        r = self._resolution(resolution)
        try:
            return self._entries[(r, key)]
        except KeyError:
            raise MissingLayerError(f"layer {key} is not in layer table {self._name!r} (resolution {r})") from None

    def breakdown(self, layers: Iterable, resolution=None, predictor=None) -> list[tuple[LayerKey, float, str]]:
        """(key, ms, "table" | "predicted") per layer. Layers the table lacks are estimated by `predictor` (e.g.
        `zico_jax.latency.predictor.fit_predictor(table)`), else MissingLayerError names the first missing one.
        Unset arguments take the table's defaults (`configured`)."""
        r = self._resolution(resolution)
        predictor = self._default_predictor if predictor is None else predictor
        out, missing = [], []
        for layer in layers:
            key = LayerKey.from_layer(layer)
            ms = self._entries.get((r, key))
            if ms is not None:
                out.append((key, ms, "table"))
            elif predictor is not None:
                out.append((key, float(predictor.predict(key)), "predicted"))
            else:
                missing.append(key)
                out.append((key, math.nan, "missing"))
        if missing:
            distinct = len(set(missing))
            raise MissingLayerError(f"{len(missing)} of {len(out)} layers ({distinct} distinct) are not in layer table "
                                    f"{self._name!r} (resolution {r}); first missing: {missing[0]}; measure them "
                                    "(export_layer_list) or pass predictor=fit_predictor(table)")
        return out

    def network_latency(self, layers: Iterable, resolution=None, predictor=None) -> float:
        """Sum of the per-layer latencies (ms) of `layers` (LayerKeys or LayerInfo-like), see `breakdown`."""
        return float(sum(ms for _, ms, _ in self.breakdown(layers, resolution, predictor)))


_OFA_REQUIRED = ("layer_type", "input", "output", "mean_ms")
_OFA_OPTIONAL = ("resolution", "expand", "kernel", "stride", "idskip", "se", "hs", "count", "std_ms", "key")
_KEY_REQUIRED = LAYER_FIELDS[:7] + ("latency_ms",)
_KEY_OPTIONAL = LAYER_FIELDS[7:] + ("resolution",)


def _shape(text: str, path, line: int, column: str, logits: bool = False) -> tuple[int, int, int]:
    parts = text.strip().split("x")
    if logits and len(parts) == 1:
        parts = ["1", "1"] + parts  # OFA writes the classifier's output as just the class count
    if len(parts) != 3:
        raise LatencyTableError(f"{path}, line {line}, column {column!r}: expected HxWxC, got {text!r}")
    return tuple(_cell_int(p, path, line, column) for p in parts)  # type: ignore[return-value]


def load_layer_table(path, name: Optional[str] = None) -> LayerLatencyTable:
    """Read a per-layer latency CSV in either schema (chosen by the header):

    * OFA's (as in ofa_note10_lut.csv): layer_type, input (HxWxC), output (HxWxC, or the class count for Logits),
      mean_ms, optional resolution, expand, kernel, stride, idskip, se, hs, count, std_ms, key (checked against the
      other columns when present);
    * `export_layer_list`'s: the LayerKey fields (op .. out_channels required, the rest default) and latency_ms,
      optional resolution.
    Latencies must be non-negative numbers; a (resolution, layer) pair may appear once; unknown columns and ops are
    errors (a misspelt column would otherwise be silently ignored).
    """
    path = pathlib.Path(path)
    header, rows = _read_csv(path, "layer latency table")
    ofa = "layer_type" in header
    required, optional = (_OFA_REQUIRED, _OFA_OPTIONAL) if ofa else (_KEY_REQUIRED, _KEY_OPTIONAL)
    missing = [c for c in required if c not in header]
    if missing:
        raise LatencyTableError(f"{path}, line 1: missing column(s) {', '.join(missing)}; expected "
                                f"{', '.join(required)} (optional: {', '.join(optional)}); the header has "
                                f"{', '.join(header)}")
    unknown = [h for h in header if h not in required and h not in optional]
    if unknown:
        raise LatencyTableError(f"{path}, line 1, column {unknown[0]!r}: unknown column; expected "
                                f"{', '.join(required + optional)}")
    entries, first_line = [], {}
    for line, row in rows:
        op_col = "layer_type" if ofa else "op"
        op = row[op_col].strip()
        if op not in LAYER_OPS:
            raise LatencyTableError(f"{path}, line {line}, column {op_col!r}: unknown layer type {op!r}; expected one "
                                    f"of {', '.join(LAYER_OPS)}")
        res = _cell_int(row["resolution"], path, line, "resolution") if row.get("resolution", "").strip() else None
        if ofa:
            ih, iw, ic = _shape(row["input"], path, line, "input")
            oh, ow, oc = _shape(row["output"], path, line, "output", logits=op == "Logits")
            opt = {c: _cell_int(row.get(c, ""), path, line, c, default=0) for c in ("kernel", "stride", "expand",
                                                                                     "idskip", "se", "hs")}
            key = LayerKey(op, ih, iw, ic, oh, ow, oc, opt["kernel"], opt["stride"], 1, opt["expand"], opt["idskip"],
                           opt["se"], opt["hs"])
            if row.get("key", "").strip() and row["key"].strip() != key.ofa_key():
                raise LatencyTableError(f"{path}, line {line}, column 'key': {row['key'].strip()!r} does not match "
                                        f"the row's other columns ({key.ofa_key()!r})")
            ms = _cell_float(row["mean_ms"], path, line, "mean_ms", allow_empty=False)
        else:
            defaults = {f.name: f.default for f in dataclasses.fields(LayerKey)[7:]}
            ints = [_cell_int(row.get(c, ""), path, line, c, default=defaults.get(c)) for c in LAYER_FIELDS[1:]]
            key = LayerKey(op, *ints)
            ms = _cell_float(row["latency_ms"], path, line, "latency_ms", allow_empty=False)
        if (res, key) in first_line:
            raise LatencyTableError(f"{path}, line {line}: duplicate layer {key} at resolution {res} (first on line "
                                    f"{first_line[(res, key)]})")
        first_line[(res, key)] = line
        entries.append((res, key, ms))
    return LayerLatencyTable(name or path.stem, entries, str(path))


def export_layer_list(space, genotypes: Iterable, path, resolution: Optional[int] = None) -> list[LayerKey]:
    """Write the distinct layers of `genotypes` (in order of first appearance) as a CSV to measure on a device:
    the LayerKey fields, `resolution` if given, and an empty `latency_ms` column to fill in (ms, batch 1). Read it
    back with `load_layer_table`. Returns the keys written."""
    keys: dict[LayerKey, None] = {}
    for g in genotypes:
        for key in layer_keys(space, g):
            keys.setdefault(key, None)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(LAYER_FIELDS + (("resolution",) if resolution is not None else ()) + ("latency_ms",))
    for key in keys:
        writer.writerow([getattr(key, c) for c in LAYER_FIELDS] + ([resolution] if resolution is not None else [])
                        + [""])
    storage.write_text(path, text.getvalue())  # local or in a bucket
    return list(keys)
