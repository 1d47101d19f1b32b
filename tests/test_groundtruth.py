"""zico_jax.groundtruth: the NAS-Bench-201 table, path precedence, generic CSV loading and its errors."""

import sys
import types

import numpy as np
import pytest

from zico_jax import groundtruth as G
from zico_jax.data import DataNotFoundError

ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
ARCH1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
HEADER = "idx,arch_str,cifar10_test,cifar100_test,imagenet16_120_test,cifar10valid_valid,cifar10valid_test\n"


@pytest.fixture(scope="module")
def nb201():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(G.NB201_ENV, raising=False)
        return G.load_nb201()


def test_nb201_size_and_columns(nb201):
    assert len(nb201) == 15625
    assert nb201.columns == G.NB201_COLUMNS
    assert nb201.name == "nb201"


def test_nb201_known_values(nb201):
    assert nb201.arch(0) == ARCH0
    assert nb201.value(ARCH0, "cifar10_test") == pytest.approx(85.8633)
    assert nb201.value(ARCH1, "cifar100_test") == pytest.approx(70.2933)
    acc = nb201.values(nb201.archs(), "cifar10_test")
    assert round(acc.max(), 2) == 94.37
    assert round(nb201.values(nb201.archs(), "cifar100_test").max(), 2) == 73.51
    assert round(nb201.values(nb201.archs(), "imagenet16_120_test").max(), 2) == 47.31


def test_nb201_index_arch_round_trip(nb201):
    archs = nb201.archs()
    assert len(set(archs)) == 15625
    for i in (0, 1, 777, 15624):
        assert nb201.index(nb201.arch(i)) == i
        assert archs[i] == nb201.arch(i)
    assert ARCH1 in nb201 and "|none~0|" not in nb201


def test_values_in_order_and_unknown_keys(nb201):
    got = nb201.values([ARCH1, ARCH0], "cifar10_test")
    np.testing.assert_allclose(got, [93.66, 85.8633])
    with pytest.raises(KeyError, match=r"\|bogus\|"):
        nb201.values([ARCH0, "|bogus|", "|other|"], "cifar10_test")
    with pytest.raises(KeyError, match="cifar10_test, cifar100_test"):
        nb201.value(ARCH0, "accuracy")
    with pytest.raises(KeyError, match="15625"):
        nb201.arch(15625)


