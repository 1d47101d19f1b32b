"""NAS-Bench-Suite-Zero interop: read and write NASLib's zero-cost benchmark files `zc_<space>.json`.

NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks) ships precomputed zero-cost
scores as one JSON file per search space (`zc_nasbench201.json` for NAS-Bench-201), loaded by NASLib's
`naslib/utils/get_dataset_api.py:get_zc_benchmark_api(search_space, dataset)`, which returns `data[dataset]`:

    {dataset: {arch_key: {proxy: {"score": float, "time": float}, ..., "val_accuracy": float}}}

  * dataset: NASLib's name, "cifar10", "cifar100" or "ImageNet16-120" (ours: cifar10, cifar100, imagenet16_120).
  * arch_key: `str(graph.get_hash())`, for NAS-Bench-201 `str(tuple(op_indices))`, e.g. "(4, 0, 3, 1, 4, 3)"
    (`naslib/search_spaces/nasbench201/graph.py`: `get_hash`; the readers index `zc_api[str(arch_hash)]`).
  * op_indices: one op per cell edge in NASLib's EDGE_LIST order ((1,2), (1,3), (1,4), (2,3), (2,4), (3,4)),
    each an index into OP_NAMES_NB201 = [skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3]
    (`naslib/search_spaces/nasbench201/conversions.py`). NASLib's node i is node i-1 of the official string
    "|a~0|+|b~0|c~1|+|d~0|e~1|f~2|", so the key lists the official string's ops in the order (a, b, d, c, e, f):
    edges are ordered by source node in the key and by target node in the string.
  * val_accuracy: the benchmark's validation accuracy (`naslib/runners/zc/benchmarks/runner.py`,
    `graph.query(Metric.VAL_ACCURACY, dataset)`; on cifar10 that is cifar10-valid's validation accuracy).

Proxy names: NASLib's (`tutorial/zc_intro.py`: epe_nas, fisher, grad_norm, grasp, jacov, l2_norm, nwot, plain,
snip, synflow, zen, flops, params) are the same names as ours for the 12 we share; epe_nas (NASLib only) and
zico, zico_bc (ours only) keep their names in both directions, so `PROXY_TO_NASLIB` is the identity on
every shared name. Units follow NASLib's: its synflow is log(score) (`naslib/predictors/zerocost.py`:
`math.log(score)` for score > 0, 0 kept), its params and flops are in millions
(`naslib/predictors/utils/pruners/predictive.py`: `/1e6`), so `export_zc_json` writes log(synflow), params/1e6
and flops/1e6 and `import_zc_json` undoes it (exp; *1e6 rounded to an integer). NASLib counts FLOPs with
tensorwatch and we count multiply-accumulates of the space's layers, so the two FLOPs columns may differ by a
constant convention even in the same unit. A NaN score is written as null (strict JSON, `results.dumps`);
NASLib's own stand-in for a failed score, -1e8 (`zerocost.py`), is read back as NaN.

Each proxy's "time" is the seconds the zico-jax engine spent on the architecture (`row["seconds"]`: all of a
run's proxies are computed in one pass, so each gets that whole time), unless the row carries per-proxy
`times` (rows read by `import_zc_json` do). Rows are dicts as in scores.jsonl: "arch" (the official NAS-Bench-201
string), one field per proxy, params, flops, seconds; `val_accuracy` comes from the row's own "val_accuracy",
else its `accuracy_column` (default: cifar10valid_valid, cifar100_test or imagenet16_120_test, the nearest
columns of zico-jax's tables; they have no validation column for cifar100 and ImageNet16-120), else from a
`groundtruth` table, else null.

Example (runnable; export writes only the given dataset and keeps the file's other datasets):
    >>> from zico_jax.interop import export_zc_json, import_zc_json, naslib_key, nb201_arch
    >>> arch = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    >>> naslib_key(arch)
    '(2, 1, 0, 3, 4, 2)'
    >>> nb201_arch("(2, 1, 0, 3, 4, 2)") == arch
    True
    >>> rows = [{"arch": arch, "zico": 512.0, "synflow": 1e20, "params": 101306, "seconds": 0.8,
    ...          "cifar10valid_valid": 84.1}]
    >>> import os, tempfile; path = os.path.join(tempfile.mkdtemp(), "zc_nasbench201.json")
    >>> _ = export_zc_json(rows, "nats_tss", "cifar10", path)
    >>> back = import_zc_json(path, "nats_tss", "cifar10")
    >>> back[0]["arch"] == arch, back[0]["zico"], back[0]["params"], back[0]["val_accuracy"]
    (True, 512.0, 101306, 84.1)

Rows from a run: `read_rows("runs/x/scores.jsonl")` (pass `groundtruth=load_nb201()` for val_accuracy), or the
lines of scores.csv, which carry the ground-truth columns.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Iterable, Mapping

from etils import epath

from zico_jax import storage
from zico_jax.errors import InputError
from zico_jax.results import dumps
from zico_jax.spaces import space_class, space_names
from zico_jax.spaces.nats_tss import EDGES, NB201Genotype, parse_genotype

# naslib/search_spaces/nasbench201/conversions.py
NASLIB_NB201_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")  # OP_NAMES_NB201
NASLIB_NB201_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))  # EDGE_LIST, NASLib's nodes 1..4
# NASLib's edge (i, j) is the official edge into node j-1 from node i-1: its place in `EDGES`, the official string's
# order, gives the key's order of the string's ops.
_KEY_ORDER = tuple(EDGES.index((j - 1, i - 1)) for i, j in NASLIB_NB201_EDGES)  # (0, 1, 3, 2, 4, 5)

# Ours -> NASLib's dataset names (naslib/search_spaces/nasbench201/graph.py, `query`).
NASLIB_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16_120": "ImageNet16-120"}
# The ground-truth column each dataset's val_accuracy is written from, by default.
ACCURACY_COLUMNS = {"cifar10": "cifar10valid_valid", "cifar100": "cifar100_test",
                    "imagenet16_120": "imagenet16_120_test"}
# Our space name -> NASLib's (the `<space>` of zc_<space>.json).

# NASLib's proxy names (tutorial/zc_intro.py) and ours: the same name wherever both have the proxy.
NASLIB_PROXIES = ("epe_nas", "fisher", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "plain", "snip",
                  "synflow", "zen", "flops", "params")
OUR_PROXIES = ("zico", "zico_bc", "grad_norm", "snip", "grasp", "fisher", "jacov", "synflow", "plain", "l2_norm",
               "nwot", "zen", "params", "flops")
PROXY_TO_NASLIB = {name: name for name in OUR_PROXIES}  # zico, zico_bc: not in NASLib, written as themselves
NASLIB_TO_PROXY = {name: name for name in NASLIB_PROXIES}  # epe_nas: not in zico-jax, read as itself
MILLIONS = ("params", "flops")  # NASLib's unit: millions
NASLIB_FAILED = -1e8  # NASLib's score for a NaN or infinite proxy value

_KEY = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)")


def naslib_key(arch) -> str:
    """The NASLib key of a NAS-Bench-201 genotype (or official string): '(a, b, d, c, e, f)' op indices (module
    docstring). A malformed string raises the space's GenotypeError (a ValueError) naming the bad part."""
    ops = (arch if isinstance(arch, NB201Genotype) else parse_genotype(str(arch).strip())).ops
    return str(tuple(NASLIB_NB201_OPS.index(ops[position]) for position in _KEY_ORDER))


