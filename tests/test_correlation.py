"""run_correlation end to end on a tiny NAS-Bench-201 (C=4, N=1): rows, summary, plot, resume, config checks."""

import csv
import json
import math
import shutil
import subprocess
import sys

import pytest
from conftest import DATA, ROOT

from zico_jax import correlation as C
from zico_jax.configs.correlation import get_config
from zico_jax.engine import Engine
from zico_jax.groundtruth import load_nb201
from zico_jax.spaces import get_space

PROXIES = ("zico", "zico_bc")


def tiny_config(output_dir, **overrides):
    config = get_config()
    config.update(space_options={"C": 4, "N": 1}, num_archs=8, batch_size=4, num_batches=2, proxies="zico,zico_bc",
                  data_dir=str(DATA), output_dir=str(output_dir), log_every=4)
    config.update(**overrides)
    return config


@pytest.fixture()
def count_scored(monkeypatch):
    """The archs the engine scores, in order (a counting wrapper around Engine.score)."""
    scored = []
    original = Engine.score

    def counting(self, genotypes):
        for result in original(self, genotypes):
            scored.append(result.arch)
            yield result

    monkeypatch.setattr(Engine, "score", counting)
    return scored


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("complete")
    summary = C.run_correlation(tiny_config(out))
    return out, summary


def _scores(rows):
    return {r["arch"]: tuple(r[k] for k in (*PROXIES, "params", "flops")) for r in rows}


def test_end_to_end(complete_run):
    out, summary = complete_run
    rows = C.read_rows(out / "scores.jsonl")
    assert len(rows) == 8 and len({r["arch"] for r in rows}) == 8
    assert [r["arch"] for r in rows] == C.choose_archs(get_space("nats_tss"), 8, 0)
    gt = load_nb201(data_dir=DATA)
    row = rows[0]
    assert row["index"] == gt.index(row["arch"])
    assert row["proxies"] == list(PROXIES) and row["num_batches"] == 2 and row["batch_size"] == 4
    assert row["dtype"] == "float32" and row["beta"] == 1.0 and row["backend"] in ("tape", "supernet")
    assert row["space_options"]["C"] == 4 and row["seconds"] > 0 and row["params"] > 0

    written = json.loads((out / "summary.json").read_text())
    assert written["num_rows"] == 8 and written["proxies"] == [*PROXIES, "params", "flops"]
    for proxy in (*PROXIES, "params", "flops"):
        for column in ("cifar10valid_valid", "cifar10_test"):
            stats = written["correlations"][proxy][column]
            assert stats["n"] == 8
            assert math.isfinite(stats["kendall_tau"]) and math.isfinite(stats["spearman_rho"])
    assert written == json.loads(json.dumps(summary))  # what is returned is what is written
    table = (out / "summary.md").read_text()
    assert "| zico_bc | cifar10_test | 8 |" in table
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["num_archs"] == 8 and record["versions"]["jax"] and record["devices"]
    assert (out / "scatter.png").stat().st_size > 1000


def test_resume_scores_only_missing_archs(complete_run, tmp_path, count_scored):
    out, _ = complete_run
    lines = (out / "scores.jsonl").read_text().splitlines()
    # A run killed after 3 rows, in the middle of writing the 4th (no config.json: rows carry their semantics).
    (tmp_path / "scores.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:40])
    summary = C.run_correlation(tiny_config(tmp_path))
    complete = C.read_rows(out / "scores.jsonl")
    assert count_scored == [r["arch"] for r in complete[3:]]
    resumed = C.read_rows(tmp_path / "scores.jsonl")
    assert len(resumed) == 8 and _scores(resumed) == _scores(complete)  # exactly the uninterrupted scores
    assert summary["num_rows"] == 8 and summary["scored_now"] == 5
    assert summary["correlations"] == complete_run[1]["correlations"]

    count_scored.clear()  # a finished run resumes to nothing and only re-summarises
    C.run_correlation(tiny_config(tmp_path))
    assert count_scored == []


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_scores_csv_matches_the_jsonl_rows(complete_run, tmp_path, count_scored):
    out, _ = complete_run
    rows = C.read_rows(out / "scores.jsonl")
    table = _csv_rows(out / "scores.csv")
    header = ["arch", "index", *PROXIES, "params", "flops", "layers_counted", "seconds", "cifar10valid_valid",
              "cifar10_test"]
    assert list(table[0]) == header and [t["arch"] for t in table] == [r["arch"] for r in rows]
    gt = load_nb201(data_dir=DATA)
    for line, row in zip(table, rows):
        assert int(line["index"]) == row["index"] and int(line["params"]) == row["params"]
        assert int(line["layers_counted"]) == row["layers_counted"]
        assert [float(line[p]) for p in (*PROXIES, "seconds")] == [row[p] for p in (*PROXIES, "seconds")]
        assert float(line["cifar10_test"]) == gt.value(row["arch"], "cifar10_test")

    # A resumed run rewrites the whole table from every row; a null (NaN) score is an empty cell.
    lines = (out / "scores.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["zico_bc"] = None
    (tmp_path / "scores.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    C.run_correlation(tiny_config(tmp_path))
    assert count_scored == []
    resumed = _csv_rows(tmp_path / "scores.csv")
    assert len(resumed) == 8 and resumed[0]["zico_bc"] == "" and resumed[1:] == table[1:]
    assert resumed[0]["zico"] == table[0]["zico"]


def test_resume_with_other_settings_is_an_error(complete_run, tmp_path, count_scored):
    out, _ = complete_run
    shutil.copy(out / "scores.jsonl", tmp_path / "scores.jsonl")
    shutil.copy(out / "config.json", tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"cannot resume .*beta: 1\.0 there, 2\.0 now"):
        C.run_correlation(tiny_config(tmp_path, beta=2.0))
    with pytest.raises(ValueError, match="proxies"):
        C.run_correlation(tiny_config(tmp_path, proxies="zico"))
    (tmp_path / "config.json").unlink()  # the rows' own semantics are checked too
    with pytest.raises(ValueError, match="seed: 0 there, 1 now"):
        C.run_correlation(tiny_config(tmp_path, seed=1))
    assert count_scored == []
    # A folder without scores may hold any config.json: nothing would be mixed.
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(out / "config.json", empty / "config.json")
    C.check_resumable(empty, C.semantics_of(tiny_config(empty, beta=2.0), PROXIES))


def test_choose_archs_is_a_seeded_prefix_stable_sample():
    space = get_space("nats_tss")
    ten = C.choose_archs(space, 10, 0)
    assert ten[:4] == C.choose_archs(space, 4, 0) and len(set(ten)) == 10
    assert ten != C.choose_archs(space, 10, 1)
    every = C.choose_archs(space, 0, 0)
    assert len(every) == len(set(every)) == 15625 and C.choose_archs(space, -1, 0) == every


def test_summarize_drops_missing_and_non_finite():
    gt = load_nb201(data_dir=DATA)
    archs = gt.archs()[:5]
    truth = gt.values(archs, "cifar10_test")
    rows = [{"arch": a, "p": float(t)} for a, t in zip(archs, truth)]
    rows += [{"arch": "|none~0|+|none~0|none~1|+|bogus|", "p": 1.0}, {"arch": archs[0], "p": -5.0}]
    rows[1]["p"] = float("nan")
    summary = C.summarize(rows, gt, ["p", "absent"], ["cifar10_test"])
    assert summary["num_rows"] == 6 and summary["num_with_truth"] == 5
    stats = summary["correlations"]["p"]["cifar10_test"]
    assert stats["n"] == 4 and stats["kendall_tau"] == pytest.approx(1.0)  # first row per arch; NaN dropped
    assert summary["correlations"]["absent"]["cifar10_test"]["n"] == 0
    assert "| absent | cifar10_test | 0 | n/a |" in C.format_table(summary)


def test_entry_point_missing_data_is_one_line_and_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "experiments/correlation.py", f"--output_dir={tmp_path}", "--data_dir=/nonexistent/data"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("zico correlate: error:")]
    assert len(errors) == 1 and "/nonexistent/data" in errors[0] and "Traceback" not in result.stderr
