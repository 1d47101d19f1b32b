"""setup.py's ranges: they admit the jax / flax / Python releases the code is kept correct on, and CI's
lowest-versions constraints (.ci/lowest_constraints.txt) are exactly setup.py's lower bounds."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _lowest_constraints_module():
    spec = importlib.util.spec_from_file_location("lowest_constraints", ROOT / ".ci" / "lowest_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LC = _lowest_constraints_module()
KWARGS = LC.setup_kwargs(ROOT / "setup.py")
REQUIRES = {Requirement(r).name: Requirement(r).specifier for r in KWARGS["install_requires"]}


@pytest.mark.parametrize("name, version", [
    ("jax", "0.10.2"), ("jax", "0.11.0"), ("jax", "0.12.0"), ("jax", "0.12.1"),
    ("flax", "0.12.8"), ("flax", "0.12.12"),
    ("optax", "0.2.8"), ("orbax-checkpoint", "0.12.8"),
])
def test_ranges_admit_the_supported_releases(name, version):
    assert REQUIRES[name].contains(version), (name, str(REQUIRES[name]))


def test_ranges_stop_before_the_next_minor_release():
    assert not REQUIRES["jax"].contains("0.13.0") and not REQUIRES["flax"].contains("0.13.0")


def test_python_requires_admits_3_11_and_3_12():
    python = SpecifierSet(KWARGS["python_requires"])
    assert python.contains("3.11") and python.contains("3.12") and not python.contains("3.10")


def test_lowest_constraints_file_matches_setup_py():
    """Regenerate with `python .ci/lowest_constraints.py > .ci/lowest_constraints.txt` after changing a bound."""
    assert (ROOT / ".ci" / "lowest_constraints.txt").read_text() == LC.constraints_text(ROOT / "setup.py")


def test_every_requirement_has_a_lower_bound():
    pins = LC.lowest_pins(KWARGS["install_requires"])
    assert [p.split("==")[0] for p in pins] == list(REQUIRES)
    with pytest.raises(ValueError):
        LC.lowest_pins(["jax<0.13"])


def test_ruff_is_clean():
    """The lint and import-order rules of ruff.toml hold over the whole repository."""
    ruff = pytest.importorskip("ruff")
    binary = pathlib.Path(ruff.find_ruff_bin())
    result = subprocess.run([str(binary), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]


def test_one_version_string():
    """setup.py reads zico_jax/version.py (no literal version of its own); the package and `zico --version`
    agree with it."""
    import zico_jax
    from zico_jax import cli

    text = (ROOT / "zico_jax" / "version.py").read_text()
    assert f'__version__ = "{zico_jax.__version__}"' in text
    assert "version=VERSION" in (ROOT / "setup.py").read_text() and "version" not in KWARGS
    printed = subprocess.run([sys.executable, "-c", "from zico_jax import cli; cli.main(['--version'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == f"zico-jax {zico_jax.__version__}"
    assert cli.main(["--version"]) == 0
