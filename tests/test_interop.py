"""NAS-Bench-Suite-Zero interop: NASLib's NAS-Bench-201 keys both ways, zc_<space>.json round trip and errors."""

import csv
import io
import itertools
import json
import math

import pytest

from zico_jax import interop as I

# Hand-derived NASLib keys. naslib/search_spaces/nasbench201/conversions.py (automl/NASLib @ 0b51bc18):
# OP_NAMES_NB201 = ['skip_connect', 'none', 'nor_conv_3x3', 'nor_conv_1x1', 'avg_pool_3x3'] (indices 0..4) and
# EDGE_LIST = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)); NASLib's node i is node i-1 of the official
# string, so the key takes the string's ops |a~0|+|b~0|c~1|+|d~0|e~1|f~2| in the order a, b, d, c, e, f.
KEYS = {
    # a=avg_pool(4) b=conv1x1(3) c=skip(0) d=conv1x1(3) e=skip(0) f=skip(0) -> (a, b, d, c, e, f)
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|":
        "(4, 3, 3, 0, 0, 0)",
    # a=conv3x3(2) b=none(1) c=conv1x1(3) d=skip(0) e=avg_pool(4) f=conv3x3(2)
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|":
        "(2, 1, 0, 3, 4, 2)",
    # the best cifar10 cell: a=b=c=conv3x3(2) d=skip(0) e=f=conv3x3(2)
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|":
        "(2, 2, 0, 2, 2, 2)",
}
OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def naslib_convert_str_to_op_indices(str_encoding):
    """A transcription of NASLib's conversions.py `convert_str_to_op_indices` (the reference for the keys)."""
    nodes = str_encoding.split("+")
    node_ops = [[x.split("~")[0] for x in n.strip()[1:-1].split("|")] for n in nodes]
    return tuple(OPS.index(node_ops[v - 2][u - 1]) for u, v in EDGES)


def test_hand_written_keys_both_ways():
    for arch, key in KEYS.items():
        assert I.naslib_key(arch) == key and I.nb201_arch(key) == arch
        assert str(naslib_convert_str_to_op_indices(arch)) == key
    assert I.nb201_arch("[2, 1, 0, 3, 4, 2]") == I.nb201_arch("(2,1,0,3,4,2)") == list(KEYS)[1]


def test_every_nb201_arch_round_trips_and_matches_naslib():
    keys = set()
    for ops in itertools.product(OPS, repeat=6):
        arch = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
        key = I.naslib_key(arch)
        assert I.nb201_arch(key) == arch and key == str(naslib_convert_str_to_op_indices(arch))
        keys.add(key)
    assert len(keys) == 15625


ROWS = [
    {"arch": list(KEYS)[0], "index": 7, "zico": 512.25, "synflow": 3.5e21, "params": 101306, "flops": 11560000,
     "seconds": 0.75, "layers_counted": 9, "cifar10valid_valid": 84.5},
    {"arch": list(KEYS)[1], "index": 9, "zico": float("nan"), "synflow": 0.0, "params": 73834, "flops": 8700000,
     "seconds": 0.5, "layers_counted": 7},
    {"arch": list(KEYS)[0], "zico": -1.0, "seconds": 9.0},  # a repeated arch: its first row counts
]


