"""The `zico` command: JSON output reproduces the golden value; bad input is one line and a non-zero exit."""

import json
import math

import pytest

from zico_jax import cli


def run(argv):
    # The persistent cache stays off in tests: cache hits would hide the compilations other tests count.
    return cli.main(argv + ["--no-compilation-cache"])


def test_score_json_with_imported_weights_and_inputs(golden_dir, capsys, x64):
    case = json.loads((golden_dir / "expected.json").read_text())["cases"][2]
    npz = str(golden_dir / case["file"])
    code = run(["score", "--arch", case["arch"], "--weights", npz, "--inputs", npz, "--x64", "--json",
                     "--proxies", "zico,zico_bc", "--beta", "0"])
    assert code == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["arch"] == case["arch"] and row["params"] == case["params"]
    assert row["zico"] == pytest.approx(case["zico_float64"], rel=1e-6)
    assert row["zico_bc"] == row["zico"]  # beta = 0
    assert row["dtype"] == "float64" and row["num_batches"] == 2 and row["batch_size"] == 32


@pytest.mark.parametrize("argv, message", [
    (["score", "--arch", "|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op 'conv_7x7'"),
    (["score", "--arch", "|none~0|+|none~0|none~1|"], "expected 3 nodes"),
    (["score", "--arch", "|none~2|+|none~0|none~1|+|none~0|none~1|none~2|"], "source 2"),
    (["score", "--arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--inputs", "/nonexistent/x.npz"],
     "/nonexistent/x.npz"),
    (["score", "--space", "nb999", "--arch", "x"], "unknown space 'nb999'"),
    (["score", "--arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--proxies", "zico,zenn"],
     "unknown proxy 'zenn'"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    assert run(argv) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("zico score: error:") and message in err, err


def test_mismatched_weights(golden_dir, capsys):
    npz = str(golden_dir / "case_1.npz")  # weights of another architecture
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|"
    assert run(["score", "--arch", arch, "--weights", npz, "--inputs", npz]) == cli.EXIT_BAD_INPUT
    assert "cells.0.layers.0.op.1.weight" in capsys.readouterr().err


def test_export_layers_writes_distinct_layers_that_load_back(tmp_path, capsys):
    import csv

    from zico_jax.latency import layer_keys, load_layer_table
    from zico_jax.spaces import get_space

    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    out = tmp_path / "layers.csv"
    assert run(["export-layers", "--arch", arch, "--sample", "3", "--output", str(out)]) == 0
    assert "distinct layers of 4 networks" in capsys.readouterr().out
    with out.open() as f:
        rows = list(csv.DictReader(f))
    space = get_space("nats_tss")
    own = layer_keys(space, space.parse(arch))
    written = {tuple(r[c] for c in list(r)[:-1]) for r in rows}
    assert len(written) == len(rows)  # distinct
    assert {tuple(str(getattr(k, c)) for c in list(rows[0])[:-1]) for k in own} <= written
    assert all(r["latency_ms"] == "" for r in rows)
    for r in rows:  # fill in as a user would after measuring, then load back
        r["latency_ms"] = "0.5"
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    table = load_layer_table(out)
    assert len(table) == len(rows)
    assert table.network_latency(own) == 0.5 * len(own)


def test_export_layers_without_architectures_is_a_clear_error(tmp_path, capsys):
    assert run(["export-layers", "--output", str(tmp_path / "x.csv")]) == cli.EXIT_BAD_INPUT
    assert "no architectures" in capsys.readouterr().err


def test_score_defaults_are_the_papers_two_batches_of_128(capsys):
    """`zico score --json` with no batch flags scores on the paper's 2 x 128 images (Sec. 4.5), with separate
    per-batch gradients (the current official code) and the official layer set."""
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert run(["score", "--arch", arch, "--json", "--proxies", "zico"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (row["num_batches"], row["batch_size"]) == (2, 128)
    assert row["gradients"] == "per_batch" and row["count_transposed_conv"] is False
    assert row["dtype"] == "float32" and math.isfinite(row["zico"]) and row["layers_counted"] > 0
