"""Latency tables: registered tables against the raw shared files, schema errors, the predictor, export round trip."""

from __future__ import annotations

import csv
import math
import pathlib

import numpy as np
import pytest

from zico_jax.data import DataNotFoundError, data_dir
from zico_jax.latency import (
    BRPNAS_DEVICES,
    HELP_DEVICES,
    LatencyTableError,
    LayerKey,
    LayerLatencyTable,
    MissingLayerError,
    NetworkLatencyTable,
    export_layer_list,
    fit_predictor,
    get_latency_table,
    latency_table_names,
    layer_features,
    layer_keys,
    load_layer_table,
    load_network_table,
)
from zico_jax.spaces import get_space

DATA = data_dir()
BRPNAS_CSV = DATA / "nb201_latency_brpnas" / "nb201_latency_brpnas_ms.csv"
HELP_CSV = DATA / "nb201_latency_help" / "nb201_latency_ms.csv"
NOTE10_CSV = DATA / "ofa_note10_latency_lut" / "ofa_note10_lut.csv"
ACC_CSV = DATA / "nb201_accuracy" / "nb201_accuracy.csv"
G = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

_RAW: dict[pathlib.Path, list[dict]] = {}


def raw(path: pathlib.Path) -> list[dict]:
    """The file's rows as dicts, read with csv only (independent of the loaders)."""
    if path not in _RAW:
        with path.open(newline="") as f:
            _RAW[path] = list(csv.DictReader(f))
    return _RAW[path]


def raw_arch(idx: int) -> str:
    return raw(ACC_CSV)[idx]["arch_str"]  # rows are in idx order 0..15624


def network_names():
    """(registered name, raw file, device column) of every single-device whole-network table."""
    out = [(n, BRPNAS_CSV, d) for n, d in (("nb201_sd855_cpu", "sd855_cpu_kryo485_int8"),
                                          ("nb201_sd855_gpu", "sd855_gpu_adreno640_int8"),
                                          ("nb201_sd855_dsp", "sd855_dsp_hexagon690_int8"))]
    out += [(f"nb201_brpnas_{d}", BRPNAS_CSV, d) for d in BRPNAS_DEVICES]
    out += [(f"nb201_{d}", HELP_CSV, d) for d in HELP_DEVICES]
    return out


def test_registry_covers_every_table():
    expected = {n for n, _, _ in network_names()} | {"nb201_brpnas", "nb201_help", "note10_lut"}
    assert set(latency_table_names()) == expected
    with pytest.raises(KeyError, match="unknown latency table 'nope'.*nb201_sd855_gpu"):
        get_latency_table("nope")


@pytest.mark.parametrize("name,path,device", network_names(), ids=[n for n, _, _ in network_names()])
def test_network_table_matches_raw_file(name, path, device):
    table = get_latency_table(name)
    assert isinstance(table, NetworkLatencyTable) and table.devices() == [device]
    rows = raw(path)
    assert len(table) == len(rows) == 15625
    measured = [r for r in rows if r[device].strip()]
    assert table.count() == len(measured)
    # a few known values, looked up by the arch string of the same NB201 index
    for r in measured[:3] + measured[-2:] + measured[7000:7002]:
        assert table.latency(raw_arch(int(r["idx"]))) == pytest.approx(float(r[device]), abs=0, rel=1e-12)


@pytest.mark.parametrize("name,devices,coverage", [
    ("nb201_brpnas", BRPNAS_DEVICES, {"sd855_gpu_adreno640_int8": 15284, "sd675_cpu_kryo460_int8": 15261,
                                      "sd450_cpu_cortexa53_int8": 15252, "embedded_tpu_edgetpu_large": 14802}),
    ("nb201_help", HELP_DEVICES, {"pixel3": 15625, "samsung_a50": 15625}),
])
def test_multi_device_tables(name, devices, coverage):
    table = get_latency_table(name)
    assert table.devices() == list(devices) and len(table) == 15625
    for device, n in coverage.items():  # coverage as stated in the data's SOURCE.md
        assert table.count(device) == n
    with pytest.raises(KeyError, match="name one of"):
        table.latency(G)
    with pytest.raises(KeyError, match=r"unknown device 'galaxy_s10'.*valid devices: " + devices[0]):
        table.latency(G, "galaxy_s10")


def test_sd855_unmeasured_archs_are_the_disconnected_cells():
    # Cross-checks the index -> arch-string mapping: BRP-NAS lacks exactly the cells whose output never sees the input.
    table = get_latency_table("nb201_sd855_gpu")
    space = get_space("nats_tss")

    def connected(g):
        ops = space.parse(g).ops  # edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
        n1 = ops[0] != "none"
        n2 = ops[1] != "none" or (n1 and ops[2] != "none")
        return ops[3] != "none" or (n1 and ops[4] != "none") or (n2 and ops[5] != "none")

    missing = [a for a, v in zip(table.archs(), table.values(table.archs())) if math.isnan(v)]
    assert len(missing) == 341 and not any(connected(a) for a in missing)
    with pytest.raises(KeyError, match="was not measured on device 'sd855_gpu_adreno640_int8'"):
        table.latency(missing[0])
    with pytest.raises(KeyError, match="is not in latency table"):
        table.latency("|nor_conv_3x3~0|")


