"""run_ablation end to end on a tiny NAS-Bench-201 (C=4, N=1) with 2 seeds: table, statistics, files, resume;
cell validation and the NAS-Bench-Suite-Zero protocol's plan."""

import csv
import json
import math
import statistics
import subprocess
import sys

import pytest
from conftest import DATA, ROOT

from zico_jax import ablation as A
from zico_jax.configs.ablate import get_config

PROXIES = ("zico", "params", "flops")
COLUMNS = ("cifar10valid_valid", "cifar10_test")
SEEDS = (0, 1)


def tiny_config(output_dir, **overrides):
    config = get_config()
    config.update(cells=["nats_tss:cifar10"], proxies=",".join(PROXIES), num_archs=6, seeds=list(SEEDS),
                  batch_size=4, num_batches=2, data_dir=str(DATA), output_dir=str(output_dir), log_every=6)
    config.space_options = {"C": 4, "N": 1}
    config.update(**overrides)
    return config


@pytest.fixture(scope="module")
def ablation_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    return out, A.run_ablation(tiny_config(out))


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_table_has_one_row_per_cell_proxy_column_with_seed_statistics(ablation_run):
    out, rows = ablation_run
    table = _read_csv(out / "ablation.csv")
    assert [(r["cell"], r["proxy"], r["truth_column"]) for r in table] == \
        [("nats_tss:cifar10", p, c) for p in PROXIES for c in COLUMNS]
    summaries = [json.loads((out / "nats_tss-cifar10" / f"seed_{s}" / "summary.json").read_text()) for s in SEEDS]
    assert [s["num_rows"] for s in summaries] == [6, 6]
    for row in table:
        assert row["seeds"] == "2" and row["n"] == "6"
        for stat in A.STATISTICS:
            values = [s["correlations"][row["proxy"]][row["truth_column"]][stat] for s in summaries]
            assert all(v is not None and math.isfinite(v) for v in values)
            assert float(row[f"{stat}_mean"]) == pytest.approx(statistics.mean(values), abs=1e-12)
            assert float(row[f"{stat}_std"]) == pytest.approx(statistics.stdev(values), abs=1e-12)  # ddof=1
    # The two seeds draw different architectures (and init/batches), so their samples differ.
    first, second = ([json.loads(line)["arch"] for line in
                      (out / "nats_tss-cifar10" / f"seed_{s}" / "scores.jsonl").read_text().splitlines()]
                     for s in SEEDS)
    assert set(first) != set(second)
    markdown = (out / "ablation.md").read_text()
    zico_test = next(r for r in rows if r["proxy"] == "zico" and r["truth_column"] == "cifar10_test")
    assert f"| nats_tss:cifar10 | zico | cifar10_test | 2 | 6 | {zico_test['kendall_tau_mean']:.4f} ± " in markdown


def test_files_and_run_record(ablation_run):
    out, rows = ablation_run
    for name in ("heatmap.png", "scatter_nats_tss-cifar10.png"):
        assert (out / name).stat().st_size > 1000
    record = json.loads((out / "run.json").read_text())
    assert set(record["versions"]) == {"jax", "flax", "optax", "numpy", "scipy", "python"}
    assert all(record["versions"].values()) and record["devices"]
    assert record["config"]["seeds"] == list(SEEDS) and record["config"]["proxies"] == ",".join(PROXIES)
    assert [(r["seed"], r["num_archs"]) for r in record["runs"]] == [(0, 6), (1, 6)]
    proxies, cells, matrix = A.heatmap_matrix(rows)  # rows = proxies, columns = cells, main column's tau
    assert proxies == list(PROXIES) and cells == ["nats_tss:cifar10"] and matrix.shape == (3, 1)
    main = {r["proxy"]: r["kendall_tau_mean"] for r in rows if r["truth_column"] == "cifar10_test"}
    assert list(matrix[:, 0]) == [main[p] for p in PROXIES]


def test_rerun_resumes_without_rescoring(ablation_run):
    out, rows = ablation_run
    paths = [out / "nats_tss-cifar10" / f"seed_{s}" / "scores.jsonl" for s in SEEDS]
    before = [p.read_text() for p in paths]
    again = A.run_ablation(tiny_config(out))
    assert [p.read_text() for p in paths] == before  # no row appended, none rewritten
    assert again == rows


@pytest.mark.parametrize("cell, words", [("nats_tss", "'nats_tss'"), ("nope:cifar10", "'nope:cifar10'"),
                                         ("nasbench101:cifar100", "dataset 'cifar100'"),
                                         ("transnas101_micro:nope", "unknown task 'nope'")])
def test_malformed_cell_is_a_value_error_naming_it(cell, words, tmp_path):
    with pytest.raises(ValueError, match=f"ablation cell '{cell}'.*") as err:
        A.run_ablation(tiny_config(tmp_path, cells=["nats_tss:cifar10", cell]))
    assert words in str(err.value)
    assert not any(tmp_path.iterdir())  # rejected before anything is written or scored


def test_unavailable_data_fails_before_any_scoring(tmp_path):
    with pytest.raises(ValueError, match="ablation cell 'nats_tss:cifar100': dataset 'cifar100' has no offline"):
        A.run_ablation(tiny_config(tmp_path, cells=["nats_tss:cifar10", "nats_tss:cifar100"]))
    assert not any(tmp_path.iterdir())


def test_cell_formats():
    assert A.parse_cell("transnas101_micro:class_scene") == A.parse_cell("transnas101_micro:cifar10:class_scene")
    cell = A.parse_cell({"space": "nats_tss", "dataset": "cifar100", "space_options": {"C": 4}})
    assert cell.name == "nats_tss-cifar100" and cell.space_options == {"C": 4}
    sized = A.parse_cell({"space": "nats_tss", "space_options": {"C": 8}, "label": "nats_tss:cifar10:C8"})
    assert sized.dataset == "cifar10" and sized.name == "nats_tss-cifar10-C8"
    with pytest.raises(ValueError, match="label"):
        A.parse_cell({"space": "nats_tss", "label": "../x"})
    with pytest.raises(ValueError, match="twice"):
        A.parse_cells(["nats_tss:cifar10", "nats_tss:cifar10"])


def test_suite_zero_protocol_is_1000_archs_times_10_seeds(tmp_path):
    config = tiny_config(tmp_path, protocol="suite_zero", cells=["nats_tss:cifar10", "nasbench101:cifar10"])
    runs = A.plan(config)
    assert len(runs) == 20
    for cell in ("nats_tss:cifar10", "nasbench101:cifar10"):
        mine = [(seed, run) for c, seed, run in runs if c.label == cell]
        assert [seed for seed, _ in mine] == list(range(10))
        assert all(run.num_archs == 1000 and run.arch_seed == seed and run.seed == seed for seed, run in mine)
        assert len({run.output_dir for _, run in mine}) == 10
    # settings pass through
    assert runs[0][2].batch_size == 4 and runs[0][2].space_options.to_dict() == {"C": 4, "N": 1}
    assert not any(tmp_path.iterdir())


def test_entry_point_bad_cell_is_one_line_and_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "experiments/ablate.py", "--cells=nats_tss:cifar10,nope:cifar10", "--seeds=0,1",
         f"--output_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("zico ablate: error:")]
    assert len(errors) == 1 and "'nope:cifar10'" in errors[0] and "Traceback" not in result.stderr
