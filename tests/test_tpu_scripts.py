"""tpu_scripts/: every script parses, launches an experiment module that exists, with flags that experiment defines,
and reaches gcloud with the settings from the environment (gcloud replaced by a stub that records its arguments).

Cheap: bash -n, the experiments' sources read with `ast` (no absl flag parsing, no jax), the config files' get_config().
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tpu_scripts"
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
EXPECTED = {"config.sh", "create.sh", "install.sh", "run_correlation.sh", "run_search.sh", "delete.sh"}

LAUNCH = re.compile(r"-m\s+experiments\.(\w+)(.*)")
FLAG = re.compile(r"(?<![\w-])--([A-Za-z_][\w.]*)")


def test_the_scripts_are_there():
    assert {p.name for p in SHELL_SCRIPTS} >= EXPECTED
    assert (SCRIPTS / "README.md").is_file()


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_script_is_valid_strict_bash(script):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n"), "shebang"
    assert "\nset -euo pipefail\n" in text, "strict mode"
    assert re.search(r"^# Usage", text, re.M) or "Usage" in text.split("set -euo")[0], "usage comment at the top"
    assert script.stat().st_mode & stat.S_IXUSR, "executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _launches() -> list[tuple[str, str, list[str]]]:
    """(script, experiment, flags) for every `-m experiments.NAME ...` line and every usage example
    `run_NAME.sh --flag ...` in a comment."""
    found = []
    for script in SHELL_SCRIPTS:
        for line in script.read_text().splitlines():
            m = LAUNCH.search(line)
            if m and not line.lstrip().startswith("#"):
                found.append((script.name, m.group(1), FLAG.findall(m.group(2))))
            example = re.search(r"run_(\w+)\.sh(.*)", line)
            if example and line.lstrip().startswith("#"):
                found.append((script.name, example.group(1), FLAG.findall(example.group(2))))
    return found


def _experiment_flags(name: str) -> set[str]:
    """The flag names experiments/NAME.py defines (flags.DEFINE_*(...) and config_flags.DEFINE_config_file(...))."""
    tree = ast.parse((ROOT / "experiments" / f"{name}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("DEFINE") and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
            if node.func.attr == "DEFINE_bool" or node.func.attr == "DEFINE_boolean":
                names.add("no" + node.args[0].value)
    return names


def _config(name: str):
    path = ROOT / "experiments" / "configs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_tpu_test_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _has_field(config, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError, AttributeError):
            return False
    return True


def test_run_scripts_launch_existing_experiments():
    launched = {(script, name) for script, name, _ in _launches() if not script.startswith("config")}
    assert ("run_correlation.sh", "correlation") in launched
    assert ("run_search.sh", "search") in launched
    for script, name in launched:
        assert (ROOT / "experiments" / f"{name}.py").is_file(), f"{script} launches experiments.{name}: no such module"
        assert importlib.util.find_spec(f"experiments.{name}") is not None


def test_every_flag_a_script_passes_is_defined_by_its_experiment():
    launches = _launches()
    assert sum(len(flags) for _, _, flags in launches) >= 4  # the launch lines and the usage examples
    for script, name, flags in launches:
        defined = _experiment_flags(name)
        assert {"config", "output_dir", "space"} <= defined  # the parser reads the experiment's flags at all
        assert "not_a_flag" not in defined
        config = _config(name)
        for flag in flags:
            if flag.startswith("config."):
                assert _has_field(config, flag[len("config."):]), f"{script}: --{flag}: no such field in " \
                    f"experiments/configs/{name}.py"
            else:
                assert flag in defined, f"{script}: --{flag} is not a flag of experiments.{name}"


def test_the_field_check_rejects_unknown_fields():
    config = _config("search")
    assert _has_field(config, "budgets.latency") and _has_field(config, "data_dir")
    assert not _has_field(config, "budgets.nope") and not _has_field(config, "nope")


@pytest.fixture()
def fake_gcloud(tmp_path):
    """A `gcloud` on PATH that appends its arguments to calls.txt (each ended by NUL, each call by \\x1e)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    stub = bin_dir / "gcloud"
    stub.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "{calls}"\nprintf "\\036" >> "{calls}"\n')
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("BUCKET", "PROJECT", "REPO_URL", "RUN_NAME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env, calls


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_run_search_reaches_every_worker_with_the_environment_settings(fake_gcloud):
    env, calls = fake_gcloud
    env.update(TPU_NAME="my-tpu", ZONE="europe-west4-a", RUN_NAME="s1")
    result = subprocess.run([str(SCRIPTS / "run_search.sh"), "--proxy=zico_bc", "--config.budgets.latency=10"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    recorded = [call.split("\0")[:-1] for call in calls.read_text().split("\x1e")[:-1]]
    assert len(recorded) == 1  # no BUCKET: no upload step on worker 0, one ssh to every worker
    args = recorded[0]
    assert args[:5] == ["compute", "tpus", "tpu-vm", "ssh", "my-tpu"]
    assert "--worker=all" in args and "--zone=europe-west4-a" in args
    command = next(a for a in args if a.startswith("--command="))
    for part in ("experiments.search", "--output_dir=runs/s1", "--proxy=zico_bc", "nohup", "ZICO_JAX_DATA"):
        assert part in command
    assert "tail -f" in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_run_correlation_refuses_its_own_output_dir(fake_gcloud):
    env, calls = fake_gcloud
    result = subprocess.run([str(SCRIPTS / "run_correlation.sh"), "--output_dir=elsewhere"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "RUN_NAME" in result.stderr
    assert not calls.exists()  # nothing was started