def test_export_writes_naslib_format_and_round_trips(tmp_path):
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps({"cifar100": {"(0, 0, 0, 0, 0, 0)": {"val_accuracy": 1.0}}}))  # kept
    I.export_zc_json(ROWS, "nats_tss", "cifar10", path)
    text = path.read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert set(data) == {"cifar10", "cifar100"}
    assert list(data["cifar10"]) == ["(4, 3, 3, 0, 0, 0)", "(2, 1, 0, 3, 4, 2)"]
    first, second = data["cifar10"].values()
    assert set(first) == {"zico", "synflow", "params", "flops", "val_accuracy"}
    assert first["zico"] == {"score": 512.25, "time": 0.75} and first["val_accuracy"] == 84.5
    assert first["params"]["score"] == pytest.approx(0.101306) and first["synflow"]["score"] == pytest.approx(
        math.log(3.5e21))  # NASLib's units: millions, log(synflow)
    assert second["zico"]["score"] is None and second["synflow"]["score"] == 0.0 and second["val_accuracy"] is None

    rows = I.import_zc_json(path, "nats_tss", "cifar10")
    assert [r["arch"] for r in rows] == [ROWS[0]["arch"], ROWS[1]["arch"]]
    for row, original in zip(rows, ROWS):
        assert row["params"] == original["params"] and row["flops"] == original["flops"]
        assert row["synflow"] == pytest.approx(original["synflow"], rel=1e-12)
        assert row["times"] == {p: original["seconds"] for p in ("zico", "synflow", "params", "flops")}
    assert rows[0]["zico"] == 512.25 and math.isnan(rows[1]["zico"])
    assert rows[0]["val_accuracy"] == 84.5 and math.isnan(rows[1]["val_accuracy"])
    again = tmp_path / "again.json"
    I.export_zc_json(rows, "nats_tss", "cifar10", again)  # imported rows export to the same section
    _close(json.loads(again.read_text())["cifar10"], data["cifar10"])


def _close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].keys() == b[key].keys()
        for name, value in a[key].items():
            if isinstance(value, dict):
                assert value["time"] == b[key][name]["time"]
                expected = b[key][name]["score"]
                assert value["score"] == (None if expected is None else pytest.approx(expected, rel=1e-12))
            else:
                assert value == b[key][name]


def test_import_a_naslib_file_and_export_scores_csv_rows(tmp_path):
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps({"ImageNet16-120": {
        "(2, 2, 0, 2, 2, 2)": {"epe_nas": {"score": 12.5, "time": 1.25}, "jacov": {"score": -1e8, "time": 0.5},
                               "flops": {"score": 184.2, "time": 0.1}, "val_accuracy": 46.7}}}))
    (row,) = I.import_zc_json(path, "nats_tss", "imagenet16_120")
    assert row["arch"] == list(KEYS)[2] and row["epe_nas"] == 12.5 and row["flops"] == 184200000
    assert math.isnan(row["jacov"]) and row["val_accuracy"] == 46.7  # NASLib's -1e8 stands for a failed score
    assert row["times"] == {"epe_nas": 1.25, "jacov": 0.5, "flops": 0.1}

    table = "arch,index,zico,params,seconds,imagenet16_120_test\n" f"{list(KEYS)[1]},9,,73834,0.5,31.25\n"
    out = I.export_zc_json(list(csv.DictReader(io.StringIO(table))), "nats_tss", "ImageNet16-120", tmp_path / "c.json")
    (entry,) = json.loads(out.read_text())["ImageNet16-120"].values()
    assert entry == {"zico": {"score": None, "time": 0.5}, "params": {"score": 0.073834, "time": 0.5},
                     "val_accuracy": 31.25}


def test_errors_are_one_line_value_errors(tmp_path):
    path = I.export_zc_json(ROWS[:1], "nats_tss", "cifar10", tmp_path / "zc.json")
    cases = [
        (lambda: I.nb201_arch("(5, 0, 0, 0, 0, 0)"), r"key '\(5, 0, 0, 0, 0, 0\)': expected a tuple of 6 op"),
        (lambda: I.nb201_arch("(1, 2, 3)"), "expected a tuple of 6 op indices in 0..4"),
        (lambda: I.naslib_key("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"), "arch .*expected '|op~0|"),
        (lambda: I.export_zc_json(ROWS, "nats_tss", "svhn", tmp_path / "x.json"), "dataset 'svhn': expected one of"),
        (lambda: I.import_zc_json(path, "nats_tss", "cifar100"), "no dataset 'cifar100'.*has cifar10"),
        (lambda: I.import_zc_json(path, "nasbench101", "cifar10"), "space 'nasbench101'.*supports nats_tss"),
        (lambda: I.import_zc_json(tmp_path / "missing.json", "nats_tss", "cifar10"), "cannot read"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
