"""NAS-Bench-201 / NATS-Bench-TSS ground truth.

NAS-Bench-201 / NATS-Bench-TSS (`load_nb201`) is read from, in order of precedence:
  1. the `path` argument (the CLI's --groundtruth),
  2. the file named by $ZICO_JAX_NB201,
  3. `<data_dir>/nb201_accuracy/nb201_accuracy.csv` (see `zico_jax.data.data_dir`).
The CSV (columns idx, arch_str, cifar10_test, cifar100_test, imagenet16_120_test, cifar10valid_valid,
cifar10valid_test; accuracies in %, averaged over seeds, 200-epoch schedule) is a dump of the official benchmark.
The official files can be read too, through their own packages, giving the same columns:
  * NATS-Bench-TSS archive directory (NATS-tss-v1_0-3ffb9-simple) or .pickle.pbz2 file: `pip install nats_bench`;
  * NAS-Bench-201 .pth file (NAS-Bench-201-v1_1-096897.pth): `pip install nas-bench-201` (needs torch).

Example:
    >>> gt = load_nb201()
    >>> len(gt), gt.columns[:2]
    (15625, ('cifar10_test', 'cifar100_test'))
    >>> gt.value(gt.arch(0), "cifar10_test")
    85.8633
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np

from zico_jax.data import DataNotFoundError
from zico_jax.data import data_dir as _data_dir
from zico_jax.groundtruth.registry import register_groundtruth
from zico_jax.groundtruth.table import GroundTruth, load_table

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


def nb201_path(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Where `load_nb201` reads from: `path` > $ZICO_JAX_NB201 > <data_dir>/nb201_accuracy/nb201_accuracy.csv."""
    if path is not None:
        return pathlib.Path(path).expanduser()
    if os.environ.get(NB201_ENV):
        return pathlib.Path(os.environ[NB201_ENV]).expanduser()
    return _data_dir(data_dir) / NB201_FILE


@register_groundtruth("nats_tss")
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
