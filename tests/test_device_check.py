"""benchmarks/device_check.py, the prepared accelerator check, runs end to end (its --dry-run, on this CPU)."""

import json
import math
import subprocess
import sys

from conftest import ROOT


def test_device_check_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "device_check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--dry-run", "--loops", "map",
                           "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text(), parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))
    assert report["environment"]["backend"] == "cpu" and report["setup"]["dry_run"] is True
    run = report["throughput_map"]
    assert run["scored"] == run["finite_scores"] == 8 and run["candidates_per_s"] > 0
    assert run["projected_nb201_s"] == 15_625 / run["candidates_per_s"]
    agree = report["agreement"]
    assert agree["float64_max_rel_diff"] < 1e-9  # host tape vs "accelerator" supernet: the same function in float64
    assert math.isfinite(agree["float32_default_max_rel_diff"]) and len(agree["archs"]) == 2
    assert report["total_s"] > 0
