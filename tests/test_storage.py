"""Every writer takes a bucket path: the same files land in `gs://` (an in-memory fsspec filesystem here) as on disk.

The `bucket` fixture serves `gs://` from fsspec's MemoryFileSystem, through the same etils.epath fsspec backend that
`gcsfs` plugs into on a real VM. The one GCS API call orbax makes about a bucket (whether it has a hierarchical
namespace) is answered "no", as for a default bucket.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT
from etils.epath import backend as epath_backend
from etils.epath import gpath
from fsspec.implementations.memory import MemoryFileSystem
from jax.experimental import multihost_utils
from matplotlib.figure import Figure
from orbax.checkpoint._src.path import gcs_utils
from test_correlation import tiny_config
from test_search import SPACE, StubScorer
from test_search import config as search_config

from zico_jax import correlation, interop, results, storage
from zico_jax.latency import export_layer_list
from zico_jax.search import SearchCheckpointer, SearchPreempted, run_search

BUCKET_SETUP = """
import fsspec
from etils.epath import gpath
from fsspec.implementations.memory import MemoryFileSystem
from orbax.checkpoint._src.path import gcs_utils

class MemoryBucket(MemoryFileSystem):
    protocol = ("gs", "gcs")
    store = {}
    pseudo_dirs = [""]

