"""The house rules the code's layout keeps: no import circles inside the package, and no
module outside the tests reaching for another module's ``_private`` names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genreshift"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def absolute(importer: str, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, with relative levels resolved."""
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package(importer) else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def module_level(tree: ast.Module):
    """Statements that run at import time: the top level and the bodies of top-level
    ``if``/``try`` blocks (``if TYPE_CHECKING:`` counts), not function bodies."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, block, []))
        if isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)


def imported(importer: str, nodes) -> set[str]:
    """genreshift modules the given statements import (``from . import x`` of a submodule
    counts as importing that submodule)."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            target = absolute(importer, node)
            if target not in MODULES:
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & MODULES.keys()
            found |= subs or {target}
            if len(subs) < len(node.names):  # names defined in the module itself
                found.add(target)
    return found - {importer}


def graph(every_import: bool) -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = ast.walk(tree) if every_import else module_level(tree)
        edges[name] = imported(name, nodes)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_sees_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("from .. import audio, __version__\nfrom ..errors import AudioError\nfrom . import loop\n")
    found = {"genreshift", "genreshift.audio", "genreshift.errors", "genreshift.train.loop"}
    assert imported("genreshift.train.data", tree.body) == found


def test_module_level_imports_have_no_circle():
    edges = graph(every_import=False)
    assert "genreshift.train.loop" in edges["genreshift.train.finetune"]  # the graph is really built
    assert find_cycle(edges) is None


def test_no_circle_even_through_imports_inside_functions():
    assert find_cycle(graph(every_import=True)) is None


def test_only_the_cli_reaches_into_the_training_wing():
    edges = graph(every_import=True)
    users = {
        m
        for m, deps in edges.items()
        if not m.startswith("genreshift.train") and any(d.startswith("genreshift.train") for d in deps)
    }
    assert users == {"genreshift.cli"}


def private_uses(path: Path) -> list[str]:
    """``_names`` this file takes from another genreshift module: imported by name, or
    read as an attribute of a module it imported."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path) if path.is_relative_to(PACKAGE) else ""
    aliases: dict[str, str] = {}  # local name -> genreshift module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("genreshift"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "genreshift"
        elif isinstance(node, ast.ImportFrom):
            target = absolute(me, node) if node.level else node.module or ""
            if not target.startswith("genreshift") or target == me:
                continue
            for a in node.names:
                if f"{target}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{target}.{a.name}"
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno}: {a.name} from {target}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            name = node.attr
            if name.startswith("_") and not name.startswith("__") and aliases[node.value.id] != me:
                found.append(f"{path.name}:{node.lineno}: {node.value.id}.{name}")
    return found


def test_the_private_name_checker_sees_both_forms(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from genreshift.pipeline import _Models\nfrom genreshift import report\nreport._thumb\n")
    assert [line.split(": ")[1] for line in private_uses(bad)] == ["_Models from genreshift.pipeline", "report._thumb"]


def test_no_module_outside_the_tests_takes_a_private_name():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "scripts").glob("*.py")]
    assert len(files) > 30
    assert [use for f in files for use in private_uses(f)] == []
