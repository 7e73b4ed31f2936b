"""Every module imports on its own, and the package's import graph has no cycles, function-level imports included.

A cycle works or breaks depending on which module of it is imported first ("cannot import name ... from
partially initialized module"), so an import that happens to work from the CLI can fail from a notebook. Every
arrow points one way (the README's "Architecture" section): a function-level import does not hide a cycle, it
only delays it, so the strict test counts those too. The one exception is a function-level import of one of our
modules that needs an optional third-party dependency (:data:`OPTIONAL_DEPENDENCIES`) at import time: it is
lazy so that the rest works without the extra. Imports under ``if TYPE_CHECKING:`` never run and are ignored.
No cycle is not enough: :data:`NEVER_IMPORTS` lists, layer by layer, what each one never imports (a model never
imports a dataset, the harness never imports a suite, profiling never imports a report).
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
# Optional third-party dependencies (pyproject extras, or heavy plotting): a module of ours that imports one at
# module level may be reached through a function-level import, which the strict cycle test then leaves out.
OPTIONAL_DEPENDENCIES = ("fvcore", "matplotlib", "optuna", "ray", "tensorboard", "torch.utils.tensorboard")


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


def imports_of(tree: ast.Module):
    """Every import statement of the module as ``(node, lazy)``: ``lazy`` when it is inside a function body (it
    runs when the function is called). Imports under ``if TYPE_CHECKING:`` never run and are left out; class
    bodies, ``try`` and ordinary ``if`` blocks run at import time."""
    stack = [(node, False) for node in tree.body]
    while stack:
        node, lazy = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, lazy
            continue
        lazy = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        children = node.orelse if isinstance(node, ast.If) and _is_type_checking(node) else ast.iter_child_nodes(node)
        stack.extend((child, lazy) for child in children)


def module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported (not inside a function body)."""
    return (node for node, lazy in imports_of(tree) if not lazy)


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


