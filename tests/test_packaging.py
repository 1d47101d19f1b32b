"""setup.py's ranges: they admit the jax / flax / Python releases the code is kept correct on, and CI's
lowest-versions constraints (.ci/lowest_constraints.txt) are exactly setup.py's lower bounds."""

import importlib.util
import pathlib

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
