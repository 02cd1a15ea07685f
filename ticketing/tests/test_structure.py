"""The shape of the code, as docs/ARCHITECTURE.md describes it: no import cycle between
the application's modules, the Redis layer imports no other app, and every file the
architecture names for a behaviour exists (so the document cannot drift from the tree)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = ("accounts", "booking", "events", "queueing", "ticketing")


def application_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "tests" in relative.parts or "migrations" in relative.parts:
                continue
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def module_level_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Who imports whom when a module is loaded (imports inside functions and under
    TYPE_CHECKING run later, or never, and cannot make a cycle at import time)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_application_modules() -> None:
    modules = application_modules()
    graph = module_level_imports(modules)
    assert len(modules) > 50
    assert cycles(graph, sorted(modules)) == []


def test_negative_control_the_cycle_finder_sees_a_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert cycles(graph, ["a", "b", "c", "d"]) == [["a", "b", "c"]]


def test_the_redis_layer_imports_no_other_app() -> None:
    graph = module_level_imports(application_modules())
    others = {
        target
        for module, targets in graph.items()
        if module.startswith("queueing")
        for target in targets
        if not target.startswith(("queueing", "ticketing"))
    }
    assert others == set()


def test_every_file_the_architecture_names_exists() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(
        re.findall(r"`((?:accounts|booking|events|queueing|ticketing|bench|deploy)/[\w/.-]+\.\w+)", text)
    )
    assert len(named) > 20
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []
