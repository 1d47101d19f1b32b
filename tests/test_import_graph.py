"""The package's import graph: no cycles, no function-level imports of its own modules, one installed namespace.

Read from the sources with `ast` (cheap, no imports): every module of zico_jax (spaces/ installs as
zico_jax.spaces) and the edges its import statements make to other modules of the package.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Third-party modules the library may import inside a function: optional dependencies a user may not have.
OPTIONAL = {"tensorflow", "tensorflow_datasets", "nats_bench", "nas_201_api", "nasbench", "api", "naslib", "torch"}


def package_modules() -> dict[str, pathlib.Path]:
    modules = {}
    for base, prefix in ((ROOT / "zico_jax", "zico_jax"), (ROOT / "spaces", "zico_jax.spaces")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([prefix, *parts])] = path
    return modules


MODULES = package_modules()


def _resolve(name: str) -> str | None:
    """The package module an imported name lives in (`zico_jax.spaces.get_space` -> `zico_jax.spaces`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: pathlib.Path):
    """(imported package module, line, at module level) for each import statement of `module`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in tree.body:  # `with epy.lazy_imports():` at module level: module-level imports, loaded on first use
        if isinstance(node, ast.With) and any("lazy_imports" in ast.unparse(item.context_expr) for item in node.items):
            top.update(id(child) for child in node.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            yield name, node.lineno, id(node) in top


def graph() -> dict[str, set[str]]:
    edges = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name, _, _ in _imports(module, path):
            target = _resolve(name)
            if target and target != module and not module.startswith(target + "."):
                edges[module].add(target)
    return edges


def test_every_module_is_found():
    assert {"zico_jax", "zico_jax.spaces", "zico_jax.spaces.nats_tss", "zico_jax.engine", "zico_jax.cli",
            "zico_jax.nn.losses"} <= set(MODULES)


def test_no_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node, stack):
        state[node] = "active"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "active":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_function_level_imports():
    """Imports at module level only, except optional third-party dependencies (named in OPTIONAL)."""
    found = []
    for module, path in MODULES.items():
        for name, line, at_top in _imports(module, path):
            if not at_top and name.split(".")[0] not in OPTIONAL:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name} inside a function or class")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("lower, upper", [
    ("zico_jax.spaces", ("zico_jax.engine", "zico_jax.grads", "zico_jax.tape", "zico_jax.proxies", "zico_jax.cli",
                         "zico_jax.correlation", "zico_jax.search", "zico_jax.from_config")),
    ("zico_jax.nn", ("zico_jax.spaces", "zico_jax.engine", "zico_jax.grads", "zico_jax.proxies")),
    ("zico_jax.grads", ("zico_jax.spaces",)),
    ("zico_jax.configs", ("zico_jax.engine", "zico_jax.spaces", "zico_jax.cli")),
])
def test_dependencies_point_one_way(lower, upper):
    """Modules of `lower` import nothing of `upper` (spaces know nothing of the engine; nn is below both)."""
    edges = graph()
    bad = [f"{m} -> {t}" for m, targets in edges.items() if m == lower or m.startswith(lower + ".")
           for t in targets if any(t == u or t.startswith(u + ".") for u in upper)]
    assert not bad, "\n".join(bad)


def test_the_installed_package_is_one_namespace(tmp_path):
    """From a folder with no sources: `spaces` and `experiments` are not importable, `zico_jax.spaces` is."""
    code = ("import importlib.util, zico_jax.spaces as s; "
            "print(importlib.util.find_spec('spaces') is None, importlib.util.find_spec('experiments') is None, "
            "s.get_space('nats_tss').name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         check=True).stdout.split()
    assert out == ["True", "True", "nats_tss"]


def test_the_cli_starts_without_the_heavy_optional_modules():
    """`zico score` needs none of scipy.stats, matplotlib or orbax (~1 s of imports): they load on first use."""
    code = ("import sys, zico_jax.cli; "
            "print(sorted(m for m in ('scipy.stats', 'matplotlib', 'orbax.checkpoint') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