def nb201_arch(key: str) -> str:
    """The official NAS-Bench-201 string of a NASLib key such as '(4, 0, 3, 1, 4, 3)' (or its list form)."""
    text = str(key).strip()
    if text.startswith("[") and text.endswith("]"):
        text = "(" + text[1:-1] + ")"
    match = _KEY.fullmatch(text)
    indices = [int(i) for i in match.groups()] if match else []
    if not match or any(i >= len(NASLIB_NB201_OPS) for i in indices):
        raise InputError(f"NASLib NAS-Bench-201 key {key!r}: expected a tuple of 6 op indices in 0..4 such as "
                         f"'(4, 0, 3, 1, 4, 3)'")
    ops = [""] * 6
    for index, position in zip(indices, _KEY_ORDER):
        ops[position] = NASLIB_NB201_OPS[index]
    return str(NB201Genotype(tuple(ops)))


def export_zc_json(rows: Iterable[Mapping[str, Any]], space: str, dataset: str, path: str | os.PathLike,
                   accuracy_column: str | None = None, groundtruth=None) -> epath.Path:
    """Write `rows` as the `dataset` section of NASLib's zc_<space>.json at `path` (module docstring).

    One entry per architecture (its first row); every proxy field of a row (ours and NASLib's names) becomes
    {"score", "time"} in NASLib's units, plus "val_accuracy". Other datasets already in the file at `path` are
    kept; this dataset's section is replaced. Strict JSON (`results.dumps`: NaN as null). Returns the path.
    """
    _naslib_space(space)
    ours = _our_dataset(dataset)
    column = accuracy_column or ACCURACY_COLUMNS[ours]
    section: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = naslib_key(row["arch"])
        if key in section:
            continue
        times = row.get("times") or {}
        entry: dict[str, Any] = {}
        for name, value in row.items():
            naslib = PROXY_TO_NASLIB.get(name) or NASLIB_TO_PROXY.get(name)
            if naslib is None:
                continue
            seconds = _number(times.get(name, row.get("seconds")))
            entry[naslib] = {"score": _to_naslib(naslib, value), "time": seconds}
        entry["val_accuracy"] = _accuracy(row, column, groundtruth)
        section[key] = entry
    path = storage.as_path(path)
    data = _read(path) if path.exists() else {}
    data[NASLIB_DATASETS[ours]] = section
    return storage.write_text(path, dumps(data) + "\n")