def _sources(node: ast.Import | ast.ImportFrom, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The dotted names one import statement of module ``name`` reaches."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:  # relative: resolve against the importing module's package
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
    return {source} | {f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules}


def imported_modules(name: str, path: Path, modules: set[str], strict: bool = False,
                     optional: frozenset[str] = frozenset()) -> set[str]:
    """The package modules that importing ``name`` runs directly (its own parent packages excluded: they are
    already being imported when it runs). A package that scans itself with ``import_modules`` imports each of
    its public submodules. ``strict``: function-level imports count too, except those of the ``optional``
    modules (ours that need an optional dependency)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node, lazy in imports_of(tree):
        if lazy and not strict:
            continue
        found = _sources(node, name, is_package, modules)
        targets.update(found - optional if lazy else found)
    if is_package and _calls(tree, "import_modules"):  # _plugins.import_modules: every public submodule
        children = (m.rpartition(".") for m in modules)
        targets.update(f"{parent}.{child}" for parent, _, child in children
                       if parent == name and not child.startswith("_"))
    own = set(_with_parents(name))
    return {m for t in targets for m in _with_parents(t) if m in modules and m not in own}


def needs_optional_dependency(path: Path) -> bool:
    """Whether the module imports one of :data:`OPTIONAL_DEPENDENCIES` when it is imported."""
    sources = {s for node in module_level_imports(ast.parse(path.read_text(), str(path)))
               for s in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])}
    return any(s == dep or s.startswith(dep + ".") for s in sources for dep in OPTIONAL_DEPENDENCIES)


def import_graph(strict: bool = False) -> dict[str, set[str]]:
    """Module -> the modules importing it runs; ``strict``: what calling its functions may import as well."""
    files = module_files()
    optional = frozenset(name for name, path in files.items() if strict and needs_optional_dependency(path))
    return {name: imported_modules(name, path, set(files), strict, optional) for name, path in files.items()}


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
    strict = import_graph(strict=True)
    assert "ocrbench.lm" not in strict["ocrbench.models._base"]  # decoding is a value: models never load the LM
    assert "ocrbench.diagnostics.features" in strict["ocrbench.bench.suite"]  # a function-level import counts
    assert "ocrbench.profile.fvcore_check" not in strict["ocrbench.profile.runner"]  # ... unless optional


def test_the_optional_dependencies_are_the_only_exception():
    """The modules exempt from the strict test: each imports an optional dependency at module level (the others
    import theirs inside the function that needs it). A new one here is a decision to review, not a way out."""
    files = module_files()
    exempt = {name for name, path in files.items() if needs_optional_dependency(path)}
    assert exempt == {"ocrbench.profile.fvcore_check", "ocrbench.report.plots"}, exempt


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "module-level import cycles (move one import of each into the function that needs " \
                       "it, or move the shared code down a layer):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_cycles_counting_function_level_imports():
    cycles = find_cycles(import_graph(strict=True))
    assert not cycles, "import cycles through function-level imports (move the shared code down a layer, or " \
                       "register instead of listing):\n" + "\n".join(" -> ".join(c) for c in cycles)


# ---- the arrows of the architecture (README "Architecture") ----

GROUND_FLOOR = {"ocrbench", "_deprecated", "_plugins", "config", "errors", "progress", "records", "runtime"}
UPPER = {"harness", "bench", "profile", "diagnostics", "pipeline", "report", "commands", "cli", "__main__"}
# layer -> the layers it never imports (function-level imports included), and why
NEVER_IMPORTS = {
    "ground floor": ({"data", "datasets", "models", "decoding", "lm"} | UPPER,
                     "every layer may use the ground floor, so it uses none of them"),
    "data": ({"datasets", "models", "decoding", "lm"} | UPPER,
             "data/ is the mechanism (samples, registry, cache, integrity); the datasets register into it"),
    "datasets": ({"models", "decoding", "lm"} | UPPER, "a dataset yields samples; it knows no model"),
    "models": ({"datasets", "lm"} | UPPER,
               "a model sees samples and batches (data/), never a dataset; decoding is a value, so no LM either"),
    "decoding": ({"datasets", "models", "lm"} | UPPER, "decoding reads the model's output; the LM is duck-typed"),
    "lm": ({"models", "decoding"} | UPPER, "the character LM is trained and loaded below the harness"),
    "harness": (UPPER - {"harness"}, "the harness is one run's recipe; suites, measurements and reports use it"),
    "profile": ({"bench", "report", "commands", "cli", "__main__"},
                "measurement writes rows (records.py); the reports read them"),
    "diagnostics": ({"bench", "report", "commands", "cli", "__main__"}, "diagnostics use the harness, not suites"),
    "pipeline": ({"bench", "report", "commands", "cli", "__main__"}, "the page pipeline uses the harness only"),
    "deploy": ({"bench", "report", "commands", "cli", "__main__"},
               "deployment measurement uses the harness and the contract; the reports read its rows"),
    "bench": ({"report", "commands", "cli", "__main__"}, "suites write records; the reports read them"),
    "report": ((UPPER | {"data", "datasets", "models", "decoding", "lm"}) - {"report"},
               "a report reads records, so it works without torch models or data"),
}


def layer(module: str) -> str:
    """``ocrbench.models.crnn`` -> ``models``; the loose modules at the top are the ground floor."""
    name = module.split(".")[1] if "." in module else module
    return "ground floor" if name in GROUND_FLOOR else name


def test_every_layer_is_in_the_arrow_table():
    layers = {layer(m) for m in module_files()}
    assert layers - set(NEVER_IMPORTS) == {"commands", "cli", "__main__"}  # the top imports everything, thinly


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every edge of ``graph`` against :data:`NEVER_IMPORTS`, as ``importer -> imported  (why)``."""
    return sorted(f"{m} -> {t}  ({NEVER_IMPORTS[layer(m)][1]})" for m, targets in graph.items()
                  if layer(m) in NEVER_IMPORTS for t in targets if layer(t) in NEVER_IMPORTS[layer(m)][0])


def test_upward_imports_on_a_known_graph():
    graph = {"ocrbench.models.crnn": {"ocrbench.data.samples", "ocrbench.datasets.synth_pages"},
             "ocrbench.harness.train": {"ocrbench.models", "ocrbench.bench.suite"},
             "ocrbench.profile.runner": {"ocrbench.harness.train", "ocrbench.report.leaderboard"},
             "ocrbench.records": {"ocrbench.errors"}, "ocrbench.commands.run": {"ocrbench.report"}}
    assert [e.split("  (")[0] for e in upward_imports(graph)] == [
        "ocrbench.harness.train -> ocrbench.bench.suite", "ocrbench.models.crnn -> ocrbench.datasets.synth_pages",
        "ocrbench.profile.runner -> ocrbench.report.leaderboard"]


def test_no_layer_imports_one_above_it():
    upward = upward_imports(import_graph(strict=True))
    assert not upward, "imports against the architecture (move the shared code down a layer):\n" + "\n".join(upward)
