"""The shape of the tree: layers point one way, no import cycle, serving without training.

Imports are read with ``ast`` from the source files, so a test fails on the line that adds
an offending import, whether or not anything runs it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BELOW_API = ("backend.ml", "backend.positions", "backend.db")
TRAINING_ONLY = ("sklearn", "optuna", "tqdm")
# What a replica runs to answer and to track; the training job imports the rest lazily.
SERVING = ("backend.ml.predictor", "backend.ml.registry", "backend.ml.contributions",
           "backend.ml.performance_tracker", "backend.ml.metrics", "backend.ml.candles_json",
           "backend.positions.service", "backend.positions.ml_exit")


@cache
def modules() -> dict[str, Path]:
    """Every module under backend/, by dotted name (a package by its own name)."""
    found = {}
    for path in (ROOT / "backend").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    """The dotted names an import statement imports (``from a import b``: ``a.b`` and ``a``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".")
        if modules()[module].name != "__init__.py":
            package.pop()
        package = package[:len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)


def _module_level(body: list[ast.stmt], *, typing: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports at module level (inside top-level if/try too); ``if TYPE_CHECKING:`` blocks
    only when ``typing`` (they never run, but a cycle of types is a cycle of the design)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try):
            type_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            blocks = [node.orelse] if type_only and not typing else [
                node.body, node.orelse, getattr(node, "finalbody", [])]
            for block in blocks:
                yield from _module_level(block, typing=typing)
            for handler in getattr(node, "handlers", []):
                yield from _module_level(handler.body, typing=typing)


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(modules()[module].read_text(), filename=str(modules()[module]))


def imports_of(module: str, *, module_level: bool, typing: bool = True) -> set[str]:
    """Every dotted name ``module`` imports (everywhere, or only at module level)."""
    tree = _tree(module)
    nodes = (_module_level(tree.body, typing=typing) if module_level else
             (n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)))
    return {name for node in nodes for name in _imported(node, module)}


def backend_edges(module: str, *, typing: bool = True) -> set[str]:
    """The backend modules ``module`` imports at module level."""
    known = modules()
    edges = set()
    for name in imports_of(module, module_level=True, typing=typing):
        while name and name not in known:  # an attribute of a module: the module
            name = name.rpartition(".")[0]
        if name and name != module:
            edges.add(name)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_nothing_below_the_api_imports_it() -> None:
    offenders = {
        module: sorted(n for n in imports_of(module, module_level=False)
                       if _under(n, ("backend.api",)))
        for module in modules() if _under(module, BELOW_API)
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_no_import_cycle_among_backend_modules() -> None:
    graph = {module: backend_edges(module) for module in modules()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    # the test above must not pass because the finder is blind
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def _closure(roots: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(backend_edges(module, typing=False))
    return seen


def test_serving_code_imports_no_training_library() -> None:
    """Our serving modules and everything they import at module level never name
    scikit-learn, Optuna or tqdm (training code imports them, or is imported lazily)."""
    offenders = {
        module: sorted(n for n in imports_of(module, module_level=True, typing=False)
                       if _under(n, TRAINING_ONLY))
        for module in _closure(SERVING)
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_importing_serving_code_loads_no_optuna_or_tqdm() -> None:
    # sklearn is left out here: xgboost and lightgbm import it themselves when installed
    code = (f"import sys, {', '.join(SERVING)}; "
            f"print(sorted(m for m in ('optuna', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_boosters_imported_first_load_without_scikit_learn() -> None:
    """The serving path's first import of xgboost/lightgbm leaves scikit-learn unloaded; a
    process that loaded scikit-learn first keeps the libraries' wrappers (training)."""
    import subprocess
    import sys

    serving = ("import sys, backend.ml.predictor; "
               "print('sklearn' in sys.modules, 'xgboost' in sys.modules)")
    training = ("import sys, sklearn, backend.ml.predictor, lightgbm.compat as c; "
                "print(c.SKLEARN_INSTALLED)")
    run = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True).stdout.split()
           for code in (serving, training)]
    assert run == [["False", "True"], ["True"]]
