"""The lowest versions setup.py admits, as a pip constraints file: `==<lower bound>` for every requirement of
install_requires and of the "test" extra. .ci/run installs the package under it for the lowest-versions job.

    python .ci/lowest_constraints.py > .ci/lowest_constraints.txt

tests/test_packaging.py checks that the committed file is what this prints.
"""

from __future__ import annotations

import ast
import pathlib
import sys

from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parent.parent


def setup_kwargs(path=ROOT / "setup.py") -> dict:
    """The literal keyword arguments of setup.py's `setup(...)` call (install_requires, extras_require,
    python_requires, ...), read with `ast` without running setup.py."""
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            out = {}
            for kw in node.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:  # open(...).read(), find_packages(...): not literals
                    pass
            return out
    raise ValueError(f"no setup(...) call in {path}")


def lowest_pins(requirements) -> list[str]:
    """`name==v` for each requirement, v its `>=` bound; a requirement without one is an error (there is no
    lowest version to test)."""
    pins = []
    for line in requirements:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        if len(lows) != 1:
            raise ValueError(f"{line!r}: needs exactly one '>=' lower bound")
        pins.append(f"{req.name}=={lows[0]}")
    return pins


def constraints_text(path=ROOT / "setup.py") -> str:
    kwargs = setup_kwargs(path)
    pins = lowest_pins(kwargs["install_requires"]) + lowest_pins(kwargs.get("extras_require", {}).get("test", []))
    header = ("# The lowest versions setup.py admits (install_requires and the 'test' extra), for .ci/run's\n"
              "# lowest-versions job. Generated: python .ci/lowest_constraints.py > .ci/lowest_constraints.txt\n")
    return header + "".join(p + "\n" for p in pins)


if __name__ == "__main__":
    sys.stdout.write(constraints_text())