fsspec.register_implementation("gs", MemoryBucket, clobber=True)
fsspec.register_implementation("gcs", MemoryBucket, clobber=True)
gpath._is_tf_installed = lambda: False  # epath's fsspec backend, as without TensorFlow
gcs_utils.is_hierarchical_namespace_enabled = lambda path: False
"""


@pytest.fixture()
def bucket(monkeypatch):
    """`gs://...` in memory for one test; yields the filesystem class (its `store`: path -> file)."""

    class MemoryBucket(MemoryFileSystem):
        protocol = ("gs", "gcs")
        store: dict = {}
        pseudo_dirs = [""]

    for scheme in ("gs", "gcs"):
        # what fsspec.register_implementation writes to (the package's `fsspec.registry` is a read-only view of it)
        monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry, scheme, MemoryBucket)
    monkeypatch.setattr(gpath, "_is_tf_installed", lambda: False)
    monkeypatch.setattr(gcs_utils, "is_hierarchical_namespace_enabled", lambda path: False)
    epath_backend.fsspec_backend._get_filesystem.cache_clear()
    yield MemoryBucket
    epath_backend.fsspec_backend._get_filesystem.cache_clear()


def _files(root) -> dict[str, bytes]:
    """Every file under `root` (local or gs://), by path relative to root."""
    root = storage.as_path(root)
    return {os.fspath(dirpath / name)[len(os.fspath(root)) + 1:]: (dirpath / name).read_bytes()
            for dirpath, _, names in root.walk() for name in names}


def _without_timing(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_pathlib_would_not_do():
    """What the storage layer is for: pathlib makes a local folder of a bucket URI."""
    import pathlib

    assert str(pathlib.Path("gs://b/run")) == "gs:/b/run"
    assert os.fspath(storage.as_path("gs://b/run") / "x.json") == "gs://b/run/x.json"
    assert storage.is_remote("gs://b/run") and not storage.is_remote("runs/x")


def test_correlation_run_writes_the_same_files_to_a_bucket(tmp_path, bucket):
    local = correlation.run_correlation(tiny_config(tmp_path / "run", num_archs=4))
    remote = correlation.run_correlation(tiny_config("gs://bucket/runs/nb201", num_archs=4))
    on_disk, in_bucket = _files(tmp_path / "run"), _files("gs://bucket/runs/nb201")
    assert sorted(in_bucket) == sorted(on_disk)
    assert {"scores.jsonl", "scores.csv", "summary.json", "summary.md", "scatter.png", "config.json"} <= set(on_disk)
    assert not any(name.startswith("gs:") for name in os.listdir(tmp_path))  # nothing written to a local "gs:" folder
    assert in_bucket["summary.md"] == on_disk["summary.md"]
    assert in_bucket["scatter.png"][:8] == b"\x89PNG\r\n\x1a\n"
    rows = [_without_timing(results.read_rows(root / "scores.jsonl")) for root in (tmp_path / "run",
                                                                                   storage.as_path("gs://bucket/runs/nb201"))]
    assert rows[0] == rows[1] and len(rows[0]) == 4
    tables = [list(csv.DictReader(io.StringIO(files["scores.csv"].decode()))) for files in (on_disk, in_bucket)]
    assert _without_timing(tables[0]) == _without_timing(tables[1])
    assert local["correlations"] == remote["correlations"]
    again = correlation.run_correlation(tiny_config("gs://bucket/runs/nb201", num_archs=4))  # resumes from the bucket
    assert again["scored_now"] == 0 and again["correlations"] == remote["correlations"]


def test_search_preempted_in_a_bucket_resumes_to_the_same_result(tmp_path, bucket, monkeypatch):
    """A preemption notice at round 3 (JAX's sync point, as orbax reads it): every host saves that round and
    stops with exit status 143; the rerun resumes from the bucket and ends where an uninterrupted run ends."""
    c = search_config(iterations=40, checkpoint_every=1000)
    whole_scorer = StubScorer()
    whole = run_search(SPACE, whole_scorer, c, output_dir=tmp_path / "whole")
    monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point", lambda step: step == 3)
    with pytest.raises(SearchPreempted) as stop:
        run_search(SPACE, StubScorer(), c, output_dir="gs://bucket/search")
    assert stop.value.code == 143 and stop.value.iteration == 16  # 4 rounds of 4 children
    assert SearchCheckpointer("gs://bucket/search/checkpoints").manager.all_steps() == [16]
    monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point", lambda step: False)
    resumed_scorer = StubScorer()
    resumed = run_search(SPACE, resumed_scorer, c, output_dir="gs://bucket/search")
    assert resumed["best"] == whole["best"] and resumed["iterations"] == whole["iterations"] == 40
    assert sum(map(len, resumed_scorer.calls)) < sum(map(len, whole_scorer.calls))  # resumed, not restarted
    in_bucket, on_disk = _files("gs://bucket/search"), _files(tmp_path / "whole")
    assert {"best.json", "summary.md", "search.jsonl", "search_config.json", "run.json"} <= set(in_bucket)
    assert in_bucket["search.jsonl"] == on_disk["search.jsonl"]  # every row once, as in the uninterrupted run
    best = [json.loads(files["best.json"]) for files in (in_bucket, on_disk)]
    assert {k: v for k, v in best[0].items() if k != "seconds"} == {k: v for k, v in best[1].items() if k != "seconds"}


def test_results_log_in_a_bucket_rewrites_the_object(bucket):
    path = "gs://bucket/run/scores.jsonl"
    with results.ResultsLog(path, sync_seconds=0) as log:
        log.append({"arch": "a", "zico": 1.0})
        assert results.read_rows(path) == [{"arch": "a", "zico": 1.0}]  # durable after each row
        log.append({"arch": "b", "zico": math.nan})
        assert results.read_rows(path)[-1] == {"arch": "b", "zico": None}
    slow = results.ResultsLog(path, sync_seconds=3600)
    assert slow.done() == {"a", "b"}
    slow.append({"arch": "c", "zico": 3.0})
    assert len(results.read_rows(path)) == 2  # not yet rewritten: a kill now loses row c, which a rerun redoes
    slow.close()
    assert [r["arch"] for r in results.read_rows(path)] == ["a", "b", "c"]


@pytest.mark.parametrize("writer", ["json", "csv", "figure", "layer_list", "naslib"])
def test_each_writer_writes_the_same_bytes_to_a_bucket(tmp_path, bucket, writer):
    def write(root):
        root = storage.as_path(root)
        if writer == "json":
            results.write_json(root / "a" / "x.json", {"tau": math.nan, "n": 3})
            return root / "a" / "x.json"
        if writer == "csv":
            return results.write_csv(root / "x.csv", [{"arch": "a", "zico": 1.5}, {"arch": "b"}], ["arch", "zico"])
        if writer == "figure":
            fig = Figure(figsize=(2, 2))
            fig.add_subplot().plot([0, 1], [1, 0])
            return storage.save_figure(fig, root / "plot.png", dpi=50, metadata={"Software": None})
        if writer == "layer_list":
            archs = [SPACE.sample(np.random.default_rng(i)) for i in range(2)]
            export_layer_list(SPACE, archs, root / "layers.csv")
            return root / "layers.csv"
        rows = [{"arch": str(SPACE.sample(np.random.default_rng(0))), "zico": 2.0, "seconds": 0.5}]
        return interop.export_zc_json(rows, "nats_tss", "cifar10", root / "zc_nasbench201.json")

    local, remote = write(tmp_path), write("gs://bucket/out")
    assert os.fspath(remote).startswith("gs://bucket/out/")
    assert remote.read_bytes() == local.read_bytes() and local.read_bytes()


def test_compilation_cache_in_a_bucket(tmp_path):
    """JAX writes its persistent cache through epath: executables land in the bucket (a subprocess: the cache
    setting is global to a process)."""
    script = BUCKET_SETUP + textwrap.dedent("""
        import jax, jax.numpy as jnp
        from zico_jax.compilation_cache import enable_compilation_cache
        print(enable_compilation_cache("gs://bucket/xla"))
        jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).block_until_ready()
        print(sum(key.startswith("gs://bucket/xla/") and key.endswith("-cache") for key in MemoryBucket.store))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder, cached = proc.stdout.split()[-2:]
    assert folder == "gs://bucket/xla" and int(cached) >= 1
    assert not (tmp_path / "gs:").exists()