def test_path_argument_beats_env(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text(HEADER + f"0,{ARCH0},1,2,3,4,5\n")
    (tmp_path / "b.csv").write_text(HEADER + f"0,{ARCH0},9,9,9,9,9\n")
    monkeypatch.setenv(G.NB201_ENV, str(tmp_path / "b.csv"))
    assert G.load_nb201(tmp_path / "a.csv").value(ARCH0, "cifar10_test") == 1.0


def test_env_override_with_tiny_table(tmp_path, monkeypatch):
    csv = tmp_path / "tiny.csv"
    # Rows out of index order: archs() must come back in index order.
    csv.write_text(HEADER + f"7,{ARCH1},93.5,70,44,90,90.5\n3,{ARCH0},85,52,26,81,81.5\n")
    monkeypatch.setenv(G.NB201_ENV, str(csv))
    gt = G.load_nb201()
    assert len(gt) == 2 and gt.archs() == [ARCH0, ARCH1]
    assert gt.index(ARCH1) == 7 and gt.arch(3) == ARCH0
    assert gt.value(ARCH1, "cifar10valid_test") == 90.5


def test_data_dir_argument_locates_default_file(tmp_path, monkeypatch):
    monkeypatch.delenv(G.NB201_ENV, raising=False)
    (tmp_path / "nb201_accuracy").mkdir()
    (tmp_path / "nb201_accuracy" / "nb201_accuracy.csv").write_text(HEADER + f"0,{ARCH0},1,2,3,4,5\n")
    assert len(G.load_nb201(data_dir=tmp_path)) == 1


def test_missing_file_names_path_and_fix(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "nb201.csv"
    monkeypatch.setenv(G.NB201_ENV, str(missing))
    with pytest.raises(DataNotFoundError) as err:
        G.load_nb201()
    msg = str(err.value)
    assert str(missing) in msg and "--groundtruth" in msg and G.NB201_ENV in msg and "SOURCE.md" in msg


@pytest.mark.parametrize("body,match", [
    (f"idx,arch,cifar10_test\n0,{ARCH0},1\n", r"line 1.*missing column\(s\) arch_str"),
    (HEADER + f"0,{ARCH0},1,2,3,4,5\n1,{ARCH1},93.1,oops,3,4,5\n", r"line 3, column 'cifar100_test'.*'oops'"),
    (HEADER + f"0,{ARCH0},1,2,3,4,5\nx,{ARCH1},1,2,3,4,5\n", r"line 3, column 'idx'.*integer"),
    (HEADER + f"0,{ARCH0},1,2,3\n", r"line 2: 5 fields, expected 7"),
    (HEADER + f"0,{ARCH0},1,2,3,4,5\n1,{ARCH0},1,2,3,4,5\n", "duplicate architecture"),
])
def test_malformed_csv_errors_name_file_and_line(tmp_path, body, match):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ValueError, match=match) as err:
        G.load_nb201(path)
    if "line" in match:
        assert str(path) in str(err.value)


def test_load_table_generic(tmp_path):
    path = tmp_path / "nb101.csv"
    path.write_text("hash,val_acc,test_acc\nh1,0.9,0.91\nh2,,0.8\n\n")
    gt = G.load_table(path, arch_column="hash", name="nb101")
    assert gt.name == "nb101" and gt.columns == ("val_acc", "test_acc")
    assert gt.index("h2") == 1 and gt.value("h1", "test_acc") == 0.91
    assert np.isnan(gt.value("h2", "val_acc"))  # empty cell = not measured
    assert G.load_table(path, "hash", columns=["test_acc"]).columns == ("test_acc",)


def test_official_file_through_nats_bench_api(tmp_path, monkeypatch):
    """A stand-in for the nats_bench package checks the API calls and their mapping onto the CSV columns."""
    calls = []

    class FakeAPI:
        def __len__(self):
            return 2

        def arch(self, i):
            return [ARCH0, ARCH1][i]

        def get_more_info(self, i, dataset, hp, is_random):
            calls.append((i, dataset, hp, is_random))
            base = {"cifar10": 90, "cifar100": 70, "ImageNet16-120": 40, "cifar10-valid": 88}[dataset] + i
            info = {"test-accuracy": base + 0.5}
            if dataset == "cifar10-valid":
                info["valid-accuracy"] = base + 0.25
            return info

    def create(path, space, fast_mode, verbose):
        assert (space, fast_mode, verbose) == ("tss", True, False) and isinstance(path, str)
        return FakeAPI()

    monkeypatch.setitem(sys.modules, "nats_bench", types.SimpleNamespace(create=create))
    archive = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    archive.mkdir()
    gt = G.load_nb201(archive)
    assert gt.archs() == [ARCH0, ARCH1] and gt.columns == G.NB201_COLUMNS
    np.testing.assert_allclose(gt.values([ARCH1], "cifar10_test"), [91.5])
    assert gt.value(ARCH0, "imagenet16_120_test") == 40.5
    assert gt.value(ARCH1, "cifar10valid_valid") == 89.25 and gt.value(ARCH1, "cifar10valid_test") == 89.5
    assert {c[2:] for c in calls} == {("200", False)} and len(calls) == 8  # one query per API dataset


def test_official_file_without_nats_bench(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # makes `import nats_bench` fail
    archive = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    archive.mkdir()
    with pytest.raises(ImportError, match="pip install nats_bench"):
        G.load_nb201(archive)
