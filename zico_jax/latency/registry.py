"""Registered latency tables by name: the shared data's NB201 device tables and the Galaxy Note10 per-layer table."""

from __future__ import annotations

import pathlib
from typing import Any, Callable

from zico_jax.data import DataNotFoundError
from zico_jax.data import data_dir as _data_dir
from zico_jax.errors import UnknownNameError
from zico_jax.latency.layer_table import LayerLatencyTable, load_layer_table
from zico_jax.latency.network_table import NetworkLatencyTable, load_network_table

BRPNAS_FILE = pathlib.Path("nb201_latency_brpnas") / "nb201_latency_brpnas_ms.csv"
HELP_FILE = pathlib.Path("nb201_latency_help") / "nb201_latency_ms.csv"
NOTE10_FILE = pathlib.Path("ofa_note10_latency_lut") / "ofa_note10_lut.csv"
NB201_ACCURACY_FILE = pathlib.Path("nb201_accuracy") / "nb201_accuracy.csv"

BRPNAS_DEVICES = (
    "desktop_cpu_i7_7820x_fp32", "desktop_gpu_gtx1080ti_fp32", "desktop_gpu_gtx1080ti_large",
    "embedded_gpu_jetson_nano_fp32", "embedded_tpu_edgetpu_int8", "embedded_tpu_edgetpu_large",
    "sd450_cpu_cortexa53_int8", "sd450_gpu_adreno506_int8", "sd675_cpu_kryo460_int8", "sd675_gpu_adreno612_int8",
    "sd675_dsp_hexagon685_int8", "sd855_cpu_kryo485_int8", "sd855_gpu_adreno640_int8", "sd855_dsp_hexagon690_int8",
)
HELP_DEVICES = (
    "1080ti_1", "1080ti_256", "1080ti_32", "2080ti_1", "2080ti_256", "2080ti_32", "essential_ph_1", "eyeriss", "fpga",
    "gold_6226", "gold_6240", "pixel2", "pixel3", "raspi4", "samsung_a50", "samsung_s7", "silver_4114",
    "silver_4210r", "titan_rtx_1", "titan_rtx_256", "titan_rtx_32", "titanx_1", "titanx_256", "titanx_32",
    "titanxp_1", "titanxp_256", "titanxp_32",
)

# Layer types: this library's LayerInfo kinds, and OFA MobileNetV3's (stem, MBConv block, final expand, pool,
# feature mix, classifier).

_CACHE: dict[tuple, Any] = {}


def _cached(path: pathlib.Path, build: Callable[[], Any]):
    # Tables are immutable; one read per file (and modification time) serves every name registered on it.
    key = (str(path), path.stat().st_mtime if path.is_file() else None)
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def _need(path: pathlib.Path, folder: str) -> pathlib.Path:
    if not path.is_file():
        raise DataNotFoundError(f"latency table {path} not found; pass data_dir= or set $ZICO_JAX_DATA to the folder "
                                f"holding {folder}/")
    return path


def load_brpnas(data_dir=None) -> NetworkLatencyTable:
    """BRP-NAS LatBench: 15,625 NB201 archs x BRPNAS_DEVICES (ms)."""
    p = _need(_data_dir(data_dir) / BRPNAS_FILE, BRPNAS_FILE.parts[0])
    return _cached(p, lambda: load_network_table(p, "nb201_brpnas", BRPNAS_DEVICES, data_dir, True))


def load_help_nb201(data_dir=None) -> NetworkLatencyTable:
    """HELP's NB201 latencies: 15,625 archs x HELP_DEVICES (ms)."""
    p = _need(_data_dir(data_dir) / HELP_FILE, HELP_FILE.parts[0])
    return _cached(p, lambda: load_network_table(p, "nb201_help", HELP_DEVICES, data_dir, True))


def load_note10_lut(data_dir=None) -> LayerLatencyTable:
    """OFA's Galaxy Note10 per-layer table: 17 resolutions x 96 layers (ms)."""
    p = _need(_data_dir(data_dir) / NOTE10_FILE, NOTE10_FILE.parts[0])
    return _cached(p, lambda: load_layer_table(p, "note10_lut"))


_SD855 = {"nb201_sd855_cpu": "sd855_cpu_kryo485_int8", "nb201_sd855_gpu": "sd855_gpu_adreno640_int8",
          "nb201_sd855_dsp": "sd855_dsp_hexagon690_int8"}
LATENCY_TABLES: dict[str, tuple[Callable, str]] = {
    "nb201_brpnas": (load_brpnas, "NB201 whole-network latency, BRP-NAS, all 14 devices"),
    "nb201_help": (load_help_nb201, "NB201 whole-network latency, HELP, all 27 device settings"),
    "note10_lut": (load_note10_lut, "OFA MobileNetV3 per-layer latency, Galaxy Note10, resolutions 160..224"),
}
for _name, _dev in _SD855.items():
    LATENCY_TABLES[_name] = (lambda data_dir=None, _n=_name, _d=_dev: load_brpnas(data_dir).select([_d], _n),
                             f"NB201 on the Snapdragon 855 (Galaxy S10 SoC) {_dev.split('_')[1].upper()}, BRP-NAS")
for _dev in BRPNAS_DEVICES:
    LATENCY_TABLES[f"nb201_brpnas_{_dev}"] = (
        lambda data_dir=None, _d=_dev: load_brpnas(data_dir).select([_d], f"nb201_brpnas_{_d}"),
        f"NB201 on {_dev}, BRP-NAS")
for _dev in HELP_DEVICES:
    LATENCY_TABLES[f"nb201_{_dev}"] = (
        lambda data_dir=None, _d=_dev: load_help_nb201(data_dir).select([_d], f"nb201_{_d}"), f"NB201 on {_dev}, HELP")


def latency_table_names() -> list[str]:
    return sorted(LATENCY_TABLES)


def get_latency_table(name: str, data_dir=None):
    """The registered table `name` (see `latency_table_names()`), read from `data_dir` (default: the shared data)."""
    if name not in LATENCY_TABLES:
        raise UnknownNameError(f"unknown latency table {name!r}; registered tables: {', '.join(latency_table_names())}")
    return LATENCY_TABLES[name][0](data_dir=data_dir)
