"""The design holds: every module imports on its own, the import graph (module- and function-level
imports alike) has no cycle, no module is over 400 lines, and the README's Layout names every package."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "harness"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the harness modules it imports anywhere in its body (functions included)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # imports under TYPE_CHECKING count too: a cycle in annotations is still a cycle
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                # a package and its own modules are one unit: `from harness.x import y` inside x is not a cycle
                if t and t != m and not m.startswith(t + ".") and not t.startswith(m + "."):
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycle():
    edges = import_graph(modules())
    assert "harness.cards.loader" in edges["harness.orchestration.pipeline"]  # a function-level import counts as an edge
    found = cycles(edges)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_every_module_imports_in_a_fresh_interpreter():
    """All modules in a fresh interpreter, once in order and once in reverse, so an import that only
    works after some other module happened to load first shows up (one process per module would
    take minutes)."""
    names = [m for m in modules() if not m.endswith("__main__")]
    code = ("import importlib, json, sys\nfailed = {}\nfor name in json.loads(sys.argv[1]):\n"
            "    try:\n        importlib.import_module(name)\n    except Exception as e:\n        failed[name] = repr(e)\n"
            "print(json.dumps(failed))")
    for order in (names, names[::-1]):
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(order)], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        failed = json.loads(proc.stdout.strip().splitlines()[-1])
        assert not failed, failed


def test_no_module_over_400_lines():
    big = {m: n for m, f in modules().items() if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, big


def test_every_module_says_what_it_owns():
    missing = [m for m, f in modules().items() if f.stat().st_size and ast.get_docstring(ast.parse(f.read_text(encoding="utf-8"))) is None]
    assert not missing, missing


def test_readme_layout_names_every_package():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout"):]
    layout = layout[: layout.index("```", layout.index("```") + 3)]
    packages = sorted(p.parent.name for p in PKG.glob("*/__init__.py"))
    assert packages, "no packages found"
    missing = [p for p in packages if f"{p}/" not in layout.split()]
    assert not missing, f"README Layout lacks {missing}"


def test_no_module_imports_another_packages_private_names():
    """A private module (`_x.py`) or name (`_x`) is its package's business: other packages use public ones."""
    bad = []
    for m, f in modules().items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("harness"):
                continue
            owner = node.module.rpartition(".")[0] if node.module.rpartition(".")[2].startswith("_") else node.module
            private_module = any(part.startswith("_") and not part.startswith("__") for part in node.module.split("."))
            private_names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if private_module and not pkg.startswith(owner):
                bad.append(f"{m} imports {node.module}")
            if private_names and pkg != node.module.rpartition(".")[0]:  # a sibling module's private name is fair
                bad.append(f"{m} imports {', '.join(private_names)} from {node.module}")
    assert not bad, bad


def test_tasks_are_used_through_their_declared_interface():
    """Task formatting, stops and budgets are Task attributes: no getattr probing of task objects."""
    import re

    for m, f in modules().items():
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"getattr\(\s*(task|tp\.task)\s*,", text), f"{m} probes a task with getattr"


def test_every_harness_import_resolves():
    """Function-level imports run only when their function does: check each names a module or attribute that
    exists (after a move, a stale `from harness.cards import ...` inside a function would pass every other test)."""
    import importlib

    bad = []
    files = [*PKG.rglob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [(a.name, None) for a in node.names if a.name.split(".")[0] == "harness"]
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "harness":
                names = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, attr in names:
                try:
                    mod = importlib.import_module(module)
                except ImportError as e:
                    bad.append(f"{f.relative_to(ROOT)}: {module} ({e})")
                    continue
                if attr and attr != "*" and not hasattr(mod, attr):
                    try:
                        importlib.import_module(f"{module}.{attr}")
                    except ImportError:
                        bad.append(f"{f.relative_to(ROOT)}: {attr} from {module}")
    assert not bad, bad


def unit_of(module: str) -> str:
    """The layering unit of a module: its top-level package, or the top-level module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_packages_layer():
    """Each package imports only from its own layer or below (harness.LAYERS), and no two packages import
    each other, function-level imports included."""
    from harness import LAYERS

    layer = {"__init__": 0, **{u: i for i, units in enumerate(LAYERS) for u in units}}
    mods = modules()
    units = {unit_of(m) for m in mods}
    assert units <= set(layer), f"packages missing from harness.LAYERS: {sorted(units - set(layer))}"
    edges: dict[str, set[str]] = {}
    for m, targets in import_graph(mods).items():
        for t in targets:
            a, b = unit_of(m), unit_of(t)
            if a != b:
                edges.setdefault(a, set()).add(b)
    upward = sorted(f"{a} (layer {layer[a]}) -> {b} (layer {layer[b]})" for a, bs in edges.items() for b in bs if layer[b] > layer[a])
    assert not upward, upward
    ties = sorted({tuple(sorted((a, b))) for a, bs in edges.items() for b in bs if a in edges.get(b, set())})
    assert not ties, ties
    found = cycles({u: edges.get(u, set()) for u in units})
    assert not found, found


def test_layer_check_catches_an_upward_import(tmp_path):
    """The rule itself: a lower package importing a higher one is named."""
    from harness import LAYERS

    layer = {u: i for i, units in enumerate(LAYERS) for u in units}
    assert layer["core"] < layer["backends"] < layer["orchestration"] < layer["cli"]
    assert cycles({"core": {"backends"}, "backends": {"core"}}) == [["backends", "core"]]


def test_readme_layout_follows_the_layers():
    """README's Layout lists the packages layer by layer, top first, as harness.LAYERS orders them."""
    from harness import LAYERS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("<!-- layers -->"): text.index("<!-- /layers -->")]
    names = {x for units in LAYERS for x in units}
    inside = [line for line in block.splitlines() if line.startswith("  ")]  # the harness/ tree, not the repo's top folders
    words = [w for line in inside for w in line.split() if w.endswith(("/", ".py"))]
    order = [u for u in (w.rstrip("/").removesuffix(".py") for w in words) if u in names]
    expected = [u for units in reversed(LAYERS) for u in units if u != "__main__"]
    assert [u for u in order if u in expected] == expected, f"README layers out of order: {order} vs {expected}"