def test_network_table_accepts_genotypes_and_other_spellings():
    table = get_latency_table("nb201_sd855_cpu")
    g = get_space("nats_tss").parse(G)
    assert table.latency(g) == table.latency(G) == table.latency("  " + G + " ")


def test_note10_lut_matches_raw_file():
    lut = get_latency_table("note10_lut")
    rows = raw(NOTE10_CSV)
    assert isinstance(lut, LayerLatencyTable) and len(lut) == len(rows) == 1632
    assert lut.resolutions() == list(range(160, 225, 4))
    assert all(len(lut.keys(r)) == 96 for r in lut.resolutions())
    by_key = {(int(r["resolution"]), r["key"]): float(r["mean_ms"]) for r in rows}
    for res, key, ms in lut.items():
        assert by_key[(res, key.ofa_key())] == ms
    # a network = the 224 layers: the table's sum equals the raw file's
    keys = lut.keys(224)
    assert lut.network_latency(keys, resolution=224) == pytest.approx(
        sum(float(r["mean_ms"]) for r in rows if r["resolution"] == "224"), rel=1e-12)
    with pytest.raises(ValueError, match="pass resolution="):
        lut.network_latency(keys)
    assert lut.at_resolution(224).network_latency(keys) == lut.network_latency(keys, resolution=224)


def test_predictor_fits_note10():
    lut = get_latency_table("note10_lut")
    pred = fit_predictor(lut, folds=5)
    for v in (pred.r2, pred.mape, pred.cv_r2, pred.cv_mape):
        assert math.isfinite(v)
    assert pred.r2 > 0.8 and pred.cv_r2 > 0.8 and pred.folds == 5 and pred.n_rows == 1632
    assert "R^2" in pred.report() and "held-out" in pred.report()
    # in-sample predictions are the least-squares fit of the documented formula
    keys = [k for _, k, _ in lut.items()]
    y = np.array([ms for _, _, ms in lut.items()])
    coef = np.linalg.lstsq(layer_features(keys), y, rcond=None)[0]
    np.testing.assert_allclose(pred.coef, coef, rtol=1e-9)
    assert pred.predict(keys[0]) == pytest.approx(max(float(layer_features(keys[:1])[0] @ coef), 0.0))


def test_missing_layers_error_or_predicted():
    space = get_space("nats_tss")
    lut = get_latency_table("note10_lut")
    keys = layer_keys(space, G)
    assert len(keys) == len(space.layers(G))
    with pytest.raises(MissingLayerError, match=r"first missing: conv 32x32x3->32x32x16 k3 s1"):
        lut.network_latency(keys, resolution=224)
    pred = fit_predictor(lut)
    mixed = lut.keys(224)[:5] + keys
    total = lut.network_latency(mixed, resolution=224, predictor=pred)
    manual = sum(lut.latency(k, 224) for k in mixed[:5]) + sum(pred.predict(k) for k in keys)
    assert total == pytest.approx(manual, rel=1e-12)
    assert [s for _, _, s in lut.breakdown(mixed, 224, pred)] == ["table"] * 5 + ["predicted"] * len(keys)


