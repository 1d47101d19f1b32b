"""The schema shared by latency tables: layer keys (what identifies a layer for latency), their work and
memory traffic, and the validated CSV reading every loader uses (errors name file, line and column)."""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
from typing import Optional

from zico_jax.data import DataNotFoundError
from zico_jax.errors import InputError, ZicoError

LAYER_OPS = ("conv", "dense", "Conv", "expanded_conv", "Conv_1", "AvgPool2D", "Conv_2", "Logits")
# OFA keys give no kernel for the non-block layers; OFA MobileNetV3 uses a 3x3 stem and 1x1 convs elsewhere.
_DEFAULT_KERNEL = {"Conv": 3, "Conv_1": 1, "Conv_2": 1, "Logits": 1, "dense": 1}


class LatencyTableError(InputError):
    """A latency table file that does not follow its schema; the message names file, line and column."""


class MissingLayerError(ZicoError, KeyError):
    """Layers of a network that a per-layer table lacks (and no predictor was given)."""

    __str__ = Exception.__str__  # KeyError would quote the message


@dataclasses.dataclass(frozen=True, order=True)
class LayerKey:
    """What identifies a layer for latency. Fields that do not apply are 0 (kernel/stride of OFA's non-block layers,
    which its keys leave out; expand/idskip/se/hs outside OFA's `expanded_conv`). `expand` is the mid (expanded)
    channel count, not the ratio, as in OFA's keys."""

    op: str
    in_h: int
    in_w: int
    in_channels: int
    out_h: int
    out_w: int
    out_channels: int
    kernel: int = 0
    stride: int = 0
    groups: int = 1
    expand: int = 0
    idskip: int = 0
    se: int = 0
    hs: int = 0

    @classmethod
    def from_layer(cls, layer) -> "LayerKey":
        """A LayerKey as is, or the key of a `LayerInfo`-like layer (kind, channels, hw, kernel, stride, groups)."""
        if isinstance(layer, LayerKey):
            return layer
        try:
            return cls(layer.kind, int(layer.in_hw[0]), int(layer.in_hw[1]), int(layer.in_channels),
                       int(layer.out_hw[0]), int(layer.out_hw[1]), int(layer.out_channels), int(layer.kernel_size),
                       int(layer.stride), int(getattr(layer, "groups", 1)))
        except AttributeError as e:
            raise TypeError(f"expected a LayerKey or a LayerInfo-like layer, got {layer!r} ({e})") from None

    def __str__(self) -> str:
        text = (f"{self.op} {self.in_h}x{self.in_w}x{self.in_channels}->{self.out_h}x{self.out_w}x{self.out_channels}"
                f" k{self.kernel} s{self.stride}")
        if self.groups != 1:
            text += f" g{self.groups}"
        if self.op == "expanded_conv":
            text += f" expand{self.expand} idskip{self.idskip} se{self.se} hs{self.hs}"
        return text

    def ofa_key(self) -> str:
        """The key OFA's YAML tables use for this layer (e.g. `Conv-input:160x160x3-output:80x80x24`)."""
        key = f"{self.op}-input:{self.in_h}x{self.in_w}x{self.in_channels}-output:"
        key += str(self.out_channels) if self.op == "Logits" else f"{self.out_h}x{self.out_w}x{self.out_channels}"
        if self.op == "expanded_conv":
            key += (f"-expand:{self.expand}-kernel:{self.kernel}-stride:{self.stride}-idskip:{self.idskip}"
                    f"-se:{self.se}-hs:{self.hs}")
        return key

    # -- work and memory traffic, the predictor's features (see zico_jax.latency.predictor)
    @property
    def _kernel(self) -> int:
        return self.kernel or _DEFAULT_KERNEL.get(self.op, 1)

    def _parts(self) -> tuple[int, int, int]:
        """(MACs, weight elements, intermediate activation elements)."""
        hw_in, hw_out = self.in_h * self.in_w, self.out_h * self.out_w
        cin, cout, k = self.in_channels, self.out_channels, self._kernel
        if self.op == "AvgPool2D":
            return hw_in * cin, 0, 0  # one add per input element
        if self.op in ("dense", "Logits"):
            w = hw_in * cin * cout
            return w, w, 0
        if self.op == "expanded_conv":
            # MBConv: 1x1 expand (absent when mid == in, OFA's expand-ratio-1 block) -> kxk depthwise (stride) ->
            # squeeze-excite on the pooled vector (reduction 4) -> 1x1 project.
            mid = self.expand or cin
            w_expand = cin * mid if mid != cin else 0
            w_se = 2 * mid * (mid // 4) if self.se else 0
            w = w_expand + k * k * mid + w_se + mid * cout
            se_pool = mid * hw_out if self.se else 0
            macs = w_expand * hw_in + k * k * mid * hw_out + se_pool + w_se + mid * cout * hw_out
            return macs, w, (mid * hw_in if w_expand else 0) + mid * hw_out
        w = k * k * cin // max(self.groups, 1) * cout  # plain conv
        return w * hw_out, w, 0

    @property
    def macs(self) -> int:
        """Multiply-accumulates for one image (for pooling: additions)."""
        return self._parts()[0]

    @property
    def memory_elements(self) -> int:
        """Tensor elements read or written once: input + output + weights (+ MBConv's expanded intermediates)."""
        _, weights, mid = self._parts()
        return self.in_h * self.in_w * self.in_channels + self.out_h * self.out_w * self.out_channels + weights + mid


LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(LayerKey))


def layer_keys(space, genotype) -> list[LayerKey]:
    """The LayerKeys of `space.layers(genotype)`, in forward order (one per layer, repeats kept)."""
    return [LayerKey.from_layer(layer) for layer in space.layers(genotype)]


def _cell_float(text: str, path, line: int, column: str, allow_empty: bool) -> float:
    text = text.strip()
    if text == "":
        if allow_empty:
            return math.nan  # not measured on this device
        raise LatencyTableError(f"{path}, line {line}, column {column!r}: empty cell, expected a latency in ms")
    try:
        value = float(text)
    except ValueError:
        raise LatencyTableError(f"{path}, line {line}, column {column!r}: expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise LatencyTableError(f"{path}, line {line}, column {column!r}: expected a finite non-negative number, "
                                f"got {text!r}")
    return value


def _cell_int(text: str, path, line: int, column: str, default: Optional[int] = None) -> int:
    text = text.strip()
    if text == "" and default is not None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise LatencyTableError(f"{path}, line {line}, column {column!r}: expected an integer, got {text!r}") from None
    if value < 0:
        raise LatencyTableError(f"{path}, line {line}, column {column!r}: expected a non-negative integer, "
                                f"got {text!r}")
    return value


def _read_csv(path: pathlib.Path, what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line number, {column: cell})]) of a CSV, blank lines skipped; errors name the file and line."""
    if not path.is_file():
        raise DataNotFoundError(f"{what} {path} not found")
    with path.open(newline="") as f:  # the tables are a few MB at most: read them whole
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise LatencyTableError(f"{path}: empty file, expected a header row")
        rows = []
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise LatencyTableError(f"{path}, line {reader.line_num}: {len(record)} fields, expected "
                                        f"{len(header)} as in the header")
            rows.append((reader.line_num, dict(zip(header, record))))
    return header, rows
