"""TransNAS-Bench-101 ground truth (micro and macro spaces), one task at a time.

`load_tnb101_micro(path=None, data_dir=None, task=...)` / `load_tnb101_macro(...)` (registered as the ground truth
of "transnas101_micro" / "transnas101_macro") read, in order of precedence:
  1. the `path` argument (the CLI's --groundtruth): the offline CSV or the official `transnas-bench_v10141024.pth`,
  2. the file named by $ZICO_JAX_TNB101_MICRO / $ZICO_JAX_TNB101_MACRO,
  3. `<data_dir>/nasbench_suite_zero_subsets/tnb101_{micro,macro}_accuracy_subset.csv` (see its SOURCE.md).
The CSV (columns task, naslib_op_indices, tnb_arch_str, val_metric) holds NAS-Bench-Suite-Zero's partial tables:
about 700 architectures per task. Rows of `task` become one column, "val_metric" (top-1 % for class_scene,
class_object and jigsaw; SSIM for autoencoder and normal; negative loss for room_layout; pixel accuracy % for
segmentsemantic), keyed by the canonical genotype string; the index is the row's position within the task.

The official file is read through the benchmark's own API (`from api import TransNASBenchAPI`, the `api` package of
yawen-d/TransNASBench, or NASLib's copy `naslib.search_spaces.transbench101.api`; both need torch), every
architecture of the space, the validation metric NASLib queries (valid_top1 / valid_neg_loss / valid_acc /
valid_ssim) at the final epoch (`mode="best"` for the best epoch).

Example:
    >>> gt = load_tnb101_micro(task="class_scene")
    >>> gt.value("64-41414-0_11_233", "val_metric")
    52.707008361816406
"""

from __future__ import annotations

import csv
import os
import pathlib

import numpy as np

from zico_jax.data import DataNotFoundError
from zico_jax.data import data_dir as _data_dir
from zico_jax.errors import GenotypeError, InputError
from zico_jax.groundtruth.registry import register_groundtruth
from zico_jax.groundtruth.table import GroundTruth
from zico_jax.spaces.transnas101 import TASKS, parse_macro, parse_micro

TNB101_ENV = {"micro": "ZICO_JAX_TNB101_MICRO", "macro": "ZICO_JAX_TNB101_MACRO"}
TNB101_FILE = {s: pathlib.Path("nasbench_suite_zero_subsets") / f"tnb101_{s}_accuracy_subset.csv" for s in TNB101_ENV}
TNB101_COLUMN = "val_metric"
_PARSE = {"micro": parse_micro, "macro": parse_macro}
# Validation metric per task in the official API (NASLib's Metric.VAL_ACCURACY mapping), with spelling fallbacks.
_OFFICIAL_METRIC = {
    "class_scene": ("valid_top1",), "class_object": ("valid_top1",), "jigsaw": ("valid_top1",),
    "room_layout": ("valid_neg_loss",), "segmentsemantic": ("valid_acc",),
    "autoencoder": ("valid_ssim", "val_ssim"), "normal": ("valid_ssim", "val_ssim"),
}


def tnb101_path(space: str, path=None, data_dir=None) -> pathlib.Path:
    """Where the loader of `space` ("micro" | "macro") reads: path > $ZICO_JAX_TNB101_<SPACE> > the data folder."""
    if path is not None:
        return pathlib.Path(path).expanduser()
    if os.environ.get(TNB101_ENV[space]):
        return pathlib.Path(os.environ[TNB101_ENV[space]]).expanduser()
    return _data_dir(data_dir) / TNB101_FILE[space]


def _check_task(task) -> str:
    if task is None:
        raise InputError(f"TransNAS-Bench-101 ground truth: pass task=, one of {', '.join(TASKS)}")
    if task not in TASKS:
        raise InputError(f"TransNAS-Bench-101 ground truth: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return task


def _load(space: str, path, data_dir, task, mode: str) -> GroundTruth:
    task = _check_task(task)
    p = tnb101_path(space, path, data_dir)
    if not p.exists():
        raise DataNotFoundError(
            f"TransNAS-Bench-101 {space} ground truth {p} not found; use the nasbench_suite_zero_subsets/ folder of "
            f"the zico-jax shared data or the official transnas-bench_v10141024.pth, via --groundtruth PATH or "
            f"{TNB101_ENV[space]}=PATH")
    if p.suffix.lower() == ".pth":
        return _load_official(space, p, task, mode)
    return _load_csv(space, p, task)


def _load_csv(space: str, path: pathlib.Path, task: str) -> GroundTruth:
    archs, values = [], []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("task", "tnb_arch_str", TNB101_COLUMN) if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}, line 1: missing column(s) {', '.join(missing)}; the header has "
                             f"{', '.join(reader.fieldnames or [])}")
        for row in reader:
            if row["task"].strip() != task:
                continue
            try:
                arch = str(_PARSE[space](row["tnb_arch_str"]))
            except GenotypeError as e:
                raise InputError(f"{path}, line {reader.line_num}: {e}") from None
            text = row[TNB101_COLUMN].strip()
            try:
                values.append(float(text) if text else np.nan)
            except ValueError:
                raise InputError(f"{path}, line {reader.line_num}, column {TNB101_COLUMN!r}: expected a number, "
                                 f"got {text!r}") from None
            archs.append(arch)
    if not archs:
        raise InputError(f"{path}: no rows for task {task!r}")
    return GroundTruth(f"tnb101_{space}_{task}", archs, list(range(len(archs))), [TNB101_COLUMN],
                       np.asarray(values, np.float64)[:, None])


def _load_official(space: str, path: pathlib.Path, task: str, mode: str) -> GroundTruth:
    """Every architecture of `space` in the official file, through the benchmark's API (needs torch)."""
    try:
        from api import TransNASBenchAPI
    except ImportError:
        try:
            from naslib.search_spaces.transbench101.api import TransNASBenchAPI
        except ImportError as e:
            raise ImportError(f"reading {path} needs the TransNAS-Bench-101 API: put the `api` package of "
                              f"github.com/yawen-d/TransNASBench on PYTHONPATH (or install NASLib), and torch") from e
    api = TransNASBenchAPI(str(path))
    metric = next((m for m in _OFFICIAL_METRIC[task] if m in api.metrics_dict[task]), None)
    if metric is None:
        raise InputError(f"{path}: none of {_OFFICIAL_METRIC[task]} among task {task!r}'s metrics "
                         f"{api.metrics_dict[task]}")
    archs = api.all_arch_dict[space]
    values = [float(api.get_single_metric(a, task, metric, mode=mode)) for a in archs]
    canonical = [str(_PARSE[space](a)) for a in archs]
    return GroundTruth(f"tnb101_{space}_{task}", canonical, [api.arch2index(a) for a in archs], [TNB101_COLUMN],
                       np.asarray(values, np.float64)[:, None])


@register_groundtruth("transnas101_micro")
def load_tnb101_micro(path=None, data_dir=None, task=None, mode: str = "final") -> GroundTruth:
    """TransNAS-Bench-101 micro ground truth of `task` (column "val_metric"), from CSV or the official file."""
    return _load("micro", path, data_dir, task, mode)


@register_groundtruth("transnas101_macro")
def load_tnb101_macro(path=None, data_dir=None, task=None, mode: str = "final") -> GroundTruth:
    """TransNAS-Bench-101 macro ground truth of `task` (column "val_metric"), from CSV or the official file."""
    return _load("macro", path, data_dir, task, mode)