def test_export_fill_load_round_trip(tmp_path):
    space = get_space("nats_tss")
    genotypes = [G, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
                 "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]
    path = tmp_path / "layers.csv"
    written = export_layer_list(space, genotypes, path)
    assert len(written) == len(set(written)) and set(written) == {k for g in genotypes for k in layer_keys(space, g)}
    with pytest.raises(LatencyTableError, match=r"layers\.csv, line 2, column 'latency_ms': empty cell"):
        load_layer_table(path)
    # "measure" each layer: fill the column, as a user would
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fake = {i: 0.01 + LayerKey(*(r[c] if c == "op" else int(r[c]) for c in r if c != "latency_ms")).macs / 1e7
            for i, r in enumerate(rows)}
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({**r, "latency_ms": repr(fake[i])})
    table = load_layer_table(path, name="my_phone")
    assert len(table) == len(written) and table.keys() == written
    assert [ms for _, _, ms in table.items()] == [fake[i] for i in range(len(rows))]
    for g in genotypes:  # network latency = manual sum over its layers, repeats counted
        manual = sum(fake[written.index(k)] for k in layer_keys(space, g))
        assert table.network_latency(space.layers(g)) == pytest.approx(manual, rel=1e-12)


# ------------------------------------------------------------------------------------------------ schema errors

def write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,pattern", [
    ("arch,sd855_gpu_adreno640_int8\n", r"line 1: missing column 'idx'"),
    ("idx,sd855_gpu_adreno640_int8\n0,1.5\n1,-2\n", r"line 3, column 'sd855_gpu_adreno640_int8': expected a finite "
                                                     r"non-negative number, got '-2'"),
    ("idx,sd855_gpu_adreno640_int8\n0,fast\n",
     r"line 2, column 'sd855_gpu_adreno640_int8': expected a number, got 'fast'"),
    ("idx,galaxy_s10\n0,1.0\n", r"line 1, column 'galaxy_s10': unknown device; expected one of desktop_cpu"),
    ("idx,sd855_gpu_adreno640_int8\n0,1\n0,2\n",
     r"line 3, column 'idx': duplicate architecture .* \(first on line 2\)"),
    ("idx,sd855_gpu_adreno640_int8\n99999,1\n", r"line 2, column 'idx': NB201 index 99999"),
    ("arch_str,sd855_gpu_adreno640_int8\n|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n",
     r"line 2, column 'arch_str': .*unknown op 'bad'"),
    ("idx,sd855_gpu_adreno640_int8\n0,1,2\n", r"line 2: 3 fields, expected 2"),
])
def test_network_table_schema_errors(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(LatencyTableError, match=r"t\.csv, " + pattern):
        load_network_table(path, devices=BRPNAS_DEVICES if "galaxy" in text else None)


def test_network_table_from_arch_strings(tmp_path):
    path = write(tmp_path, f'arch_str,my_phone\n"{G}",4.5\n')
    t = load_network_table(path)
    assert t.devices() == ["my_phone"] and t.latency(G) == 4.5


OFA_HEADER = "resolution,layer_type,input,output,expand,kernel,stride,idskip,se,hs,count,mean_ms,std_ms,key\n"
OFA_ROW = "224,Conv,224x224x3,112x112x24,,,,,,,498,{ms},0.01,Conv-input:224x224x3-output:112x112x24\n"


@pytest.mark.parametrize("text,pattern", [
    ("layer_type,input,output\nConv,1x1x1,1x1x1\n", r"line 1: missing column\(s\) mean_ms"),
    (OFA_HEADER + OFA_ROW.format(ms="-0.5"), r"line 2, column 'mean_ms': expected a finite non-negative number"),
    (OFA_HEADER + OFA_ROW.format(ms="slow"), r"line 2, column 'mean_ms': expected a number, got 'slow'"),
    (OFA_HEADER + OFA_ROW.format(ms="1") + OFA_ROW.format(ms="2"), r"line 3: duplicate layer Conv .*first on line 2"),
    (OFA_HEADER + OFA_ROW.format(ms="1").replace(",Conv,", ",Conv3d,"), r"line 2, column 'layer_type': unknown layer "
                                                                         r"type 'Conv3d'"),
    (OFA_HEADER + OFA_ROW.format(ms="1").replace("112x112x24,", "112x112,", 1), r"line 2, column 'output': expected "
                                                                                r"HxWxC"),
    (OFA_HEADER + OFA_ROW.format(ms="1").replace("x24\n", "x32\n"), r"line 2, column 'key': .* does not match"),
    (OFA_HEADER.replace("count", "cnt") + OFA_ROW.format(ms="1"), r"line 1, column 'cnt': unknown column"),
    ("op,in_h,in_w,in_channels,out_h,out_w,out_channels,latency_ms\nconv,8,8,16,8,8,-16,1\n",
     r"line 2, column 'out_channels': expected a non-negative integer"),
    ("op,in_h,in_w,in_channels,out_h,out_w,latency\nconv,8,8,16,8,8,1\n", r"line 1: missing column\(s\) out_channels, "
                                                                          r"latency_ms"),
])
def test_layer_table_schema_errors(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(LatencyTableError, match=r"t\.csv, " + pattern):
        load_layer_table(path)


def test_own_layer_table_in_ofa_schema(tmp_path):
    path = write(tmp_path, OFA_HEADER + OFA_ROW.format(ms="0.25"))
    t = load_layer_table(path)
    key = LayerKey("Conv", 224, 224, 3, 112, 112, 24)
    assert t.resolutions() == [224] and t.network_latency([key, key]) == 0.5


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataNotFoundError, match="nb201_latency_brpnas"):
        get_latency_table("nb201_sd855_cpu", data_dir=tmp_path)


def test_layer_key_work_matches_layer_info():
    space = get_space("nats_tss")
    for layer in space.layers(G):
        key = LayerKey.from_layer(layer)
        assert key.macs == layer.macs
        assert key.memory_elements == (layer.in_hw[0] * layer.in_hw[1] * layer.in_channels + layer.weight_count
                                       + layer.out_hw[0] * layer.out_hw[1] * layer.out_channels)


def test_required_devices(tmp_path):
    path = write(tmp_path, "idx,sd855_gpu_adreno640_int8\n0,1\n")
    assert len(load_network_table(path, devices=BRPNAS_DEVICES)) == 1
    with pytest.raises(LatencyTableError, match=r"t\.csv, line 1: missing device column\(s\) desktop_cpu"):
        load_network_table(path, devices=BRPNAS_DEVICES, require_all=True)
