"""ResultsLog keeps every finished row through a kill and resumes from it; Progress logs plain lines."""

import json

import pytest

from zico_jax import results
from zico_jax.results import Progress, ResultsLog, read_rows


def test_append_then_resume(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "scores.jsonl"
    synced = []
    real_fsync = results.os.fsync
    monkeypatch.setattr(results.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with ResultsLog(path) as log:
        assert log.done() == set() and log.writer
        log.append({"arch": "a", "zico": 1.5})
        log.append({"arch": "b", "zico": float("nan")})
    assert len(synced) == 2  # one fsync per row: a kill loses at most the row in flight

    with ResultsLog(path) as log:
        assert log.done() == {"a", "b"}
        log.append({"arch": "c", "zico": 3.0})
        assert log.done() == {"a", "b", "c"}
        assert [r["arch"] for r in log.rows()] == ["a", "b", "c"]
    rows = read_rows(path)
    assert [r["arch"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["zico"] == 1.5 and rows[1]["zico"] is None  # NaN is not JSON: written as null


def test_truncated_last_line_is_ignored_and_rewritten_on_its_own_line(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text(json.dumps({"arch": "a"}) + "\n" + json.dumps({"arch": "b"}) + "\n" + '{"arch": "c", "zi')
    assert [r["arch"] for r in read_rows(path)] == ["a", "b"]
    with ResultsLog(path) as log:
        assert log.done() == {"a", "b"}
        log.append({"arch": "c", "zico": 2.0})
    lines = path.read_text().split("\n")
    assert lines[2] == '{"arch": "c", "zi' and json.loads(lines[3]) == {"arch": "c", "zico": 2.0}
    assert [r["arch"] for r in read_rows(path)] == ["a", "b", "c"]
    with ResultsLog(path) as log:  # a second resume reads the repaired file the same way
        assert log.done() == {"a", "b", "c"}


def test_missing_file_and_bad_rows(tmp_path):
    assert read_rows(tmp_path / "absent.jsonl") == []
    path = tmp_path / "scores.jsonl"
    with ResultsLog(path) as log, pytest.raises(ValueError, match="'arch' field"):
        log.append({"zico": 1.0})
    path.write_text('{"name": "x"}\n')
    with pytest.raises(ValueError, match="row 1 has no 'arch'"):
        ResultsLog(path)
    path.write_text('[1, 2]\n')
    with pytest.raises(ValueError, match="JSON object"):
        read_rows(path)


def test_non_writer_process_reads_but_does_not_write(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text(json.dumps({"arch": "a"}) + "\n")
    with ResultsLog(path, writer=False) as log:
        assert log.done() == {"a"}
        log.append({"arch": "b"})
        assert log.done() == {"a", "b"}
    assert [r["arch"] for r in read_rows(path)] == ["a"]


def test_progress_logs_every_k_items(monkeypatch):
    lines = []
    monkeypatch.setattr(results.logging, "info", lambda fmt, *args: lines.append(fmt % args))
    with Progress(total=5, desc="scoring", log_every=2) as bar:
        for _ in range(5):
            bar.update()
    assert len(lines) == 3  # at 2, 4 and the final 5
    assert lines[0].startswith("scoring: 2/5 (40%)") and "/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("scoring: 5/5 (100%)")


def test_every_writer_emits_strict_json(tmp_path):
    """NaN and infinities are not JSON: ResultsLog rows and write_json files hold null there, and parse with a
    parser that rejects NaN tokens; the search reads such a row back as NaN."""
    import math

    from zico_jax.results import ResultsLog, dumps, write_json

    def strict(text):
        return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))

    with ResultsLog(tmp_path / "rows.jsonl") as log:
        log.append({"arch": "a", "latency": math.nan, "zico": math.inf, "params": 3})
    row = strict((tmp_path / "rows.jsonl").read_text().strip())
    assert row == {"arch": "a", "latency": None, "zico": None, "params": 3}
    write_json(tmp_path / "s.json", {"x": [1.0, -math.inf], "y": {"z": math.nan}})
    assert strict((tmp_path / "s.json").read_text()) == {"x": [1.0, None], "y": {"z": None}}
    assert strict(dumps({"k": (math.nan, 2)})) == {"k": [None, 2]}


def test_write_csv_empty_cells_for_missing_and_nan(tmp_path):
    import csv

    import numpy as np

    path = results.write_csv(tmp_path / "sub" / "t.csv", [
        {"arch": "a,b", "x": 0.1, "n": 3, "y": float("nan")},
        {"arch": "c", "x": np.float32("nan"), "n": None, "y": float("inf"), "extra": 1}], ["arch", "x", "n", "y"])
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table == [["arch", "x", "n", "y"], ["a,b", "0.1", "3", ""], ["c", "", "", ""]]
    assert not (tmp_path / "sub" / "t.csv.tmp").exists()
