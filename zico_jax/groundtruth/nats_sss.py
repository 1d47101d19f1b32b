"""NATS-Bench size search space (SSS) ground truth, read from the official benchmark file.

No offline table ships with zico-jax for SSS: the 32,768 architectures' results come from the official NATS-Bench
release, read through its own package (`pip install nats_bench`), from, in order of precedence:
  1. the `path` argument (the CLI's --groundtruth),
  2. the path named by $ZICO_JAX_NATS_SSS,
  3. `<data_dir>/nats_sss/` (see `zico_jax.data.data_dir`).
A path may be the archive directory NATS-sss-v1_0-50262-simple (read with fast_mode=True), the single file
NATS-sss-v1_0-50262.pickle.pbz2 (fast_mode=False), a folder holding either, or a CSV dump with the columns
idx, arch_str and SSS_COLUMNS (e.g. a cache of an earlier read; reading the official file queries every
architecture and takes minutes).

Columns (accuracies in %, averaged over the available seeds, the 90-epoch schedule hp="90" that the NATS-Bench
paper reports for SSS) have the names of the NAS-Bench-201 table: cifar10_test, cifar100_test,
imagenet16_120_test, cifar10valid_valid, cifar10valid_test. Architectures are keyed by the official string,
e.g. '64:64:64:64:64' (the canonical form of `zico_jax.spaces.nats_sss`).

Example:
    >>> gt = load_nats_sss("/data/NATS-sss-v1_0-50262-simple")
    >>> gt.value("64:64:64:64:64", "cifar10_test")
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

SSS_ENV = "ZICO_JAX_NATS_SSS"
SSS_FOLDER = "nats_sss"
SSS_ARCHIVE = "NATS-sss-v1_0-50262-simple"
SSS_FILE = "NATS-sss-v1_0-50262.pickle.pbz2"
SSS_HP = "90"
SSS_COLUMNS = ("cifar10_test", "cifar100_test", "imagenet16_120_test", "cifar10valid_valid", "cifar10valid_test")
_HOW_TO_GET = (f"zico-jax ships no offline table for NATS-Bench SSS. Download the official size benchmark "
               f"({SSS_ARCHIVE}.tar, linked from https://github.com/D-X-Y/NATS-Bench), extract it, install its "
               f"reader (pip install nats_bench), then pass --groundtruth PATH, set {SSS_ENV}=PATH, or put it in "
               f"<data_dir>/{SSS_FOLDER}/")

# Official API queries behind each column: (dataset name in the API, key of get_more_info's dict).
_OFFICIAL_QUERIES = {
    "cifar10_test": ("cifar10", "test-accuracy"),
    "cifar100_test": ("cifar100", "test-accuracy"),
    "imagenet16_120_test": ("ImageNet16-120", "test-accuracy"),
    "cifar10valid_valid": ("cifar10-valid", "valid-accuracy"),
    "cifar10valid_test": ("cifar10-valid", "test-accuracy"),
}


def nats_sss_path(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Where `load_nats_sss` looks: `path` > $ZICO_JAX_NATS_SSS > <data_dir>/nats_sss/ (not resolved further)."""
    if path is not None:
        return pathlib.Path(path).expanduser()
    if os.environ.get(SSS_ENV):
        return pathlib.Path(os.environ[SSS_ENV]).expanduser()
    return _data_dir(data_dir) / SSS_FOLDER


def _official_file(p: pathlib.Path) -> pathlib.Path | None:
    """The benchmark file or archive at or directly inside `p`, or None."""
    if p.is_file():
        return p
    if not p.is_dir():
        return None
    if (p / "meta.pickle.pbz2").exists() or p.name.endswith("-simple"):
        return p  # the archive directory itself
    for name in (SSS_ARCHIVE, SSS_FILE):
        if (p / name).exists():
            return p / name
    return None


@register_groundtruth("nats_sss")
def load_nats_sss(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
                  hp: str = SSS_HP) -> GroundTruth:
    """NATS-Bench SSS ground truth (32,768 archs, columns SSS_COLUMNS) from the official file or a CSV dump.

    `hp`: the training schedule to read ("01", "12" or "90" epochs; default "90", the paper's)."""
    try:
        where = nats_sss_path(path, data_dir)
    except DataNotFoundError as e:  # no data folder at all
        raise DataNotFoundError(f"NATS-Bench SSS ground truth: {e}. {_HOW_TO_GET}") from None
    found = _official_file(where)
    if found is None:
        raise DataNotFoundError(f"NATS-Bench SSS ground truth: nothing at {where} (looked for {SSS_ARCHIVE}/ or "
                                f"{SSS_FILE} there). {_HOW_TO_GET}")
    if found.is_file() and found.suffix.lower() == ".csv":
        return load_table(found, arch_column="arch_str", index_column="idx", name="nats_sss", columns=SSS_COLUMNS)
    return _load_official(found, str(hp))


def _load_official(path: pathlib.Path, hp: str) -> GroundTruth:
    """Query every architecture through the official API (slow: minutes)."""
    try:
        from nats_bench import create
    except ImportError as e:
        raise ImportError(f"reading {path} needs the NATS-Bench API: pip install nats_bench") from e
    # nats_bench insists on fast_mode=True for an archive directory and fast_mode=False for a single file.
    api = create(str(path), "sss", fast_mode=path.is_dir(), verbose=False)
    archs, rows = [], []
    for i in range(len(api)):
        archs.append(api.arch(i))
        infos = {}  # one query per API dataset, shared by the columns that read it
        row = []
        for dataset, key in _OFFICIAL_QUERIES.values():
            if dataset not in infos:
                # is_random=False averages the available seeds.
                infos[dataset] = api.get_more_info(i, dataset, hp=hp, is_random=False)
            row.append(float(infos[dataset].get(key, math.nan)))
        rows.append(row)
    return GroundTruth("nats_sss", archs, list(range(len(archs))), SSS_COLUMNS, np.asarray(rows, np.float64))
