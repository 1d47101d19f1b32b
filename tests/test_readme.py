"""The README's Python example runs as written (on a smaller network and batch, for speed) and agrees with the
engine."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(capsys):
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    small = block.replace('get_space("nats_tss")', 'get_space("nats_tss", C=4, N=1)').replace(
        "batch_size=128", "batch_size=8")
    assert small != block
    namespace = {}
    exec(compile(small, "README.md", "exec"), namespace)
    engine_line, zico_line = capsys.readouterr().out.strip().splitlines()[-2:]
    zico_of_engine = namespace["r"].scores["zico"]
    assert namespace["r"].arch in engine_line
    # same network, other weights (the engine folds the architecture into the key): finite, same magnitude
    assert float(zico_line) == pytest.approx(zico_of_engine, rel=0.5)