def import_zc_json(path: str | os.PathLike, space: str, dataset: str) -> list[dict[str, Any]]:
    """The `dataset` section of a NASLib zc_<space>.json as rows, in file order: {"arch" (official string),
    one field per proxy (our units and names), "val_accuracy", "times": {proxy: seconds}}."""
    _naslib_space(space)
    name = NASLIB_DATASETS[_our_dataset(dataset)]
    path = storage.as_path(path)
    data = _read(path)
    if name not in data:
        raise InputError(f"{path}: no dataset {name!r} (for {dataset!r}); the file has {', '.join(data) or 'none'}")
    rows = []
    for key, entry in data[name].items():
        if not isinstance(entry, Mapping):
            raise InputError(f"{path}: {name}[{key!r}] is {type(entry).__name__}: expected an object of "
                             f"{{proxy: {{'score', 'time'}}}} and 'val_accuracy'")
        row: dict[str, Any] = {"arch": nb201_arch(key)}
        times = {}
        for naslib, value in entry.items():
            if isinstance(value, Mapping) and "score" in value:
                ours = NASLIB_TO_PROXY.get(naslib) or PROXY_TO_NASLIB.get(naslib) or naslib
                row[ours] = _from_naslib(ours, value["score"])
                times[ours] = value.get("time")
        row["val_accuracy"] = _float(entry.get("val_accuracy"))
        row["times"] = times
        rows.append(row)
    return rows


def _naslib_space(space: str) -> str:
    """NASLib's name of `space` (its declared `naslib_name`); the keys written here are NAS-Bench-201's."""
    name = space_class(space).naslib_name
    if name != "nasbench201":
        supported = [n for n in space_names() if space_class(n).naslib_name == "nasbench201"]
        raise InputError(f"space {space!r}: NAS-Bench-Suite-Zero interop supports {', '.join(supported)} "
                         "(NAS-Bench-201's keys)")
    return name


def _our_dataset(dataset: str) -> str:
    for ours, naslib in NASLIB_DATASETS.items():
        if dataset in (ours, naslib):
            return ours
    raise InputError(f"dataset {dataset!r}: expected one of {', '.join(NASLIB_DATASETS)} "
                     f"(or NASLib's {', '.join(NASLIB_DATASETS.values())})")


def _read(path: epath.Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read a NASLib zero-cost JSON file ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f"{path}: expected a NASLib zero-cost file, {{dataset: {{arch_key: {{proxy: "
                         f"{{'score', 'time'}}}}}}}}")
    return data


def _float(value) -> float:
    return math.nan if value is None else float(value)


def _number(value) -> float | None:
    """A row's value as a float (rows from scores.csv hold text; an empty cell is None)."""
    return None if value is None or value == "" else float(value)


def _to_naslib(name: str, value) -> float | None:
    value = _number(value)
    if value is None:
        return None
    if not math.isfinite(value):
        return value  # written as null
    if name in MILLIONS:
        return value / 1e6
    if name == "synflow":  # naslib/predictors/zerocost.py
        return 0.0 if value == 0 else (math.log(value) if value > 0 else -math.log(-value))
    return value


def _from_naslib(name: str, value):
    value = _float(value)
    if value == NASLIB_FAILED:
        return math.nan
    if not math.isfinite(value):
        return value
    if name in MILLIONS:
        return int(round(value * 1e6))
    if name == "synflow":  # zico-jax's synflow is >= 0: the positive branch of NASLib's log
        return 0.0 if value == 0 else math.exp(value)
    return value


def _accuracy(row: Mapping[str, Any], column: str, groundtruth) -> float | None:
    for value in (row.get("val_accuracy"), row.get(column)):
        if _number(value) is not None:
            return _number(value)
    if groundtruth is not None and row["arch"] in groundtruth:
        return float(groundtruth.value(row["arch"], column))
    return None
