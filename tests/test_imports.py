"""Every module imports on its own, and the package's module-level import graph has no cycles.

A cycle works or breaks depending on which module of it is imported first ("cannot import name ... from
partially initialized module"), so an import that happens to work from the CLI can fail from a notebook. An import
inside a function is the sanctioned lazy way to reach "upward" (DESIGN.md: every arrow points one way) and is
ignored here, as are imports under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import ocrbench

PACKAGE_DIR = Path(ocrbench.__file__).parent
PACKAGE = PACKAGE_DIR.name


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package (packages by their __init__)."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


# ---- every module imports on its own ----

IMPORT_EACH = """
import importlib, json, sys, traceback
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == %(pkg)r or m.startswith(%(pkg)r + ".")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


def test_every_module_imports_on_its_own():
    # One interpreter; before each import every ocrbench module is dropped from sys.modules, so each import
    # starts from nothing of ours (torch & co. stay loaded: a subprocess per module would take minutes).
    names = sorted(module_files())
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(PACKAGE_DIR.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", IMPORT_EACH % {"pkg": PACKAGE}, json.dumps(names)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "modules that fail to import on their own:\n" + "\n".join(
        f"--- {name}\n{tb}" for name, tb in failures.items())


# ---- the static import graph ----

def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported: not inside a function body (lazy imports)
    nor under ``if TYPE_CHECKING:``; class bodies, ``try`` and ordinary ``if`` blocks do run."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))  # into try/except handlers, with, for, match, class


def _calls(tree: ast.Module, function: str) -> bool:
    """Whether the module body calls ``function`` (by name) outside function definitions."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == function:
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _with_parents(name: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules that importing ``name`` runs directly (its own parent packages excluded: they are
    already being imported when it runs). A package that scans itself with ``import_modules`` imports each of
    its public submodules."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in module_level_imports(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:  # relative: resolve against the importing module's package
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        targets.add(source)
        # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
        targets.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules)
    if is_package and _calls(tree, "import_modules"):  # registry.import_modules: every public submodule
        children = (m.rpartition(".") for m in modules)
        targets.update(f"{parent}.{child}" for parent, _, child in children
                       if parent == name and not child.startswith("_"))
    own = set(_with_parents(name))
    return {m for t in targets for m in _with_parents(t) if m in modules and m not in own}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected component that has one (Tarjan, then BFS)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~100)
        index[v] = low[v] = len(index)
        on_stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = on_stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_shortest_cycle(graph, c) for c in components)


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    best: list[str] | None = None
    for start in sorted(component):
        paths, frontier, found = {start: [start]}, [start], None
        while frontier and found is None:  # breadth first: the first way back to start is a shortest one
            nxt = []
            for v in frontier:
                if start in graph[v]:
                    found = paths[v] + [start]
                    break
                for w in sorted(graph[v] & component):
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
            frontier = nxt
        if found and (best is None or len(found) < len(best)):
            best = found
    return best


def test_find_cycles_on_a_known_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]


def test_import_graph_sees_relative_lazy_and_scanned_imports():
    graph = import_graph()
    assert {"ocrbench.models._base", "ocrbench.models._registry", "ocrbench.data"} <= graph["ocrbench.models.crnn"]
    assert "ocrbench.models.crnn" in graph["ocrbench.models"]  # found by the package scan
    assert "ocrbench.lm" not in graph["ocrbench.models._base"]  # imported inside attach_lm only


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "module-level import cycles (move one import of each into the function that needs " \
                       "it, or move the shared code down a layer):\n" + "\n".join(" -> ".join(c) for c in cycles)
