"""The `zico` command: JSON output reproduces the golden value; bad input is one line and a non-zero exit."""

import json

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
    (["score", "--arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--proxies", "zico,zen"],
     "unknown proxy 'zen'"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    assert run(argv) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("zico: error:") and message in err, err


def test_mismatched_weights(golden_dir, capsys):
    npz = str(golden_dir / "case_1.npz")  # weights of another architecture
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|"
    assert run(["score", "--arch", arch, "--weights", npz, "--inputs", npz]) == cli.EXIT_BAD_INPUT
    assert "cells.0.layers.0.op.1.weight" in capsys.readouterr().err
