"""Mobile latency tables: measured whole-network latency of NAS-Bench-201 and per-layer lookup tables.

All latencies are **milliseconds** for one image (batch 1 unless a device name says otherwise). Two kinds of table:

* `NetworkLatencyTable` - whole-network latency, keyed by the canonical NAS-Bench-201 string
  (`str(get_space("nats_tss").parse(text))`), one float column per device; NaN = not measured on that device.
  - `nb201_latency_brpnas/` (BRP-NAS "LatBench", Dudziak et al. 2020): real on-device measurements, 14 devices incl.
    the Snapdragon 855 (SoC of the Galaxy S10): Kryo 485 CPU, Adreno 640 GPU, Hexagon 690 DSP, int8 TFLite.
    15,284 of the 15,625 archs are measured on most devices: the 341 missing ones are the cells whose input and
    output are disconnected.
  - `nb201_latency_help/` (HELP, Lee et al. 2021): 27 device settings (phones, Raspberry Pi, GPUs with the batch size
    as suffix, Xeon CPUs; `eyeriss` and `fpga` are simulator estimates, not measurements), all 15,625 archs.
  Both files are keyed by the NB201 benchmark index `idx`, mapped to strings with `nb201_accuracy/nb201_accuracy.csv`.
* `LayerLatencyTable` - per-layer lookup table: a network's latency is the sum of its layers' entries (how OFA's
  tutorial uses its tables; it ignores the time between layers, so it is an estimate of the measured whole network).
  - `ofa_note10_latency_lut/` (Once-for-All, Cai et al. 2020): real per-layer means on a Samsung Galaxy Note10
    (TFLite, batch 1), OFA MobileNetV3 layers at 17 input resolutions 160..224 (96 layers each, 1,632 rows). Rows
    are keyed by (resolution, `LayerKey`): the same layer appears in several resolution files with slightly
    different timings, so a query names the resolution unless the table holds one.
  - a user's own table: `export_layer_list` writes the distinct layers of some genotypes as CSV (the `LayerKey`
    fields and an empty `latency_ms` column); measure each on the phone, fill the column, `load_layer_table` it.
  Layers the table lacks can be estimated with a predictor fitted on the table (`zico_jax.latency.predictor`).

A `LayerKey` is what identifies a layer for latency: op type, input and output H, W, C, kernel, stride, groups and
OFA's block options (expand = mid channels, idskip, se, hs). BatchNorm and bias are not part of it: a deployed
model folds BN into the conv weights, and a bias add is negligible next to the conv.

Registered names (`get_latency_table(name)`, `latency_table_names()`): `nb201_sd855_cpu`, `nb201_sd855_gpu`,
`nb201_sd855_dsp`; `nb201_brpnas_<column>` for each BRP-NAS column and `nb201_<device>` for each HELP device
(one-device tables); `nb201_brpnas`, `nb201_help` (all devices of a file); `note10_lut`.

Tables are read from the data folder (`zico_jax.data.data_dir`: argument > $ZICO_JAX_DATA > the packaged data).
Every loader validates its file: errors name the file, line and column (missing columns, non-numeric or negative
values, unknown devices or columns, duplicate keys).

Example:
    >>> t = get_latency_table("nb201_sd855_gpu")
    >>> t.devices(), len(t)
    (['sd855_gpu_adreno640_int8'], 15625)
    >>> t.latency("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    8.714
    >>> lut = get_latency_table("note10_lut")
    >>> lut.network_latency(lut.keys(224), resolution=224)   # any list of LayerKey / LayerInfo-like layers
    >>> export_layer_list(get_space("nats_tss"), genotypes, "to_measure.csv")   # fill latency_ms, then:
    >>> mine = load_layer_table("to_measure.csv")
"""

from zico_jax.latency.layer_table import LayerLatencyTable, export_layer_list, load_layer_table
from zico_jax.latency.network_table import NetworkLatencyTable, load_network_table, nb201_canonical, nb201_index_map
from zico_jax.latency.predictor import LinearLatencyPredictor, fit_predictor, layer_features
from zico_jax.latency.registry import (
    BRPNAS_DEVICES,
    HELP_DEVICES,
    LATENCY_TABLES,
    get_latency_table,
    latency_table_names,
    load_brpnas,
    load_help_nb201,
    load_note10_lut,
)
from zico_jax.latency.schema import LAYER_FIELDS, LAYER_OPS, LatencyTableError, LayerKey, MissingLayerError, layer_keys

__all__ = [
    "LayerKey", "layer_keys", "LAYER_FIELDS", "LAYER_OPS", "LatencyTableError", "MissingLayerError",
    "NetworkLatencyTable", "load_network_table", "nb201_canonical", "nb201_index_map",
    "LayerLatencyTable", "load_layer_table", "export_layer_list",
    "LinearLatencyPredictor", "fit_predictor", "layer_features",
    "BRPNAS_DEVICES", "HELP_DEVICES", "LATENCY_TABLES", "get_latency_table", "latency_table_names", "load_brpnas",
    "load_help_nb201", "load_note10_lut",
]
