"""A linear latency predictor for layers a per-layer table does not contain.

Model (one per table, all layer types together):

    latency_ms ~= a * MMACs + b * Melements + c

where MMACs = `LayerKey.macs` / 1e6 (multiply-accumulates for one image: the compute term) and Melements =
`LayerKey.memory_elements` / 1e6 (input + output + weight elements, plus an MBConv block's expanded intermediates:
the memory-traffic term, elements rather than bytes because the precision is unknown and constant within a table).
c is a per-layer fixed cost (kernel launch, op dispatch). a, b, c are fitted by least squares
(`numpy.linalg.lstsq`) on every row of the table, all resolutions together. Predictions are clipped at 0.

Fit quality (`LinearLatencyPredictor.r2`, `.mape`): R^2 and mean absolute percentage error on the table itself;
`.cv_r2`, `.cv_mape`: the same on held-out rows of a k-fold split. Folds are drawn over distinct LayerKeys, so a
layer measured at several resolutions is never both in training and test (that would flatter the held-out error).

The model is a first-order roofline-style estimate: it knows nothing of the op type beyond its work and traffic,
so expect ~15% errors on layers like the table's (Note10: R^2 0.90, MAPE 16%, the same held out) and larger
ones far outside it. E.g. fitted on the Note10 table of MobileNetV3 blocks and summed over NAS-Bench-201's
conv/dense layers, it ranks NB201 archs with Spearman 0.54 / 0.73 / 0.44 against the measured Snapdragon 855
CPU / GPU / DSP latencies and is ~8x below them in absolute terms (NB201's small layers hit the clip at 0, and its
pooling, skip and add ops are not layers here): use it to fill a few gaps, not to replace measurements.

Example:
    >>> from zico_jax.spaces import get_space
    >>> from zico_jax.latency import get_latency_table, layer_keys
    >>> lut = get_latency_table("note10_lut")
    >>> pred = fit_predictor(lut)
    >>> print(pred.report())
    latency_ms ~= 0.09697 * MMACs + 0.1662 * Melements + -0.16  (fitted on 1632 rows of 'note10_lut': R^2 0.901, ...
    >>> space = get_space("nats_tss")
    >>> keys = layer_keys(space, space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
    ...                                      "nor_conv_3x3~1|nor_conv_3x3~2|"))
    >>> lut.network_latency(keys, resolution=224, predictor=pred)   # every NB201 layer is predicted here
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from zico_jax.errors import InputError
from zico_jax.latency.layer_table import LayerLatencyTable
from zico_jax.latency.schema import LayerKey


def layer_features(layers: Iterable) -> np.ndarray:
    """(n, 3) float64 design matrix [MMACs, Melements, 1] of `layers` (LayerKeys or LayerInfo-like)."""
    keys = [LayerKey.from_layer(layer) for layer in layers]
    # Millions keep the columns near the scale of the latencies (ms), so the least-squares problem is well scaled.
    return np.array([[k.macs / 1e6, k.memory_elements / 1e6, 1.0] for k in keys], np.float64).reshape(len(keys), 3)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")


def _mape(y: np.ndarray, pred: np.ndarray) -> float:
    ok = y > 0  # a 0 ms entry has no percentage error
    return float(np.mean(np.abs(pred[ok] - y[ok]) / y[ok]) * 100) if ok.any() else float("nan")


@dataclasses.dataclass(frozen=True)
class LinearLatencyPredictor:
    """latency_ms = ms_per_mmac * MMACs + ms_per_melement * Melements + ms_per_layer (clipped at 0)."""

    ms_per_mmac: float
    ms_per_melement: float
    ms_per_layer: float
    table: str  # the name of the table it was fitted on
    n_rows: int
    r2: float  # on the fitted rows
    mape: float  # %, on the fitted rows
    cv_r2: float  # on held-out rows, k-fold over distinct layers
    cv_mape: float  # %, ditto
    folds: int

    @property
    def coef(self) -> np.ndarray:
        return np.array([self.ms_per_mmac, self.ms_per_melement, self.ms_per_layer])

    def predict_many(self, layers: Iterable) -> np.ndarray:
        return np.maximum(layer_features(layers) @ self.coef, 0.0)

    def predict(self, layer) -> float:
        """Estimated latency in ms of one layer (LayerKey or LayerInfo-like)."""
        return float(self.predict_many([layer])[0])

    def report(self) -> str:
        return (f"latency_ms ~= {self.ms_per_mmac:.4g} * MMACs + {self.ms_per_melement:.4g} * Melements + "
                f"{self.ms_per_layer:.4g}  (fitted on {self.n_rows} rows of {self.table!r}: R^2 {self.r2:.3f}, "
                f"MAPE {self.mape:.1f}%; {self.folds}-fold held-out: R^2 {self.cv_r2:.3f}, MAPE {self.cv_mape:.1f}%)")


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, y, rcond=None)[0]


def fit_predictor(table: LayerLatencyTable, folds: int = 5, seed: int = 0) -> LinearLatencyPredictor:
    """Least-squares fit of the linear model on every row of `table`, with its in-sample and k-fold held-out error."""
    rows = table.items()
    if len(rows) < 4:
        raise InputError(f"layer table {table.name!r} has {len(rows)} rows; fitting 3 coefficients needs at least 4")
    keys = [k for _, k, _ in rows]
    x = layer_features(keys)
    y = np.array([ms for _, _, ms in rows], np.float64)
    coef = _lstsq(x, y)
    fitted = np.maximum(x @ coef, 0.0)

    # k-fold over distinct layers: every row of one layer lands in the same fold.
    distinct = sorted(set(keys))
    folds = max(2, min(folds, len(distinct)))
    fold_of_key = dict(zip(distinct, np.random.default_rng(seed).permutation(len(distinct)) % folds))
    fold = np.array([fold_of_key[k] for k in keys])
    held_out = np.empty_like(y)
    for f in range(folds):
        test = fold == f
        held_out[test] = np.maximum(x[test] @ _lstsq(x[~test], y[~test]), 0.0)
    return LinearLatencyPredictor(float(coef[0]), float(coef[1]), float(coef[2]), table.name, len(rows),
                                  _r2(y, fitted), _mape(y, fitted), _r2(y, held_out), _mape(y, held_out), folds)
