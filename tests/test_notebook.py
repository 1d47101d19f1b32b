"""The quick-start notebook runs top to bottom on a CPU with the offline data (as CI runs it)."""

from __future__ import annotations

import math
import os
import re
import sys

import pytest
from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "notebooks" / "zico_jax_quickstart.ipynb"


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_quickstart_notebook_executes(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook cleared"
    env = {k: v for k, v in os.environ.items() if k != "ZICO_JAX_DATA"}  # the packaged data, as a user has it
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["ZICO_JAX_CACHE"] = str(tmp_path / "xla_cache")
    # The kernel is this interpreter (the venv the package is installed in), whatever kernelspecs are installed.
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager
    from traitlets import default

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python 3", language="python")

    class Manager(KernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return ThisPython(data_dir=self.data_dir)

    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", kernel_manager_class=Manager,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)

    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert not [o for o in c.outputs if o.get("output_type") == "error"], c.source
    texts = [_text(c) for c in code]
    scoring = next(t for t in texts if "score zico=" in t)
    scores = re.findall(r"^score zico=(\S+) zico_bc=(\S+)", scoring, re.M)
    assert len(scores) == 8 and all(math.isfinite(float(v)) for pair in scores for v in pair)
    corr = next(t for t in texts if "Kendall tau" in t)
    taus = [float(v) for v in re.findall(r"Kendall tau = (\S+),", corr)]
    assert len(taus) == 2 and all(math.isfinite(t) and -1 <= t <= 1 for t in taus)
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in code for o in c.outputs), "the correlation cell shows a scatter plot"
    search = next(t for t in texts if "found accuracy" in t)
    found = float(re.search(r"found accuracy = (\S+), latency = (\S+) ms", search).group(1))
    found_latency = float(re.search(r"found accuracy = \S+, latency = (\S+) ms", search).group(1))
    best = float(re.search(r"best accuracy = (\S+),", search).group(1))
    assert 0 < found <= best and found_latency <= 4.0
